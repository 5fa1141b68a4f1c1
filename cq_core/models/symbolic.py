"""The symbolic description of a model: what ``from_hamiltonian`` builds and what the compiled
kernels are generated from (docs/physics.md, "Equations → code").

A :class:`SymbolicModel` holds a model's Hamiltonian and noise as SymPy objects with every
parameter already given its value, so that the only free symbols left are the phase-space
coordinates. Everything the integrators need follows from it:

- the Hamiltonian flow ``{Z_j, H_C}`` (:meth:`SymbolicModel.flow`),
- the back-reaction operators ``L_j = {Z_j, H_I}`` (:meth:`SymbolicModel.backreaction`),
- the noise kernel per unit strength ``σ(Z)/sigma`` (``noise``, n × m).

SymPy is imported only when one of these is built or used: this module does not import it at
module level, so importing :mod:`cq_core` never pays for it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import Any

import numpy as np

__all__ = ["SymbolicModel", "Derivation", "LazySymbolicModel", "is_zero", "nonzero_entries"]


_PROBES = (0.6180339887, -1.3247179572, 2.2360679775, -0.4142135624, 1.7320508076)


def _clearly_nonzero(expr: Any) -> bool:
    """True when ``expr`` is visibly non-zero at one of a few fixed irrational-looking points
    (each free symbol gets a different value); cheap, and spares ``simplify`` the common case."""
    import sympy

    symbols = sorted(expr.free_symbols, key=str)
    for shift in range(3):
        point = {
            s: sympy.Float(_PROBES[(i + shift) % len(_PROBES)] * (1 + i))
            for i, s in enumerate(symbols)
        }
        try:
            value = complex(expr.xreplace(point).evalf())
        except (TypeError, ValueError):
            continue  # a singular point or an unevaluated function: try another
        if np.isfinite(value) and abs(value) > 1e-9:
            return True
    return False


def is_zero(expr: Any) -> bool:
    """True when a SymPy expression is identically zero (expand, probe, then simplify)."""
    import sympy

    expr = sympy.sympify(expr)
    if expr.is_zero:  # also a Float 0.0, which no longer compares equal to 0 in SymPy ≥ 1.13
        return True
    expanded = sympy.expand(expr)
    if expanded.is_zero:
        return True
    if expanded.is_number:
        return bool(expanded.is_zero)
    if _clearly_nonzero(expanded):
        return False
    return bool(sympy.simplify(expanded).is_zero)


def nonzero_entries(matrix: Any) -> dict[tuple[int, int], Any]:
    """The non-zero entries of a SymPy matrix as ``{(row, column): expression}``."""
    return {key: value for key, value in matrix.todok().items() if not value.is_zero}


@dataclass(frozen=True)
class Derivation:
    """What follows from a :class:`SymbolicModel` (see :meth:`SymbolicModel.derive`).

    Attributes
    ----------
    flow
        ``{Z_j, H_C}`` for j = 0..n−1 (n scalar expressions).
    backreaction
        ``{j: {(a, b): L_j[a, b]}}``: the non-zero entries of ``L_j = {Z_j, H_I}`` for every
        coupled component j (the components with ``L_j ≠ 0``), in increasing j.
    coupled
        The coupled components (keys of ``backreaction``), in increasing order.
    diagonal
        True when H_I and every L_j are diagonal.
    commuting
        True when H_I and all L_j commute with each other (always so when diagonal).
    """

    flow: tuple[Any, ...]
    backreaction: dict[int, dict[tuple[int, int], Any]]
    coupled: tuple[int, ...]
    diagonal: bool
    commuting: bool


@dataclass(frozen=True, eq=False)
class SymbolicModel:
    """A model written as SymPy expressions of its phase-space coordinates.

    Attributes
    ----------
    positions, momenta
        The k position and k momentum symbols; the classical state is
        ``Z = (q_1..q_k, p_1..p_k)`` in this order (n = 2k components).
    H_C
        The classical Hamiltonian, a scalar expression of Z.
    H_I
        The interaction Hamiltonian, a d × d Hermitian ``sympy.Matrix`` of expressions of Z.
    noise
        The noise kernel per unit strength, an n × m ``sympy.Matrix`` of expressions of Z
        (row j: component Z_j; column i: Wiener process W_i). The run's kernel is
        ``sigma · noise``.
    domain
        Where the model is defined, a SymPy relation or conjunction of relations of Z
        (``q > 0``), or None (everywhere).
    """

    positions: tuple[Any, ...]
    momenta: tuple[Any, ...]
    H_C: Any
    H_I: Any
    noise: Any
    domain: Any = None

    @property
    def coords(self) -> tuple[Any, ...]:
        """The n phase-space symbols in the order of Z: positions, then momenta."""
        return tuple(self.positions) + tuple(self.momenta)

    @property
    def dim(self) -> int:
        """d: the Hilbert-space dimension."""
        return int(self.H_I.shape[0])

    def poisson_bracket(self, f: Any, g: Any) -> Any:
        """``{f, g} = Σ_a ∂f/∂q_a ∂g/∂p_a − ∂f/∂p_a ∂g/∂q_a`` (element-wise for a Matrix g)."""
        import sympy

        total = sympy.S.Zero if not isinstance(g, sympy.MatrixBase) else sympy.zeros(*g.shape)
        for q, p in zip(self.positions, self.momenta, strict=True):
            total = (
                total + sympy.diff(f, q) * sympy.diff(g, p) - sympy.diff(f, p) * sympy.diff(g, q)
            )
        return total

    def flow(self) -> list[Any]:
        """The Hamiltonian flow ``{Z_j, H_C}`` for j = 0..n−1 (n expressions)."""
        return [self.poisson_bracket(z, self.H_C) for z in self.coords]

    def backreaction(self) -> list[Any]:
        """The back-reaction operators ``L_j = {Z_j, H_I}`` for j = 0..n−1 (d × d matrices)."""
        return [self.poisson_bracket(z, self.H_I) for z in self.coords]

    def _conjugate(self, j: int) -> Any:
        """The coordinate that ``{Z_j, ·}`` differentiates by: p_a for q_a, q_a for p_a."""
        k = len(self.positions)
        return self.momenta[j] if j < k else self.positions[j - k]

    def _bracket_with(self, j: int, expr: Any) -> Any:
        """``{Z_j, f}``: ``∂f/∂p_a`` for the position q_a, ``−∂f/∂q_a`` for the momentum p_a."""
        import sympy

        k = len(self.positions)
        if j < k:
            return sympy.diff(expr, self.momenta[j])
        return -sympy.diff(expr, self.positions[j - k])

    def derive(self) -> Derivation:
        """The flow, the non-zero entries of every ``L_j``, the coupled components, and whether
        the operators are diagonal and commute. Works on the non-zero entries of ``H_I`` only,
        so a large diagonal (sparse) ``H_I`` stays cheap."""
        import sympy

        n, d = len(self.coords), self.dim
        h_entries = nonzero_entries(self.H_I)
        flow = tuple(self._bracket_with(j, self.H_C) for j in range(n))
        backreaction: dict[int, dict[tuple[int, int], Any]] = {}
        for j in range(n):
            entries = {}
            partner = self._conjugate(j)
            for key, value in h_entries.items():
                if partner not in value.free_symbols:
                    continue
                derivative = self._bracket_with(j, value)
                if not is_zero(derivative):
                    entries[key] = derivative
            if entries:
                backreaction[j] = entries
        diagonal = all(a == b for a, b in h_entries) and all(
            a == b for entries in backreaction.values() for a, b in entries
        )
        commuting = diagonal
        if not diagonal:
            ops = [sympy.Matrix(self.H_I)] + [
                sympy.Matrix(d, d, lambda a, b, e=e: e.get((a, b), 0))
                for e in backreaction.values()
            ]
            commuting = all(
                is_zero(entry)
                for i, A in enumerate(ops)
                for B in ops[i + 1 :]
                for entry in (A * B - B * A)
            )
        return Derivation(flow, backreaction, tuple(backreaction), diagonal, commuting)


class LazySymbolicModel(SymbolicModel):
    """A :class:`SymbolicModel` built on first access to one of its fields.

    The hand-written built-in models carry their symbolic form this way, so that building
    them (a run-cell job) never imports SymPy; ``build`` is called once, on first use.
    """

    def __init__(self, build: Callable[[], SymbolicModel], label: str = "") -> None:
        object.__setattr__(self, "_build", build)
        object.__setattr__(self, "_label", label)
        object.__setattr__(self, "_built", None)

    def resolve(self) -> SymbolicModel:
        """The built :class:`SymbolicModel` (built now if it was not yet)."""
        built = object.__getattribute__(self, "_built")
        if built is None:
            built = object.__getattribute__(self, "_build")()
            object.__setattr__(self, "_built", built)
        return built

    def __getattribute__(self, attr: str) -> Any:
        if attr in _FIELDS:
            return getattr(object.__getattribute__(self, "resolve")(), attr)
        return object.__getattribute__(self, attr)

    def __repr__(self) -> str:
        built = object.__getattribute__(self, "_built")
        if built is None:
            return f"LazySymbolicModel({object.__getattribute__(self, '_label')!r}, not built yet)"
        return repr(built)


_FIELDS = frozenset(f.name for f in fields(SymbolicModel))
