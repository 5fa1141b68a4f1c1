"""Reference-style integrators: one Python loop per trajectory and per step.

Written for this suite in the *style* of the authors' notebook (Isaac-Layton/
classical-quantum-trajectories, ``massSupPosDynamics``): plain Euler–Maruyama on both the
classical and the quantum part, operators as NumPy 2×2 arrays, three scalar Gaussian draws
per step, every step stored, and no renormalisation of ψ. They are the yardsticks for
"speed-up over the reference", so they deliberately keep that style's costs; they are not
used for physics.

* :func:`reference_loop` does the notebook's work per step: it builds a force operator
  afresh at each of its four uses per axis (the mean force, the dW term and twice in the dt
  term) and the potential once (13 operator constructions a step), forms each centred
  operator K − ⟨K⟩ at each use (9 a step, each with its own expectation value) and checks
  the norm every step. Its speed is what the notebook's would be on this machine.
* :func:`lean_reference_loop` is the same integrator with each operator built once a step:
  a careful Python programmer's version, about 3× faster, kept to show how much of the
  speed-up is the loop itself.

Model: ``mass_superposition`` with the defaults of docs/models.md (G = 1, M = 10, m = 0.01, d = 1,
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


def lean_reference_loop(
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


def _force_matrix(axis: int, position: np.ndarray, gmm: float, separation: float) -> np.ndarray:
    """The 2×2 force operator along ``axis`` at ``position``, built from scratch."""
    x, y, z = position
    left = np.sqrt((x + separation) ** 2 + y**2 + z**2) ** 3
    right = np.sqrt((x - separation) ** 2 + y**2 + z**2) ** 3
    offsets = ((x + separation, x - separation), (y, y), (z, z))[axis]
    return np.array([[-gmm * offsets[0] / left, 0.0], [0.0, -gmm * offsets[1] / right]])


def _potential_matrix(position: np.ndarray, gmm: float, separation: float) -> np.ndarray:
    """The 2×2 interaction Hamiltonian at ``position``, built from scratch."""
    x, y, z = position
    return np.array(
        [
            [-gmm / np.sqrt((x + separation) ** 2 + y**2 + z**2), 0.0],
            [0.0, -gmm / np.sqrt((x - separation) ** 2 + y**2 + z**2)],
        ]
    )


def _expectation(operator: np.ndarray, psi: np.ndarray) -> complex:
    return np.vdot(psi, np.dot(operator, psi))


def _centred(operator: np.ndarray, psi: np.ndarray) -> np.ndarray:
    """K − ⟨K⟩ 1."""
    return operator - np.identity(2) * _expectation(operator, psi)


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
    tolerance: float = 0.05,
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`lean_reference_loop` with the notebook's per-step work (see the module text).

    Same model, arguments and return value; ``tolerance`` is the norm-check band (a drift
    beyond it is counted, as the notebook prints it once).
    """
    rng = np.random.default_rng(seed)
    gmm = gravity * source_mass * mass
    geometry = (gmm, separation)
    classical = np.zeros((n_traj, n_steps + 1, 6))
    states = np.zeros((n_traj, n_steps + 1, 2), dtype=complex)
    for trajectory in range(n_traj):
        classical[trajectory, 0, 1] = -0.5
        states[trajectory, 0] = np.array([1.0, 1.0], dtype=complex) / np.sqrt(2.0)
        norm_warnings = 0
        for step in range(1, n_steps + 1):
            previous = classical[trajectory, step - 1]
            position, momentum = previous[:3], previous[3:]
            psi = states[trajectory, step - 1]
            increments = [rng.normal(0.0, np.sqrt(dt)) for _ in range(3)]
            classical[trajectory, step, :3] = position + momentum / mass * dt
            change = -1j * _potential_matrix(position, *geometry).dot(psi) * dt
            for axis in range(3):
                mean_force = np.real(_expectation(_force_matrix(axis, position, *geometry), psi))
                classical[trajectory, step, 3 + axis] = (
                    momentum[axis] + mean_force * dt + sigma * increments[axis]
                )
                centred = _centred(_force_matrix(axis, position, *geometry), psi)
                change = change + (1 / (2 * sigma)) * centred.dot(psi) * increments[axis]
                squared = _centred(_force_matrix(axis, position, *geometry), psi) * _centred(
                    _force_matrix(axis, position, *geometry), psi
                )
                change = change - (1 / (8 * sigma * sigma)) * squared.dot(psi) * dt
            states[trajectory, step] = psi + change
            if norm_warnings == 0 and abs(_expectation(np.identity(2), psi) - 1.0) > tolerance:
                norm_warnings += 1
    return classical, states
