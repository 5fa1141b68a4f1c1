"""The symbolic description of a model: what ``from_hamiltonian`` builds and what the compiled
kernels are generated from (docs/physics.md, "The dynamics").

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

from dataclasses import dataclass
from typing import Any

__all__ = ["SymbolicModel"]


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
