"""A reference-style integrator: one Python loop per trajectory and per step.

Written for this suite in the *style* of the authors' notebook (Isaac-Layton/
classical-quantum-trajectories): plain Euler–Maruyama on both the classical and the quantum
part, operators as NumPy 2×2 arrays rebuilt at every step, three scalar Gaussian draws per
step, every step stored, and no renormalisation of ψ. It is the yardstick for "speed-up over
the reference", so it deliberately keeps that style's costs; it is not used for physics.

Model: ``mass_superposition`` with the defaults of SPEC §2.3 (G = 1, M = 10, m = 0.01, d = 1,
ε = 0, φ = 0, r0 = (0, −0.5, 0), p0 = 0, ψ0 = |+⟩), each momentum component driven by its own
Wiener increment.
"""

from __future__ import annotations

import numpy as np

IDENTITY = np.eye(2, dtype=complex)
"""The 2×2 identity."""


def _branch_geometry(
    position: np.ndarray, sources: tuple[np.ndarray, np.ndarray], gmm: float
) -> tuple[np.ndarray, list[np.ndarray]]:
    """``H_I`` (2×2) and the three force operators ``F_k`` (2×2 each) at ``position``."""
    potentials = []
    forces = [[], [], []]
    for source in sources:
        offset = position - source
        distance = np.sqrt(offset @ offset)
        potentials.append(-gmm / distance)
        for axis in range(3):
            forces[axis].append(-gmm * offset[axis] / distance**3)
    hamiltonian = np.diag(np.array(potentials, dtype=complex))
    return hamiltonian, [np.diag(np.array(row, dtype=complex)) for row in forces]


def reference_loop(
    n_traj: int,
    n_steps: int,
    *,
    dt: float = 1e-4,
    sigma: float = 0.02,
    seed: int = 0,
    gravity: float = 1.0,
    source_mass: float = 10.0,
    mass: float = 0.01,
    separation: float = 1.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Integrate ``n_traj`` trajectories of ``n_steps`` Euler steps, one step at a time.

    Returns the classical paths ``(n_traj, n_steps + 1, 6)`` (x, y, z, p_x, p_y, p_z) and the
    state vectors ``(n_traj, n_steps + 1, 2)`` (not renormalised). ``dt`` and ``sigma`` in
    model units.
    """
    rng = np.random.default_rng(seed)
    gmm = gravity * source_mass * mass
    sources = (np.array([-separation, 0.0, 0.0]), np.array([separation, 0.0, 0.0]))
    classical = np.zeros((n_traj, n_steps + 1, 6))
    states = np.zeros((n_traj, n_steps + 1, 2), dtype=complex)
    for trajectory in range(n_traj):
        position = np.array([0.0, -0.5, 0.0])
        momentum = np.zeros(3)
        psi = np.array([1.0, 1.0], dtype=complex) / np.sqrt(2.0)
        classical[trajectory, 0] = np.concatenate([position, momentum])
        states[trajectory, 0] = psi
        for step in range(1, n_steps + 1):
            hamiltonian, forces = _branch_geometry(position, sources, gmm)
            increments = [rng.normal(0.0, np.sqrt(dt)) for _ in range(3)]
            mean_forces = np.array([np.vdot(psi, force @ psi).real for force in forces])
            # quantum Euler step: −iHψ dt + Σ_k (ΔK_k ψ dW_k − ½ ΔK_k² ψ dt), K_k = F_k / 2σ
            change = -1j * (hamiltonian @ psi) * dt
            for force, increment in zip(forces, increments, strict=True):
                measured = force / (2.0 * sigma)
                shifted = measured - np.vdot(psi, measured @ psi).real * IDENTITY
                change = change + (shifted @ psi) * increment
                change = change - 0.5 * (shifted @ (shifted @ psi)) * dt
            # classical Euler step: q̇ = p/m, ṗ = ⟨F⟩ + σ dW
            new_position = position + momentum / mass * dt
            momentum = momentum + mean_forces * dt + sigma * np.array(increments)
            position = new_position
            psi = psi + change
            classical[trajectory, step] = np.concatenate([position, momentum])
            states[trajectory, step] = psi
    return classical, states
