"""The run's checks as tests with a family-wise error rate (cq_core/analysis/checks.py)."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from cq_core.analysis.checks import check_statistics, holm_reject


def test_holm_matches_the_step_down_rule():
    p = np.array([0.001, 0.04, 0.012, np.nan, 0.5])
    rejected, adjusted = holm_reject(p, alpha=0.05)
    # sorted 0.001·4, 0.012·3, 0.04·2, 0.5·1 → 0.004, 0.036, 0.08, 0.5
    np.testing.assert_allclose(adjusted, [0.004, 0.08, 0.036, np.nan, 0.5])
    assert rejected.tolist() == [True, False, True, False, False]
    assert holm_reject(np.array([0.02, 0.02]), alpha=0.05)[0].tolist() == [True, True]
    assert holm_reject(np.array([0.03, 0.03]), alpha=0.05)[0].tolist() == [False, False]


def _summary(rng, *, n=4000, shift_gamma=1.0, born=0.5, sigmas=(0.5, 1.0, 2.0)):
    """A summary whose statistics are drawn around their expected values with their SEs."""
    k = len(sigmas)
    theory = 2.0 / np.square(sigmas)
    gamma_se = 0.02 * theory
    p_se = np.sqrt(0.25 / n)
    z_se = 0.02
    time = [0.0, 0.2]
    sz = np.stack([np.zeros(k), rng.normal(0.0, z_se, k)], axis=1)
    return xr.Dataset(
        {
            "sigma_z_mean": (("sigma", "time"), sz),
            "sigma_z_se": (("sigma", "time"), np.full((k, 2), z_se)),
            "born_fraction": ("sigma", rng.normal(born, p_se, k)),
            "born_fraction_se": ("sigma", np.full(k, p_se)),
            "born_weight": ("sigma", np.full(k, 0.5)),
            "gamma_fit": ("sigma", rng.normal(shift_gamma * theory, gamma_se)),
            "gamma_fit_se": ("sigma", gamma_se),
            "gamma_theory": ("sigma", theory),
        },
        coords={"sigma": list(sigmas), "time": time},
        attrs={"model": "linear"},
    )


def test_z_scores_p_values_and_decision():
    s = _summary(np.random.default_rng(0))
    s["gamma_fit"][:] = s["gamma_theory"] * (1 + 4 * 0.02)  # 4 SE above on every σ
    out = check_statistics(s, alpha=0.01)
    np.testing.assert_allclose(out.z.sel(check="gamma"), 4.0)
    assert out.attrs["n_checks"] == 9 and not out.attrs["passed"]
    assert out.rejected.sel(check="gamma").all()
    with pytest.raises(ValueError, match="alpha"):
        check_statistics(s, alpha=1.5)


@pytest.mark.parametrize("seed", range(3))
def test_correct_passes_and_wrong_engines_fail(seed):
    """With the default run's precision (Γ to 2 %, 4000 realisations per Born fraction)."""
    rng = np.random.default_rng(seed)
    assert check_statistics(_summary(rng)).attrs["passed"]
    assert not check_statistics(_summary(rng), gamma_factor=1.1).attrs["passed"]
    assert not check_statistics(_summary(rng), born_shift=0.05).attrs["passed"]


def test_false_alarm_rate_is_at_most_alpha_even_for_correlated_checks():
    """Fully correlated σ rows (common random numbers): Holm stays at ≤ alpha."""
    from scipy.stats import norm

    rng = np.random.default_rng(1)
    runs, alpha = 20_000, 0.05
    common = rng.normal(size=(runs, 3, 1))  # one draw per check, shared by its 5 σ rows
    z = np.broadcast_to(common, (runs, 3, 5)).reshape(runs, -1)
    p = 2 * norm.sf(np.abs(z))
    fails = sum(holm_reject(row, alpha)[0].any() for row in p)
    assert fails / runs <= alpha + 4 * np.sqrt(alpha * (1 - alpha) / runs)
    assert fails / runs > alpha / 15  # not vacuous: it does reject sometimes


def test_gamma_is_tested_only_where_its_theory_is_exact():
    s = _summary(np.random.default_rng(0))
    s.attrs["model"] = "mass_superposition"
    out = check_statistics(s, gamma_factor=1.5)
    assert list(out.check.values) == ["martingale", "born"] and out.attrs["passed"]
