"""Symbolic checks of a model written from its Hamiltonian, for every Z (not only at z0).

Used by :func:`cq_core.from_hamiltonian`: every symbol has a value; H_C and the noise are
real and H_I Hermitian (for real coordinates in the domain); and the complete-positivity
condition ``(1 − D2 D2⁺) D1 = 0`` of docs/physics.md holds: every coupled direction carries
noise wherever its back-reaction operator is not a multiple of the identity. Each failure is
a ``ValueError`` that says what and where. SymPy is imported inside the functions only.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from .symbolic import Derivation, SymbolicModel, is_zero

__all__ = ["check_free_symbols", "check_real", "check_complete_positivity"]


def _error(name: str, message: str) -> ValueError:
    return ValueError(f"model {name!r}: {message}")


def check_free_symbols(name: str, where: str, expr: Any, coords: tuple) -> None:
    extra = expr.free_symbols - set(coords)
    if extra:
        names = ", ".join(sorted(s.name for s in extra))
        raise _error(
            name,
            f"{where} depends on {names}, which has no value: give it in params (or list it "
            f"among the positions/momenta); {where} = {expr}",
        )


def _real_coordinates(sym: SymbolicModel) -> dict:
    """Each coordinate as a real symbol, positive (non-negative) where the domain says
    ``q > 0`` (``q >= 0``); coordinates already declared real are kept."""
    import sympy

    signs: dict = {}
    relations = () if sym.domain is None else sympy.And.make_args(sym.domain)
    for rel in relations:
        if isinstance(rel, (sympy.StrictGreaterThan, sympy.GreaterThan)) and rel.rhs == 0:
            signs[rel.lhs] = "positive" if rel.rel_op == ">" else "nonnegative"
        elif isinstance(rel, (sympy.StrictLessThan, sympy.LessThan)) and rel.lhs == 0:
            signs[rel.rhs] = "positive" if rel.rel_op == "<" else "nonnegative"
    return {
        s: sympy.Dummy(s.name, real=True, **({signs[s]: True} if s in signs else {}))
        for s in sym.coords
        if not s.is_real or s in signs
    }


def _equal(a: Any, b: Any, variables: list, domain: Any) -> bool:
    """``a == b`` for every real point of the domain: symbolically when the expanded difference
    is zero, else at 256 fixed pseudo-random points in [−3, 3]ⁿ inside the domain (to 1e-10,
    relative)."""
    import sympy

    if sympy.expand(a - b).is_zero:
        return True
    points = np.random.default_rng(0).uniform(-3.0, 3.0, size=(len(variables), 256)) + 0j
    with np.errstate(all="ignore"):
        left, right = (
            np.broadcast_to(
                np.asarray(sympy.lambdify(variables, e, modules="numpy")(*points), complex),
                points.shape[1:],
            )
            for e in (a, b)
        )
        inside = np.ones(points.shape[1], dtype=bool)
        if domain is not None:
            test = sympy.lambdify(variables, domain, modules="numpy")
            inside = np.broadcast_to(np.asarray(test(*points), dtype=bool), inside.shape)
        ok = inside & np.isfinite(left) & np.isfinite(right)
        if not ok.any():
            return False
        scale = max(1.0, float(np.max(np.abs(left[ok]) + np.abs(right[ok]))))
        return bool(np.max(np.abs(left[ok] - right[ok])) <= 1e-10 * scale)


def check_real(name: str, sym: SymbolicModel) -> None:
    """H_C and the noise are real and H_I is Hermitian, for real coordinates in the domain."""
    import sympy

    real = _real_coordinates(sym)
    back = {v: k for k, v in real.items()}
    variables = [real.get(s, s) for s in sym.coords]
    domain = None if sym.domain is None else sym.domain.xreplace(real)
    hint = "for real coordinates inside the domain (declare one such as q > 0 for sqrt(q))"

    def is_real(expr: Any) -> bool:
        expr = expr.xreplace(real)
        return expr.is_real is True or _equal(expr, sympy.conjugate(expr), variables, domain)

    if not is_real(sym.H_C):
        raise _error(name, f"H_C must be real {hint}, got {sym.H_C}")
    for (j, _), value in sym.noise.todok().items():
        if not is_real(value):
            raise _error(name, f"the noise on {sym.coords[j]} must be real {hint}, got {value}")
    H = sym.H_I.xreplace(real)
    entries = H.todok()
    for a, b in sorted(set(entries) | {(b, a) for a, b in entries}):
        if a > b:
            continue
        if a == b and H[a, a].is_real is True:
            continue
        conj = sympy.conjugate(H[b, a])
        if not _equal(H[a, b], conj, variables, domain):
            raise _error(
                name,
                f"H_I is not Hermitian: H_I[{a}, {b}] = {H[a, b].xreplace(back)} but "
                f"conj(H_I[{b}, {a}]) = {conj.xreplace(back)}",
            )


def _traceless(entries: Mapping[tuple[int, int], Any], d: int) -> dict:
    """The non-zero entries of ``L − tr(L)/d · 1``."""
    trace = sum((v for (a, b), v in entries.items() if a == b), 0) / d
    keys = set(entries) | {(a, a) for a in range(d)} if not is_zero(trace) else set(entries)
    out = {}
    for a, b in sorted(keys):
        value = entries.get((a, b), 0) - (trace if a == b else 0)
        if not is_zero(value):
            out[(a, b)] = value
    return out


def check_complete_positivity(name: str, sym: SymbolicModel, derived: Derivation) -> None:
    """``(1 − D2 D2⁺) D1 = 0`` for every Z: each coupled direction carries noise wherever
    its back-reaction operator is not a multiple of the identity."""
    import sympy

    coords, d = sym.coords, sym.dim
    for j, entries in derived.backreaction.items():
        offending = _traceless(entries, d)
        if not offending:
            continue  # L_j ∝ 1 does not measure anything
        (a, b), term = next(iter(offending.items()))
        label = coords[j]
        what = (
            f"L_{label} = {{{label}, H_I}} is not a multiple of the identity: its term "
            f"L_{label}[{a}, {b}] = {term}"
        )
        row = [value for value in sym.noise.row(j) if not value.is_zero]
        if not row:
            raise _error(
                name,
                f"complete positivity fails ((1 − D2 D2⁺) D1 ≠ 0): component {label} is coupled "
                f"({what}) but carries no noise; add a noise entry for {label}",
            )
        try:
            zeros = sympy.solve(row, list(coords), dict=True)
        except (NotImplementedError, ValueError, TypeError):
            zeros = []  # not solvable in closed form: checked at z0 by simulate
        for point in zeros:
            inside = sym.domain is None or sym.domain.xreplace(point) is not sympy.false
            still = [v.xreplace(point) for v in offending.values()]
            if inside and any(not is_zero(v) for v in still if v.is_finite is not False):
                where = ", ".join(f"{k} = {v}" for k, v in point.items())
                raise _error(
                    name,
                    f"complete positivity fails ((1 − D2 D2⁺) D1 ≠ 0): the noise on {label} "
                    f"vanishes at {where}, where {what}",
                )
