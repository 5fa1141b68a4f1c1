"""Observed convergence orders, norm and positivity of the quantum integrators (docs/physics.md).

Strong order
    Every step size runs on the same Brownian paths: fine increments are drawn once from a
    fixed generator and summed in consecutive pairs, fours, … for the coarser grids. The
    state at ``t_final`` is compared with a reference computed on the finest grid by an
    independent implementation written in this file from the equations of docs/physics.md (classical
    Euler–Maruyama plus the matrix-exponential step ``exp(−iH dt − ΣK² dt + ΣK dY)``, Z frozen
    over the step). It shares no code with ``cq_core.solver.schemes`` or ``_Operators``, so an
    integrator that converges to the wrong equation (a wrong Itô correction, a wrong factor
    in K) shows an error that does not go down, and the order assertions fail.
Weak order
    ``E[⟨σx⟩_T]`` and ``E[⟨σz⟩_T]`` for ``linear`` with ``omega=3`` against the reference on
    the same paths; the per-trajectory differences have a small variance, so the bias is
    resolved (checked against its standard error) before the order is fitted.
Norm and positivity
    The default integrators keep ‖ψ‖ = 1 and ρ Hermitian, trace 1, positive on every stored
    step; Euler does not (which shows that the checks can fail).

``pytest tests/test_integrators.py -q -s`` prints the table of measured orders quoted in
``docs/physics.md``.
"""

from __future__ import annotations

import dataclasses
import functools

import numpy as np
import pytest

import cq_core

REFERENCE_STEPS = 4096
"""Steps of the reference solution for the strong-order study (16× the finest tested grid)."""
STRONG_TRAJECTORIES = 200
WEAK_TRAJECTORIES = 6000
WEAK_REFERENCE_STEPS = 1024
NORM_TOL = 1e-12

CASES = {
    # key: (model name, model parameters, sigma, t_final)
    "linear": ("linear", {}, 1.0, 0.5),
    "linear_omega3": ("linear", {"omega": 3.0, "phi": 1.0}, 1.0, 0.5),
    # off the symmetry axis |F_L| ≠ |F_R|, so Σ K_i² is not a multiple of 1 and the Itô term
    # −Σ K_i² dt changes the state (on the axis, and in `linear`, renormalising removes it)
    "mass_superposition": ("mass_superposition", {"r0": (0.4, -0.5, 0.0)}, 0.02, 0.15),
}
LABELS = {
    "linear": "linear (omega=0)",
    "linear_omega3": "linear (omega=3, phi=1)",
    "mass_superposition": "mass_superposition (r0=(0.4,−0.5,0))",
}

ORDER_HALF = (0.4, 0.8)
"""Accepted band of fitted slopes for a strong order-½ scheme (Euler–Maruyama); for the
classical part only the lower end applies (its error mixes order-½ and order-1 terms)."""
ORDER_ONE = (0.8, 1.3)
"""Accepted band of fitted slopes for an order-1 scheme."""
COARSE = (8, 16, 32, 64, 128, 256)
STRONG_STUDIES = [
    # (case, method, backend, step counts, accepted band of the fitted strong order)
    ("linear", "exponential", "numpy", COARSE, ORDER_ONE),
    ("linear", "exponential", "generated", COARSE, ORDER_ONE),
    ("linear", "kraus", "numpy", COARSE, ORDER_ONE),
    ("linear", "euler", "numpy", COARSE, ORDER_HALF),
    ("linear_omega3", "kraus", "numpy", COARSE, ORDER_ONE),
    ("linear_omega3", "euler", "numpy", COARSE, ORDER_HALF),
    ("mass_superposition", "exponential", "numpy", COARSE, ORDER_ONE),
    ("mass_superposition", "exponential", "generated", COARSE, ORDER_ONE),
    ("mass_superposition", "kraus", "numpy", COARSE, ORDER_ONE),
    # Euler–Maruyama runs away on some paths below 32 steps (K up to 4, dt ≥ 0.009)
    ("mass_superposition", "euler", "numpy", COARSE[2:], ORDER_HALF),
]


def _study_id(study) -> str:
    values = study.values if hasattr(study, "values") else study
    key, method, backend = values[:3]
    return f"{key}-{method}-{backend}"


# ---------------------------------------------------------------- helpers


def _model(key: str) -> cq_core.Model:
    name, params, _, _ = CASES[key]
    return cq_core.get_model(name, **params)


def _full_matrices(model: cq_core.Model) -> cq_core.Model:
    """The same model with its diagonal operators written as full d×d matrices.

    What a user model with ``diagonal=False`` and commuting operators gives; the Kraus step
    on a diagonal model must agree with it (``test_kraus_on_a_diagonal_model_...``).
    """
    if not model.diagonal:
        return model
    eye = np.eye(model.dim)

    def interaction_hamiltonian(Z):
        return np.asarray(model.interaction_hamiltonian(Z))[..., :, None] * eye

    def backreaction_operators(Z):
        return np.asarray(model.backreaction_operators(Z))[..., :, None] * eye

    return dataclasses.replace(
        model,
        interaction_hamiltonian=interaction_hamiltonian,
        backreaction_operators=backreaction_operators,
        diagonal=False,
    )


def _coarsen(dW_fine: np.ndarray, n_steps: int) -> np.ndarray:
    """Increments of the same Brownian path on a grid of ``n_steps`` steps."""
    factor, rest = divmod(dW_fine.shape[0], n_steps)
    assert rest == 0
    return dW_fine.reshape(n_steps, factor, *dW_fine.shape[1:]).sum(axis=1)


def _feed(dW: np.ndarray):
    """An ``increments(n_steps)`` callable that hands out ``dW`` in order, chunk by chunk."""
    position = 0

    def increments(n_steps: int) -> np.ndarray:
        nonlocal position
        chunk = dW[position : position + n_steps]
        assert chunk.shape[0] == n_steps, "integrate asked for more steps than were drawn"
        position += n_steps
        return chunk

    return increments


def _integrate(model, sigma, t_final, dW, method, mode="pure", excess=0.0, backend="auto"):
    """Run ``cq_core.integrate`` on the given increments; return the final (Z, state)."""
    n_steps, n_traj, _ = dW.shape
    settings = cq_core.check_run(
        model,
        sigma=sigma,
        n_traj=n_traj,
        t_final=t_final,
        dt=t_final / n_steps,
        seed=0,
        method=method,
        mode=mode,
        excess=excess,
        save_every=n_steps,
        backend=backend,
    )
    assert settings.backend == backend or backend == "auto"
    result = cq_core.integrate(model, settings, _feed(dW))
    flagged = np.flatnonzero(result.status != cq_core.STATUS_CODES["ok"])
    assert flagged.size == 0, f"{method}, {n_steps} steps: trajectories {flagged} flagged"
    return result.classical[:, -1], result.quantum[:, -1]


def _matmul_2x2(A: np.ndarray, B: np.ndarray) -> np.ndarray:
    """``A @ B`` for stacks of 2×2 matrices (faster than ``matmul`` on tiny matrices)."""
    return A[..., :, :1] * B[..., :1, :] + A[..., :, 1:] * B[..., 1:, :]


def _apply_2x2(A: np.ndarray, v: np.ndarray) -> np.ndarray:
    """``A @ v`` for stacks of 2×2 matrices and 2-vectors."""
    return A[..., :, 0] * v[..., None, 0] + A[..., :, 1] * v[..., None, 1]


def _expm_2x2(G: np.ndarray) -> np.ndarray:
    """exp(G) for a stack of complex 2×2 matrices.

    Closed form: G = a·1 + B with tr B = 0, so B² = s²·1 and
    exp(G) = e^a (cosh s · 1 + sinh s / s · B).
    """
    a = 0.5 * (G[:, 0, 0] + G[:, 1, 1])
    B = G - a[:, None, None] * np.eye(2)
    s = np.sqrt(B[:, 0, 0] ** 2 + B[:, 0, 1] * B[:, 1, 0] + 0j)
    plus, minus = np.exp(a + s), np.exp(a - s)
    small = np.abs(s) < 1e-6
    sinh_over_s = np.where(
        small, np.exp(a) * (1.0 + s**2 / 6.0), (plus - minus) / np.where(small, 1.0, 2.0 * s)
    )
    return (0.5 * (plus + minus))[:, None, None] * np.eye(2) + sinh_over_s[:, None, None] * B


def _reference(model: cq_core.Model, sigma: float, t_final: float, dW_all: np.ndarray):
    """Independent solution of the pure-state SDEs (docs/physics.md) for a qubit, constant noise.

    ``dZ = ({Z, H_C} + ⟨L⟩) dt + σ dW``;
    ``ψ ← normalise(exp(−iH dt − Σ K_i² dt + Σ K_i dY_i) ψ)``, ``K_i = ½ Σ_j σ⁺_ij L_j``,
    ``dY = dW + 2⟨K⟩ dt``, with Z frozen over the step.
    """
    n_steps, n_traj, _ = dW_all.shape
    assert model.dim == 2 and model.constant_noise
    dt = t_final / n_steps
    kernel = sigma * np.asarray(model.noise_shape)  # (n, m)
    coupled = list(model.coupled)
    pinv = np.linalg.pinv(kernel)[:, coupled]  # (m, c)
    eye = np.eye(2)

    def full(ops):
        ops = np.asarray(ops)
        return ops[..., :, None] * eye if model.diagonal else ops

    Z = np.repeat(model.z0[None, :], n_traj, axis=0)
    psi = np.repeat(model.psi0[None, :], n_traj, axis=0)
    for dW in dW_all:
        H = full(model.interaction_hamiltonian(Z))  # (N, 2, 2)
        L = full(model.backreaction_operators(Z))  # (N|1, c, 2, 2)
        ket = psi[:, None, None, :]  # ψ_b
        mean_L = np.sum(psi.conj()[:, None, :, None] * L * ket, axis=(-2, -1)).real  # (N, c)
        K = 0.5 * np.tensordot(L, pinv, axes=([1], [1]))  # (N|1, 2, 2, m)
        K = np.moveaxis(K, -1, 1)  # (N|1, m, 2, 2)
        dY = dW + 2.0 * dt * (0.5 * mean_L @ pinv.T)  # (N, m)
        drift = np.array(model.hamiltonian_flow(Z), dtype=float)
        drift[:, coupled] += mean_L
        G = -1j * dt * H - dt * np.sum(_matmul_2x2(K, K), axis=1)
        G = G + np.sum(dY[:, :, None, None] * K, axis=1)
        psi = _apply_2x2(_expm_2x2(G), psi)
        psi = psi / np.sqrt(np.sum(psi.real**2 + psi.imag**2, axis=1, keepdims=True))
        Z = Z + drift * dt + dW @ kernel.T
    return Z, psi


def _psi_distance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``min_θ ‖a − e^{iθ} b‖`` per trajectory (a global phase is not physical)."""
    overlap = np.abs(np.sum(a.conj() * b, axis=1))
    squared = np.sum(np.abs(a) ** 2, axis=1) + np.sum(np.abs(b) ** 2, axis=1) - 2.0 * overlap
    return np.sqrt(np.maximum(squared, 0.0))


def _slope(h, err, weights=None) -> float:
    return float(np.polyfit(np.log(h), np.log(err), 1, w=weights)[0])


@functools.cache
def _strong_reference(key: str):
    """Fine Brownian increments of the case and the reference solution on them."""
    _, _, sigma, t_final = CASES[key]
    model = _model(key)
    rng = np.random.default_rng(20240611)
    dW = rng.standard_normal((REFERENCE_STEPS, STRONG_TRAJECTORIES, model.n_noises))
    dW *= np.sqrt(t_final / REFERENCE_STEPS)
    Z_ref, psi_ref = _reference(model, sigma, t_final, dW)
    return dW, Z_ref, psi_ref


def measure_strong(key: str, method: str, steps, backend: str = "auto") -> dict:
    """Strong errors E‖Z − Z_ref‖ and E[dist(ψ, ψ_ref)] at t_final and their fitted slopes."""
    _, _, sigma, t_final = CASES[key]
    model = _model(key)
    if method == "kraus":
        model = _full_matrices(model)
    dW, Z_ref, psi_ref = _strong_reference(key)
    err_Z, err_psi = [], []
    for n_steps in steps:
        Z, psi = _integrate(model, sigma, t_final, _coarsen(dW, n_steps), method, backend=backend)
        err_Z.append(np.linalg.norm(Z - Z_ref, axis=1).mean())
        err_psi.append(_psi_distance(psi, psi_ref).mean())
    h = t_final / np.asarray(steps)
    return {
        "h": h,
        "err_Z": np.array(err_Z),
        "err_psi": np.array(err_psi),
        "order_Z": _slope(h, err_Z),
        "order_psi": _slope(h, err_psi),
    }


@pytest.fixture(scope="module")
def order_table():
    """Collects the measured orders; prints them as a Markdown table after the module."""
    rows: list[str] = []
    yield rows
    print("\n\n| kind | model | method | dt range | observable | fitted order |")
    print("| --- | --- | --- | --- | --- | --- |")
    for row in rows:
        print(row)


# ---------------------------------------------------------------- strong order


@pytest.mark.parametrize(
    "key, method, backend, steps, band", STRONG_STUDIES, ids=[_study_id(s) for s in STRONG_STUDIES]
)
def test_strong_order(key, method, backend, steps, band, order_table):
    result = measure_strong(key, method, steps, backend)
    h = result["h"]
    dt_range = f"{h[-1]:.2g}–{h[0]:.2g}"
    for part in ("Z", "psi"):
        order_table.append(
            f"| strong | {LABELS[key]} | {method} ({backend}) | {dt_range} | {part} | "
            f"{result['order_' + part]:.2f} |"
        )
    bands = {"psi": band, "Z": (band[0], ORDER_ONE[1])}  # Z may pick up order-1 terms
    for part, (lo, hi) in bands.items():
        order = result["order_" + part]
        errors = result["err_" + part]
        assert lo <= order <= hi, (
            f"{method} on {key}: strong order of {part} is {order:.2f}, outside [{lo}, {hi}]; "
            f"errors {errors} at dt {h}"
        )
        # the error must also go down between the coarsest and the finest grid
        assert errors[-1] < 0.5 * errors[0]


def test_reference_agrees_with_kraus_on_the_finest_grid():
    """The reference and cq_core's Kraus step are two schemes for the same SDE."""
    key = "linear_omega3"
    _, _, sigma, t_final = CASES[key]
    dW, Z_ref, psi_ref = _strong_reference(key)
    errors = {}
    for n_steps in (COARSE[-1], REFERENCE_STEPS):
        Z, psi = _integrate(_model(key), sigma, t_final, _coarsen(dW, n_steps), "kraus")
        errors[n_steps] = (
            np.linalg.norm(Z - Z_ref, axis=1).mean(),
            _psi_distance(psi, psi_ref).mean(),
        )
    # at the same step the two schemes differ far less than either does from a 16× coarser grid
    for part in (0, 1):
        assert errors[REFERENCE_STEPS][part] < 0.1 * errors[COARSE[-1]][part]


# ---------------------------------------------------------------- weak order

WEAK_MODEL = {"omega": 3.0, "phi": 1.0, "psi0": [0.8, 0.6j]}
WEAK_T = 0.5
WEAK_STUDIES = [("kraus", (8, 16, 32, 64)), ("euler", (16, 32, 64))]
"""Euler's unnormalised ψ can run away (‖ψ‖ feeds ⟨K⟩); at 8 steps some paths do on other
seeds, so Euler starts at 16."""
SIGMA_X = np.array([[0.0, 1.0], [1.0, 0.0]])
SIGMA_Z = np.diag([1.0, -1.0])


def _expectations(psi: np.ndarray) -> dict[str, np.ndarray]:
    """⟨σx⟩, ⟨σz⟩ per trajectory (ψ normalised first: Euler's norm drifts)."""
    norm2 = np.sum(np.abs(psi) ** 2, axis=1)
    return {
        name: np.einsum("na,ab,nb->n", psi.conj(), op, psi).real / norm2
        for name, op in (("sx", SIGMA_X), ("sz", SIGMA_Z))
    }


@functools.cache
def _weak_reference():
    model = cq_core.get_model("linear", **WEAK_MODEL)
    rng = np.random.default_rng(8)
    dW = rng.standard_normal((WEAK_REFERENCE_STEPS, WEAK_TRAJECTORIES, 1))
    dW *= np.sqrt(WEAK_T / WEAK_REFERENCE_STEPS)
    _, psi = _reference(model, 1.0, WEAK_T, dW)
    return dW, _expectations(psi)


@pytest.mark.parametrize("method, steps", WEAK_STUDIES, ids=[m for m, _ in WEAK_STUDIES])
def test_weak_order(method, steps, order_table):
    model = cq_core.get_model("linear", **WEAK_MODEL)
    dW, reference = _weak_reference()
    bias = {name: [] for name in reference}
    stderr = {name: [] for name in reference}
    for n_steps in steps:
        _, psi = _integrate(model, 1.0, WEAK_T, _coarsen(dW, n_steps), method)
        for name, value in _expectations(psi).items():
            difference = value - reference[name]  # coupled paths: small variance
            bias[name].append(difference.mean())
            stderr[name].append(difference.std(ddof=1) / np.sqrt(len(difference)))
    h = WEAK_T / np.asarray(steps)
    for name in reference:
        b, se = np.abs(bias[name]), np.array(stderr[name])
        order = _slope(h, b, weights=b / se)
        order_table.append(
            f"| weak | linear (omega=3, phi=1, psi0=(0.8, 0.6i)) | {method} (numpy) | "
            f"{h[-1]:.2g}–{h[0]:.2g} | E⟨σ{name[1]}⟩ | {order:.2f} |"
        )
        # the bias is resolved: well above its standard error at every step size
        assert np.all(b > 3.0 * se), f"{method} {name}: bias {b} not resolved, SE {se}"
        assert b[0] > 10.0 * se[0]
        assert 0.7 <= order <= 1.6, f"{method}: weak order of E<{name}> is {order:.2f}; bias {b}"


# ---------------------------------------------------------------- norm and positivity

DEFAULT_PURE = [
    # (model, parameters, sigma, integrator chosen by method="auto")
    ("linear", {}, 1.0, "exponential"),
    ("linear", {"omega": 3.0}, 1.0, "kraus"),
    ("sqrt_potential", {}, 0.5, "exponential"),
    ("mass_superposition", {}, 0.02, "exponential"),
    ("qubit_lattice", {"n": 3}, 1.0, "exponential"),
]


@pytest.mark.parametrize(
    "name, params, sigma, expected",
    DEFAULT_PURE,
    ids=[f"{n}-{e}" for n, _, _, e in DEFAULT_PURE],
)
def test_default_pure_integrator_keeps_the_norm(name, params, sigma, expected):
    model = cq_core.get_model(name, **params)
    ds = cq_core.simulate(model, sigma=sigma, n_traj=100, t_final=0.2, dt=1e-3, seed=3)
    assert ds.attrs["method"] == expected
    assert np.all(ds.status.values == 0)
    norm = np.linalg.norm(ds.psi.values, axis=-1)  # every trajectory, every stored step
    assert np.max(np.abs(norm - 1.0)) <= NORM_TOL


DEFAULT_DENSITY = [
    ("linear", {}, 0.0),
    ("linear", {}, 1.5),
    ("linear", {"omega": 3.0, "phi": 1.0}, 0.0),
    ("linear", {"omega": 3.0, "phi": 1.0}, 1.5),
    ("mass_superposition", {}, 0.5),
]


def _density_defects(rho: np.ndarray) -> tuple[float, float, float]:
    """(max ‖ρ − ρ†‖, max |Tr ρ − 1|, min eigenvalue) over trajectories and times."""
    hermitian = np.max(np.abs(rho - np.conj(np.swapaxes(rho, -1, -2))))
    trace = np.max(np.abs(np.einsum("...ii->...", rho) - 1.0))
    eigenvalues = np.linalg.eigvalsh(0.5 * (rho + np.conj(np.swapaxes(rho, -1, -2))))
    return float(hermitian), float(trace), float(eigenvalues.min())


@pytest.mark.parametrize(
    "name, params, excess",
    DEFAULT_DENSITY,
    ids=[f"{n}-{'omega3-' if p else ''}v{v}" for n, p, v in DEFAULT_DENSITY],
)
def test_default_density_integrator_keeps_rho_a_state(name, params, excess):
    model = cq_core.get_model(name, **params)
    sigma = 0.02 if name == "mass_superposition" else 1.0
    ds = cq_core.simulate(
        model, sigma=sigma, n_traj=100, t_final=0.2, dt=1e-3, seed=5, mode="density", excess=excess
    )
    assert np.all(ds.status.values == 0)
    hermitian, trace, smallest = _density_defects(ds.rho.values)
    assert hermitian <= NORM_TOL
    assert trace <= NORM_TOL
    assert smallest >= -NORM_TOL


def test_euler_breaks_norm_and_positivity_at_a_coarse_step():
    """The same checks fail for Euler–Maruyama: they discriminate."""
    model = cq_core.get_model("linear")
    run = functools.partial(
        cq_core.simulate, model, sigma=1.0, n_traj=100, t_final=0.5, dt=0.01, seed=11
    )
    norm = np.linalg.norm(run(method="euler").psi.values, axis=-1)
    assert np.max(np.abs(norm - 1.0)) > 0.05  # measured: 0.33
    norm_default = np.linalg.norm(run().psi.values, axis=-1)
    assert np.max(np.abs(norm_default - 1.0)) <= NORM_TOL
    _, _, smallest = _density_defects(run(method="euler", mode="density").rho.values)
    assert smallest < -0.01  # measured: −0.68
    _, _, smallest_default = _density_defects(run(mode="density").rho.values)
    assert smallest_default >= -NORM_TOL


@pytest.mark.parametrize("sigma", [0.01, 0.1], ids=["1m", "10m"])
def test_seed_workload_discards_nothing(sigma):
    """The seed's run (mass_superposition, dt = 1e-4, to t = 0.15): nothing flagged."""
    model = cq_core.get_model("mass_superposition")
    ds = cq_core.simulate(model, sigma=sigma, n_traj=300, t_final=0.15, dt=1e-4, seed=1)
    assert ds.attrs["method"] == "exponential"
    assert np.all(ds.status.values == 0)
    norm = np.linalg.norm(ds.psi.values, axis=-1)
    assert np.max(np.abs(norm - 1.0)) <= NORM_TOL
    assert np.all(np.isfinite(ds.classical.values))


@pytest.mark.parametrize("mode", ["pure", "density"])
@pytest.mark.parametrize("name", ["linear", "mass_superposition", "qubit_lattice"])
def test_kraus_on_a_diagonal_model_equals_kraus_on_its_full_matrices(name, mode):
    """``method="kraus"`` accepts diagonal operators and treats them as the full matrices."""
    model = cq_core.get_model(name, **({"n": 2} if name == "qubit_lattice" else {}))
    kwargs = dict(sigma=0.05, n_traj=6, t_final=0.01, dt=1e-3, seed=0, method="kraus", mode=mode)
    diagonal = cq_core.simulate(model, **kwargs)
    full = cq_core.simulate(_full_matrices(model), **kwargs)
    assert diagonal.attrs["method"] == "kraus"
    assert np.all(diagonal.status.values == 0)
    state = "psi" if mode == "pure" else "rho"
    np.testing.assert_allclose(diagonal[state], full[state], rtol=0, atol=1e-13)
    np.testing.assert_allclose(diagonal.classical, full.classical, rtol=0, atol=1e-13)
