"""The default compiled path — the kernel generated from the model — on the runs the retired
hand-written kernels covered: the NumPy path's numbers, bits independent of blocks and reruns,
overflows flagged, empty levels empty; ``auto`` picks it, and the retired names are refused."""

from __future__ import annotations

import dataclasses
import subprocess
import sys

import numpy as np
import pytest

import cq_core
from cq_core.solver.fused import build

pytestmark = pytest.mark.skipif(build.compiler() is None, reason="no C compiler")

COVERED = [
    ("mass_superposition", {}, 0.02, 1e-4),
    ("mass_superposition", {"phi": 5.0, "eps": 0.1, "psi0": [0.8, 0.6j]}, 0.05, 1e-4),
    ("linear", {"p0": 1.0, "psi0": [0.3, 0.7 + 0.1j]}, 1.0, 1e-3),
    ("qubit_lattice", {"n": 3, "phi0": [0.1, -0.2, 0.3]}, 1.0, 1e-4),
    # some levels empty, the others of unequal weight and phase
    ("qubit_lattice", {"n": 3, "psi0": [0.5, 0, 0.3j, 0, 0, 0.6, 0, 0.2]}, 1.0, 1e-4),
]


@pytest.mark.parametrize(("name", "params", "sigma", "dt"), COVERED)
def test_the_default_kernel_agrees_with_numpy(name, params, sigma, dt):
    model = cq_core.get_model(name, **params)
    run = dict(sigma=sigma, n_traj=40, t_final=300 * dt, dt=dt, seed=5, save_every=7)
    fast = cq_core.simulate(model, **run)
    slow = cq_core.simulate(model, backend="numpy", **run)
    assert fast.attrs["backend"] == "generated" and slow.attrs["backend"] == "numpy"
    np.testing.assert_allclose(fast.classical, slow.classical, rtol=0, atol=1e-12)
    np.testing.assert_allclose(fast.psi, slow.psi, rtol=0, atol=1e-12)
    np.testing.assert_array_equal(fast.time, slow.time)
    np.testing.assert_array_equal(fast.status, slow.status)
    assert np.max(np.abs(np.linalg.norm(fast.psi.values, axis=-1) - 1)) < 1e-12


def test_auto_picks_the_generated_kernel_else_numpy():
    """auto: the kernel generated from the model's symbolic form (every built-in carries one);
    NumPy for a model given only as functions, and for a scheme the kernel does not run."""
    run = dict(sigma=1.0, n_traj=2, t_final=0.01, dt=1e-3, seed=0)
    for model, extra in [
        (cq_core.get_model("linear"), {}),
        (cq_core.get_model("linear", omega=1.0), {}),  # non-diagonal: Kraus
        (cq_core.get_model("linear"), {"mode": "density"}),
        (cq_core.get_model("sqrt_potential"), {}),  # position-dependent noise
    ]:
        assert cq_core.simulate(model, **run, **extra).attrs["backend"] == "generated"
        functions_only = dataclasses.replace(model, symbolic=None)
        assert cq_core.simulate(functions_only, **run, **extra).attrs["backend"] == "numpy"
    euler = cq_core.simulate(cq_core.get_model("linear"), **run, method="euler")
    assert euler.attrs["backend"] == "numpy"  # no compiled kernel runs Euler-Maruyama


def test_without_a_compiler_auto_warns_and_runs_numpy(monkeypatch, tmp_path):
    monkeypatch.setenv("CQ_KERNEL_CACHE", str(tmp_path))  # nothing cached: a build is needed
    monkeypatch.setattr(build, "_LOADED", {})
    monkeypatch.setenv("PATH", str(tmp_path))  # no cc, gcc or clang
    monkeypatch.delenv("CC", raising=False)
    assert build.compiler() is None
    run = dict(sigma=1.0, n_traj=2, t_final=0.01, dt=1e-3, seed=0)
    with pytest.warns(RuntimeWarning, match=r"no C compiler found \(set \$CC\)"):
        ds = cq_core.simulate(cq_core.get_model("linear"), **run)
    assert ds.attrs["backend"] == "numpy"
    with pytest.raises(ValueError, match="backend 'generated' covers .*C compiler"):
        cq_core.simulate(cq_core.get_model("linear"), backend="generated", **run)


def test_a_default_run_imports_neither_numba_nor_sympy_once_built():
    """Loading Numba costs a process ~130 MB and SymPy ~50 MB: a cached kernel needs neither."""
    code = (
        "import sys, cq_core; "
        "ds = cq_core.simulate(cq_core.get_model('mass_superposition'), sigma=0.02, n_traj=4, "
        "t_final=1e-3, dt=1e-4, seed=0); "
        "print(ds.attrs['backend'], 'numba' in sys.modules, 'sympy' in sys.modules)"
    )
    cq_core.simulate(  # built here (cached on disk) if it was not yet
        cq_core.get_model("mass_superposition"), sigma=0.02, n_traj=1, t_final=1e-4, dt=1e-4,
        seed=0,
    )  # fmt: skip
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["generated", "False", "False"]


@pytest.mark.parametrize("backend", ["c", "numba", "cuda"])
def test_retired_and_unknown_backends_are_refused_naming_the_allowed_ones(backend):
    with pytest.raises(ValueError, match="backend must be one of auto, generated, numpy"):
        cq_core.simulate(
            cq_core.get_model("linear"), sigma=1.0, n_traj=2, t_final=0.01, dt=1e-3, seed=0,
            backend=backend,
        )  # fmt: skip


def test_blocks_and_reruns_are_bit_identical():
    model = cq_core.get_model("mass_superposition")
    run = dict(sigma=0.02, t_final=0.01, dt=1e-4, seed=3)
    big = cq_core.simulate(model, n_traj=90, **run)
    assert big.attrs["backend"] == "generated"
    assert big.identical(cq_core.simulate(model, n_traj=90, **run))
    block = cq_core.simulate(model, n_traj=20, first_trajectory=70, **run)
    np.testing.assert_array_equal(block.psi, big.psi.isel(trajectory=slice(70, 90)))
    np.testing.assert_array_equal(block.classical, big.classical.isel(trajectory=slice(70, 90)))


@pytest.mark.parametrize("backend", ["generated", "numpy"])
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


@pytest.mark.parametrize("n", [4, 6])  # d = 16 level by level, d = 64 on the table kernel
def test_empty_levels_stay_empty_and_the_others_evolve(n):
    d = 2**n
    psi0 = np.zeros(d)
    psi0[[0, 5, d - 1]] = [0.6, 0.0, 0.8]  # level 5 given zero weight explicitly
    model = cq_core.get_model("qubit_lattice", n=n, psi0=psi0)
    ds = cq_core.simulate(model, sigma=1.0, n_traj=5, t_final=0.05, dt=1e-3, seed=2, save_every=5)
    assert ds.attrs["backend"] == "generated"
    psi = ds.psi.values
    empty = np.ones(d, dtype=bool)
    empty[[0, d - 1]] = False
    assert np.all(psi[:, :, empty] == 0)
    assert np.all(np.abs(psi[:, -1, 0]) != 0.6)  # the occupied levels moved
    np.testing.assert_allclose(np.abs(psi[:, :, ~empty]) ** 2 @ np.ones(2), 1.0, atol=1e-13)
