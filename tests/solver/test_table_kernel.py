"""The table kernel of large diagonal models (cq_core/solver/fused/codegen_tables.py,
table_step.c): the NumPy path's numbers to rounding, frozen and flagged domain exits, the
keyed noise bit for bit, and a 4096-level lattice built without a 4096-entry SymPy matrix."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import sympy

import cq_core
from cq_core.solver.fused import build, generated

pytestmark = pytest.mark.skipif(build.compiler() is None, reason="no C compiler")

LEVELS = 40  # > generated.TABLE_MIN_LEVELS: the table kernel


def ladder(levels: int = LEVELS):
    """A user model with many levels, position-dependent noise and a domain: a particle in
    ``H = p²/2 + √q Σ_a c_a |a⟩⟨a| + Σ_a e_a |a⟩⟨a|`` on q > 0, noise 1/√q on p."""
    q, p, lam = sympy.symbols("q p lam")
    rng = np.random.default_rng(5)
    slopes, offsets = rng.uniform(-1, 1, levels), rng.uniform(-2, 2, levels)
    H_I = sympy.diag(
        *[lam * float(c) * sympy.sqrt(q) + float(e) for c, e in zip(slopes, offsets, strict=True)]
    )
    psi0 = rng.normal(size=levels) + 1j * rng.normal(size=levels)
    psi0[::3] = 0.0  # levels that stay empty
    return cq_core.from_hamiltonian(
        name="ladder", positions=[q], momenta=[p], H_C=p**2 / 2, H_I=H_I,
        noise={p: 1 / sympy.sqrt(q)}, z0={q: 0.6, p: -2.0}, psi0=psi0, params={lam: 1.5},
        domain=q > 0,
    )  # fmt: skip


def _agree(model, **run):
    fast = cq_core.simulate(model, backend="generated", **run)
    reference = cq_core.simulate(model, backend="numpy", **run)
    assert fast.attrs["backend"] == "generated"
    np.testing.assert_allclose(fast.classical, reference.classical, rtol=0, atol=1e-11)
    np.testing.assert_allclose(fast.psi, reference.psi, rtol=0, atol=1e-11)
    np.testing.assert_array_equal(fast.status, reference.status)
    np.testing.assert_array_equal(fast.status_time, reference.status_time)
    np.testing.assert_allclose(np.linalg.norm(fast.psi.values, axis=-1), 1.0, atol=1e-13)
    return fast


def test_large_models_take_the_table_kernel_in_pure_mode_only():
    lattice = cq_core.get_model("qubit_lattice", n=6)
    assert generated.uses_tables(lattice, "pure")
    assert not generated.uses_tables(cq_core.get_model("qubit_lattice", n=5), "pure")
    assert not generated.covers(lattice, "exponential", "density")
    with pytest.raises(ValueError, match="backend 'generated' covers"):
        cq_core.simulate(
            lattice, sigma=1.0, n_traj=1, t_final=0.01, dt=1e-3, seed=0, mode="density",
            backend="generated",
        )  # fmt: skip


@pytest.mark.parametrize("n", [3, 10])
def test_the_lattice_agrees_with_numpy_to_rounding(n, monkeypatch):
    monkeypatch.setattr(generated, "TABLE_MIN_LEVELS", 4)  # n = 3 (d = 8) on the table kernel
    rng = np.random.default_rng(n)
    psi0 = rng.normal(size=2**n) + 1j * rng.normal(size=2**n)
    psi0[rng.random(2**n) < 0.3] = 0.0
    model = cq_core.get_model(
        "qubit_lattice", n=n, phi0=rng.normal(size=n), pi0=rng.normal(size=n), psi0=psi0,
        gamma=0.7,
    )  # fmt: skip
    assert generated.uses_tables(model, "pure")
    ds = _agree(model, sigma=0.8, n_traj=4, t_final=60 * 1e-3, dt=1e-3, seed=2, save_every=7)
    empty = np.abs(model.psi0) == 0
    assert (ds.psi.values[..., empty] == 0).all()  # empty levels stay empty
    assert (np.abs(ds.psi.values[:, -1, ~empty]) > 0).all()


def test_a_user_model_with_a_domain_agrees_and_its_exits_are_frozen_and_flagged():
    model = ladder()
    assert generated.uses_tables(model, "pure")
    ds = _agree(model, sigma=0.7, n_traj=30, t_final=300 * 2e-3, dt=2e-3, seed=1, save_every=9)
    left = ds.status.values == cq_core.STATUS_CODES["left_domain"]
    assert 3 < left.sum() < 30  # some leave q > 0, some stay
    assert np.isfinite(ds.classical).all() and (ds.classical.values[..., 0] > 0).all()


@pytest.mark.skipif(build.npyrandom() is None, reason="NumPy ships no libnpyrandom.a")
@pytest.mark.parametrize("build_model", [lambda: cq_core.get_model("qubit_lattice", n=6), ladder])
def test_the_keyed_noise_is_drawn_bit_for_bit_and_blocks_are_identical(build_model):
    from cq_core.solver.integrate import integrate
    from cq_core.solver.noise import BrownianIncrements
    from cq_core.solver.settings import check_run

    model = build_model()
    assert generated.draws_keyed_noise(model, "pure")
    run = dict(sigma=0.7, t_final=0.3, dt=1e-3, seed=4, save_every=7, backend="generated")
    settings = check_run(model, n_traj=150, base_seed=2, first_trajectory=17, **run)
    drawn_in_kernel = integrate(model, settings)
    keyed = BrownianIncrements(
        base_seed=2, seed=4, first_trajectory=17, n_traj=150, n_noises=model.n_noises,
        dt=settings.dt,
    )  # fmt: skip
    read_from_numpy = integrate(model, settings, increments=keyed.draw)
    for field in ("classical", "quantum", "status", "status_step"):
        np.testing.assert_array_equal(
            getattr(drawn_in_kernel, field), getattr(read_from_numpy, field), err_msg=field
        )
    whole = cq_core.simulate(model, n_traj=150, **run)  # three groups of 64
    block = cq_core.simulate(model, n_traj=70, first_trajectory=61, **run)
    np.testing.assert_array_equal(block.psi, whole.psi.isel(trajectory=slice(61, 131)))
    np.testing.assert_array_equal(block.classical, whole.classical.isel(trajectory=slice(61, 131)))


_CHILD = textwrap.dedent(
    """
    import json, sys, time
    import cq_core
    from cq_core.solver.fused import generated
    start = time.perf_counter()
    model = cq_core.get_model("qubit_lattice", n=12)
    generated.load(model, "pure")
    ds = cq_core.simulate(model, sigma=1.0, n_traj=2, t_final=2e-5, dt=5e-6, seed=0)
    print(json.dumps({"sympy": "sympy" in sys.modules, "backend": ds.attrs["backend"],
                      "wall_s": time.perf_counter() - start}))
    """
)


@pytest.mark.slow
def test_a_4096_level_lattice_builds_once_and_loads_without_sympy(tmp_path):
    env = {**os.environ, "CQ_KERNEL_CACHE": str(tmp_path)}
    runs = []
    for _ in range(2):
        done = subprocess.run(
            [sys.executable, "-c", _CHILD], env=env, capture_output=True, text=True, check=True
        )
        runs.append(json.loads(done.stdout.strip().splitlines()[-1]))
    assert [r["backend"] for r in runs] == ["generated", "generated"]
    assert runs[0]["sympy"] and not runs[1]["sympy"]
    assert len(list(tmp_path.glob("*.so"))) == 1
