"""The public ``simulate`` API: Dataset layout, reproducibility, flags (cq_core/simulate.py)."""

from __future__ import annotations

import json

import numpy as np
import pytest

import cq_core
from cq_core import Model

SEED_RUN = dict(sigma=0.02, t_final=0.02, dt=1e-3, seed=7)


@pytest.fixture(scope="module")
def mass():
    return cq_core.get_model("mass_superposition")


def test_dataset_layout(mass):
    ds = cq_core.simulate(mass, n_traj=5, save_every=4, **SEED_RUN)
    assert ds.classical.dims == ("trajectory", "time", "coord")
    assert ds.psi.dims == ("trajectory", "time", "level")
    assert ds.psi.dtype == np.complex128
    assert list(ds.coord.values) == ["x", "y", "z", "px", "py", "pz"]
    assert list(ds.level.values) == ["L", "R"]
    # 20 steps saved every 4: 0, 4, …, 20 — starts at 0 and ends at t_final exactly
    np.testing.assert_allclose(ds.time, np.arange(0, 21, 4) * 1e-3)
    assert ds.time.values[0] == 0.0 and ds.time.values[-1] == 0.02
    assert float(ds.sigma) == 0.02 and int(ds.seed) == 7
    assert ds.attrs["model"] == "mass_superposition"
    assert json.loads(ds.attrs["model_params"])["M"] == 10.0
    assert ds.attrs["method"] == "exponential" and ds.attrs["mode"] == "pure"
    assert ds.attrs["dt"] == 1e-3 and ds.attrs["excess"] == 0.0
    assert ds.attrs["cq_core_version"] == cq_core.__version__
    assert ds.attrs["numerics_version"] == cq_core.NUMERICS_VERSION
    np.testing.assert_array_equal(ds.classical.isel(time=0), np.tile(mass.z0, (5, 1)))
    np.testing.assert_allclose(ds.psi.isel(time=0), np.tile(mass.psi0, (5, 1)))


def test_last_step_is_saved_when_save_every_does_not_divide(mass):
    ds = cq_core.simulate(mass, n_traj=2, save_every=3, **SEED_RUN)
    np.testing.assert_allclose(ds.time, np.r_[np.arange(0, 20, 3), 20] * 1e-3)


def test_density_mode_layout():
    ds = cq_core.simulate(
        cq_core.get_model("linear"), sigma=1.0, n_traj=3, t_final=0.1, dt=0.01, seed=0,
        mode="density", excess=0.5,
    )  # fmt: skip
    assert ds.rho.dims == ("trajectory", "time", "ket", "bra")
    assert "psi" not in ds and ds.attrs["excess"] == 0.5


def test_bit_identical_on_rerun(mass):
    a = cq_core.simulate(mass, n_traj=6, **SEED_RUN)
    b = cq_core.simulate(mass, n_traj=6, **SEED_RUN)
    assert a.identical(b)


def test_block_equals_slice_of_big_run(mass):
    """first_trajectory: a block computed alone equals that slice of one big run, bit for bit."""
    big = cq_core.simulate(mass, n_traj=10, **SEED_RUN)
    block = cq_core.simulate(mass, n_traj=4, first_trajectory=3, **SEED_RUN)
    np.testing.assert_array_equal(block.trajectory, [3, 4, 5, 6])
    np.testing.assert_array_equal(block.psi, big.psi.sel(trajectory=block.trajectory))
    np.testing.assert_array_equal(block.classical, big.classical.sel(trajectory=block.trajectory))


def test_noise_paths_do_not_depend_on_sigma():
    """Common random numbers: the free particle's momentum noise is σ·W with the same W."""
    model = cq_core.get_model("linear", lam=0.0, phi=0.0)  # no back-reaction: p = σ W
    run = dict(n_traj=5, t_final=0.1, dt=0.01, seed=3)
    small = cq_core.simulate(model, sigma=0.5, **run).classical.sel(coord="p")
    large = cq_core.simulate(model, sigma=2.0, **run).classical.sel(coord="p")
    np.testing.assert_allclose(large.values, 4.0 * small.values, rtol=1e-12, atol=1e-15)
    other_seed = cq_core.simulate(model, sigma=0.5, **{**run, "seed": 4}).classical.sel(coord="p")
    assert not np.allclose(other_seed.values, small.values)


def test_save_every_does_not_change_the_path(mass):
    every = cq_core.simulate(mass, n_traj=3, save_every=1, **SEED_RUN)
    sparse = cq_core.simulate(mass, n_traj=3, save_every=5, **SEED_RUN)
    np.testing.assert_array_equal(sparse.psi, every.psi.sel(time=sparse.time))


@pytest.mark.parametrize(
    ("name", "params", "sigma", "dt"),
    [
        ("linear", {}, 1.0, 1e-3),
        ("linear", {"omega": 3.0}, 1.0, 1e-3),
        ("sqrt_potential", {"p0": 1.0}, 0.5, 1e-3),
        ("mass_superposition", {}, 0.01, 1e-4),
        ("qubit_lattice", {"n": 4}, 1.0, 1e-4),
    ],
)
def test_default_integrator_keeps_the_norm(name, params, sigma, dt):
    ds = cq_core.simulate(
        cq_core.get_model(name, **params), sigma=sigma, n_traj=50, t_final=100 * dt, dt=dt, seed=1
    )
    norms = np.linalg.norm(ds.psi.values, axis=-1)
    assert np.max(np.abs(norms - 1.0)) < 1e-12
    assert (ds.status == 0).all()


def test_mean_field_is_deterministic_and_noise_free():
    model = cq_core.get_model("linear", omega=3.0, p0=1.0)
    ds = cq_core.simulate(
        model, sigma=1.0, n_traj=3, t_final=0.2, dt=0.01, seed=0, mode="mean_field"
    )
    assert ds.attrs["method"] == "rk4"
    np.testing.assert_array_equal(ds.psi.values[0], ds.psi.values[2])
    # noise-free: a different σ or seed gives the same path
    other = cq_core.simulate(
        model, sigma=5.0, n_traj=1, t_final=0.2, dt=0.01, seed=9, mode="mean_field"
    )
    np.testing.assert_array_equal(other.classical.values[0], ds.classical.values[0])


def test_sqrt_potential_trajectories_leaving_the_domain_are_frozen_and_flagged():
    """q ≤ 0 is outside the model: stop and flag, keep the trajectory, never NaN."""
    model = cq_core.get_model("sqrt_potential")  # q0 = 1, p0 = −1: heads for the wall
    ds = cq_core.simulate(model, sigma=0.5, n_traj=200, t_final=2.0, dt=1e-3, seed=0, save_every=10)
    left = ds.status == cq_core.STATUS_CODES["left_domain"]
    assert 0 < int(left.sum()) < 200
    assert ds.sizes["trajectory"] == 200
    for var in ("classical", "psi", "status_time"):
        assert np.isfinite(ds[var].where(left, drop=True)).all(), var
    assert np.isnan(ds.status_time.where(~left, drop=True)).all()
    q = ds.classical.sel(coord="q")
    assert (q > 0).all()
    # after its flag time a trajectory does not move
    first = int(np.flatnonzero(left.values)[0])
    t_flag = float(ds.status_time[first])
    frozen = ds.classical.isel(trajectory=first).sel(time=slice(t_flag, None))
    assert frozen.sizes["time"] >= 2
    np.testing.assert_array_equal(frozen.values, np.broadcast_to(frozen.values[0], frozen.shape))
    assert ds.status.attrs["flag_meanings"] == "ok left_domain non_finite"


def test_non_finite_trajectories_are_frozen_and_flagged():
    """A classical blow-up (dp/dt = p²) is stopped at its last finite state, never NaN."""
    model = Model(
        name="blow_up",
        params={},
        coord_labels=("q", "p"),
        level_labels=("a", "b"),
        z0=np.array([0.0, 1.0]),
        psi0=np.array([1.0, 0.0]),
        hamiltonian_flow=lambda Z: np.stack([np.zeros(len(Z)), Z[:, 1] ** 2], axis=1),
        interaction_hamiltonian=lambda Z: np.zeros((len(Z), 2)),
        backreaction_operators=lambda Z: np.zeros((1, 1, 2)),
        noise_shape=np.array([[0.0], [1.0]]),
        coupled=(1,),
    )
    ds = cq_core.simulate(model, sigma=0.01, n_traj=3, t_final=3.0, dt=0.01, seed=0)
    assert (ds.status == cq_core.STATUS_CODES["non_finite"]).all()
    assert np.isfinite(ds.classical).all() and np.isfinite(ds.psi).all()
    assert (ds.status_time > 1.0).all() and (ds.status_time < 3.0).all()
