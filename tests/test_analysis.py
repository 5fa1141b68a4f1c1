"""Tests of :mod:`cq_core.analysis`: the summary variables of a sweep (docs/physics.md).

Small simulated sweeps with fixed seeds, stored as real Zarr cells and read back lazily with
``open_sweep`` (the aggregate rules' path), plus a synthetic check of the flag handling.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import xarray as xr

import cq_core
from cq_core.analysis import (
    SUMMARY_VARIABLES,
    coherence_curve,
    sigma_z_histogram,
    summarise,
    theory_rate,
)
from cq_core.cells import CellSpec, write_cell
from cq_core.pipeline.summary_store import write_summary

LINEAR = {"model": "linear", "params": {}, "n_traj": 300, "t_final": 0.2, "dt": 1e-3}


@pytest.fixture(scope="module")
def linear_sweep(tmp_path_factory):
    """A stored `linear` sweep: σ ∈ {1, 2}, two seeds of 300 trajectories, opened lazily."""
    root = tmp_path_factory.mktemp("sweep") / "linear"
    for sigma in (1.0, 2.0):
        for seed in (0, 1):
            spec = CellSpec(sigma=sigma, seed=seed, save_every=5, **LINEAR)
            write_cell(spec.simulate(), root / "cells" / f"sigma={sigma!r}" / f"seed={seed}.zarr")
    return cq_core.open_sweep(root)


@pytest.fixture(scope="module")
def linear_summary(linear_sweep, tmp_path_factory):
    """The summary written to Zarr and read back (what the aggregate rule produces)."""
    path = tmp_path_factory.mktemp("summary") / "summary.zarr"
    summary = summarise(linear_sweep, time_slices=[0.0, 0.1, 0.2], bins=16, fit_window=[0, 0.2])
    assert linear_sweep["psi"].chunks is not None  # the cells are read lazily …
    assert summary["coherence"].chunks is None  # … and reduced part by part (bounded memory)
    write_summary(summary, path)
    return xr.open_zarr(path, consolidated=False).load()


def test_summary_has_the_required_variables_and_dims(linear_summary):
    s = linear_summary
    assert set(SUMMARY_VARIABLES) <= set(s.data_vars)
    for name in ("coherence", "coherence_se", "sigma_z_mean", "sigma_z_se"):
        assert s[name].dims == ("sigma", "time")
    assert s["sigma_z_hist"].dims == ("sigma", "slice", "bin")
    for name in ("gamma_fit", "gamma_fit_se", "gamma_theory", "n_flagged"):
        assert s[name].dims == ("sigma",)
    np.testing.assert_array_equal(s["sigma"], [1.0, 2.0])
    assert s.attrs["model"] == "linear"
    assert json.loads(s.attrs["model_params"])["lam"] == 1.0
    assert s.attrs["seeds"] == [0, 1] and s.attrs["n_traj_per_cell"] == 300


def test_gamma_fit_agrees_with_the_exact_linear_theory(linear_summary):
    s = linear_summary
    np.testing.assert_allclose(s["gamma_theory"], 2.0 / s["sigma"] ** 2)  # 2λ²/σ², λ = 1
    z = (s["gamma_fit"] - s["gamma_theory"]) / s["gamma_fit_se"]
    assert np.all(np.abs(z) < 5), z.values
    assert np.all(s["gamma_fit_se"] < 0.1 * s["gamma_theory"])
    # C(t) itself follows exp(−Γt) within its standard errors
    expected = np.exp(-s["gamma_theory"] * s["time"])
    assert float(np.abs((s["coherence"] - expected) / s["coherence_se"]).max()) < 5
    np.testing.assert_allclose(s["coherence"].isel(time=0), 1.0)


def test_martingale_born_weight_and_no_flags(linear_summary):
    s = linear_summary
    z = s["sigma_z_mean"].isel(time=slice(1, None)) / s["sigma_z_se"].isel(time=slice(1, None))
    assert float(np.abs(z).max()) < 5  # E[<σz>_t] = <σz>_0 = 0
    np.testing.assert_array_equal(s["n_flagged"], [0, 0])
    np.testing.assert_array_equal(s["n_trajectories"], [600, 600])
    np.testing.assert_allclose(s["born_weight"], 0.5)


def test_histogram_densities_integrate_to_one(linear_summary):
    hist = linear_summary["sigma_z_hist"]
    width = linear_summary["bin_upper"] - linear_summary["bin_lower"]
    np.testing.assert_allclose((hist * width).sum("bin"), 1.0)
    np.testing.assert_allclose(linear_summary["slice_time"], [0.0, 0.1, 0.2])
    # at t = 0 every trajectory has <σz> = 0: all the mass sits in one bin at 0
    at_zero = hist.isel(slice=0, sigma=0)
    occupied = at_zero.where(at_zero > 0, drop=True)
    assert occupied.sizes["bin"] == 1
    assert float(occupied["bin_lower"][0]) <= 0.0 <= float(occupied["bin_upper"][0])


def test_flagged_trajectories_are_counted_and_excluded():
    model = cq_core.get_model("linear")
    ds = cq_core.simulate(model, sigma=1.0, n_traj=40, t_final=0.05, dt=1e-3, seed=5)
    flagged = [3, 17, 18]
    damaged = ds.copy(deep=True)
    damaged["status"][flagged] = 1
    damaged["psi"][flagged] = [1.0, 0.0]  # nonsense that must not enter any average
    damaged["classical"][flagged] = np.nan
    summary = summarise(damaged, time_slices=[0.05], bins=5).compute()
    assert int(summary["n_flagged"].item()) == 3
    assert int(summary["n_trajectories"].item()) == 40
    kept = ds.drop_isel(trajectory=flagged)
    reference = summarise(kept, time_slices=[0.05], bins=5).compute()
    for name in ("coherence", "coherence_se", "sigma_z_mean", "sigma_z_hist", "gamma_fit"):
        xr.testing.assert_allclose(summary[name], reference[name])


def test_theory_rates_of_other_models_and_modes():
    def cell(model, **params):
        sweep_params = {k: v for k, v in params.items() if k in ("mode", "excess")}
        model_params = {k: v for k, v in params.items() if k not in sweep_params}
        ds = cq_core.simulate(
            cq_core.get_model(model, **model_params),
            sigma=0.5,
            n_traj=2,
            t_final=0.01,
            dt=1e-3,
            seed=0,
            **sweep_params,
        )
        return float(theory_rate(ds).item())

    assert cell("linear", lam=2.0) == pytest.approx(2 * 4 / 0.25)
    assert cell("linear", mode="density", excess=1.5) == pytest.approx(2.5 * 2 / 0.25)
    assert np.isnan(cell("linear", omega=1.0))  # non-commuting: no exponential law
    assert cell("linear", mode="mean_field") == 0.0
    delta_f = 0.1 * 2 / 1.25**1.5  # |Δf| at r0 = (0, −0.5, 0): 2 G M m / |r − r_X|³
    assert delta_f == pytest.approx(0.143, abs=1e-3)
    assert cell("mass_superposition") == pytest.approx(delta_f**2 / (8 * 0.25))


def test_single_cell_functions_and_errors():
    ds = cq_core.simulate(
        cq_core.get_model("linear"), sigma=1.0, n_traj=5, t_final=0.01, dt=1e-3, seed=0
    )
    curve = coherence_curve(ds)
    assert curve["coherence"].dims == ("time",)  # scalar σ stays scalar here
    with pytest.raises(ValueError, match="outside the stored times"):
        sigma_z_histogram(ds, [0.5], 4)
    with pytest.raises(ValueError, match="bins"):
        sigma_z_histogram(ds, [0.0], 0)
    with pytest.raises(ValueError, match="fit_window"):
        summarise(ds, time_slices=[0.0], bins=4, fit_window=[0.01, 0.0])
