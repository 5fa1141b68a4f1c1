"""``sqrt_potential``: a particle bouncing off a √q barrier (docs/physics.md).

``H = p²/2m + λ√q σz`` for q > 0 with position-dependent noise ``σ(q) = γ q^(−1/2)`` on p
(γ is the sweep parameter, passed as ``sigma``). The force operator is
``L_p = −∂H_I/∂q = −λ/(2√q) σz``. The model is defined for q > 0 only: a trajectory that
reaches q ≤ 0 is frozen and flagged ``left_domain`` by the kernel.
"""

from __future__ import annotations

import numpy as np

from ._states import PLUS, SIGMA_Z, finite, positive, state_vector
from .base import Model
from .symbolic_builtins import lazy_builtin_symbolic

__all__ = ["sqrt_potential"]


def sqrt_potential(
    *,
    m: float = 1.0,
    lam: float = 1.0,
    q0: float = 1.0,
    p0: float = -1.0,
    psi0=None,
) -> Model:
    """Build the ``sqrt_potential`` model (defaults of the reference notebook)."""
    name = "sqrt_potential"
    m = positive(name, "m", m)
    lam = finite(name, "lam", lam)
    q0 = positive(name, "q0", q0)  # the model lives on q > 0
    p0 = finite(name, "p0", p0)
    psi = state_vector(name, psi0, PLUS)

    def hamiltonian_flow(Z: np.ndarray) -> np.ndarray:
        return np.stack([Z[:, 1] / m, np.zeros(len(Z))], axis=1)

    def interaction_hamiltonian(Z: np.ndarray) -> np.ndarray:
        return (lam * np.sqrt(Z[:, 0]))[:, None] * SIGMA_Z

    def backreaction_operators(Z: np.ndarray) -> np.ndarray:
        return (-0.5 * lam / np.sqrt(Z[:, 0]))[:, None, None] * SIGMA_Z  # (N, 1, 2)

    def noise_shape(Z: np.ndarray) -> np.ndarray:
        shape = np.zeros((len(Z), 2, 1))
        shape[:, 1, 0] = 1.0 / np.sqrt(Z[:, 0])
        return shape

    def domain(Z: np.ndarray) -> np.ndarray:
        return Z[:, 0] > 0.0

    params = dict(m=m, lam=lam, q0=q0, p0=p0, psi0=psi)
    return Model(
        name=name,
        params=params,
        coord_labels=("q", "p"),
        level_labels=("L", "R"),
        z0=np.array([q0, p0]),
        psi0=psi,
        hamiltonian_flow=hamiltonian_flow,
        interaction_hamiltonian=interaction_hamiltonian,
        backreaction_operators=backreaction_operators,
        noise_shape=noise_shape,
        diagonal=True,
        domain=domain,
        sigma_name="gamma",
        coupled=(1,),
        symbolic=lazy_builtin_symbolic(name, params),
    )
