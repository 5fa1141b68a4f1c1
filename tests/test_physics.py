"""Statistical tests of the physics identities of docs/physics.md (and of its SDEs).

Each test compares an ensemble average from :func:`cq_core.simulate` with an exact result.
Tolerances are ``Z_TOL`` standard errors of the estimate. Sample sizes are chosen so that a
plausible wrong answer (Γ off by a factor 2, classical noise independent of the quantum noise,
p_z driven by the y increment, ...) lies more than ``Z_REJECT`` standard errors away, and where
that is cheap the test asserts it, so its power is shown and not only claimed.

All runs use fixed seeds (the results are deterministic) and an initial state that is not
symmetric between the branches, |ψ0⟩ = √0.8 |L⟩ + √0.2 e^{0.7i} |R⟩, so that schemes which are
wrong but symmetric under L ↔ R cannot pass. The step sizes are coarse; each was checked
against runs with 5–10x more trajectories and half the step, where the discretisation bias
stayed below one standard error of the sizes used here.

Runs shared by several tests are cached (``functools.cache``). To see every measured value,
theory, standard error and margin::

    pytest tests/test_physics.py -o log_cli=true --log-cli-level=INFO
"""

from __future__ import annotations

import functools
import logging

import numpy as np
import pytest
from scipy import integrate, linalg, stats

import cq_core

log = logging.getLogger(__name__)

Z_TOL = 4.5
"""An estimate passes when it is within this many standard errors of the theory."""
Z_REJECT = 5.0
"""A plausible wrong answer must be more than this many standard errors away."""

P_L = 0.8
PSI0 = np.array([np.sqrt(P_L), np.sqrt(1.0 - P_L) * np.exp(0.7j)])
SZ0 = 2.0 * P_L - 1.0  # ⟨σz⟩_0
COHERENCE0 = 2.0 * np.sqrt(P_L * (1.0 - P_L))  # 2|ρ01(0)|
SZ = np.diag([1.0, -1.0]).astype(complex)
SX = np.array([[0.0, 1.0], [1.0, 0.0]], dtype=complex)
ID2 = np.eye(2, dtype=complex)

# `linear` with ω = 0 (docs/models.md): L_p = −2λσz, K = −(λ/σ)σz, Γ = (1+v)·2λ²/σ².
LAM, MASS, Q0, P0 = 1.0, 1.0, 0.0, 0.5
LINEAR = dict(omega=0.0, lam=LAM, m=MASS, phi=2.0, q0=Q0, p0=P0, psi0=PSI0)
LIN_SIGMA, LIN_T, LIN_DT, LIN_SAVE = 1.0, 1.0, 1e-3, 250
LIN_SEED = 101
LIN_N, LIN_N_DENSITY = 4000, 2000
FORCE = {0: -2.0 * LAM, 1: 2.0 * LAM}  # force eigenvalue on |L⟩ (σz = +1) and on |R⟩


def gamma_linear(sigma: float, excess: float = 0.0) -> float:
    """docs/physics.md: Γ = (1+v)·|Δf|²/(8σ²) = (1+v)·2λ²/σ² for `linear`."""
    return (1.0 + excess) * 2.0 * LAM**2 / sigma**2


# ------------------------------------------------------------------------------ helpers


def run(model, **kwargs):
    """``cq_core.simulate`` with the check that no trajectory was flagged."""
    ds = cq_core.simulate(model, **kwargs)
    assert (ds.status.values == cq_core.STATUS_CODES["ok"]).all(), "a trajectory was flagged"
    return ds


def mean_se(x):
    """Sample mean over the trajectory axis (axis 0) and its standard error."""
    x = np.asarray(x)
    return x.mean(axis=0), x.std(axis=0, ddof=1) / np.sqrt(x.shape[0])


def density_matrices(ds) -> np.ndarray:
    """ρ (trajectory, time, ket, bra) from ``rho``, or ``|ψ⟩⟨ψ|`` from ``psi``."""
    if "rho" in ds:
        return ds.rho.values
    psi = ds.psi.values
    return psi[..., :, None] * psi[..., None, :].conj()


def sigma_z(ds) -> np.ndarray:
    """⟨σz⟩ (trajectory, time) = ρ_LL − ρ_RR."""
    rho = density_matrices(ds)
    return (rho[..., 0, 0] - rho[..., 1, 1]).real


def z_scores(measured, se, theory) -> np.ndarray:
    return (np.asarray(measured) - np.asarray(theory)) / np.asarray(se)


def check_close(label, measured, se, theory):
    """Assert ``|measured − theory| ≤ Z_TOL·SE`` (element-wise) and log the margins."""
    z = z_scores(measured, se, theory)
    log.info("%s: measured %s theory %s SE %s z %s", label, measured, theory, se, np.round(z, 2))
    assert np.all(np.abs(z) <= Z_TOL), (
        f"{label}: measured {measured}, theory {theory}, SE {se}, z = {z} (tolerance {Z_TOL})"
    )


def check_rejected(label, measured, se, wrong):
    """Assert that the wrong answer is more than ``Z_REJECT`` SE away (element-wise)."""
    z = z_scores(measured, se, wrong)
    log.info("%s (wrong answer): %s, z %s", label, wrong, np.round(z, 1))
    assert np.all(np.abs(z) > Z_REJECT), (
        f"{label}: the wrong answer {wrong} is only {np.abs(z)} SE from {measured}: "
        "the test would not tell it from the right one"
    )


def wiener_paths(ds, seed: int, n_noises: int) -> np.ndarray:
    """W(t) at the saved times (trajectory, time, noise), rebuilt from the run's seed keys."""
    dt, n_steps, n_traj = ds.attrs["dt"], ds.attrs["n_steps"], ds.sizes["trajectory"]
    increments = cq_core.BrownianIncrements(
        base_seed=0, seed=seed, first_trajectory=0, n_traj=n_traj, n_noises=n_noises, dt=dt
    ).draw(n_steps)  # (step, trajectory, noise)
    paths = np.concatenate([np.zeros((1, n_traj, n_noises)), np.cumsum(increments, axis=0)])
    steps = np.rint(ds.time.values / dt).astype(int)
    return paths[steps].transpose(1, 0, 2)


# ------------------------------------------------------------------------------ cached runs


@functools.cache
def linear_run(mode: str = "pure", excess: float = 0.0):
    """`linear` (ω = 0), σ = 1 (Γ = 2(1+v)), saved at t = 0, 0.25, 0.5, 0.75, 1."""
    return run(
        cq_core.get_model("linear", **LINEAR),
        sigma=LIN_SIGMA,
        n_traj=LIN_N if mode == "pure" else LIN_N_DENSITY,
        t_final=LIN_T,
        dt=LIN_DT,
        seed=LIN_SEED,
        save_every=LIN_SAVE,
        mode=mode,
        excess=excess,
    )


MASS_SIGMA, MASS_T, MASS_DT, MASS_SEED, MASS_N = 0.02, 0.2, 1e-3, 202, 4000
SOURCES = np.array([[-1.0, 0.0, 0.0], [1.0, 0.0, 0.0]])  # r_L, r_R for the default d = 1


@functools.cache
def mass_run():
    """`mass_superposition`, σ = 0.02 (= 2m, Γ ≈ 6.4 at r0), saved every 0.05 to t = 0.2.

    t = 0.2 keeps every test mass well away from the (ε = 0, singular) source positions, so
    the momenta have light tails; a few trajectories come close to a source by t ≈ 0.3.
    """
    return run(
        cq_core.get_model("mass_superposition", psi0=PSI0),
        sigma=MASS_SIGMA,
        n_traj=MASS_N,
        t_final=MASS_T,
        dt=MASS_DT,
        seed=MASS_SEED,
        save_every=50,
    )


# ------------------------------------------------------------------------------ 1. martingale


def _sz_without_record_drift(t: np.ndarray) -> np.ndarray:
    """E[⟨σz⟩_t] if the quantum update used dY = dW (no 2⟨K⟩dt drift): a plausible bug.

    The log-odds x = ln(ρ_LL/ρ_RR) would then be x0 − 4(λ/σ)W_t, and ⟨σz⟩ = tanh(x/2).
    """
    x0, k = np.log(P_L / (1.0 - P_L)), LAM / LIN_SIGMA
    return np.array(
        [
            stats.norm(loc=x0, scale=4.0 * k * np.sqrt(s)).expect(lambda x: np.tanh(x / 2.0))
            for s in t
        ]
    )


def test_martingale_linear_pure():
    """docs/physics.md: E[⟨σz⟩_t] = ⟨σz⟩_0 for all t when σz commutes with H_I (`linear`, ω = 0)."""
    ds = linear_run()
    mean, se = mean_se(sigma_z(ds)[:, 1:])
    check_close("linear pure E<sz>", mean, se, SZ0)
    # dropping the measurement-record drift turns the martingale into a drift towards 0
    check_rejected("linear pure E<sz>", mean, se, _sz_without_record_drift(ds.time.values[1:]))


@pytest.mark.parametrize("excess", [0.0, 0.5])
def test_martingale_linear_density(excess):
    """docs/physics.md: E[Tr σz ρ_t] = ⟨σz⟩_0 in density mode, with v = 0 and v > 0."""
    ds = linear_run("density", excess)
    mean, se = mean_se(sigma_z(ds)[:, 1:])
    check_close(f"linear density v={excess} E<sz>", mean, se, SZ0)


def test_martingale_mass_superposition():
    """docs/physics.md: E[⟨σz⟩_t] = ⟨σz⟩_0 for `mass_superposition` (H_I diagonal, σ = 0.02)."""
    ds = mass_run()
    mean, se = mean_se(sigma_z(ds)[:, 1:])
    check_close("mass_superposition E<sz>", mean, se, SZ0)


# ------------------------------------------------------------------------------ 2. decoherence


def _check_decoherence(ds, excess: float, label: str):
    rho01 = density_matrices(ds)[:, 1:, 0, 1]
    mean, se = mean_se(2.0 * np.abs(rho01) / COHERENCE0)
    t = ds.time.values[1:]
    gamma = gamma_linear(LIN_SIGMA, excess)
    check_close(f"{label} C(t)", mean, se, np.exp(-gamma * t))
    check_rejected(f"{label} C(t) with 2Γ", mean, se, np.exp(-2.0 * gamma * t))
    check_rejected(f"{label} C(t) with Γ/2", mean, se, np.exp(-0.5 * gamma * t))


def test_decoherence_law_pure():
    """docs/physics.md: C(t) = E[2|ρ01(t)|]/2|ρ01(0)| = exp(−Γt), Γ = 2λ²/σ² (`linear`, ω = 0)."""
    ds = linear_run()
    _check_decoherence(ds, 0.0, "linear pure")
    # for pure states 2|ρ01| = sqrt(1 − ⟨σz⟩²) (docs/physics.md): the ψ are normalised
    np.testing.assert_allclose(np.linalg.norm(ds.psi.values, axis=-1), 1.0, atol=1e-12)


@pytest.mark.parametrize("excess", [0.0, 0.5, 2.0])
def test_decoherence_law_density(excess):
    """docs/physics.md: in density mode C(t) = exp(−Γt) with Γ = (1+v)·2λ²/σ² (`linear`, ω = 0)."""
    _check_decoherence(linear_run("density", excess), excess, f"linear density v={excess}")


def test_density_with_no_excess_is_the_pure_state_equation():
    """docs/physics.md: with v = 0 the density form is the pure-state SDE for ρ = |ψ⟩⟨ψ|.

    Both runs share their Brownian paths (same seed and trajectory indices), so ρ must equal
    |ψ⟩⟨ψ| trajectory by trajectory, to rounding.
    """
    rho = linear_run("density", 0.0).rho.values
    psi = linear_run().psi.values[: len(rho)]
    np.testing.assert_allclose(rho, psi[..., :, None] * psi[..., None, :].conj(), atol=1e-10)


# ------------------------------------------------------------------------------ 3. Born weights


def _check_born(sz_final: np.ndarray, label: str):
    """Fraction with ⟨σz⟩_T > 0 against |⟨L|ψ0⟩|², once (nearly) every trajectory collapsed.

    The fraction F and the martingale E⟨σz⟩_T = 2|c_L|² − 1 satisfy
    |F − (1 + mean⟨σz⟩_T)/2| ≤ mean(1 − |⟨σz⟩_T|)/2 =: δ/2, so requiring δ ≤ 0.05 binomial SE
    makes the finite-time bias negligible; in addition 99.9 % of trajectories must be within
    1e-3 of ±1.
    """
    n, k = len(sz_final), int(np.sum(sz_final > 0))
    se = np.sqrt(P_L * (1.0 - P_L) / n)
    distance = 1.0 - np.abs(sz_final)
    log.info("%s: mean, 99.9%%, max of 1 − |<sz>_T|: %.3g %.3g %.3g", label, distance.mean(),
             np.quantile(distance, 0.999), distance.max())  # fmt: skip
    assert distance.mean() <= 0.05 * se, f"{label}: not collapsed, mean 1−|<sz>| {distance.mean()}"
    assert np.quantile(distance, 0.999) < 1e-3, f"{label}: not collapsed"
    confidence = 1.0 - 2.0 * stats.norm.sf(Z_TOL)
    ci = stats.binomtest(k, n, P_L).proportion_ci(confidence_level=confidence)
    log.info(
        "%s: fraction %.4f, Born %.2f, SE %.4f, z %.2f, CI %s", label, k / n, P_L, se,
        (k / n - P_L) / se, ci,
    )  # fmt: skip
    assert ci.low <= P_L <= ci.high, f"{label}: Born weight {P_L} outside {ci} (k={k}, n={n})"
    # wrong weights: branch-blind 1/2, and |c_L|/(|c_L| + |c_R|) = 2/3 (amplitudes, not squares)
    wide = 1.0 - 2.0 * stats.norm.sf(Z_REJECT)
    ci_wide = stats.binomtest(k, n).proportion_ci(confidence_level=wide)
    for wrong in (0.5, np.sqrt(P_L) / (np.sqrt(P_L) + np.sqrt(1.0 - P_L))):
        assert not ci_wide.low <= wrong <= ci_wide.high, f"{label}: cannot reject weight {wrong}"


def test_born_weights_linear():
    """docs/physics.md: the fraction of trajectories ending near |L⟩ is |⟨L|ψ0⟩|² (`linear`, ω = 0).

    σ = 0.5 (Γ = 8), T = 1.5: ΓT = 12.
    """
    ds = run(
        cq_core.get_model("linear", **LINEAR),
        sigma=0.5,
        n_traj=4000,
        t_final=1.5,
        dt=1e-3,
        seed=303,
        save_every=1500,
    )
    _check_born(sigma_z(ds)[:, -1], "linear Born")


def test_born_weights_mass_superposition():
    """docs/physics.md: Born weights for `mass_superposition` (default φ = 0).

    σ = 0.007 (Γ ≈ 52 at r0), T = 0.25: ΓT ≈ 13, while the test mass moves ≲ 0.25.
    """
    ds = run(
        cq_core.get_model("mass_superposition", psi0=PSI0),
        sigma=0.007,
        n_traj=4000,
        t_final=0.25,
        dt=2.5e-4,
        seed=404,
        save_every=1000,
    )
    _check_born(sigma_z(ds)[:, -1], "mass_superposition Born")


# ------------------------------------------------------------------------------ 4. CQ blocks


@pytest.mark.parametrize("branch", [0, 1], ids=["L", "R"])
def test_branch_conditioned_classical_moments(branch):
    """ϱ(z,t) = E[δ(z − Z_t)ρ_t] (docs/physics.md): the diagonal block ϱ_bb of the master equation.

    For `linear` (ω = 0) each block is |c_b|² times the law of a Langevin particle under the
    branch force f_b = ∓2λ:  p_t = p0 + f_b t + σW,  q_t = q0 + p0 t/m + f_b t²/(2m) + ...,
    Var p = σ²t, Var q = σ²t³/(3m²), Cov(q, p) = σ²t²/(2m). With weights w = |ψ_b(t)|²/|c_b|²
    these are E[w], E[wp], E[wp²], E[wq], E[wq²], E[wqp].

    This holds only because the quantum update and the classical kick use the same dW. The
    counterfactual with an independent classical noise, p' = p − σW + σW' (same quantum
    trajectories, W rebuilt from the run's seed keys), must be rejected.
    """
    ds = linear_run()
    t = ds.time.values[1:]
    q = ds.classical.sel(coord="q").values[:, 1:]
    p = ds.classical.sel(coord="p").values[:, 1:]
    w = np.abs(ds.psi.values[:, 1:, branch]) ** 2 / np.abs(PSI0[branch]) ** 2
    f = FORCE[branch]
    mean_p = P0 + f * t
    mean_q = Q0 + P0 * t / MASS + f * t**2 / (2.0 * MASS)
    var_p = LIN_SIGMA**2 * t
    var_q = LIN_SIGMA**2 * t**3 / (3.0 * MASS**2)
    cov_qp = LIN_SIGMA**2 * t**2 / (2.0 * MASS)
    name = f"branch {'LR'[branch]}"
    for label, sample, theory in [
        ("E[w]", w, np.ones_like(t)),
        ("E[w p]", w * p, mean_p),
        ("E[w p^2]", w * p**2, mean_p**2 + var_p),
        ("E[w q]", w * q, mean_q),
        ("E[w q^2]", w * q**2, mean_q**2 + var_q),
        ("E[w q p]", w * q * p, mean_q * mean_p + cov_qp),
    ]:
        check_close(f"{name} {label}", *mean_se(sample), theory)

    # the run's own Brownian path: p − σW is the integrated back-reaction ∫⟨L_p⟩dt, |·| ≤ 2λt
    W = wiener_paths(ds, LIN_SEED, 1)[:, 1:, 0]
    back_reaction = p - P0 - LIN_SIGMA * W
    assert np.all(np.abs(back_reaction) <= 2.0 * LAM * t + 1e-9), "W is not the run's noise"
    # counterfactual: the classical noise independent of the quantum one (E[w σW'] = 0)
    p_indep = p - LIN_SIGMA * W
    mean, se = mean_se(w[:, -1] * p[:, -1])
    check_rejected(
        f"{name} E[w p](T), independent noise", mean, se, np.mean(w[:, -1] * p_indep[:, -1])
    )
    # and paired: the difference E[w σW] is non-zero by many of its own SE
    diff, diff_se = mean_se(w[:, -1] * LIN_SIGMA * W[:, -1])
    check_rejected(f"{name} E[w sigma W](T)", diff, diff_se, 0.0)
    second = w[:, -1] * (p_indep[:, -1] ** 2 + var_p[-1])
    mean2, se2 = mean_se(w[:, -1] * p[:, -1] ** 2)
    check_rejected(f"{name} E[w p^2](T), independent noise", mean2, se2, np.mean(second))


# ------------------------------------------------------------------------------ 5. noise components


def _fisher_z(r: float, n: int) -> float:
    """Sample correlation r of n pairs as a standard normal score under zero correlation."""
    return float(np.arctanh(r) * np.sqrt(n - 3))


def test_momentum_noise_components_independent():
    """docs/models.md: p_x, p_y, p_z of `mass_superposition` are driven by independent Wiener
    processes.

    * The momentum increments Δp_k(t) = p_k(t) − p_k(0) are uncorrelated: Fisher z of the
      sample correlation within Z_TOL. For (y, z) and (x, z) this holds exactly at every t (the
      dynamics is symmetric under z → −z, W_z → −W_z, which flips Δp_z only); for (x, y) only
      while the forces have not yet correlated them (checked at t = 0.05).
    * The reference notebook's bug, p_z driven by the y increment, is rebuilt from the run's
      own noise (Δp_z − σW_z + σW_y) and must be rejected (correlation ≈ 1).
    * Regressing (Δp_y, Δp_z) on W(t) gives σ times the unit columns (each is driven by its
      own W only). For t ≤ 0.1 the forces change the coefficients by ≲ ω²t²/6 ≈ 0.013
      (ω² = GMm/(m|r − r_X|³) ≲ 8); the bug would move an entry by 1.
    """
    ds = mass_run()
    n = ds.sizes["trajectory"]
    times = ds.time.values
    P = ds.classical.values[:, :, 3:] - ds.classical.values[:, :1, 3:]  # (traj, time, 3)
    W = wiener_paths(ds, MASS_SEED, 3)
    # premise of the Fisher z (light tails): no test mass comes close to a singular source
    r = ds.classical.values[:, :, None, :3]
    assert np.sqrt(np.sum((r - SOURCES) ** 2, axis=-1)).min() > 0.3
    for k in range(1, len(times)):
        r = np.corrcoef(P[:, k].T)
        pairs = [(1, 2), (0, 2)] + ([(0, 1)] if times[k] <= 0.05 + 1e-9 else [])
        for a, b in pairs:
            z = _fisher_z(r[a, b], n)
            log.info("t=%.2f corr(dp_%s, dp_%s) = %.4f, z %.2f", times[k], *"xyz"[a] + "xyz"[b],
                     r[a, b], z)  # fmt: skip
            assert abs(z) <= Z_TOL, f"corr(Δp_{a}, Δp_{b}) = {r[a, b]} at t = {times[k]}"
        pz_bug = P[:, k, 2] - MASS_SIGMA * (W[:, k, 2] - W[:, k, 1])
        z_bug = _fisher_z(np.corrcoef(P[:, k, 1], pz_bug)[0, 1], n)
        log.info("t=%.2f notebook bug: Fisher z %.1f", times[k], z_bug)
        assert abs(z_bug) > Z_REJECT
        if times[k] <= 0.1 + 1e-9:
            coef, *_ = np.linalg.lstsq(np.c_[W[:, k], np.ones(n)], P[:, k], rcond=None)
            drive = coef[:3, 1:] / MASS_SIGMA  # drive[j, c]: response of Δp_{y,z} to W_j
            log.info("t=%.2f regression of dp_y, dp_z on W / sigma: %s", times[k], drive)
            np.testing.assert_allclose(drive, np.eye(3)[:, 1:], atol=0.05)


def test_momentum_noise_variance():
    """docs/physics.md.3: the momentum noise of `mass_superposition` is σ dW on each component.

    At t = 0.05, Var Δp_z = Var Δp_y = σ²t (the forces along y and z are the same on both
    branches at x ≈ 0, and the z force ∝ z adds a relative −ω²t²/3 ≈ −0.6 %, ≪ the SE ≈ 2.2 %).
    The wrong noise strengths σ²t/2 and 2σ²t (D2 = σ²/2 taken for σ²) are rejected. The SE of a
    sample variance is √((m4 − s⁴)/N).
    """
    ds = mass_run()
    k = int(np.argmin(np.abs(ds.time.values - 0.05)))
    t = ds.time.values[k]
    P = ds.classical.values[:, k, 4:] - ds.classical.values[:, 0, 4:]  # Δp_y, Δp_z
    dev = P - P.mean(axis=0)
    var = np.mean(dev**2, axis=0) * len(P) / (len(P) - 1)
    se = np.sqrt((np.mean(dev**4, axis=0) - np.mean(dev**2, axis=0) ** 2) / len(P))
    theory = MASS_SIGMA**2 * t
    check_close("Var dp_y, dp_z", var, se, theory)
    check_rejected("Var dp_y, dp_z", var, se, 0.5 * theory)
    check_rejected("Var dp_y, dp_z", var, se, 2.0 * theory)


# ------------------------------------------------------------------------------ 6. non-commuting

NC = dict(omega=3.0, phi=1.0, lam=LAM, m=1e9, q0=0.0, p0=0.0, psi0=PSI0)
NC_SIGMA, NC_T, NC_DT, NC_SEED = 1.0, 1.0, 2e-3, 505


def lindblad_solution(times, excess: float, rate_factor: float = 1.0) -> np.ndarray:
    """ρ(t) of dρ/dt = −i[H_I, ρ] + (1+v)(KρK − ½{K², ρ}), H_I = φσz + Ωσx, K = −(λ/σ)σz.

    Exact, from the matrix exponential of the Liouvillian on column-stacked ρ
    (vec(AρB) = (Bᵀ ⊗ A) vec ρ). ``rate_factor`` scales the dissipator (wrong answers).
    """
    H = NC["phi"] * SZ + NC["omega"] * SX
    K = -(LAM / NC_SIGMA) * SZ
    K2 = K @ K
    liouvillian = -1j * (np.kron(ID2, H) - np.kron(H.T, ID2))
    liouvillian = liouvillian + rate_factor * (1.0 + excess) * (
        np.kron(K.T, K) - 0.5 * np.kron(ID2, K2) - 0.5 * np.kron(K2.T, ID2)
    )
    rho0 = np.outer(PSI0, PSI0.conj()).reshape(-1, order="F")
    return np.array([(linalg.expm(liouvillian * s) @ rho0).reshape(2, 2, order="F") for s in times])


def _matrix_elements(rho: np.ndarray) -> np.ndarray:
    """The independent real components (ρ_LL, Re ρ_LR, Im ρ_LR), last axis."""
    return np.stack([rho[..., 0, 0].real, rho[..., 0, 1].real, rho[..., 0, 1].imag], axis=-1)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("mode", "excess", "n_traj"),
    [("pure", 0.0, 4000), ("density", 0.0, 3000), ("density", 1.0, 3000)],
)
def test_lindblad_non_commuting(mode, excess, n_traj):
    """The ensemble mean E[ρ_t] obeys the Lindblad equation, also when [H_I, K] ≠ 0.

    `linear` with Ω = 3, φ = 1 and m = 1e9: q stays at q0 (checked), so H_I = φσz + Ωσx is
    constant and dE[ρ]/dt = −i[H_I, E ρ] + (1+v)(K Eρ K − ½{K², Eρ}) exactly. The default
    integrator here is the Kraus step, whose weak error is O(dt): with dt = 2e-3 its bias was
    measured below 1 SE of a 20 000-trajectory run (SE ≈ 2e-3), i.e. below 0.5 SE here.
    The same equation with the dissipator doubled or halved must be rejected.
    """
    ds = run(
        cq_core.get_model("linear", **NC),
        sigma=NC_SIGMA,
        n_traj=n_traj,
        t_final=NC_T,
        dt=NC_DT,
        seed=NC_SEED,
        save_every=125,
        mode=mode,
        excess=excess,
    )
    assert ds.attrs["method"] == "kraus"
    assert np.max(np.abs(ds.classical.sel(coord="q").values - NC["q0"])) < 1e-6
    t = ds.time.values[1:]
    mean, se = mean_se(_matrix_elements(density_matrices(ds)[:, 1:]))
    label = f"Lindblad {mode} v={excess}"
    check_close(label, mean, se, _matrix_elements(lindblad_solution(t, excess)))
    for factor in (2.0, 0.5):
        wrong = _matrix_elements(lindblad_solution(t, excess, factor))
        z = np.abs(z_scores(mean, se, wrong))
        log.info("%s, dissipator x%g: max z %.1f", label, factor, z.max())
        assert z.max() > Z_REJECT, f"{label}: cannot reject the dissipator x{factor}"


# ------------------------------------------------------------------------------ 7. mean field


MF_LINEAR = dict(omega=3.0, phi=1.0, lam=LAM, m=1.0, q0=0.2, p0=0.5, psi0=PSI0)
MF_MASS = dict(G=1.0, M=10.0, m=0.01, d=1.0, eps=0.0, phi=5.0, r0=(0.0, -0.5, 0.0), psi0=PSI0)


def _mean_field_rhs_linear(_t, y):
    """docs/physics.md mean field for `linear`: q̇ = p/m, ṗ = −2λ⟨σz⟩, ψ̇ = −i((2λq + φ)σz + Ωσx)ψ."""
    q, psi = y[0].real, y[2:]
    H = (2.0 * LAM * q + MF_LINEAR["phi"]) * SZ + MF_LINEAR["omega"] * SX
    sz = np.abs(psi[0]) ** 2 - np.abs(psi[1]) ** 2
    return np.concatenate([[y[1].real / MF_LINEAR["m"], -2.0 * LAM * sz], -1j * (H @ psi)])


def _mean_field_rhs_mass(_t, y):
    """docs/physics.md mean field for `mass_superposition`: ṙ = p/m, ṗ = Σ_X |ψ_X|² F_X(r),
    ψ̇_X = −i(V_X(r) ± φ)ψ_X, with V_X = −GMm/√(|r − r_X|² + ε²), F_X = −∇V_X."""
    g = MF_MASS
    r, p, psi = y[:3].real, y[3:6].real, y[6:]
    sources = np.array([[-g["d"], 0.0, 0.0], [g["d"], 0.0, 0.0]])
    sep = r - sources
    dist2 = np.sum(sep**2, axis=1) + g["eps"] ** 2
    gmm = g["G"] * g["M"] * g["m"]
    potential = -gmm / np.sqrt(dist2)
    force = -gmm * sep / dist2[:, None] ** 1.5
    energy = potential + g["phi"] * np.array([1.0, -1.0])
    return np.concatenate([p / g["m"], np.abs(psi) ** 2 @ force, -1j * energy * psi])


@pytest.mark.parametrize(
    ("name", "params", "rhs", "t_final", "dts"),
    [
        ("linear", MF_LINEAR, _mean_field_rhs_linear, 2.0, (0.01, 0.005, 1e-3)),
        ("mass_superposition", MF_MASS, _mean_field_rhs_mass, 0.35, (0.01, 0.005, 1e-3)),
    ],
)
def test_mean_field_matches_ode(name, params, rhs, t_final, dts):
    """docs/physics.md: mode "mean_field" integrates dZ = ({Z, H_C} + ⟨L⟩)dt, dψ = −iH_Iψ dt.

    Compared with an independent `solve_ivp` (DOP853, rtol 1e-10) solution of the equations
    written from docs/models.md: every trajectory is identical; the error falls by 16 ± 50 % when dt
    is halved (RK4 is fourth order); at dt = 1e-3 it is below 1e-9.
    """
    model = cq_core.get_model(name, **params)
    y0 = np.concatenate([model.z0, PSI0]).astype(complex)
    reference = integrate.solve_ivp(
        rhs, (0.0, t_final), y0, method="DOP853", rtol=1e-10, atol=1e-12, dense_output=True
    )
    assert reference.success
    n = model.n_classical
    errors = []
    for dt in dts:
        ds = run(
            model,
            sigma=1.0,
            n_traj=3,
            t_final=t_final,
            dt=dt,
            seed=0,
            save_every=round(t_final / (5 * dt)),
            mode="mean_field",
        )
        Z, psi = ds.classical.values, ds.psi.values
        assert np.array_equal(Z, np.broadcast_to(Z[:1], Z.shape))
        assert np.array_equal(psi, np.broadcast_to(psi[:1], psi.shape))
        exact = reference.sol(ds.time.values)  # (n + d, time)
        errors.append(
            max(np.max(np.abs(Z[0] - exact[:n].real.T)), np.max(np.abs(psi[0] - exact[n:].T)))
        )
    log.info("%s mean field: max errors %s at dt %s", name, errors, dts)
    ratio = errors[0] / errors[1]
    assert 16.0 / 1.5 <= ratio <= 16.0 * 1.5, f"error ratio {ratio} on halving dt: not RK4"
    assert errors[2] < 1e-9
