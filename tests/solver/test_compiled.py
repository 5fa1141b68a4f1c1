"""The fused kernels (C and Numba) agree with the NumPy path and with each other (issue 8)."""

from __future__ import annotations

import dataclasses
import subprocess
import sys

import numpy as np
import pytest

import cq_core
from cq_core.solver import fused as compiled

NUMBA = pytest.mark.skipif(not compiled.available("numba"), reason="numba is not installed")

COVERED = [
    ("mass_superposition", {}, 0.02, 1e-4),
    ("mass_superposition", {"phi": 5.0, "eps": 0.1, "psi0": [0.8, 0.6j]}, 0.05, 1e-4),
    ("linear", {"p0": 1.0, "psi0": [0.3, 0.7 + 0.1j]}, 1.0, 1e-3),
    ("qubit_lattice", {"n": 3, "phi0": [0.1, -0.2, 0.3]}, 1.0, 1e-4),
    # some levels empty (their loops are skipped), the others of unequal weight and phase
    ("qubit_lattice", {"n": 3, "psi0": [0.5, 0, 0.3j, 0, 0, 0.6, 0, 0.2]}, 1.0, 1e-4),
]


FUSED = ["c", pytest.param("numba", marks=NUMBA)]


def test_the_c_kernel_is_built():
    """CI builds it (setup.py marks it optional, so a failed build must fail here instead)."""
    assert compiled.available("c"), (
        "cq_core/solver/fused/_fused_kernel*.so is missing: is gcc installed?"
    )


@pytest.mark.parametrize("backend", FUSED)
@pytest.mark.parametrize(("name", "params", "sigma", "dt"), COVERED)
def test_fused_kernels_agree_with_numpy(backend, name, params, sigma, dt):
    model = cq_core.get_model(name, **params)
    run = dict(sigma=sigma, n_traj=40, t_final=300 * dt, dt=dt, seed=5, save_every=7)
    fast = cq_core.simulate(model, backend=backend, **run)
    slow = cq_core.simulate(model, backend="numpy", **run)
    assert fast.attrs["backend"] == backend and slow.attrs["backend"] == "numpy"
    np.testing.assert_allclose(fast.classical, slow.classical, rtol=0, atol=1e-12)
    np.testing.assert_allclose(fast.psi, slow.psi, rtol=0, atol=1e-12)
    np.testing.assert_array_equal(fast.time, slow.time)
    np.testing.assert_array_equal(fast.status, slow.status)
    assert np.max(np.abs(np.linalg.norm(fast.psi.values, axis=-1) - 1)) < 1e-12


@NUMBA
@pytest.mark.parametrize(("name", "params", "sigma", "dt"), COVERED)
def test_c_and_numba_give_the_same_bits(name, params, sigma, dt):
    """The same operations in the same order (no FMA, no fast-math): identical numbers.

    130 trajectories cross a trajectory group boundary (64) and 700 steps cross noise chunks.
    """
    model = cq_core.get_model(name, **params)
    run = dict(sigma=sigma, n_traj=130, t_final=700 * dt, dt=dt, seed=11, save_every=9)
    c = cq_core.simulate(model, backend="c", **run)
    numba = cq_core.simulate(model, backend="numba", **run)
    assert c.drop_attrs().identical(numba.drop_attrs())


def test_auto_prefers_c_where_covered_then_generated_then_numpy():
    """auto: the hand-written C kernel where it covers the run; else the kernel generated from
    the model's symbolic form (every built-in carries one); NumPy for a model given only as
    functions."""
    run = dict(sigma=1.0, n_traj=2, t_final=0.01, dt=1e-3, seed=0)
    assert cq_core.simulate(cq_core.get_model("linear"), **run).attrs["backend"] == "c"
    for model, extra in [
        (cq_core.get_model("linear", omega=1.0), {}),  # non-diagonal: Kraus
        (cq_core.get_model("linear"), {"mode": "density"}),
        (cq_core.get_model("sqrt_potential"), {}),  # position-dependent noise
    ]:
        assert cq_core.simulate(model, **run, **extra).attrs["backend"] == "generated"
        functions_only = dataclasses.replace(model, symbolic=None)
        assert cq_core.simulate(functions_only, **run, **extra).attrs["backend"] == "numpy"
    euler = cq_core.simulate(cq_core.get_model("linear"), **run, method="euler")
    assert euler.attrs["backend"] == "numpy"  # no fused kernel runs Euler-Maruyama


def test_a_default_run_never_imports_numba():
    """Loading Numba costs a process ~130 MB: the default (C) path must not pull it in."""
    code = (
        "import sys, cq_core; "
        "ds = cq_core.simulate(cq_core.get_model('mass_superposition'), sigma=0.02, n_traj=4, "
        "t_final=1e-3, dt=1e-4, seed=0); "
        "print(ds.attrs['backend'], 'numba' in sys.modules, 'llvmlite' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["c", "False", "False"]


@pytest.mark.parametrize("backend", ["c", "numba"])
def test_fused_kernels_refuse_what_they_do_not_cover(backend):
    with pytest.raises(ValueError, match=f"backend '{backend}' covers pure-state runs"):
        cq_core.simulate(
            cq_core.get_model("sqrt_potential"),
            sigma=1.0, n_traj=2, t_final=0.01, dt=1e-3, seed=0, backend=backend,
        )  # fmt: skip
    with pytest.raises(ValueError, match="backend must be one of auto, numpy, c, numba"):
        cq_core.simulate(
            cq_core.get_model("linear"), sigma=1.0, n_traj=2, t_final=0.01, dt=1e-3, seed=0,
            backend="cuda",
        )  # fmt: skip


def test_the_c_kernel_checks_its_arrays_before_touching_them():
    from cq_core.solver.fused.c_kernel import prepare
    from cq_core.solver.fused.codes import CODES

    model = cq_core.get_model("mass_superposition")
    name, params, table = model.compiled_form
    code = CODES[name]
    kernel = 0.02 * model.noise_shape
    arrays = dict(
        Z=np.repeat(model.z0[None, :], 3, axis=0), populations=np.full((3, 2), 0.5),
        phases=np.zeros((3, 2)), dt=1e-4, saved_steps=np.array([0, 2]),
        classical_out=np.zeros((3, 2, 6)), psi_out=np.zeros((3, 2, 2), complex),
        status=np.zeros(3, np.int8), status_step=np.full(3, -1),
    )  # fmt: skip
    bind = lambda **change: prepare(  # noqa: E731
        code, params, table, kernel, np.linalg.pinv(kernel), np.array([3, 4, 5]),
        **{**arrays, **change},
    )  # fmt: skip
    with pytest.raises(ValueError, match="psi_out has shape"):
        bind(psi_out=np.zeros((3, 3, 2), complex))
    with pytest.raises(TypeError, match="status must be a int8 array"):
        bind(status=np.zeros(3, np.int64))
    with pytest.raises(ValueError, match="phases must be C-contiguous"):
        bind(phases=np.zeros((2, 3)).T)
    advance = bind()
    with pytest.raises(ValueError, match="dW has shape"):
        advance(0, 3, np.zeros((3, 2, 2)), 0)
    with pytest.raises(ValueError, match="rows 2…3 are not rows"):
        advance(2, 4, np.zeros((2, 2, 3)), 0)
    advance(0, 3, np.zeros((3, 2, 3)), 0)  # two steps without noise: the test mass moves
    assert not np.array_equal(arrays["Z"][0], model.z0)
    np.testing.assert_array_equal(arrays["classical_out"][:, 1], arrays["Z"])


@pytest.mark.parametrize("backend", FUSED)
def test_blocks_and_reruns_are_bit_identical(backend):
    model = cq_core.get_model("mass_superposition")
    run = dict(sigma=0.02, t_final=0.01, dt=1e-4, seed=3, backend=backend)
    big = cq_core.simulate(model, n_traj=90, **run)
    assert big.identical(cq_core.simulate(model, n_traj=90, **run))
    block = cq_core.simulate(model, n_traj=20, first_trajectory=70, **run)
    np.testing.assert_array_equal(block.psi, big.psi.isel(trajectory=slice(70, 90)))


@pytest.mark.parametrize("backend", ["c", "numba", "numpy"])
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


@pytest.mark.parametrize("backend", FUSED)
def test_empty_levels_stay_empty_and_the_others_evolve(backend):
    psi0 = np.zeros(16)
    psi0[[0, 5, 15]] = [0.6, 0.0, 0.8]  # level 5 given zero weight explicitly
    model = cq_core.get_model("qubit_lattice", n=4, psi0=psi0)
    ds = cq_core.simulate(
        model, sigma=1.0, n_traj=5, t_final=0.05, dt=1e-3, seed=2, save_every=5, backend=backend
    )
    psi = ds.psi.values
    empty = np.ones(16, dtype=bool)
    empty[[0, 15]] = False
    assert np.all(psi[:, :, empty] == 0)
    assert np.all(np.abs(psi[:, -1, 0]) != 0.6)  # the occupied levels moved
    np.testing.assert_allclose(np.abs(psi[:, :, ~empty]) ** 2 @ np.ones(2), 1.0, atol=1e-13)
