"""Single-variable views of a summary: C(t), ⟨σz⟩ moments and histograms, Γ, Born statistics.

Each takes a Dataset as returned by :func:`cq_core.open_sweep` (dims ``sigma, seed,
trajectory, time, …``) or by :func:`cq_core.simulate` (one cell; scalar σ and seed) and
returns the named variables of :func:`cq_core.analysis.summarise` on it, under the
conventions of :mod:`.summaries` (docs/physics.md, "Observables" and "Decoherence rate").
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import xarray as xr

from .summaries import summarise

__all__ = [
    "born_statistics",
    "coherence_curve",
    "fit_decoherence_rate",
    "flagged_count",
    "sigma_z_histogram",
    "sigma_z_moments",
]


def _summary(ds: xr.Dataset, **settings: Any) -> xr.Dataset:
    """The summary of ``ds``; σ stays a scalar coordinate when ``ds`` has no σ dimension."""
    defaults = {"time_slices": [float(ds["time"][0])], "bins": 1}
    summary = summarise(ds, **{**defaults, **settings})
    return summary if "sigma" in ds.dims else summary.squeeze("sigma")


def coherence_curve(ds: xr.Dataset) -> xr.Dataset:
    """``coherence`` C(t) and ``coherence_se``, dims (sigma, time) (NaN if C(0) = 0)."""
    return _summary(ds)[["coherence", "coherence_se"]]


def sigma_z_moments(ds: xr.Dataset) -> xr.Dataset:
    """``sigma_z_mean`` = E[⟨σz⟩_t] and ``sigma_z_se``, dims (sigma, time) (a martingale)."""
    return _summary(ds)[["sigma_z_mean", "sigma_z_se"]]


def sigma_z_histogram(ds: xr.Dataset, time_slices: Sequence[float], bins: int) -> xr.DataArray:
    """``sigma_z_hist``: density of ⟨σz⟩ over [−1, 1] at each time slice, dims (sigma, slice, bin).

    Each configured time is matched to the nearest stored time (coordinate ``slice_time``).
    ``bins`` equal bins on [−1, 1] (coordinates ``bin`` = centre, ``bin_lower``,
    ``bin_upper``); values rounded just outside [−1, 1] go to the end bins. Densities
    integrate to 1 over the bins (NaN if every trajectory is flagged).
    """
    return _summary(ds, time_slices=time_slices, bins=bins)["sigma_z_hist"]


def fit_decoherence_rate(ds: xr.Dataset, fit_window: Sequence[float] | None = None) -> xr.Dataset:
    """``gamma_fit`` and ``gamma_fit_se`` (dim sigma): fit of ``−log C(t) = Γ t``.

    Least squares through the origin over the stored times ``t`` in ``fit_window``
    ``[t_start, t_end]`` (default: all) where ``C(t) > 0``: ``Γ = Σ t y / Σ t²`` with
    ``y = −log C``. Standard error by the delta method over trajectories: trajectory k
    contributes ``u_k = Σ_t w_t c_k(t) / c̄(t)`` with ``w_t = t / Σ t²``, and
    ``SE = std(u) / sqrt(n)``. NaN when the window holds no time > 0 with C > 0.
    """
    return _summary(ds, fit_window=fit_window)[["gamma_fit", "gamma_fit_se"]]


def flagged_count(ds: xr.Dataset) -> xr.DataArray:
    """``n_flagged`` (dim sigma): trajectories with ``status ≠ 0``, excluded from averages."""
    return _summary(ds)["n_flagged"]


def born_statistics(ds: xr.Dataset) -> xr.Dataset:
    """Born-rule check at the last stored time, dims (sigma).

    ``born_fraction``: fraction of unflagged trajectories with ⟨σz⟩ > 0 (ending nearer level
    a), with its binomial ``born_fraction_se``; ``born_weight``: the Born weight of level a in
    the initial state, ``|ψ_a|² / (|ψ_a|² + |ψ_b|²)`` — the fraction tends to it once the
    trajectories have collapsed.
    """
    return _summary(ds)[["born_fraction", "born_fraction_se", "born_weight"]]
