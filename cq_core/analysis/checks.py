"""The run's checks as statistical tests: z-scores, p-values and one family-wise decision.

A run makes several checks (docs/physics.md, "Born rule and martingale" and "Decoherence
rate"), each per σ:

* ``martingale``: ``z = (E⟨σz⟩_T − ⟨σz⟩_0) / SE`` (the martingale property of ⟨σz⟩ when σz
  commutes with H_I; ⟨σz⟩_0 is exact);
* ``born``: ``z = (fraction ending near |L⟩ − |⟨L|ψ0⟩|²) / SE``;
* ``gamma``: ``z = (Γ_fit − Γ_theory) / SE(Γ_fit)`` for models whose Γ_theory is exact
  (:data:`EXACT_GAMMA_MODELS`: ``linear``). For ``mass_superposition`` Γ_theory takes the
  force gap at the initial point while the test mass moves, and the fit sits ~1.5 SE above
  it with the default run's precision: a line to look at, not a test.

Each z is read against the standard normal (two-sided p-value). The σ values of a sweep share
their Brownian increments (common random numbers), so their checks are strongly correlated,
and a run makes many checks: a row-by-row "|z| < 2" then fails often for a correct engine.
The checks are therefore decided together with the Holm–Bonferroni step-down procedure at
family-wise level ``alpha`` (default 1 %), which controls the probability of any false
alarm at ≤ alpha under *any* dependence between the checks, correlation across σ included.
A run passes when no check is rejected. ``benchmarks/checks_calibration.py`` measures both
rates over many base seeds: how often a correct engine passes, and how often an engine with
Γ 10 % off or a Born weight 0.05 off is caught.

Input: a summary (:func:`cq_core.analysis.summarise`) with ``sigma_z_mean``, ``sigma_z_se``
(sigma, time), ``born_fraction``, ``born_fraction_se``, ``born_weight``, ``gamma_fit``,
``gamma_fit_se``, ``gamma_theory`` (sigma). Output: an xarray Dataset, nothing is opened.
"""

from __future__ import annotations

import math

import numpy as np
import xarray as xr

__all__ = [
    "CHECKS",
    "DEFAULT_ALPHA",
    "SWEEP_ALPHA",
    "binomial_se",
    "born_interval",
    "check_statistics",
    "gamma_z",
    "holm_reject",
    "run_passes",
]

DEFAULT_ALPHA = 0.01
"""Family-wise error rate of a run's checks: a correct engine fails with probability ≤ 1 %."""

CHECKED_SWEEPS = 4
"""Sweeps of the default run with checks (histograms, sigma_sweep, linear, linear_density)."""

SWEEP_ALPHA = DEFAULT_ALPHA / CHECKED_SWEEPS
"""Level of each sweep's Holm procedure (what the tables and figures use): each sweep is
decided on its own, and Bonferroni over the run's sweeps keeps the run's rate ≤ 1 %."""

CHECKS = ("martingale", "born", "gamma")

EXACT_GAMMA_MODELS = frozenset({"linear"})
"""Models whose closed-form Γ is exact (docs/physics.md, "The decoherence rate Γ")."""


def holm_reject(
    p_values: np.ndarray, alpha: float = DEFAULT_ALPHA
) -> tuple[np.ndarray, np.ndarray]:
    """Holm–Bonferroni: ``(rejected, adjusted p)`` for a 1-D array of p-values (NaN: skipped).

    The k-th smallest of m p-values is compared with ``alpha / (m − k + 1)``; rejection stops
    at the first that passes. Adjusted p-values ``max_{j≤k} min(1, (m − j + 1) p_(j))``:
    a check is rejected exactly when its adjusted p ≤ alpha.
    """
    p = np.asarray(p_values, dtype=float)
    valid = np.flatnonzero(np.isfinite(p))
    adjusted = np.full(p.shape, np.nan)
    m = valid.size
    if m:
        order = valid[np.argsort(p[valid], kind="stable")]
        scaled = np.minimum(1.0, (m - np.arange(m)) * p[order])
        adjusted[order] = np.maximum.accumulate(scaled)
    return np.where(np.isfinite(adjusted), adjusted <= alpha, False), adjusted


def _z(value: xr.DataArray, expected: xr.DataArray, se: xr.DataArray) -> xr.DataArray:
    return ((value - expected) / se.where(se > 0)).astype(float)


def check_statistics(
    summary: xr.Dataset,
    *,
    alpha: float = DEFAULT_ALPHA,
    gamma_factor: float = 1.0,
    born_shift: float = 0.0,
) -> xr.Dataset:
    """z-scores, p-values and Holm decisions of a summary's checks, dims (check, sigma).

    Parameters
    ----------
    summary
        A sweep summary (variables listed in the module docstring).
    alpha
        Family-wise error rate over every check of the summary.
    gamma_factor, born_shift
        Multiply Γ_theory / add to the Born weight before testing: a "wrong engine" seen
        through the same check (for measuring the checks' power; 1 and 0 for real use).

    Returns
    -------
    xarray.Dataset
        ``value``, ``expected``, ``se``, ``z``, ``p`` (two-sided), ``p_holm`` (adjusted) and
        ``rejected`` (bool) with dims (check, sigma); NaN / False where a check does not
        apply (no closed-form Γ, no standard error). ``attrs``: ``alpha``, ``n_checks``,
        ``passed`` (no check rejected).
    """
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be in (0, 1), got {alpha!r}")
    s = summary.load()
    last, first = s.isel(time=-1, drop=True), s.isel(time=0, drop=True)
    have = set(s.data_vars)
    rows = {
        "martingale": (last["sigma_z_mean"], first["sigma_z_mean"], last["sigma_z_se"])
        if {"sigma_z_mean", "sigma_z_se"} <= have
        else (None, None, None),
        "born": (s["born_fraction"], s["born_weight"] + born_shift, s["born_fraction_se"])
        if {"born_fraction", "born_weight", "born_fraction_se"} <= have
        else (None, None, None),
        "gamma": (s["gamma_fit"], s["gamma_theory"] * gamma_factor, s["gamma_fit_se"])
        if {"gamma_fit", "gamma_theory", "gamma_fit_se"} <= have
        and s.attrs.get("model", "linear") in EXACT_GAMMA_MODELS
        else (None, None, None),
    }  # a check whose variables the summary lacks is left out
    parts = {}
    for name, (value, expected, se) in rows.items():
        if value is None:
            continue
        parts[name] = xr.Dataset(
            {
                "value": value.astype(float),
                "expected": expected.astype(float),
                "se": se.astype(float),
            }
        ).reset_coords(drop=True)
    out = xr.concat(list(parts.values()), dim=xr.DataArray(list(parts), dims="check", name="check"))
    out["z"] = _z(out["value"], out["expected"], out["se"])
    # two-sided normal p-value 2·Φ(−|z|) = erfc(|z|/√2): math.erfc, so that importing the
    # checks (every figure step does) does not import scipy.stats (~1 CPU-s per process)
    two_sided = np.vectorize(lambda z: math.erfc(abs(z) / math.sqrt(2.0)), otypes=[float])
    out["p"] = (out["z"].dims, two_sided(out["z"].values))
    rejected, adjusted = holm_reject(out["p"].values.ravel(), alpha)
    out["p_holm"] = (out["p"].dims, adjusted.reshape(out["p"].shape))
    out["rejected"] = (out["p"].dims, rejected.reshape(out["p"].shape))
    out.attrs = {
        "alpha": float(alpha),
        "n_checks": int(np.isfinite(out["p"].values).sum()),
        "passed": bool(not rejected.any()),
        "method": "two-sided z against N(0, 1); Holm-Bonferroni over all checks of the run",
    }
    return out


def run_passes(summary: xr.Dataset, **options) -> bool:
    """Whether no check of ``summary`` is rejected (:func:`check_statistics` options)."""
    return bool(check_statistics(summary, **options).attrs["passed"])


def gamma_z(summary: xr.Dataset) -> xr.DataArray:
    """``(Γ_fit − Γ_theory) / SE(Γ_fit)`` per σ for any model (NaN where SE ≤ 0).

    The same z as the ``gamma`` check, also where Γ_theory is only approximate
    (``mass_superposition``: the figures show it without testing it).
    """
    return _z(summary["gamma_fit"], summary["gamma_theory"], summary["gamma_fit_se"])


def born_interval(
    successes: int, n: int, confidence: float = 0.95, method: str = "exact"
) -> tuple[float, float]:
    """Binomial confidence interval of the fraction ``successes / n`` ending near level a.

    ``scipy.stats.binomtest(successes, n).proportion_ci``; ``method``: ``"exact"``
    (Clopper–Pearson), ``"wilson"`` or ``"wilsoncc"``. ``(low, high)``, n ≥ 1.
    """
    from scipy.stats import binomtest  # ~1 CPU-s to import: only for a Born interval

    interval = binomtest(successes, n).proportion_ci(confidence_level=confidence, method=method)
    return float(interval.low), float(interval.high)


def binomial_se(fraction: float, n: int) -> float:
    """``sqrt(p (1 − p) / n)``: the standard error of a fraction p of n (NaN if p is)."""
    return float(np.sqrt(fraction * (1 - fraction) / n)) if np.isfinite(fraction) else np.nan
