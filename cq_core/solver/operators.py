"""The operators of one step at a classical point Z: the one place K = ½σ⁺L is computed.

docs/physics.md, "Equations → code": the measurement operators are

    K_i(Z) = ½ Σ_j (σ(Z)⁺)_ij L_j(Z),     σ(Z) = sigma · noise_shape(Z),

with ``L_j = {Z_j, H_I}`` the back-reaction operators of the coupled components j. Shapes
(N trajectories, n classical components, c coupled, m Wiener processes, d levels): diagonal
models give ``K`` as ``(N|1, m, d)`` (real diagonals), general ones ``(N|1, m, d, d)``.
"""

from __future__ import annotations

import numpy as np

from ..models.base import Model

__all__ = ["StepOperators", "expectation", "measurement_operators", "noise_term"]


def _project(pinv: np.ndarray, L: np.ndarray) -> np.ndarray:
    """``½ Σ_j pinv_ij L_j``: pinv (m, c) or (N, m, c), L (N|1, c, d[, d]) → (N|1, m, d[, d])."""
    if pinv.ndim == 2:
        return np.moveaxis(0.5 * np.tensordot(pinv, L, axes=(1, 1)), 0, 1)
    flat = L.reshape(L.shape[0], L.shape[1], -1)
    return 0.5 * (pinv @ flat).reshape(pinv.shape[0], pinv.shape[1], *L.shape[2:])


def _coupled_pinv(model: Model, sigma: float, Z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The run's noise kernel σ(Z) and the coupled columns of σ⁺: (n, m), (m, c) when the
    noise is constant, else (N, n, m), (N, m, c)."""
    coupled = list(model.coupled)
    if model.constant_noise:
        kernel = sigma * model.noise_shape
        return kernel, np.linalg.pinv(kernel)[:, coupled]
    kernel = sigma * model.noise_kernel(Z)
    return kernel, np.linalg.pinv(kernel)[:, :, coupled]


def measurement_operators(model: Model, sigma: float, Z: np.ndarray) -> np.ndarray:
    """``K_i = ½ Σ_j (σ⁺)_ij L_j`` at the classical points Z (N, n) (dimensionless·σ⁻¹·L).

    Returns ``(N|1, m, d)`` for a diagonal model, ``(N|1, m, d, d)`` otherwise (a leading 1
    when neither the noise nor the L_j depend on Z).
    """
    Z = np.atleast_2d(np.asarray(Z, dtype=float))
    _, pinv = _coupled_pinv(model, sigma, Z)
    return _project(pinv, np.asarray(model.backreaction_operators(Z)))


def expectation(ops: np.ndarray, state: np.ndarray, mode: str, diagonal: bool) -> np.ndarray:
    """``⟨O_j⟩`` for operators (N|1, c, d[, d]) in states ψ (N, d) or ρ (N, d, d): (N, c)."""
    if mode == "density":
        if diagonal:
            populations = np.einsum("nii->ni", state).real
            return (ops @ populations[:, :, None])[..., 0]
        return np.einsum(
            "ncab,nba->nc", np.broadcast_to(ops, (len(state), *ops.shape[1:])), state
        ).real
    if diagonal:
        populations = (state.real**2 + state.imag**2)[:, :, None]  # (N, d, 1)
        return (ops @ populations)[..., 0]
    ops_psi = (ops @ state[:, None, :, None])[..., 0]  # (N, c, d)
    return np.einsum("nd,ncd->nc", state.conj(), ops_psi).real


def noise_term(kernel: np.ndarray, dW: np.ndarray) -> np.ndarray:
    """``σ dW``: kernel (n, m) or (N, n, m), dW (N, m) → (N, n)."""
    if kernel.ndim == 2:
        return dW @ kernel.T
    return (kernel @ dW[:, :, None])[:, :, 0]


class StepOperators:
    """What every scheme needs at Z for one step; σ⁺ computed once when the noise is constant."""

    def __init__(self, model: Model, sigma: float):
        self.model = model
        self.sigma = sigma
        self.coupled = list(model.coupled)
        if model.constant_noise:
            self.constant = _coupled_pinv(model, sigma, model.z0[None, :])

    def evaluate(self, Z: np.ndarray, state: np.ndarray, mode: str):
        """Return (classical drift (N, n), H, K, ⟨K⟩ (N, m), noise kernel σ(Z))."""
        model = self.model
        H = model.interaction_hamiltonian(Z)
        L = np.asarray(model.backreaction_operators(Z))  # (N|1, c, d[, d])
        mean_L = expectation(L, state, mode, model.diagonal)  # (N, c)
        drift = np.array(model.hamiltonian_flow(Z), dtype=float)  # a copy: added to below
        drift[:, self.coupled] += mean_L
        if model.constant_noise:
            kernel, pinv = self.constant
            mean_K = 0.5 * mean_L @ pinv.T
        else:
            kernel, pinv = _coupled_pinv(model, self.sigma, Z)
            mean_K = 0.5 * (pinv @ mean_L[:, :, None])[:, :, 0]
        return drift, H, _project(pinv, L), mean_K, kernel

    def mean_field(self, Z: np.ndarray, psi: np.ndarray):
        """Right-hand side of the mean-field ODE: ``({Z, H_C} + ⟨L⟩, −i H_I ψ)``."""
        model = self.model
        H = model.interaction_hamiltonian(Z)
        L = np.asarray(model.backreaction_operators(Z))
        drift = np.array(model.hamiltonian_flow(Z), dtype=float)
        drift[:, self.coupled] += expectation(L, psi, "pure", model.diagonal)
        dpsi = -1j * (H * psi if model.diagonal else (H @ psi[:, :, None])[:, :, 0])
        return drift, dpsi
