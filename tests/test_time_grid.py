"""Time coordinates select with the numbers a person types (cq_core/solver/time_grid.py)."""

from __future__ import annotations

import numpy as np
import pytest

import cq_core
from cq_core.analysis import summaries
from cq_core.cells import CellSpec, run_cell_to_store
from cq_core.solver.time_grid import step_times

# (dt, save_every, t_final, times a person would type)
GRIDS = [
    (1e-4, 10, 0.15, [0.0, 0.001, 0.05, 0.1, 0.15]),
    (1e-4, 1, 0.03, [0.0003, 0.01, 0.02, 0.03]),
    (1e-3, 5, 0.3, [0.005, 0.1, 0.15, 0.2, 0.3]),
    (2.5e-5, 4, 0.02, [0.0001, 0.0007, 0.01, 0.02]),
    (0.01, 3, 0.6, [0.03, 0.09, 0.3, 0.51, 0.6]),
]


@pytest.mark.parametrize(("dt", "save_every", "t_final", "typed"), GRIDS)
def test_simulate_times_select_as_typed(dt, save_every, t_final, typed):
    model = cq_core.get_model("mass_superposition")
    ds = cq_core.simulate(
        model, sigma=0.02, n_traj=2, t_final=t_final, dt=dt, seed=0, save_every=save_every
    )
    for t in typed:
        assert float(ds.time.sel(time=t)) == t  # exact selection, no KeyError
    assert ds.time.values[-1] == t_final


def test_step_times_are_the_floats_of_the_decimals():
    steps = np.arange(0, 200_001)
    for dt, scale in ((1e-4, "e-4"), (2.5e-5, None), (0.01, "e-2"), (0.5, None)):
        got = step_times(steps, dt)
        if scale:
            want = np.array([float(f"{k}{scale}") for k in steps[::97]])
            np.testing.assert_array_equal(got[::97], want)
        np.testing.assert_allclose(got, steps * dt, rtol=1e-15, atol=0)
    # the failure being fixed: the old grid, linspace(0, t_final, n_steps + 1)
    assert step_times(1000, 1e-4) == 0.1 and np.linspace(0.0, 0.15, 1501)[1000] != 0.1


def test_stored_cell_and_summary_select_as_typed(tmp_path):
    spec = CellSpec(
        model="mass_superposition", params={}, sigma=0.02, seed=0, n_traj=8, t_final=0.15,
        dt=1e-4, save_every=10,
    )  # fmt: skip
    run_cell_to_store(spec, tmp_path / "cells" / "sigma=0.02" / "seed=0.zarr")
    cells = cq_core.open_sweep(tmp_path)
    psi = cells.psi.sel(sigma=0.02, time=0.1)
    assert psi.sizes["trajectory"] == 8 and float(psi.time) == 0.1
    summary = summaries.summarise(cells, time_slices=[0.0, 0.05, 0.1, 0.15], bins=10)
    for t in (0.05, 0.1, 0.15):
        assert float(summary.coherence.sel(sigma=0.02, time=t).time) == t
    assert list(summary.slice_time.values) == [0.0, 0.05, 0.1, 0.15]
