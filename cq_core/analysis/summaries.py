"""Sweep summaries: coherence, ⟨σz⟩ moments and histograms, decoherence-rate fits.

The one builder of every summary variable is :func:`summary_from_statistics`: it merges the
per-cell statistics of :func:`cq_core.analysis.cell_statistics` (sums, sums of squared
deviations, counts, histogram counts). :func:`summarise` computes those statistics cell by
cell (trajectory block by trajectory block, so memory is bounded by a block) and merges them;
the single-variable functions of :mod:`.views` are views of the same summary.

Every function takes a Dataset as returned by :func:`cq_core.open_sweep` (dims ``sigma, seed,
trajectory, time, …``) or by :func:`cq_core.simulate` (one cell; scalar σ and seed) and
returns labelled xarray objects.

Conventions (docs/physics.md, "Observables" and "Decoherence rate"):

* ⟨σz⟩ and the coherence refer to ``(a, b) = attrs["basis_pair"]`` (see
  :mod:`cq_core.analysis.observables`).
* Mean conditional coherence ``C(t) = E[2|ρ_ab(t)|] / 2|ρ_ab(0)|``, its standard error
  ``s(t) / sqrt(n) / 2|ρ_ab(0)|`` (sample standard deviation over the trajectories of all
  seeds of a σ, pooled).
* Decoherence rate: least-squares fit of ``−log C(t) = Γ t`` (a line through the origin)
  over the fit window; its standard error comes from the per-trajectory influence function
  of the estimator (delta method), which accounts for the correlation of C(t) across times.
* Trajectories flagged by the kernel (``status ≠ 0``) are excluded from every average and
  counted in ``n_flagged``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import xarray as xr

from ..version import NUMERICS_VERSION, __version__
from .grid import grid_axes, grid_dims, grid_summary, point_attrs, points
from .observables import as_sweep, trajectory_dims
from .statistics import (
    analysis_settings,
    fit_times,
    pool_moments,
    settings_hash,
    slice_indices,
)
from .sweeps import StatisticsRecord, stack_statistics, statistics_record, sweep_statistics
from .theory import theory_rate

__all__ = [
    "SUMMARY_VARIABLES",
    "summarise",
    "summary_from_statistics",
    "trajectory_mean",
]

SUMMARY_VARIABLES = (
    "coherence",
    "coherence_se",
    "sigma_z_mean",
    "sigma_z_se",
    "sigma_z_hist",
    "gamma_fit",
    "gamma_fit_se",
    "gamma_theory",
    "n_flagged",
)
"""Variables every ``summary.zarr`` holds (names read by tools outside the repository)."""
COPIED_ATTRS = (
    "model",
    "model_params",
    "sigma_name",
    "basis_pair",
    "dt",
    "t_final",
    "save_every",
    "method",
    "mode",
    "excess",
    "backend",
    "base_seed",
    "sweep",
)
"""Attributes of the cells a summary repeats."""


def trajectory_mean(
    values: xr.DataArray, keep: xr.DataArray
) -> tuple[xr.DataArray, xr.DataArray, xr.DataArray]:
    """Mean over the trajectory dimensions of the kept trajectories, its SE and the count.

    ``values`` (…, seed, trajectory, …), ``keep`` bool (…, seed, trajectory). The standard
    error is ``s / sqrt(n)`` with the sample standard deviation ``s`` (ddof 1); NaN when
    fewer than two trajectories are kept. One streaming pass of shifted sums.
    """
    dims = trajectory_dims(values)
    shift = values.isel({d: 0 for d in dims}, drop=True)
    deviation = (values - shift).where(keep)
    count = keep.sum(dims)
    n = count.where(count > 0)
    first = deviation.sum(dims)
    second = (deviation**2).sum(dims)
    mean = shift + first / n
    variance = (second - first**2 / n) / (count - 1).where(count > 1)
    return mean, np.sqrt(variance.clip(min=0) / n), count


def summarise(
    ds: xr.Dataset,
    *,
    time_slices: Sequence[float],
    bins: int,
    fit_window: Sequence[float] | None = None,
) -> xr.Dataset:
    """The summary of a sweep: every variable of :data:`SUMMARY_VARIABLES` and more.

    ``summary_from_statistics([cell_statistics(cell) for each (σ, seed) cell])``: each cell
    is read stored chunk by stored chunk (:func:`cq_core.analysis.sweep_statistics`), so
    memory is bounded by a few chunks, not by the sweep.

    Parameters
    ----------
    ds
        From :func:`cq_core.open_sweep` (or one cell from :func:`cq_core.simulate`). A
        sweep with grid axes is summarised one grid point at a time (each with its own
        parameters: Γ fitted and the theory rate per point); the summary has the grid
        dimensions before ``sigma``.
    time_slices
        Times (model units) of the ⟨σz⟩ histograms, within the stored times.
    bins
        Histogram bins on [−1, 1].
    fit_window
        ``[t_start, t_end]`` of the Γ fit (default: every stored time).

    Returns
    -------
    xarray.Dataset
        See :func:`summary_from_statistics`.
    """
    settings = analysis_settings(
        {"time_slices": time_slices, "hist_bins": bins, "fit_window": fit_window}
    )
    ds = as_sweep(ds)
    slice_indices(ds["time"].values, settings["time_slices"])  # bad slices: before any work
    if not grid_dims(ds):
        return summary_from_statistics(sweep_statistics(ds, settings), settings)
    stats = []
    for selector in points(ds):  # one grid point at a time: its own parameters and Γ fit
        point = ds.isel(selector)
        point.attrs = point_attrs(ds, selector)
        # a mode axis mixes pure (psi) and density (rho) cells: each point keeps its own state
        other_state = "psi" if point.attrs.get("mode") == "density" else "rho"
        drop = [*grid_axes(ds.attrs), other_state]
        stats += sweep_statistics(point.drop_vars(drop, errors="ignore"), settings)
    return summary_from_statistics(stats, settings)


def _grid(stats: xr.Dataset) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """σ values, seeds (ascending) and the order of the cells on the (σ, seed) grid."""
    sigma, seed = stats["sigma"].values, stats["seed"].values
    sigmas, seeds = np.unique(sigma), np.unique(seed)
    order = np.lexsort((seed, sigma))
    pairs = set(zip(sigma.tolist(), seed.tolist(), strict=True))
    if len(pairs) != sigma.size:
        raise ValueError("the cell statistics hold a (sigma, seed) cell twice")
    missing = [(s, k) for s in sigmas.tolist() for k in seeds.tolist() if (s, k) not in pairs]
    if missing:
        listed = ", ".join(f"sigma={s!r} seed={k}" for s, k in missing)
        raise ValueError(f"the cell statistics do not form a (sigma, seed) grid: missing {listed}")
    return sigmas, seeds, order


def summary_from_statistics(
    stats: Sequence[xr.Dataset] | xr.Dataset, settings: Mapping[str, Any]
) -> xr.Dataset:
    """The summary of a sweep from the statistics of its cells (one builder of every variable).

    Parameters
    ----------
    stats
        :func:`cq_core.analysis.cell_statistics` of every (σ, seed) cell of the sweep (a
        complete grid), as a list or stacked along ``cell`` (:func:`stack_statistics`).
        A list from a sweep with grid axes (cells recording ``grid_point``) is summarised
        per grid point and stacked (:func:`cq_core.analysis.grid.grid_summary`).
    settings
        The analysis settings the statistics were computed with (``time_slices``,
        ``hist_bins``, ``fit_window``); ``ValueError`` if they differ.

    Returns
    -------
    xarray.Dataset
        ``coherence``, ``coherence_se``, ``sigma_z_mean``, ``sigma_z_se`` (sigma, time);
        ``sigma_z_hist`` (sigma, slice, bin; densities on [−1, 1], NaN if no unflagged
        trajectory); ``gamma_fit``, ``gamma_fit_se``, ``gamma_theory`` (1 / model time),
        ``n_flagged``, ``born_fraction``, ``born_fraction_se``, ``born_weight``,
        ``n_trajectories`` (sigma); attrs naming the model, its parameters and the run and
        analysis settings. Means and SEs pool the trajectories of all seeds of a σ.
    """
    settings = analysis_settings(settings)
    if not isinstance(stats, xr.Dataset):
        records = [s if isinstance(s, StatisticsRecord) else statistics_record(s) for s in stats]
        if records and grid_axes(records[0].attrs):
            return grid_summary(
                records, lambda group: _point_summary(stack_statistics(group), settings)
            )
        stats = records
    return _point_summary(stack_statistics(stats), settings)


def _point_summary(stats: xr.Dataset, settings: Mapping[str, Any]) -> xr.Dataset:
    """The summary of one grid point (all of a σ × seed sweep) from its stacked statistics."""
    if stats.attrs.get("settings_hash") != settings_hash(settings):
        raise ValueError(
            f"the cell statistics were computed with the analysis settings "
            f"{stats.attrs.get('analysis_settings')}, not {settings}: recompute them"
        )
    sigmas, seeds, order = _grid(stats)
    shape = (sigmas.size, seeds.size)

    def grid(name: str) -> np.ndarray:
        values = stats[name].values[order]
        return values.reshape(shape + values.shape[1:])

    kept = grid("n_kept")
    n, sums = kept.sum(axis=1), {}
    for name in ("coherence", "sigma_z"):
        _, mean, m2 = pool_moments(kept, grid(f"{name}_mean"), grid(f"{name}_m2"), axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = np.where(n[:, None] > 0, mean, np.nan)
            variance = np.where(n[:, None] > 1, m2 / (n[:, None] - 1), np.nan)
            sums[name] = (mean, np.sqrt(np.clip(variance, 0, None) / n[:, None]))
    times = stats["time"].values
    (coherence, coherence_se), (sz_mean, sz_se) = sums["coherence"], sums["sigma_z"]
    initial = coherence[:, :1]
    initial = np.where(initial > 0, initial, np.nan)
    gamma, gamma_se = _fit(stats, grid, kept, coherence, times, settings["fit_window"])
    with np.errstate(invalid="ignore", divide="ignore"):
        positive = grid("born_positive").sum(axis=1)
        fraction = np.where(n > 0, positive / n, np.nan)
        fraction_se = np.sqrt(fraction * (1.0 - fraction) / np.where(n > 0, n, np.nan))
        weights = grid("born_weight")
        born_weight = np.fmax.reduce(weights, axis=1)  # NaN only where every cell has none
        ratio = coherence / initial, coherence_se / initial
    edges = np.linspace(-1.0, 1.0, settings["hist_bins"] + 1)
    counts, finite = grid("hist_count").sum(axis=1), grid("hist_n").sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        density = counts / (finite[..., None] * np.diff(edges))
    density = np.where(finite[..., None] > 0, density, np.nan)
    slice_time = times[slice_indices(times, settings["time_slices"])]
    per_sigma = ("sigma",)
    summary = xr.Dataset(
        {
            "coherence": (("sigma", "time"), ratio[0]),
            "coherence_se": (("sigma", "time"), ratio[1]),
            "sigma_z_mean": (("sigma", "time"), sz_mean),
            "sigma_z_se": (("sigma", "time"), sz_se),
            "sigma_z_hist": (("sigma", "slice", "bin"), density),
            "gamma_fit": (per_sigma, gamma),
            "gamma_fit_se": (per_sigma, gamma_se),
            "gamma_theory": theory_rate(
                xr.Dataset(coords={"sigma": sigmas}, attrs=stats.attrs)
            ).variable.to_base_variable(),
            "n_flagged": (per_sigma, grid("n_flagged").sum(axis=1).astype(np.int64)),
            "born_fraction": (per_sigma, fraction),
            "born_fraction_se": (per_sigma, fraction_se),
            "born_weight": (per_sigma, born_weight),
            "n_trajectories": (per_sigma, grid("n_traj").sum(axis=1).astype(np.int64)),
        },
        coords={
            "time": stats["time"].variable,
            "sigma": sigmas,
            "slice": ("slice", np.asarray(settings["time_slices"], dtype=float)),
            "slice_time": ("slice", slice_time),
            "bin": ("bin", 0.5 * (edges[:-1] + edges[1:])),
            "bin_lower": ("bin", edges[:-1]),
            "bin_upper": ("bin", edges[1:]),
        },
    )
    _describe(summary)
    summary.attrs = _summary_attrs(stats.attrs, seeds, int(grid("n_traj")[0, 0]), settings)
    return summary


def _fit(stats, grid, kept, coherence, times, fit_window) -> tuple[np.ndarray, np.ndarray]:
    """``gamma_fit`` and ``gamma_fit_se`` per σ from the pooled mean coherence ``c̄(t)``.

    ``Γ = Σ_t w_t y_t`` with ``y = −log C``, ``w_t = t / Σ t²`` over the usable times
    (``t > 0`` in the window, ``C > 0``). Trajectory k's influence is ``u_k = a · c_k`` with
    ``a_t = w_t / c̄(t)``; ``Σ_k (u_k − ū)² = Σ_cells (|R_c a|² + n_c (a·(m_c − c̄))²)``
    (``R_c`` the cell's ``coherence_factor``, ``m_c`` its mean), ``SE = sqrt(var(u) / n)``.
    """
    n = kept.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        curve = coherence / coherence[:, :1]
        usable = fit_times(times, fit_window)[None, :] & (curve > 0)
        norm = (times**2 * usable).sum(axis=1)
        weight = (times * usable) / np.where(norm > 0, norm, np.nan)[:, None]
        log_curve = -np.log(np.where(usable, curve, np.nan))
        points = usable.sum(axis=1)
        gamma = np.where(points > 0, np.nansum(weight * log_curve, axis=1), np.nan)
        coefficients = np.where(usable, weight / coherence, 0.0)
    window = fit_times(times, fit_window)
    a = coefficients[:, window]  # (sigma, fit_time)
    factors = grid("coherence_factor")  # (sigma, seed, rank, fit_time)
    within = (np.einsum("skrt,st->skr", factors, a) ** 2).sum(axis=(1, 2))
    offsets = grid("coherence_mean")[..., window] - coherence[:, None, window]
    between = kept * np.einsum("skt,st->sk", np.where(kept[..., None] > 0, offsets, 0), a) ** 2
    with np.errstate(invalid="ignore", divide="ignore"):
        variance = np.where(n > 1, (within + between.sum(axis=1)) / (n - 1), np.nan)
        se = np.sqrt(np.clip(variance, 0, None) / n)
    return gamma, np.where(points > 0, se, np.nan)


def _describe(summary: xr.Dataset) -> None:
    """Long names and units of the summary's variables (in place)."""
    described = {
        "coherence": ("mean conditional coherence C(t) = E[2|rho_ab(t)|] / 2|rho_ab(0)|", "1"),
        "coherence_se": ("standard error of C(t)", "1"),
        "sigma_z_mean": ("E[<sigma_z>_t] over unflagged trajectories", "1"),
        "sigma_z_se": ("standard error of E[<sigma_z>_t]", "1"),
        "sigma_z_hist": ("probability density of conditional <sigma_z> at the time slices", "1"),
        "gamma_fit": ("fitted decoherence rate: -log C(t) = Gamma t", "1 / model time"),
        "gamma_fit_se": ("standard error of gamma_fit (delta method)", "1 / model time"),
        "n_flagged": ("trajectories flagged by the kernel (left domain / non-finite)", "1"),
        "born_fraction": ("fraction of trajectories with <sigma_z> > 0 at the last time", "1"),
        "born_fraction_se": ("binomial standard error of born_fraction", "1"),
        "born_weight": ("Born weight of level a in the initial state", "1"),
        "n_trajectories": ("trajectories per sigma (flagged included)", "1"),
    }
    for name, (long_name, units) in described.items():
        summary[name].attrs.update(long_name=long_name, units=units)
    summary["slice"].attrs["long_name"] = "requested time"
    summary["slice_time"].attrs["long_name"] = "stored time used"
    summary["bin"].attrs["long_name"] = "bin centre of <sigma_z>"


def _summary_attrs(
    cells: Mapping[str, Any], seeds: np.ndarray, n_traj: int, settings: Mapping[str, Any]
) -> dict[str, Any]:
    attrs = {key: cells[key] for key in COPIED_ATTRS if key in cells}
    attrs.update(
        seeds=[int(s) for s in seeds],
        n_traj_per_cell=n_traj,
        time_slices=list(settings["time_slices"]),
        hist_bins=int(settings["hist_bins"]),
        fit_window=settings["fit_window"],
        cells_numerics_version=cells.get("numerics_version", ""),
        cq_core_version=__version__,
        numerics_version=NUMERICS_VERSION,
        equations="arXiv:2208.11722; cq-sweep docs/physics.md",
    )
    return attrs


# ---------------------------------------------------------------- views of one summary
