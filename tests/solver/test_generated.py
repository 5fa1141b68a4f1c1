"""The kernel generated from a model's SymPy description: the same numbers as the NumPy
reference path, the same keyed noise, built once and cached across processes."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from symbolic_models import BUILDERS, builtin, oscillator, two_qubits

import cq_core
from cq_core.solver.fused import build

pytestmark = pytest.mark.skipif(build.compiler() is None, reason="no C compiler")

HERE = Path(__file__).parent


RUNS = [
    # (model, mode, extra settings)
    (lambda: builtin("linear", omega=3.0), "pure", {}),
    (lambda: builtin("linear", omega=3.0), "density", {"excess": 0.5}),
    (lambda: builtin("linear"), "density", {}),
    (lambda: builtin("linear"), "density", {"excess": 1.0}),
    (lambda: builtin("linear", phi=0.5), "pure", {}),
    (lambda: builtin("sqrt_potential", p0=-3.0), "pure", {"sigma": 0.5}),  # exits q > 0
    (lambda: builtin("mass_superposition"), "pure", {"sigma": 0.02, "dt": 1e-4}),
    (lambda: builtin("qubit_lattice", n=2), "density", {}),
    (oscillator, "pure", {}),
    (oscillator, "density", {"excess": 0.3}),
    (oscillator, "mean_field", {}),
    (two_qubits, "pure", {}),  # d = 4, complex entries
    (two_qubits, "density", {"excess": 0.4}),
    (two_qubits, "mean_field", {}),
    (lambda: builtin("mass_superposition"), "mean_field", {"sigma": 0.02, "dt": 1e-4}),
    (lambda: builtin("sqrt_potential", p0=-3.0), "mean_field", {}),  # exits q > 0
]


@pytest.mark.parametrize(("build_model", "mode", "extra"), RUNS)
def test_the_generated_kernel_agrees_with_numpy_to_rounding(build_model, mode, extra):
    model = build_model()
    run = dict(sigma=1.0, n_traj=40, t_final=0.6, dt=2e-3, seed=3, save_every=7, mode=mode)
    run.update(extra)
    run["t_final"] = 300 * run["dt"]
    fast = cq_core.simulate(model, backend="generated", **run)
    reference = cq_core.simulate(model, backend="numpy", **run)
    assert fast.attrs["backend"] == "generated"
    state = "rho" if mode == "density" else "psi"
    np.testing.assert_allclose(fast.classical, reference.classical, rtol=0, atol=1e-11)
    np.testing.assert_allclose(fast[state], reference[state], rtol=0, atol=1e-11)
    np.testing.assert_array_equal(fast.status, reference.status)
    np.testing.assert_array_equal(fast.status_time, reference.status_time)
    if model.name == "sqrt_potential":  # frozen and flagged, never NaN
        assert (fast.status == cq_core.STATUS_CODES["left_domain"]).sum() > 5 - 4 * (
            mode == "mean_field"
        )
        assert np.isfinite(fast.classical).all()
    if mode == "density":
        trace = np.einsum("ntaa->nt", fast.rho.values).real
        np.testing.assert_allclose(trace, 1.0, atol=1e-13)
        assert np.linalg.eigvalsh(fast.rho.values).min() > -1e-13
    else:
        np.testing.assert_allclose(np.linalg.norm(fast.psi.values, axis=-1), 1.0, atol=1e-13)


def test_blocks_of_the_generated_kernel_are_bit_identical_to_one_run():
    model = oscillator()
    run = dict(sigma=1.0, t_final=0.2, dt=1e-3, seed=8, save_every=9, backend="generated")
    whole = cq_core.simulate(model, n_traj=150, **run)  # three groups of 64
    block = cq_core.simulate(model, n_traj=70, first_trajectory=61, **run)
    np.testing.assert_array_equal(block.psi, whole.psi.isel(trajectory=slice(61, 131)))
    np.testing.assert_array_equal(block.classical, whole.classical.isel(trajectory=slice(61, 131)))


def test_auto_picks_the_generated_kernel_where_no_hand_written_one_covers_the_run():
    model = builtin("linear", omega=3.0)
    ds = cq_core.simulate(model, sigma=1.0, n_traj=2, t_final=0.01, dt=1e-3, seed=0)
    assert ds.attrs["backend"] == "generated"
    # a model given only as functions (no symbolic description) runs on NumPy
    plain = dataclasses.replace(cq_core.get_model("linear", omega=3.0), symbolic=None)
    ds = cq_core.simulate(plain, sigma=1.0, n_traj=2, t_final=0.01, dt=1e-3, seed=0)
    assert ds.attrs["backend"] == "numpy"


@pytest.mark.parametrize(
    ("settings", "why"),
    [
        ({"mode": "density", "method": "euler"}, "method 'euler'"),
        ({"method": "euler"}, "method 'euler'"),
    ],
)
def test_backend_generated_refuses_what_it_does_not_cover(settings, why):
    model = builtin("linear", omega=3.0)
    with pytest.raises(ValueError, match=f"backend 'generated' covers .*{why}"):
        cq_core.simulate(
            model, sigma=1.0, n_traj=2, t_final=0.01, dt=1e-3, seed=0, backend="generated",
            **settings,
        )  # fmt: skip


_CHILD = textwrap.dedent(
    """
    import json, sys
    import cq_core
    model = cq_core.get_model("linear", omega=3.0)  # its SymPy description: built if needed
    cq_core.simulate(model, sigma=1.0, n_traj=2, t_final=0.01, dt=1e-3, seed=0)
    print(json.dumps({"sympy": "sympy" in sys.modules}))
    """
)


@pytest.mark.slow
def test_the_kernel_is_built_once_and_loaded_from_the_cache_without_sympy(tmp_path):
    """First process: generate and compile; second: load only (and never import SymPy)."""
    env = {**os.environ, "CQ_KERNEL_CACHE": str(tmp_path)}
    code = _CHILD
    runs = []
    for _ in range(2):
        done = subprocess.run(
            [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
        )
        runs.append(json.loads(done.stdout.strip().splitlines()[-1]))
    assert runs[0]["sympy"] and not runs[1]["sympy"]
    assert len(list(tmp_path.glob("*.so"))) == 1


def test_a_changed_model_gets_a_new_kernel():
    run = dict(sigma=1.0, n_traj=3, t_final=0.01, dt=1e-3, seed=0, backend="generated")
    three, two = builtin("linear", omega=3.0), builtin("linear", omega=2.0)
    assert build._key(three, False, False) == build._key(builtin("linear", omega=3.0), False, False)
    assert build._key(three, False, False) != build._key(two, False, False)
    assert build._key(three, False, False) != build._key(three, False, True)
    a, b = cq_core.simulate(three, **run), cq_core.simulate(two, **run)
    assert not np.array_equal(a.psi, b.psi)


def test_every_builtin_has_a_symbolic_twin():
    """The helper's SymbolicModels are the built-ins: their flows and L_j at z0 agree."""
    cases = [("linear", {"omega": 3.0}), ("sqrt_potential", {})]
    cases += [("mass_superposition", {"eps": 0.1}), ("qubit_lattice", {"n": 2})]
    for name, params in cases:
        model = builtin(name, **params)
        symbolic = model.symbolic
        point = dict(zip(symbolic.coords, model.z0 + 0.3, strict=True))
        Z = (model.z0 + 0.3)[None, :]
        flow = [float(f.subs(point)) for f in symbolic.flow()]
        np.testing.assert_allclose(flow, model.hamiltonian_flow(Z)[0], atol=1e-12)
        L = [np.array(symbolic.backreaction()[j].subs(point), dtype=complex) for j in model.coupled]
        ops = np.asarray(model.backreaction_operators(Z))[0]
        if model.diagonal:
            L = [np.diag(x) for x in L]
        np.testing.assert_allclose(np.array(L), ops, atol=1e-12)
    assert set(BUILDERS) == set(cq_core.available_models())
    assert dataclasses.is_dataclass(model)


def test_a_kernel_that_cannot_be_built_is_a_clear_error_or_a_warning(monkeypatch, tmp_path):
    """A compiler that fails: backend 'generated' refuses before any work; auto warns and runs
    the NumPy path."""
    monkeypatch.setenv("CQ_KERNEL_CACHE", str(tmp_path))
    monkeypatch.setattr(build, "_LOADED", {})
    model = builtin("linear", omega=1.5)
    broken = tmp_path / "cc"
    broken.write_text("#!/bin/sh\necho 'cc: broken' >&2\nexit 1\n")
    broken.chmod(0o755)
    monkeypatch.setenv("CC", str(broken))
    run = dict(sigma=1.0, n_traj=2, t_final=0.01, dt=1e-3, seed=0)
    with pytest.raises(ValueError, match="(?s)backend 'generated' cannot build .*cc: broken"):
        cq_core.simulate(model, backend="generated", **run)
    with pytest.warns(RuntimeWarning, match="could not be built"):
        ds = cq_core.simulate(model, **run)
    assert ds.attrs["backend"] == "numpy"


KEYED_RUNS = [
    (lambda: builtin("linear", omega=3.0), "pure", {}),
    (lambda: builtin("sqrt_potential", p0=-3.0), "pure", {"sigma": 0.5}),  # exits q > 0
    (lambda: builtin("mass_superposition"), "pure", {"sigma": 0.02, "dt": 1e-4}),  # m = 3
    (oscillator, "density", {"excess": 0.3}),
]


@pytest.mark.skipif(build.npyrandom() is None, reason="NumPy ships no libnpyrandom.a")
@pytest.mark.parametrize(("build_model", "mode", "extra"), KEYED_RUNS)
def test_the_noise_the_kernel_draws_is_the_keyed_noise_bit_for_bit(build_model, mode, extra):
    from cq_core.solver.fused import generated
    from cq_core.solver.integrate import integrate
    from cq_core.solver.noise import BrownianIncrements
    from cq_core.solver.settings import check_run

    model = build_model()
    assert generated.draws_keyed_noise(model, mode)
    run = dict(sigma=1.0, n_traj=150, t_final=0.3, dt=1e-3, seed=4, save_every=7)
    run.update(base_seed=2, first_trajectory=17, mode=mode, backend="generated", **extra)
    settings = check_run(model, **run)
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
    if model.name == "sqrt_potential":
        assert (drawn_in_kernel.status == 1).any()  # frozen trajectories draw no more


_FUNCTIONS_HEADER = """
/* the sizes and masks generic_step.c needs, for its functions alone */
#define NC 1
#define D 1
#define M 1
#define NLC 0
#define DIAG 1
#define DENSITY 0
static const unsigned char NZ_P[1] = {0};
"""


def test_the_kernel_s_own_exp_sin_and_cos_agree_with_numpy_s_to_an_ulp(tmp_path):
    """cq_exp and cq_sincos (generic_step.c), compiled as a kernel is, against NumPy's exp, sin
    and cos over their whole range: reduction near multiples of ln 2 / 128 and π/2, the
    polynomials, and the library's fallback (|x| ≥ 512, |x| ≥ 2^20, NaN, ±inf)."""
    import ctypes

    from cq_core.solver.fused import codegen

    wrapper = """
    void cq_test(const double *x, double *e, double *s, double *c, long n)
    {
        for (long k = 0; k < n; k++) {
            e[k] = cq_exp(x[k]);
            cq_sincos(x[k], s + k, c + k);
        }
    }
    """
    source = "\n".join(
        ["#include <math.h>", "#include <stdint.h>", _FUNCTIONS_HEADER, codegen.exp_table()]
        + [(HERE.parent.parent / "cq_core/solver/fused/generic_step.c").read_text(), wrapper]
    )
    library = build._compile(source, tmp_path)
    test = ctypes.CDLL(str(library)).cq_test
    rng = np.random.default_rng(5)
    x = np.concatenate(
        [
            rng.uniform(-700, 700, 20_000),
            rng.uniform(-1, 1, 20_000) * 10.0 ** rng.integers(-12, 3, 20_000),
            np.arange(-2000, 2000) * (np.pi / 2) + rng.uniform(-1e-9, 1e-9, 4000),
            np.arange(-2000, 2000) * (np.log(2) / 128),
            [0.0, -0.0, 511.9, -511.9, 600.0, -800.0, 2.0**21, -(2.0**30), np.inf, -np.inf],
        ]
    )
    e, s, c = (np.empty_like(x) for _ in range(3))
    pointer = ctypes.POINTER(ctypes.c_double)
    test(*(a.ctypes.data_as(pointer) for a in (x, e, s, c)), ctypes.c_long(x.size))
    with np.errstate(over="ignore", invalid="ignore"):
        finite = np.abs(x) < 700
        # within 1.5 ulp (relative for exp; of 1 for sin and cos, whose values are at most 1)
        np.testing.assert_allclose(e[finite], np.exp(x[finite]), rtol=3.3e-16, atol=0)
        np.testing.assert_array_equal(e[~finite], np.exp(x[~finite]))
        np.testing.assert_allclose(s, np.sin(x), rtol=0, atol=3.3e-16)
        np.testing.assert_allclose(c, np.cos(x), rtol=0, atol=3.3e-16)
    nan = np.array([np.nan])
    test(*(a.ctypes.data_as(pointer) for a in (nan, e, s, c)), ctypes.c_long(1))
    assert np.isnan(e[0]) and np.isnan(s[0]) and np.isnan(c[0])
