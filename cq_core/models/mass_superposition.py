"""``mass_superposition``: a test mass near a source mass in a superposition (docs/physics.md).

The seed report's model (paper Fig. 7). A test mass m at r ∈ ℝ³ feels a source mass M that is
in a superposition of r_L = (−d, 0, 0) (level 0, |L⟩) and r_R = (+d, 0, 0) (level 1, |R⟩):

    H_I(r) = diag(V_L(r), V_R(r)) + φ σz,   V_X(r) = −G M m / sqrt(|r − r_X|² + ε²),
    H_C = |p|²/2m,

with independent noise of strength σ on each of p_x, p_y, p_z. The back-reaction operators
are the force operators ``F_k = −∂_k H_I = −G M m (r − r_X)_k / (|r − r_X|² + ε²)^{3/2}``
(diagonal). Each momentum component is driven by its own Wiener process (the reference
notebook drove p_z with the y increment; that bug is not reproduced).
"""

from __future__ import annotations

import numpy as np

from ._states import PLUS, SIGMA_Z, finite, positive, real_vector, state_vector
from .base import Model
from .symbolic_builtins import lazy_builtin_symbolic

__all__ = ["mass_superposition"]


def mass_superposition(
    *,
    G: float = 1.0,
    M: float = 10.0,
    m: float = 0.01,
    d: float = 1.0,
    eps: float = 0.0,
    phi: float = 0.0,
    r0=(0.0, -0.5, 0.0),
    p0=(0.0, 0.0, 0.0),
    psi0=None,
) -> Model:
    """Build the ``mass_superposition`` model (defaults of the reference notebook)."""
    name = "mass_superposition"
    G, M, m = positive(name, "G", G), positive(name, "M", M), positive(name, "m", m)
    d = positive(name, "d", d)
    eps = finite(name, "eps", eps)
    if eps < 0:
        raise ValueError(f"model {name!r}: eps must be >= 0, got {eps!r}")
    phi = finite(name, "phi", phi)
    r0, p0 = real_vector(name, "r0", r0, 3), real_vector(name, "p0", p0, 3)
    psi = state_vector(name, psi0, PLUS)
    sources = np.array([[-d, 0.0, 0.0], [d, 0.0, 0.0]])  # (2, 3): r_L, r_R
    gmm = G * M * m

    def hamiltonian_flow(Z: np.ndarray) -> np.ndarray:
        flow = np.zeros_like(Z)
        flow[:, :3] = Z[:, 3:] / m
        return flow

    def _separations(Z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        sep = Z[:, None, :3] - sources  # (N, 2, 3): r − r_X
        dist2 = np.einsum("nxk,nxk->nx", sep, sep) + eps * eps  # (N, 2)
        return sep, dist2

    def interaction_hamiltonian(Z: np.ndarray) -> np.ndarray:
        _, dist2 = _separations(Z)
        return -gmm / np.sqrt(dist2) + phi * SIGMA_Z  # (N, 2): diag(V_L, V_R) + φσz

    def backreaction_operators(Z: np.ndarray) -> np.ndarray:
        sep, dist2 = _separations(Z)
        force = -gmm * sep / (dist2 * np.sqrt(dist2))[:, :, None]  # (N, 2 levels, 3 axes)
        return np.swapaxes(force, 1, 2)  # (N, 3 momentum components, 2 levels)

    noise_shape = np.zeros((6, 3))
    noise_shape[3:, :] = np.eye(3)
    params = dict(G=G, M=M, m=m, d=d, eps=eps, phi=phi, r0=r0, p0=p0, psi0=psi)
    return Model(
        name=name,
        params=params,
        coord_labels=("x", "y", "z", "px", "py", "pz"),
        level_labels=("L", "R"),
        z0=np.concatenate([r0, p0]),
        psi0=psi,
        hamiltonian_flow=hamiltonian_flow,
        interaction_hamiltonian=interaction_hamiltonian,
        backreaction_operators=backreaction_operators,
        noise_shape=noise_shape,
        diagonal=True,
        coupled=(3, 4, 5),
        symbolic=lazy_builtin_symbolic(name, params),
    )
