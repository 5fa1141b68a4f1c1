"""Pauli matrices and small operator helpers for writing ``H_I`` with SymPy.

The module imports SymPy on first use of one of its names (``cq_core.sx`` and friends are
looked up lazily), so importing :mod:`cq_core` never pays for it. Conventions as in the
built-in models: level 0 is σz = +1 (|L⟩), level 1 is σz = −1 (|R⟩); in a product of sites
(:func:`on_site`, :func:`kron`) site 0 is the most significant bit of the level index.
"""

from __future__ import annotations

from typing import Any

__all__ = ["PAULI_NAMES", "pauli", "identity", "kron", "on_site"]

PAULI_NAMES = ("sx", "sy", "sz")


def pauli(name: str) -> Any:
    """σx, σy or σz as an immutable 2×2 ``sympy.Matrix`` (``name`` in ``"sx", "sy", "sz"``)."""
    import sympy

    entries = {
        "sx": [[0, 1], [1, 0]],
        "sy": [[0, -sympy.I], [sympy.I, 0]],
        "sz": [[1, 0], [0, -1]],
    }
    if name not in entries:
        raise ValueError(f"unknown Pauli matrix {name!r}; valid names: sx, sy, sz")
    return sympy.ImmutableMatrix(entries[name])


def identity(d: int) -> Any:
    """The d×d identity as an immutable ``sympy.Matrix``."""
    import sympy

    if isinstance(d, bool) or not isinstance(d, int) or d < 1:
        raise ValueError(f"identity: d must be an integer >= 1, got {d!r}")
    return sympy.ImmutableMatrix(sympy.eye(d))


def kron(*ops: Any) -> Any:
    """The tensor product ``ops[0] ⊗ ops[1] ⊗ …`` (the first factor is the slowest index)."""
    import sympy
    from sympy.physics.quantum import TensorProduct

    if not ops:
        raise ValueError("kron: give at least one operator")
    result = sympy.ImmutableMatrix(ops[0])
    for op in ops[1:]:
        result = sympy.ImmutableMatrix(TensorProduct(result, sympy.ImmutableMatrix(op)))
    return result


def on_site(op: Any, site: int, n_sites: int) -> Any:
    """``1 ⊗ … ⊗ op ⊗ … ⊗ 1``: the one-site operator ``op`` acting on ``site`` of ``n_sites``.

    Shape ``(2ⁿ, 2ⁿ)`` for a 2×2 ``op``; site 0 is the most significant bit of the level.
    """
    import sympy

    op = sympy.ImmutableMatrix(op)
    if not (isinstance(site, int) and isinstance(n_sites, int) and 0 <= site < n_sites):
        raise ValueError(f"on_site: need 0 <= site < n_sites, got site={site}, n_sites={n_sites}")
    eye = identity(op.shape[0])
    return kron(*[op if i == site else eye for i in range(n_sites)])


def __getattr__(name: str) -> Any:
    if name in PAULI_NAMES:
        return pauli(name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
