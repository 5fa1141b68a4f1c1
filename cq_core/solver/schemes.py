"""The quantum schemes, registered by name in one table (docs/physics.md, "Equations → code").

A scheme is one time step of the quantum state, in pure and density mode; :data:`SCHEMES`
maps its name (the ``method`` of a run) to a :class:`Scheme`. Adding a scheme is one
:func:`register` call: the run checks, the NumPy integrator and the Dataset attrs read the table.

Shapes (N trajectories, d levels, m Wiener processes):

* diagonal models: ``H`` is ``(N, d)`` real, the measurement operators ``K`` are
  ``(N|1, m, d)`` real; a pure state ``psi`` is ``(N, d)``, a density matrix ``rho``
  ``(N, d, d)``;
* general models: ``H`` is ``(N, d, d)``, ``K`` is ``(N|1, m, d, d)`` (Hermitian).

``K_i = ½ Σ_j (σ⁺)_{ij} L_j`` are the measurement operators, ``mean_K`` their expectations
``⟨K_i⟩`` ``(N, m)``, ``dW`` the Wiener increments ``(N, m)`` shared with the classical update,
and ``dY = dW + 2⟨K⟩dt`` the measurement record.

Integrators
-----------
``exponential`` (default for diagonal models)
    Freeze Z over the step and apply the exact solution of the linear stochastic
    Schrödinger equation, then renormalise::

        ψ ← normalise(exp(−i H dt − Σ_i K_i² dt + Σ_i K_i dY_i) ψ)

    In density mode, with decoherence above the minimum (``excess = v``), the same factor
    ``e = exp(…)`` acts on both sides and the extra dephasing is a Hadamard product with the
    positive semi-definite Gaussian kernel ``G_ab = exp(−½ v Σ_i (K_ia − K_ib)² dt)``::

        ρ ← normalise((e ρ e*) ∘ G)

    which is the exact solution for commuting operators and keeps ρ positive (Schur product
    theorem) with trace 1.
``kraus`` (default for non-commuting models)
    A Rouchon–Ralph-type Kraus step (P. Rouchon, J. F. Ralph, PRA 91, 012118 (2015))::

        A = Σ_i K_i dY_i,   M = 1 − i H dt − (1 + v/2) Σ_i K_i² dt + A + ½ A²
        ρ ← normalise(M ρ M† + v dt Σ_i K_i ρ K_i),   ψ ← normalise(M ψ)

    which matches the SDE to first order in dt and preserves norm and positivity by
    construction.
``euler``
    Euler–Maruyama on the SDE exactly as written (the reference notebook's scheme). The norm
    drifts; nothing is renormalised.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

__all__ = [
    "QUANTUM_STEPS",
    "SCHEMES",
    "Scheme",
    "register",
    "exponential_pure",
    "exponential_density",
    "kraus_pure",
    "kraus_density",
    "euler_pure",
    "euler_density",
]


# ---------------------------------------------------------------- diagonal, exponential


def _diagonal_log_factor(H, K, dY, dt):
    """``−i H dt − Σ K² dt + Σ K dY`` for diagonal operators, shape (N, d), complex."""
    real = (dY[:, None, :] @ K)[:, 0, :] - dt * np.einsum("...md,...md->...d", K, K)
    real = real - real.max(axis=1, keepdims=True)  # the common scale drops out on renormalising
    return real - 1j * dt * H


def exponential_pure(psi, H, K, mean_K, dW, dt, excess=0.0):
    """Element-wise exponential step of a pure state (diagonal operators)."""
    dY = dW + 2.0 * dt * mean_K
    psi = psi * np.exp(_diagonal_log_factor(H, K, dY, dt))
    return psi / np.linalg.norm(psi, axis=1, keepdims=True)


def exponential_density(rho, H, K, mean_K, dW, dt, excess=0.0):
    """Element-wise exponential step of a density matrix (diagonal operators)."""
    dY = dW + 2.0 * dt * mean_K
    e = np.exp(_diagonal_log_factor(H, K, dY, dt))  # (N, d)
    rho = e[:, :, None] * rho * e.conj()[:, None, :]
    if excess:
        gap = K[..., :, None] - K[..., None, :]  # (N|1, m, d, d)
        rho = rho * np.exp(-0.5 * excess * dt * np.sum(gap * gap, axis=-3))
    trace = np.einsum("nii->n", rho).real
    return rho / trace[:, None, None]


# ---------------------------------------------------------------- general, Kraus


def _apply(ops, vec):
    """``ops @ vec`` for operators (N|1, d, d) and vectors (N, d)."""
    return (ops @ vec[..., None])[..., 0]


def _as_matrices(H, K):
    """Diagonal operators (H (N, d), K (N|1, m, d)) as full matrices; full ones unchanged."""
    if H.ndim == 2:
        identity = np.eye(H.shape[-1])
        return H[:, :, None] * identity, K[..., :, None] * identity
    return H, K


def _kraus_operator(H, K, dY, dt, excess):
    """``M = 1 − iH dt − (1 + v/2) Σ K² dt + A + ½A²``, ``A = Σ K_i dY_i``: (N, d, d)."""
    H, K = _as_matrices(H, K)
    d = H.shape[-1]
    A = np.einsum("nm,nmab->nab", dY, np.broadcast_to(K, (dY.shape[0], *K.shape[1:])))
    K2 = np.sum(K @ K, axis=-3)
    return np.eye(d) - 1j * dt * H - (1.0 + 0.5 * excess) * dt * K2 + A + 0.5 * (A @ A)


def kraus_pure(psi, H, K, mean_K, dW, dt, excess=0.0):
    """Rouchon–Ralph Kraus step of a pure state (any Hermitian operators)."""
    M = _kraus_operator(H, K, dW + 2.0 * dt * mean_K, dt, 0.0)
    psi = _apply(M, psi)
    return psi / np.linalg.norm(psi, axis=1, keepdims=True)


def kraus_density(rho, H, K, mean_K, dW, dt, excess=0.0):
    """Rouchon–Ralph Kraus step of a density matrix, with extra decoherence ``excess``."""
    M = _kraus_operator(H, K, dW + 2.0 * dt * mean_K, dt, excess)
    H, K = _as_matrices(H, K)
    rho = M @ rho @ np.conj(np.swapaxes(M, -1, -2))
    if excess:
        rho = rho + excess * dt * np.sum(K @ rho[:, None] @ K, axis=1)
    rho = 0.5 * (rho + np.conj(np.swapaxes(rho, -1, -2)))  # remove rounding asymmetry
    trace = np.einsum("nii->n", rho).real
    return rho / trace[:, None, None]


# ---------------------------------------------------------------- Euler–Maruyama


def euler_pure(psi, H, K, mean_K, dW, dt, excess=0.0):
    """Euler–Maruyama step of ``dψ = −iHψdt + ΣΔKψ dW − ½ΣΔK²ψ dt`` (not renormalised)."""
    if H.ndim == 2:  # diagonal operators
        dK = K - mean_K[:, :, None]  # (N, m, d)
        generator = -1j * H - 0.5 * np.sum(dK * dK, axis=1)
        return psi + psi * (generator * dt + (dW[:, None, :] @ dK)[:, 0, :])
    dK_psi = _apply(K, psi[:, None, :]) - mean_K[:, :, None] * psi[:, None, :]  # (N, m, d)
    dK2_psi = _apply(K, dK_psi) - mean_K[:, :, None] * dK_psi
    drift = -1j * _apply(H, psi) - 0.5 * np.sum(dK2_psi, axis=1)
    return psi + drift * dt + np.einsum("nm,nmd->nd", dW, dK_psi)


def euler_density(rho, H, K, mean_K, dW, dt, excess=0.0):
    """Euler–Maruyama step of the density-matrix SDE (not renormalised)."""
    H, K = _as_matrices(H, K)
    K = np.broadcast_to(K, (rho.shape[0], *K.shape[1:]))
    rho_m = rho[:, None]  # (N, 1, d, d)
    K_rho = K @ rho_m
    rho_K = rho_m @ K
    K2 = K @ K
    lindblad = np.sum(K @ rho_m @ K - 0.5 * (K2 @ rho_m + rho_m @ K2), axis=1)
    commutator = H @ rho - rho @ H
    noise = K_rho + rho_K - 2.0 * mean_K[:, :, None, None] * rho_m  # (N, m, d, d)
    return (
        rho
        + (-1j * commutator + (1.0 + excess) * lindblad) * dt
        + np.einsum("nm,nmab->nab", dW, noise)
    )


StepFn = Callable[..., np.ndarray]
"""``step(state, H, K, mean_K, dW, dt, excess) -> new state`` (shapes in the module doc)."""


@dataclass(frozen=True)
class Scheme:
    """One quantum scheme: its pure and density steps and what it needs of a model."""

    name: str
    pure: StepFn
    density: StepFn
    needs_diagonal: bool = False
    """True when the scheme is exact only for commuting (diagonal) operators."""
    summary: str = ""

    def step(self, mode: str) -> StepFn:
        """The step for ``mode`` (``"pure"`` or ``"density"``)."""
        return self.pure if mode == "pure" else self.density


SCHEMES: dict[str, Scheme] = {}
"""Every scheme by name, in the order they were registered."""


def register(scheme: Scheme) -> Scheme:
    """Add ``scheme`` to :data:`SCHEMES` (a name may be registered once)."""
    if scheme.name in SCHEMES or scheme.name in ("auto", "rk4"):
        raise ValueError(f"scheme name {scheme.name!r} is taken")
    SCHEMES[scheme.name] = scheme
    return scheme


register(
    Scheme(
        "exponential",
        exponential_pure,
        exponential_density,
        needs_diagonal=True,
        summary="exact exponential step for commuting operators (default for diagonal models)",
    )
)
register(
    Scheme(
        "kraus",
        kraus_pure,
        kraus_density,
        summary="Rouchon–Ralph Kraus step (default for non-commuting models)",
    )
)
register(Scheme("euler", euler_pure, euler_density, summary="Euler–Maruyama, not renormalised"))

QUANTUM_STEPS = {
    (name, mode): scheme.step(mode)
    for name, scheme in SCHEMES.items()
    for mode in ("pure", "density")
}
"""The quantum update for each (method, mode), read from :data:`SCHEMES`."""
