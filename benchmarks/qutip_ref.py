"""QuTiP 5 ``ssesolve`` on the quantum part of ``mass_superposition`` (optional).

The classical point is frozen at r0 = (0, −0.5, 0): ``H = diag(V_L, V_R)`` and the three
measurement operators ``K_k = F_k / (2σ)`` (docs/physics.md, noise σ on each momentum component) are
constant, which is the most favourable case for QuTiP (no time-dependent coefficients). QuTiP
is not a dependency of cq-sweep: install it with ``pip install qutip`` to include this row;
without it the row is reported as ``null`` with the reason.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np


def available() -> str | None:
    """QuTiP's version if it imports, else ``None``."""
    try:
        import qutip
    except ImportError:
        return None
    return str(qutip.__version__)


def _operators(sigma: float, gmm: float = 0.1, separation: float = 1.0):
    """``H_I`` and the measurement operators ``K_k`` at r0, as ``qutip.Qobj`` (model units)."""
    import qutip

    position = np.array([0.0, -0.5, 0.0])
    potentials, forces = [], [[], [], []]
    for source_x in (-separation, separation):
        offset = position - np.array([source_x, 0.0, 0.0])
        distance = float(np.sqrt(offset @ offset))
        potentials.append(-gmm / distance)
        for axis in range(3):
            forces[axis].append(-gmm * offset[axis] / distance**3)
    hamiltonian = qutip.Qobj(np.diag(potentials))
    measured = [qutip.Qobj(np.diag(row) / (2.0 * sigma)) for row in forces]
    return hamiltonian, measured


def run_ssesolve(
    n_traj: int, n_steps: int, *, dt: float, sigma: float, save_every: int, seed: int = 1
) -> dict[str, Any]:
    """Time ``ssesolve`` (default method, serial map) for ``n_traj`` × ``n_steps`` steps.

    Returns ``cpu_s`` (CPU seconds of the call), ``trajectory_steps``, ``method`` and
    ``max_norm_error`` (largest ``|‖ψ(t_final)‖ − 1|`` over trajectories: QuTiP does not
    renormalise during integration).
    """
    import qutip

    hamiltonian, measured = _operators(sigma)
    psi0 = (qutip.basis(2, 0) + qutip.basis(2, 1)).unit()
    times = np.linspace(0.0, n_steps * dt, n_steps // save_every + 1)
    options = {
        "dt": dt,
        "store_states": False,
        "store_final_state": True,
        "keep_runs_results": True,
        "progress_bar": False,
        "map": "serial",
    }
    # warm-up: the first call builds QuTiP's solver machinery
    qutip.ssesolve(hamiltonian, psi0, times[:2], sc_ops=measured, ntraj=1, options=options)
    start = time.process_time()
    result = qutip.ssesolve(
        hamiltonian, psi0, times, sc_ops=measured, ntraj=n_traj, options=options, seeds=seed
    )
    elapsed = time.process_time() - start
    norms = [abs(state.norm() - 1.0) for state in result.runs_final_states]
    return {
        "cpu_s": elapsed,
        "trajectory_steps": n_traj * n_steps,
        "method": str(qutip.solver.stochastic.SSESolver.solver_options.get("method")),
        "max_norm_error": float(max(norms)),
    }
