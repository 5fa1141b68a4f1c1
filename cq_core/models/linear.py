"""``linear``: one classical degree of freedom coupled linearly to a qubit (docs/physics.md).

``H = p²/2m + (2λq + φ) σz + Ω σx``, noise of strength σ on p only, so the only back-reaction
operator is the force ``L_p = −∂H_I/∂q = −2λ σz``. With ``omega = 0`` everything is diagonal
and the decoherence law ``C(t) = exp(−Γt)``, ``Γ = (1+v)·2λ²/σ²`` is exact (docs/physics.md,
"The decoherence rate Γ").
With ``omega ≠ 0`` H_I no longer commutes with the measurement operator (the built-in
non-commuting case).
"""

from __future__ import annotations

import numpy as np

from ._states import PLUS, SIGMA_Z, finite, positive, state_vector
from .base import Model
from .symbolic_builtins import lazy_builtin_symbolic

__all__ = ["linear"]


def linear(
    *,
    m: float = 1.0,
    lam: float = 1.0,
    phi: float = 2.0,
    omega: float = 0.0,
    q0: float = 0.0,
    p0: float = 0.0,
    psi0=None,
) -> Model:
    """Build the ``linear`` model. Defaults follow the authors' reference notebook."""
    name = "linear"
    m = positive(name, "m", m)
    lam, phi, omega = (
        finite(name, k, v) for k, v in (("lam", lam), ("phi", phi), ("omega", omega))
    )
    q0, p0 = finite(name, "q0", q0), finite(name, "p0", p0)
    psi = state_vector(name, psi0, PLUS)

    def hamiltonian_flow(Z: np.ndarray) -> np.ndarray:
        # {q, p²/2m} = p/m, {p, p²/2m} = 0
        return np.stack([Z[:, 1] / m, np.zeros(len(Z))], axis=1)

    if omega == 0.0:

        def interaction_hamiltonian(Z: np.ndarray) -> np.ndarray:
            return (2.0 * lam * Z[:, 0] + phi)[:, None] * SIGMA_Z  # (N, 2)

        force = (-2.0 * lam * SIGMA_Z)[None, None, :]  # (1, 1, 2): L_p only

        def backreaction_operators(Z: np.ndarray) -> np.ndarray:
            return force

    else:
        sz = np.diag(SIGMA_Z).astype(complex)
        sx = np.array([[0.0, 1.0], [1.0, 0.0]], dtype=complex)

        def interaction_hamiltonian(Z: np.ndarray) -> np.ndarray:
            return (2.0 * lam * Z[:, 0] + phi)[:, None, None] * sz + omega * sx

        force = (-2.0 * lam * sz)[None, None, :, :]  # (1, 1, 2, 2)

        def backreaction_operators(Z: np.ndarray) -> np.ndarray:
            return force

    params = dict(m=m, lam=lam, phi=phi, omega=omega, q0=q0, p0=p0, psi0=psi)
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
        noise_shape=np.array([[0.0], [1.0]]),
        diagonal=omega == 0.0,
        coupled=(1,),
        symbolic=lazy_builtin_symbolic(name, params),
    )
