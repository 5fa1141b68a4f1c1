"""The model description shared by the built-in toy models and user models (docs/physics.md).

A model is a frozen dataclass of plain arrays and vectorised functions. The kernel only ever
calls these functions on a whole block of trajectories at once, so each function takes the
classical state ``Z`` with shape ``(N, n)`` (N trajectories, n = 2k phase-space components,
positions first, then momenta) and returns arrays with a leading trajectory axis.

Operators are given either *diagonal* (``diagonal=True``: only the d diagonal entries, real)
or as full ``d×d`` complex matrices. Diagonal models are integrated element-wise, with cost
proportional to d; full matrices cost d² (or d³ for products).

To define a new model, build a :class:`Model` directly (see ``docs/models.md``)::

    Model(
        name="my_model",
        params={"lam": 1.0},
        coord_labels=("q", "p"),
        level_labels=("L", "R"),
        z0=np.array([0.0, 0.0]),
        psi0=np.array([1, 1]) / np.sqrt(2),
        hamiltonian_flow=lambda Z: ...,          # (N, n) -> (N, n): {Z_j, H_C}
        interaction_hamiltonian=lambda Z: ...,   # (N, n) -> (N, d) or (N, d, d): H_I(Z)
        backreaction_operators=lambda Z: ...,    # (N, n) -> (N, n, d) or (N, n, d, d): L_j(Z)
        noise_shape=np.array([[0.0], [1.0]]),    # (n, m), or (N, n) -> (N, n, m)
        diagonal=True,
    )

The noise kernel used in a run is ``σ(Z) = sigma · noise_shape(Z)``, where ``sigma`` is the
sweep parameter passed to :func:`cq_core.simulate`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["Model", "ArrayFn"]

ArrayFn = Callable[[np.ndarray], np.ndarray]


def _always_inside(Z: np.ndarray) -> np.ndarray:
    return np.ones(Z.shape[0], dtype=bool)


@dataclass(frozen=True, eq=False)
class Model:
    """A hybrid classical–quantum model (docs/physics.md).

    Attributes
    ----------
    name, params
        The model's name and the parameters it was built with (recorded in every Dataset).
    coord_labels
        Labels of the n = 2k classical components, positions first then momenta
        (``("q", "p")``, ``("x", "y", "z", "px", "py", "pz")``).
    level_labels
        Labels of the d basis states of the quantum system.
    z0
        Initial classical state, shape ``(n,)``.
    psi0
        Initial quantum state, shape ``(d,)``; normalised on construction.
    hamiltonian_flow
        ``Z (N, n) -> (N, n)``: the Hamiltonian vector field ``{Z_j, H_C}`` of the purely
        classical Hamiltonian.
    interaction_hamiltonian
        ``Z (N, n) -> H_I(Z)``: shape ``(N, d)`` (real diagonal) when ``diagonal`` else
        ``(N, d, d)`` (Hermitian).
    backreaction_operators
        ``Z (N, n) -> L(Z)``: ``L_j = {Z_j, H_I}`` for every component j, shape
        ``(N, c, d)`` when ``diagonal`` else ``(N, c, d, d)``, for the c components listed in
        ``coupled`` (all n by default). For a momentum component this is the force operator
        ``−∂H_I/∂q``; for a position component ``∂H_I/∂p``. A leading axis of length 1 is
        allowed when the operators do not depend on Z (it broadcasts over trajectories).
    coupled
        Indices of the classical components j whose ``L_j`` may be non-zero (default: all).
        Components left out are declared uncoupled (``L_j = 0``), which saves work.
    symbolic
        The model as SymPy expressions (:class:`cq_core.models.symbolic.SymbolicModel`) when
        it was written from its Hamiltonian; None for a model given only as functions.
    noise_shape
        The noise kernel per unit strength: a constant ``(n, m)`` array or a function
        ``Z (N, n) -> (N, n, m)``. The run's kernel is ``sigma * noise_shape``.
    diagonal
        True when H_I and every L_j are diagonal in the model's basis (they then commute and
        the element-wise exponential integrator is exact for frozen Z).
    domain
        ``Z (N, n) -> (N,) bool``: where the model is defined. A trajectory that leaves it is
        frozen and flagged ``left_domain``.
    sigma_name
        What the model calls its noise strength (``"sigma"``; ``"gamma"`` for
        ``sqrt_potential``). Only used in labels.
    basis_pair
        The two basis states (level indices) that ⟨σz⟩ and the coherence C(t) refer to
        (docs/physics.md, "The decoherence rate Γ"). For one qubit ``(0, 1)`` = (|L⟩, |R⟩);
        for the lattice |0…0⟩, |1…1⟩.
    """

    name: str
    params: Mapping[str, Any]
    coord_labels: tuple[str, ...]
    level_labels: tuple[str, ...]
    z0: np.ndarray
    psi0: np.ndarray
    hamiltonian_flow: ArrayFn
    interaction_hamiltonian: ArrayFn
    backreaction_operators: ArrayFn
    noise_shape: np.ndarray | ArrayFn
    diagonal: bool = True
    domain: ArrayFn = field(default=_always_inside)
    sigma_name: str = "sigma"
    basis_pair: tuple[int, int] | None = None
    coupled: tuple[int, ...] | None = None
    symbolic: Any = None

    def __post_init__(self) -> None:
        n = len(self.coord_labels)
        d = len(self.level_labels)
        if n == 0 or n % 2:
            raise ValueError(
                f"model {self.name!r}: coord_labels must list an even, non-zero number of "
                f"phase-space components (positions then momenta), got {n}"
            )
        z0 = np.asarray(self.z0, dtype=float)
        if z0.shape != (n,):
            raise ValueError(
                f"model {self.name!r}: z0 must have shape ({n},) to match coord_labels "
                f"{self.coord_labels}, got {z0.shape}"
            )
        if not np.all(np.isfinite(z0)):
            raise ValueError(f"model {self.name!r}: z0 must be finite, got {z0}")
        psi0 = np.asarray(self.psi0, dtype=complex)
        if psi0.shape != (d,):
            raise ValueError(
                f"model {self.name!r}: psi0 must have length {d} (one amplitude per level "
                f"{self.level_labels}), got shape {psi0.shape}"
            )
        norm = np.linalg.norm(psi0)
        if not np.isfinite(norm) or norm == 0.0:
            raise ValueError(
                f"model {self.name!r}: psi0 must be a non-zero finite vector, got norm {norm}"
            )
        if not callable(self.noise_shape):
            shape = np.asarray(self.noise_shape, dtype=float)
            if shape.ndim != 2 or shape.shape[0] != n:
                raise ValueError(
                    f"model {self.name!r}: noise_shape must be an (n={n}, m) array, "
                    f"got shape {shape.shape}"
                )
            object.__setattr__(self, "noise_shape", shape)
        pair = (0, d - 1) if self.basis_pair is None else tuple(self.basis_pair)
        if len(pair) != 2 or not all(0 <= i < d for i in pair) or pair[0] == pair[1]:
            raise ValueError(
                f"model {self.name!r}: basis_pair must be two distinct levels in [0, {d}), "
                f"got {self.basis_pair}"
            )
        coupled = tuple(range(n)) if self.coupled is None else tuple(int(j) for j in self.coupled)
        if not coupled or any(not 0 <= j < n for j in coupled) or len(set(coupled)) != len(coupled):
            raise ValueError(
                f"model {self.name!r}: coupled must list distinct component indices in "
                f"[0, {n}), got {self.coupled}"
            )
        object.__setattr__(self, "coupled", coupled)
        object.__setattr__(self, "z0", z0)
        object.__setattr__(self, "psi0", psi0 / norm)
        object.__setattr__(self, "basis_pair", pair)
        object.__setattr__(self, "coord_labels", tuple(self.coord_labels))
        object.__setattr__(self, "level_labels", tuple(self.level_labels))
        params = dict(self.params)
        if "psi0" in params:  # record the state actually used (normalised)
            params["psi0"] = self.psi0
        object.__setattr__(self, "params", params)

    @property
    def n_classical(self) -> int:
        """n: the number of classical phase-space components."""
        return len(self.coord_labels)

    @property
    def dim(self) -> int:
        """d: the Hilbert-space dimension."""
        return len(self.level_labels)

    @property
    def constant_noise(self) -> bool:
        """True when the noise kernel does not depend on Z."""
        return not callable(self.noise_shape)

    def noise_kernel(self, Z: np.ndarray) -> np.ndarray:
        """The unit-strength noise kernel at Z: shape ``(N, n, m)`` (broadcast if constant)."""
        if callable(self.noise_shape):
            return np.asarray(self.noise_shape(Z), dtype=float)
        return np.broadcast_to(self.noise_shape, (Z.shape[0], *self.noise_shape.shape))

    @property
    def n_noises(self) -> int:
        """m: the number of independent Wiener processes."""
        return self.noise_kernel(self.z0[None, :]).shape[-1]
