"""Tests of :mod:`cq_core.analysis.convergence`: the observed weak order of a ``dt`` axis.

Data with a known order: ``X(dt) = X₀ + A·dt^p`` (plus Gaussian noise of a stated SE, seeds
fixed), as a DataArray and as a summary with a ``dt`` grid axis.
"""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

import cq_core
from cq_core.analysis.convergence import fit_weak_order, weak_order

STEPS = np.array([0.008, 0.004, 0.002, 0.001, 0.0005])
TIMES = np.linspace(0.0, 0.2, 21)


def _summary(se: float = 2e-5, seed: int = 0) -> xr.Dataset:
    """A summary (dt, sigma, time): C(t) of weak order 1, E⟨σz⟩ of weak order 2."""
    rng = np.random.default_rng(seed)
    sigmas = np.array([0.5, 1.0])
    shape = (STEPS.size, sigmas.size, TIMES.size)
    dt, t = STEPS[:, None, None], TIMES[None, None, :]
    coherence = np.exp(-2.0 * t / sigmas[None, :, None] ** 2) + 2.0 * dt * t
    sigma_z = 2000.0 * dt**2 * t
    noise = rng.normal(0.0, se, (2, *shape)) * (t > 0)
    dims = ("dt", "sigma", "time")
    return xr.Dataset(
        {
            "coherence": (dims, coherence + noise[0]),
            "coherence_se": (dims, np.full(shape, se)),
            "sigma_z_mean": (dims, sigma_z + noise[1]),
            "sigma_z_se": (dims, np.full(shape, se)),
            "gamma_fit": (("dt", "sigma"), np.ones(shape[:2])),
        },
        coords={"dt": STEPS, "sigma": sigmas, "time": TIMES},
        attrs={"model": "linear", "model_params": '{"lam": 1.0}', "mode": "pure"},
    )


def test_exact_data_give_the_order_exactly_although_the_reference_is_not_exact():
    """|e| = A(dt^p − dt_min^p): the plain log–log slope would give ≈ 0.9 here, not 1."""
    for order in (0.5, 1.0, 2.0):
        values = xr.DataArray(3.0 + 0.7 * STEPS**order, dims="dt", coords={"dt": STEPS})
        result = weak_order(values)
        assert float(result["order"]) == pytest.approx(order, abs=1e-5)
        assert float(result["amplitude"]) == pytest.approx(0.7, rel=1e-4)
        assert float(result.attrs["reference"]) == STEPS.min()
        np.testing.assert_allclose(
            result["error"], 0.7 * (STEPS[:-1] ** order - STEPS[-1] ** order)
        )
    naive = np.polyfit(np.log(STEPS[:-1]), np.log(STEPS[:-1] - STEPS[-1]), 1)[0]
    assert abs(naive - 1.0) > 0.05  # so the test above tells the two fits apart


@pytest.mark.parametrize("order", [1.0, 2.0])
def test_noisy_data_give_the_order_within_its_standard_error(order):
    rng = np.random.default_rng(7)
    se = 0.01 * 0.7 * STEPS[-2] ** order  # 1 % of the smallest error
    hits = []
    for _ in range(20):
        values = 3.0 + 0.7 * STEPS**order + rng.normal(0.0, se, STEPS.size)
        data = xr.DataArray(values, dims="dt", coords={"dt": STEPS})
        result = weak_order(data, se=xr.full_like(data, se))
        hits.append((float(result["order"]) - order) / float(result["order_se"]))
    hits = np.array(hits)
    assert np.all(np.abs(hits) < 4.5)  # every fit within 4.5 SE of the true order
    assert 0.3 < np.std(hits) < 2.0  # and the SE is the right size, not 10× too large


def test_summary_orders_per_observable_and_sigma_at_the_chosen_time():
    summary = _summary()
    result = weak_order(summary, time=0.1)
    assert result.attrs["time"] == pytest.approx(0.1)
    assert list(result["observable"].values) == ["coherence", "sigma_z_mean"]
    assert result["order"].dims == ("observable", "sigma")
    order, se = result["order"], result["order_se"]
    assert np.all(
        np.abs(order.sel(observable="coherence") - 1.0) < 4.5 * se.sel(observable="coherence")
    )
    assert np.all(
        np.abs(order.sel(observable="sigma_z_mean") - 2.0) < 4.5 * se.sel(observable="sigma_z_mean")
    )
    assert np.all(se < 0.1)
    expected = 2.0 * (STEPS[:-1] - STEPS[-1]) * 0.1
    np.testing.assert_allclose(
        result["error"].sel(observable="coherence", sigma=1.0), expected, atol=5 * np.sqrt(2) * 2e-5
    )
    np.testing.assert_allclose(result["error_se"], np.sqrt(2) * 2e-5)
    assert weak_order(summary).attrs["time"] == pytest.approx(0.2)  # default: the last time


def test_fit_needs_two_errors_with_se():
    assert np.isnan(fit_weak_order(STEPS[:1], [1e-3], [1e-5], STEPS[-1])[0])
    p, se, _ = fit_weak_order(STEPS[:2], STEPS[:2] - STEPS[-1], [1e-6, 1e-6], STEPS[-1])
    assert p == pytest.approx(1.0, abs=1e-4) and se > 0


@pytest.mark.parametrize(
    ("kwargs", "data", "match"),
    [
        ({"axis": "lam"}, None, "axis must be a dimension"),
        ({"time": 5.0}, None, "time must lie within"),
        ({"variables": ["born_weight"]}, None, "variables must name"),
        ({}, xr.DataArray([1.0, 2.0], dims="dt", coords={"dt": [0.1, 0.2]}), "three step sizes"),
        ({}, xr.DataArray([1.0, 2, 3], dims="dt", coords={"dt": [0.0, 0.1, 0.2]}), "> 0"),
        ({}, xr.DataArray([1.0, 2, 3], dims="dt", coords={"dt": [0.1, 0.1, 0.2]}), "twice"),
    ],
)
def test_bad_input_is_refused_naming_the_key(kwargs, data, match):
    with pytest.raises(ValueError, match=match):
        weak_order(_summary() if data is None else data, **kwargs)


@pytest.mark.slow
def test_a_real_dt_sweep_of_the_driven_qubit_is_weak_order_one():
    """``linear`` with ω = 3 (the non-commuting case of docs/physics.md's weak table), one
    summary per dt, stacked along dt: C(T) and E⟨σz⟩_T converge with weak order 1."""
    from cq_core.analysis import summarise

    model = cq_core.get_model("linear", omega=3.0, phi=1.0, psi0=[0.8, 0.6j])
    steps = [1 / 16, 1 / 32, 1 / 64, 1 / 128]
    parts = []
    for k, dt in enumerate(steps):  # save_every = 2^k: every dt stores the same times
        cell = cq_core.simulate(
            model, sigma=1.0, n_traj=20000, t_final=0.5, dt=dt, seed=0, save_every=2**k
        )
        sweep = xr.concat([cell], dim="sigma", combine_attrs="override")
        parts.append(summarise(sweep, time_slices=[0.0], bins=4))
    summary = xr.concat(
        parts, dim=xr.DataArray(steps, dims="dt", name="dt"), coords="minimal",
        compat="override", combine_attrs="override",
    )  # fmt: skip
    result = weak_order(summary)
    assert result.attrs["time"] == pytest.approx(0.5)
    order, se = result["order"].squeeze("sigma"), result["order_se"].squeeze("sigma")
    assert np.all(se < 2.0), (
        se.values
    )  # an order, not noise (0.3–0.6 at seed 0; ≤ 1.6 at seeds 1–8)
    assert np.all(np.abs(order - 1.0) < 4.5 * se), (order.values, se.values)
    coarsest = result["error"].isel(dt=0).squeeze("sigma")
    assert np.all(np.abs(coarsest) > 4 * result["error_se"].isel(dt=0).squeeze("sigma"))


def test_errors_within_their_noise_resolve_no_order():
    """A martingale of an exact scheme: E⟨σz⟩ the same at every dt up to noise → NaN."""
    rng = np.random.default_rng(11)
    values = xr.DataArray(0.3 + rng.normal(0.0, 1e-3, STEPS.size), dims="dt", coords={"dt": STEPS})
    result = weak_order(values, se=xr.full_like(values, 1e-3))
    assert np.isnan(float(result["order"])) and np.isnan(float(result["order_se"]))


def test_any_mean_with_its_se_by_mapping():
    summary = _summary().rename(sigma_z_mean="q_mean", sigma_z_se="q_se")
    result = weak_order(summary, variables={"q_mean": "q_se"})
    assert list(result["observable"].values) == ["q_mean"]
    order, se = (
        result["order"].sel(observable="q_mean"),
        result["order_se"].sel(observable="q_mean"),
    )
    assert np.all(np.abs(order - 2.0) < 4.5 * se)
    with pytest.raises(ValueError, match="variables must name"):
        weak_order(summary, variables={"q_mean": "missing_se"})
