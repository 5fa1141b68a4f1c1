"""``qubit_lattice``: n classical fields, each coupled to its own qubit (docs/physics.md).

``H = Σ_i π_i²/2m + λ Σ_i (φ_i + γ) σz^(i)`` with independent noise σ on each π_i.
The Hilbert space has d = 2ⁿ levels labelled by bit strings; bit i of level a is 0 for σz = +1.
Everything is diagonal: ``H_I`` has entries ``λ Σ_i (φ_i + γ) z_i(a)`` and the force operators
``L_{π_i} = −λ σz^(i)`` are constant, so the kernel's cost per step is O(n·d), not O(d²).
Default initial state: (|0…0⟩ + |1…1⟩)/√2; ⟨σz⟩ and C(t) refer to that pair.
"""

from __future__ import annotations

import numpy as np

from ._states import finite, positive, real_vector, state_vector
from .base import Model
from .symbolic_builtins import lazy_builtin_symbolic

__all__ = ["qubit_lattice", "MAX_SITES"]

MAX_SITES = 20
"""Largest lattice accepted. Building the model tabulates σz^(i) on every level, three
(n, 2ⁿ) float tables (~0.5 GB at n = 20, ~10 GB at n = 24), and one trajectory's state takes
16·2ⁿ bytes (16 MiB at n = 20); the limit keeps a model buildable on a workstation."""


def qubit_lattice(
    *,
    n: int = 5,
    lam: float = 1.0,
    m: float = 1.0,
    gamma: float = 2.0,
    phi0=0.0,
    pi0=0.0,
    psi0=None,
) -> Model:
    """Build the ``qubit_lattice`` model with ``n`` sites."""
    name = "qubit_lattice"
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"model {name!r}: n must be an integer >= 1, got {n!r}")
    n = int(n)
    d = 2**n
    if n > MAX_SITES:
        raise ValueError(
            f"model {name!r}: n = {n} sites needs 2^{n} = {d} amplitudes "
            f"({16 * d / 2**30:.3g} GiB) per trajectory state, and building the model "
            f"{3 * 8 * n * d / 2**30:.3g} GiB of tables; at most n = {MAX_SITES} is allowed"
        )
    lam, gamma = finite(name, "lam", lam), finite(name, "gamma", gamma)
    m = positive(name, "m", m)
    phi0, pi0 = real_vector(name, "phi0", phi0, n), real_vector(name, "pi0", pi0, n)
    ghz = np.zeros(d, dtype=complex)
    ghz[0] = ghz[-1] = 1.0 / np.sqrt(2.0)
    psi = state_vector(name, psi0, ghz)

    levels = np.arange(d)
    bits = (levels[None, :] >> np.arange(n - 1, -1, -1)[:, None]) & 1  # (n, d), site 0 = MSB
    spins = 1.0 - 2.0 * bits  # (n, d): eigenvalue of σz^(i) on level a
    force = (-lam * spins)[None, :, :]  # (1, n, d): L_{π_i}, independent of Z

    def hamiltonian_flow(Z: np.ndarray) -> np.ndarray:
        flow = np.zeros_like(Z)
        flow[:, :n] = Z[:, n:] / m
        return flow

    def interaction_hamiltonian(Z: np.ndarray) -> np.ndarray:
        return lam * ((Z[:, :n] + gamma) @ spins)  # (N, d)

    def backreaction_operators(Z: np.ndarray) -> np.ndarray:
        return force

    noise_shape = np.zeros((2 * n, n))
    noise_shape[n:, :] = np.eye(n)
    params = dict(n=n, lam=lam, m=m, gamma=gamma, phi0=phi0, pi0=pi0, psi0=psi)
    return Model(
        name=name,
        params=params,
        coord_labels=tuple(f"phi{i}" for i in range(n)) + tuple(f"pi{i}" for i in range(n)),
        level_labels=tuple(format(a, f"0{n}b") for a in levels),
        z0=np.concatenate([phi0, pi0]),
        psi0=psi,
        hamiltonian_flow=hamiltonian_flow,
        interaction_hamiltonian=interaction_hamiltonian,
        backreaction_operators=backreaction_operators,
        noise_shape=noise_shape,
        diagonal=True,
        coupled=tuple(range(n, 2 * n)),
        symbolic=lazy_builtin_symbolic(name, params),
    )
