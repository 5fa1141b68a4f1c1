"""Tests of :mod:`cq_core.analysis.power_laws` and :mod:`cq_core.analysis.grid_axes`: Γ
against a grid axis, on summaries of real small runs stacked along the axis (as a sweep with
a ``grid:`` stores them: the axis before ``sigma``)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import xarray as xr

import cq_core
from cq_core.analysis import summarise
from cq_core.analysis.grid_axes import grid_axes, grid_points, point_attrs
from cq_core.analysis.power_laws import is_log_axis, power_law_fit, rate_power_law
from cq_core.analysis.theory import force_gap_squared

LAMS = (0.5, 1.0, 2.0)
SIGMAS = (1.0, 2.0)


def _sweep_summary(n_traj: int = 200, **params) -> xr.Dataset:
    model = cq_core.get_model("linear", **params)
    cells = [
        cq_core.simulate(model, sigma=s, n_traj=n_traj, t_final=0.2, dt=1e-3, seed=0, save_every=5)
        for s in SIGMAS
    ]
    sweep = xr.concat(cells, dim="sigma", combine_attrs="override")
    return summarise(sweep, time_slices=[0.0, 0.2], bins=10, fit_window=[0.0, 0.2]).compute()


def stack_axis(axis: str, values, summaries) -> xr.Dataset:
    """Summaries of ordinary sweeps stacked along a new grid axis placed before sigma."""
    coord = xr.DataArray(list(values), dims=axis, name=axis)
    return xr.concat(
        summaries, dim=coord, coords="minimal", compat="override", combine_attrs="override"
    )


@pytest.fixture(scope="module")
def lam_summary():
    return stack_axis("lam", LAMS, [_sweep_summary(lam=lam) for lam in LAMS])


def test_grid_axes_and_points(lam_summary):
    assert grid_axes(lam_summary) == ("lam",)
    assert grid_axes(lam_summary.isel(lam=0)) == ()
    labels = [label for label, _ in grid_points(lam_summary)]
    assert labels == ["lam = 0.5", "lam = 1", "lam = 2"]
    assert [label for label, _ in grid_points(lam_summary.isel(lam=0))] == [""]


def test_point_attrs_and_force_gap_take_the_grid_value(lam_summary):
    for lam in LAMS:
        point = lam_summary.sel(lam=lam)
        assert json.loads(point_attrs(point)["model_params"])["lam"] == lam
        assert force_gap_squared(point) == pytest.approx(16.0 * lam**2)  # |Δf| = 4λ
    dt_point = lam_summary.isel(lam=0).assign_coords(dt=2e-3, excess=0.5)
    attrs = point_attrs(dt_point)
    assert (attrs["dt"], attrs["excess"]) == (2e-3, 0.5)


def test_gamma_against_lam_has_slope_two_within_its_se(lam_summary):
    fits = rate_power_law(lam_summary, "lam")
    assert fits["slope"].dims == ("sigma",) and fits.attrs["log_axis"] == 1
    z = (fits["slope"] - 2.0) / fits["slope_se"]
    assert np.all(np.abs(z) < 4.5), z.values
    assert np.all(fits["slope_se"] < 0.2)
    np.testing.assert_allclose(fits["theory_slope"], 2.0, atol=1e-9)  # Γ = 2λ²/σ²
    np.testing.assert_allclose(np.exp(fits["theory_intercept"]), 2.0 / np.square(SIGMAS))


def test_gamma_against_sigma_per_grid_point(lam_summary):
    fits = rate_power_law(lam_summary, "sigma")
    assert fits["slope"].dims == ("lam",)
    np.testing.assert_allclose(fits["theory_slope"], -2.0, atol=1e-9)
    assert np.all(np.isfinite(fits["slope_se"]))  # two σ values with SEs: a fit with an SE


def test_known_power_law_recovered_exactly():
    x = np.array([0.5, 1.0, 2.0, 4.0])
    slope, slope_se, intercept = power_law_fit(x, 3.0 * x**1.5, 0.01 * x)
    assert (slope, intercept) == pytest.approx((1.5, np.log(3.0)))
    assert power_law_fit(x[:2], x[:2], None) is None  # no SE: three points at least
    assert power_law_fit(x[:2], x[:2], x[:2] / 10) is None  # default min_points = 3
    assert power_law_fit(x[:2], x[:2], x[:2] / 10, min_points=2)[0] == pytest.approx(1.0)


def test_a_linear_axis_gets_no_power_law(lam_summary):
    assert is_log_axis(np.array([0.0, 5.0])) is False
    assert is_log_axis(np.array([1.0, 1.5])) is False  # too narrow to read a slope from
    assert is_log_axis(np.array(["pure", "density"])) is False
    assert is_log_axis(np.array([0.5, 2.0])) is True
    phi = lam_summary.rename(lam="phi").assign_coords(phi=[0.0, 2.0, 5.0])
    fits = rate_power_law(phi, "phi")
    assert fits.attrs["log_axis"] == 0 and np.all(np.isnan(fits["slope"]))


def test_unknown_axis_is_refused(lam_summary):
    with pytest.raises(ValueError, match="axis must be one of the summary's axes sigma, lam"):
        rate_power_law(lam_summary, "M")


def test_exact_power_law_gives_its_slope_and_the_weighted_se():
    """Γ = 3λ²/σ² with SE 1 %: slope 2 exactly, se = 1 / (100 · sqrt(Σ (log λ − mean)²))."""
    lams, sigmas = np.array([0.5, 1.0, 2.0, 4.0]), np.array([1.0, 2.0])
    gamma = 3.0 * lams[:, None] ** 2 / sigmas[None, :] ** 2
    summary = xr.Dataset(
        {
            "gamma_fit": (("lam", "sigma"), gamma),
            "gamma_fit_se": (("lam", "sigma"), 0.01 * gamma),
            "gamma_theory": (("lam", "sigma"), np.full(gamma.shape, np.nan)),
        },
        coords={"lam": lams, "sigma": sigmas},
    )
    fits = rate_power_law(summary, "lam")
    np.testing.assert_allclose(fits["slope"], 2.0, rtol=1e-9)
    log_lam = np.log(lams)
    expected_se = 1.0 / (100.0 * np.sqrt(np.sum((log_lam - log_lam.mean()) ** 2)))
    np.testing.assert_allclose(fits["slope_se"], expected_se, rtol=1e-6)
    np.testing.assert_allclose(np.exp(fits["intercept"]), 3.0 / sigmas**2, rtol=1e-9)
    assert np.all(np.isnan(fits["theory_slope"]))  # no theory: no theory slope


def test_vector_axis_point_puts_its_vector_into_the_model_params():
    """r0 as a grid axis: dimension r0_index, vectors in the variable r0 (as open_sweep)."""
    model = cq_core.get_model("mass_superposition")
    shared = {k: v for k, v in json.loads(cq_core.models.params_to_json(model.params)).items()}
    shared.pop("r0")
    summary = xr.Dataset(
        {"r0": (("r0_index", "r0_component"), [[0.0, -0.5, 0.0], [0.0, -1.0, 0.0]])},
        coords={"r0_index": [0, 1]},
        attrs={"model": "mass_superposition", "model_params": json.dumps(shared)},
    )
    near, far = (force_gap_squared(summary.isel(r0_index=i)) for i in (0, 1))
    assert np.sqrt(near) == pytest.approx(0.143, abs=5e-4)  # docs/physics.md: |Δf| at r0
    assert far < 0.5 * near  # farther from the sources: a smaller force gap
    assert json.loads(point_attrs(summary.isel(r0_index=1))["model_params"])["r0"] == [0, -1, 0]
