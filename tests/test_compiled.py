"""The fused Numba kernel agrees with the NumPy path (cq_core/compiled.py, issue: performance)."""

from __future__ import annotations

import numpy as np
import pytest

import cq_core

COVERED = [
    ("mass_superposition", {}, 0.02, 1e-4),
    ("mass_superposition", {"phi": 5.0, "eps": 0.1, "psi0": [0.8, 0.6j]}, 0.05, 1e-4),
    ("linear", {"p0": 1.0, "psi0": [0.3, 0.7 + 0.1j]}, 1.0, 1e-3),
    ("qubit_lattice", {"n": 3, "phi0": [0.1, -0.2, 0.3]}, 1.0, 1e-4),
]


@pytest.mark.parametrize(("name", "params", "sigma", "dt"), COVERED)
def test_numba_agrees_with_numpy(name, params, sigma, dt):
    model = cq_core.get_model(name, **params)
    run = dict(sigma=sigma, n_traj=40, t_final=300 * dt, dt=dt, seed=5, save_every=7)
    fast = cq_core.simulate(model, backend="numba", **run)
    slow = cq_core.simulate(model, backend="numpy", **run)
    assert fast.attrs["backend"] == "numba" and slow.attrs["backend"] == "numpy"
    np.testing.assert_allclose(fast.classical, slow.classical, rtol=0, atol=1e-12)
    np.testing.assert_allclose(fast.psi, slow.psi, rtol=0, atol=1e-12)
    np.testing.assert_array_equal(fast.time, slow.time)
    np.testing.assert_array_equal(fast.status, slow.status)
    assert np.max(np.abs(np.linalg.norm(fast.psi.values, axis=-1) - 1)) < 1e-12


def test_auto_picks_numba_where_covered_and_numpy_elsewhere():
    run = dict(sigma=1.0, n_traj=2, t_final=0.01, dt=1e-3, seed=0)
    assert cq_core.simulate(cq_core.get_model("linear"), **run).attrs["backend"] == "numba"
    for model, extra in [
        (cq_core.get_model("linear", omega=1.0), {}),  # non-diagonal: Kraus
        (cq_core.get_model("linear"), {"method": "euler"}),
        (cq_core.get_model("linear"), {"mode": "density"}),
        (cq_core.get_model("sqrt_potential"), {}),  # position-dependent noise
    ]:
        assert cq_core.simulate(model, **run, **extra).attrs["backend"] == "numpy"


def test_numba_refuses_what_it_does_not_cover():
    with pytest.raises(ValueError, match="backend 'numba' covers pure-state runs"):
        cq_core.simulate(
            cq_core.get_model("sqrt_potential"),
            sigma=1.0, n_traj=2, t_final=0.01, dt=1e-3, seed=0, backend="numba",
        )  # fmt: skip
    with pytest.raises(ValueError, match="backend must be one of auto, numpy, numba"):
        cq_core.simulate(
            cq_core.get_model("linear"), sigma=1.0, n_traj=2, t_final=0.01, dt=1e-3, seed=0,
            backend="cuda",
        )  # fmt: skip


def test_blocks_and_reruns_are_bit_identical_with_numba():
    model = cq_core.get_model("mass_superposition")
    run = dict(sigma=0.02, t_final=0.01, dt=1e-4, seed=3, backend="numba")
    big = cq_core.simulate(model, n_traj=9, **run)
    assert big.identical(cq_core.simulate(model, n_traj=9, **run))
    block = cq_core.simulate(model, n_traj=4, first_trajectory=5, **run)
    np.testing.assert_array_equal(block.psi, big.psi.isel(trajectory=slice(5, 9)))


@pytest.mark.parametrize("backend", ["numba", "numpy"])
def test_an_overflow_is_flagged_non_finite_and_frozen(backend):
    """p/m = 1.5e308 is finite, but x overflows at the second step: flagged, frozen, not NaN."""
    model = cq_core.get_model("mass_superposition", p0=(1.5e306, 0.0, 0.0))
    ds = cq_core.simulate(model, sigma=0.02, n_traj=3, t_final=3.0, dt=1.0, seed=0, backend=backend)
    assert ds.attrs["backend"] == backend
    assert (ds.status == cq_core.STATUS_CODES["non_finite"]).all()
    assert (ds.status_time == 2.0).all()
    assert np.isfinite(ds.classical).all() and np.isfinite(ds.psi).all()
    np.testing.assert_array_equal(ds.classical.isel(time=-1), ds.classical.isel(time=1))
    assert float(ds.classical.sel(coord="x").isel(time=1)[0]) == pytest.approx(1.5e308)


def test_a_test_mass_on_a_point_source_is_rejected_before_running():
    model = cq_core.get_model("mass_superposition", r0=(-1.0, 0.0, 0.0))
    with pytest.raises(ValueError, match="not finite at the initial point"):
        cq_core.simulate(model, sigma=0.02, n_traj=3, t_final=0.001, dt=1e-4, seed=0)
