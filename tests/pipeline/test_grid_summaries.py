"""Summaries of sweeps with grid axes, and the observed weak order of a dt axis (issue 19)."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

import cq_core
from cq_core.analysis import summarise, summary_from_statistics
from cq_core.analysis.convergence import weak_order
from cq_core.analysis.summaries import trajectory_mean
from cq_core.pipeline import layout
from cq_core.pipeline.cell_store import write_cell
from cq_core.pipeline.statistics_store import summarise_stores
from cq_core.pipeline.sweep_config import sweep_cell_specs

SETTINGS = {"time_slices": [0.0, 0.1], "hist_bins": 5, "fit_window": None}


def _run(root, name, sweep):
    stores = {}
    for (label, seed), spec in sweep_cell_specs(name, sweep).items():
        stores[(label, seed)] = write_cell(
            spec.simulate(), layout.cell_store(root, name, label, seed)
        )
    return stores


@pytest.fixture(scope="module")
def lam_sweep(tmp_path_factory):
    root = tmp_path_factory.mktemp("grid")
    sweep = dict(
        model="linear",
        params={},
        sigma=[1.0, 2.0],
        seeds=[0, 1],
        n_traj=60,
        t_final=0.1,
        dt=1.0e-3,
        save_every=10,
        backend="numpy",
        grid={"lam": [1.0, 0.5, 2.0]},
    )
    return root, _run(root, "lam", sweep)


def _summary(ds):
    return summarise(ds, time_slices=SETTINGS["time_slices"], bins=SETTINGS["hist_bins"])


def test_a_grid_summary_is_the_summary_of_each_point_alone(lam_sweep):
    root, stores = lam_sweep
    summary = _summary(cq_core.open_sweep(root / "lam"))
    assert summary["gamma_fit"].dims == ("lam", "sigma")
    assert summary["coherence"].dims == ("lam", "sigma", "time")
    assert summary["sigma_z_hist"].dims == ("lam", "sigma", "slice", "bin")
    np.testing.assert_array_equal(summary["lam"], [0.5, 1.0, 2.0])
    for lam in (0.5, 1.0, 2.0):
        prefix = f"lam={lam!r}/"
        alone = _summary(
            cq_core.open_sweep(
                root / "lam",
                cells=[p for (label, _), p in stores.items() if label.startswith(prefix)],
            )
        )
        assert alone.sizes["lam"] == 1
        xr.testing.assert_identical(
            summary.sel(lam=lam).drop_vars("lam"),
            alone.isel(lam=0).drop_vars("lam").assign_attrs(summary.attrs),
        )
    # the theory rate per grid point: Gamma = 2 lam^2 / sigma^2 (docs/physics.md)
    expected = 2 * summary["lam"] ** 2 / summary["sigma"] ** 2
    np.testing.assert_allclose(summary["gamma_theory"], expected.transpose("lam", "sigma"))


def test_the_stored_statistics_give_the_same_grid_summary(lam_sweep):
    root, stores = lam_sweep
    from_stores = summarise_stores(list(stores.values()), SETTINGS)
    from_sweep = _summary(cq_core.open_sweep(root / "lam"))
    names = ["coherence", "coherence_se", "gamma_fit", "gamma_fit_se", "gamma_theory"]
    xr.testing.assert_allclose(from_stores[names], from_sweep[names], rtol=1e-12)
    assert from_stores.attrs["sweep"] == "lam"


def test_cells_of_one_grid_point_merge_as_one_summary(lam_sweep):
    root, _ = lam_sweep
    ds = cq_core.open_sweep(root / "lam")
    stats = []
    for k in range(ds.sizes["lam"]):
        point = ds.isel(lam=k)
        from cq_core.analysis.grid import point_attrs

        point.attrs = point_attrs(ds, {"lam": k})
        from cq_core.analysis import sweep_statistics

        stats += sweep_statistics(point.drop_vars("lam"), SETTINGS)
    merged = summary_from_statistics(stats[::-1], SETTINGS)  # order does not matter
    xr.testing.assert_allclose(merged["gamma_fit"], _summary(ds)["gamma_fit"], rtol=1e-12)


# ----------------------------------------------------------------------------- weak order


@pytest.mark.slow
def test_the_weak_order_of_the_classical_euler_step_is_one(tmp_path):
    # |L> is an eigenstate: <sigma_z> = 1 throughout, p = -2 lam t + sigma W, and the Euler
    # step of q gives E[q_h(t)] = -lam t (t - h) exactly: e(h) = lam t (h - h0), order 1
    sweep = dict(
        model="linear",
        params={"psi0": [1.0, 0.0]},
        sigma=[0.01],
        seeds=[0],
        n_traj=500,
        t_final=0.4,
        save_every=1,
        backend="numpy",
        grid={"dt": [0.04, 0.02, 0.01, 0.005]},
    )
    _run(tmp_path, "dt", sweep)
    ds = cq_core.open_sweep(tmp_path / "dt")
    assert ds["classical"].dims[:2] == ("dt", "sigma")
    mean, se, _ = trajectory_mean(ds["classical"].sel(coord="q"), ds["status"] == 0)
    means = xr.Dataset({"q_mean": mean, "q_se": se}).compute()
    result = weak_order(means, variables={"q_mean": "q_se"})  # at the last time, t = 0.4
    assert result.attrs["time"] == pytest.approx(0.4) and result.attrs["reference"] == 0.005
    fitted = result.sel(observable="q_mean").squeeze("sigma")
    order, order_se = fitted["order"].item(), fitted["order_se"].item()
    assert 0 < order_se < 0.1
    assert abs(order - 1.0) < 4.5 * order_se
    expected = 1.0 * 0.4 * (fitted["dt"] - 0.005)
    assert (abs(fitted["error"] - expected) <= 4.5 * fitted["error_se"]).all()


def test_a_dt_axis_summary_gives_the_weak_error_of_the_coherence(tmp_path):
    sweep = dict(
        model="linear",
        params={},
        sigma=[1.0],
        seeds=[0],
        n_traj=40,
        t_final=0.1,
        save_every=2,
        backend="numpy",
        grid={"dt": [0.01, 0.005, 0.0025]},
    )
    _run(tmp_path, "dt", sweep)
    summary = _summary(cq_core.open_sweep(tmp_path / "dt"))
    assert summary["coherence"].dims == ("dt", "sigma", "time")
    np.testing.assert_allclose(summary["time"], np.arange(6) * 0.02, atol=1e-12)
    result = weak_order(summary)  # at the last time
    error = result["error"].sel(observable="coherence", dt=0.01)
    expected = summary["coherence"].sel(dt=0.01) - summary["coherence"].sel(dt=0.0025)
    np.testing.assert_allclose(error, expected.isel(time=-1))
    assert result.attrs["reference"] == 0.0025


def test_a_mode_axis_summarises_each_mode_like_its_own_sweep(tmp_path):
    """A string axis: the summary's ``mode`` coordinate holds the names, each point equals
    the summary of a sweep of that mode alone (the point's attrs take the mode)."""
    sweep = dict(
        model="linear",
        params={},
        sigma=[1.0],
        seeds=[0],
        n_traj=30,
        t_final=0.1,
        dt=1.0e-3,
        save_every=10,
        backend="numpy",
        grid={"mode": ["pure", "density"]},
    )
    _run(tmp_path, "modes", sweep)
    summary = _summary(cq_core.open_sweep(tmp_path / "modes"))
    assert list(summary["mode"].values) == ["density", "pure"]
    for mode in ("pure", "density"):
        alone = {key: value for key, value in sweep.items() if key != "grid"}
        _run(tmp_path / mode, "alone", {**alone, "mode": mode})
        expected = _summary(cq_core.open_sweep(tmp_path / mode / "alone"))
        np.testing.assert_allclose(
            summary["coherence"].sel(mode=mode).values, expected["coherence"].values
        )
