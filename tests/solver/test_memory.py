"""The memory check before a run: O(1), within 2× of the measured peak, and refusing what will
not fit (issue 21, solver side).

Peaks are measured with ``tracemalloc``, which sees every NumPy buffer a run allocates.
"""

from __future__ import annotations

import tracemalloc

import pytest

import cq_core
from cq_core.solver.settings import check_run, memory_estimate

CASES = [
    # (model, params, mode, n_traj, t_final, dt, save_every)
    ("linear", {}, "pure", 2000, 0.1, 1e-3, 1),  # the generated kernel
    ("linear", {}, "density", 2000, 0.1, 1e-3, 1),
    ("linear", {"omega": 3.0}, "density", 1000, 0.1, 1e-3, 2),
    ("linear", {"omega": 3.0}, "pure", 4000, 0.05, 1e-3, 5),
    ("sqrt_potential", {}, "pure", 3000, 0.1, 1e-3, 1),
    ("qubit_lattice", {"n": 6}, "pure", 200, 0.02, 1e-3, 1),
    ("qubit_lattice", {"n": 3}, "density", 500, 0.05, 1e-3, 1),
    ("mass_superposition", {}, "pure", 2000, 0.02, 1e-4, 10),
    # two saved times: the working arrays dominate
    ("linear", {"omega": 3.0}, "density", 20000, 0.02, 1e-3, 20),
    ("qubit_lattice", {"n": 4}, "density", 2000, 0.01, 1e-3, 10),
    ("sqrt_potential", {}, "pure", 20000, 0.02, 1e-3, 20),
    ("linear", {"omega": 3.0}, "pure", 20000, 0.02, 1e-3, 20),
]


def _peak(model, **run) -> int:
    tracemalloc.start()
    try:
        cq_core.simulate(model, **run)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize(("name", "params", "mode", "n_traj", "t_final", "dt", "every"), CASES)
def test_the_memory_estimate_is_within_twice_the_measured_peak(
    name, params, mode, n_traj, t_final, dt, every
):
    model = cq_core.get_model(name, **params)
    run = dict(sigma=1.0, t_final=t_final, dt=dt, seed=1, save_every=every, mode=mode)
    cq_core.simulate(model, n_traj=4, **run)  # first-call costs (imports, caches) paid here
    estimate = memory_estimate(model, check_run(model, n_traj=n_traj, **run))
    peak = _peak(model, n_traj=n_traj, **run)
    assert 0.5 <= estimate / peak <= 2.0, (estimate, peak)


def test_the_memory_check_runs_in_constant_memory():
    """10¹¹ steps saved 11 times: the check neither lists nor allocates the steps."""
    model = cq_core.get_model("linear")
    tracemalloc.start()
    try:
        settings = check_run(
            model, sigma=1.0, n_traj=10, t_final=1e11, dt=1.0, seed=0, save_every=10**10
        )
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert (
        settings.n_saved
        == 11
        == len(
            check_run(
                model, sigma=1.0, n_traj=1, t_final=100, dt=1.0, seed=0, save_every=10
            ).saved_steps
        )
    )
    assert peak < 2**20


def test_a_run_that_will_not_fit_is_refused_naming_n_traj():
    model = cq_core.get_model("linear")
    tracemalloc.start()
    try:
        with pytest.raises(ValueError, match=r"n_traj=10000000000: the run would store"):
            cq_core.simulate(model, sigma=1.0, n_traj=10**10, t_final=1.0, dt=1e-3, seed=0)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 2**20


def test_a_run_of_1e18_steps_is_refused_naming_dt_before_allocating():
    model = cq_core.get_model("linear")
    tracemalloc.start()
    try:
        with pytest.raises(ValueError, match=r"dt = 1e-18 .* 1e\+18 steps"):
            cq_core.simulate(model, sigma=1.0, n_traj=1, t_final=1.0, dt=1e-18, seed=0)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 2**20
