"""The summary computed directly from the trajectories: the reference of the tests.

This is the from-trajectories implementation that ``cq_core.analysis.summarise`` used before
summaries were merged from per-cell statistics; the tests check that the merged summary
equals it to rounding (same variables, dims, coordinates, values).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import xarray as xr

from cq_core.analysis import as_sweep, pair_coherence, sigma_z, theory_rate
from cq_core.analysis.observables import TRAJECTORY_DIMS
from cq_core.version import NUMERICS_VERSION, __version__


def _trajectory_dims(x: xr.DataArray) -> list[str]:
    return [d for d in TRAJECTORY_DIMS if d in x.dims]


def _unflagged(ds: xr.Dataset) -> xr.DataArray:
    return ds["status"] == 0


def trajectory_mean(
    values: xr.DataArray, keep: xr.DataArray
) -> tuple[xr.DataArray, xr.DataArray, xr.DataArray]:
    """Mean over the trajectory dimensions of the kept trajectories, its SE and the count.

    ``values`` (…, seed, trajectory, …), ``keep`` bool (…, seed, trajectory). The standard
    error is ``s / sqrt(n)`` with the sample standard deviation ``s`` (ddof 1); NaN when
    fewer than two trajectories are kept.

    One pass over the data, so that each chunk is dropped as soon as it is summed (memory
    bounded by the chunk size, not the sweep's): shifted sums ``S1 = Σ(x − c)``,
    ``S2 = Σ(x − c)²`` with ``c`` the first trajectory's value (the shift keeps
    ``S2 − S1²/n`` free of cancellation when the spread is small next to the mean).
    """
    dims = _trajectory_dims(values)
    shift = values.isel({d: 0 for d in dims}, drop=True)
    deviation = (values - shift).where(keep)
    count = keep.sum(dims)
    n = count.where(count > 0)
    first = deviation.sum(dims)
    second = (deviation**2).sum(dims)
    mean = shift + first / n
    variance = (second - first**2 / n) / (count - 1).where(count > 1)
    return mean, np.sqrt(variance.clip(min=0) / n), count


def coherence_curve(ds: xr.Dataset) -> xr.Dataset:
    """``coherence`` C(t) and ``coherence_se``, dims (sigma, time) (docs/physics.md).

    ``C(t) = E[2|ρ_ab(t)|] / 2|ρ_ab(0)|``, the mean over unflagged trajectories divided by
    the initial coherence (NaN when the initial state has none).
    """
    coherence = pair_coherence(ds)
    mean, se, _ = trajectory_mean(coherence, _unflagged(ds))
    initial = mean.isel(time=0, drop=True)
    initial = initial.where(initial > 0)
    return xr.Dataset(
        {
            "coherence": (mean / initial).assign_attrs(
                long_name="mean conditional coherence C(t) = E[2|rho_ab(t)|] / 2|rho_ab(0)|",
                units="1",
                equation="docs/physics.md",
            ),
            "coherence_se": (se / initial).assign_attrs(
                long_name="standard error of C(t)", units="1"
            ),
        }
    )


def sigma_z_moments(ds: xr.Dataset) -> xr.Dataset:
    """``sigma_z_mean`` = E[⟨σz⟩_t] and ``sigma_z_se``, dims (sigma, time) (a martingale)."""
    mean, se, _ = trajectory_mean(sigma_z(ds), _unflagged(ds))
    return xr.Dataset(
        {
            "sigma_z_mean": mean.assign_attrs(
                long_name="E[<sigma_z>_t] over unflagged trajectories", units="1"
            ),
            "sigma_z_se": se.assign_attrs(long_name="standard error of E[<sigma_z>_t]", units="1"),
        }
    )


def _slice_indices(times: np.ndarray, time_slices: Sequence[float]) -> np.ndarray:
    slices = np.asarray(time_slices, dtype=float)
    if slices.ndim != 1 or slices.size == 0:
        raise ValueError(f"time_slices must be a non-empty list of times, got {time_slices!r}")
    step = float(np.max(np.diff(times))) if times.size > 1 else 0.0
    outside = slices[(slices < times[0] - 1e-12) | (slices > times[-1] + 1e-9 * max(1, step))]
    if outside.size:
        raise ValueError(
            f"time_slices {outside.tolist()} lie outside the stored times "
            f"[{times[0]!r}, {times[-1]!r}]"
        )
    return np.abs(times[None, :] - slices[:, None]).argmin(axis=1)


def _density(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return np.full(len(edges) - 1, np.nan)
    counts, _ = np.histogram(np.clip(finite, edges[0], edges[-1]), bins=edges)
    return counts / (finite.size * np.diff(edges))


def sigma_z_histogram(ds: xr.Dataset, time_slices: Sequence[float], bins: int) -> xr.DataArray:
    """``sigma_z_hist``: density of ⟨σz⟩ over [−1, 1] at each time slice, dims (sigma, slice, bin).

    Each configured time is matched to the nearest stored time (coordinate ``slice_time``).
    ``bins`` equal bins on [−1, 1] (coordinates ``bin`` = centre, ``bin_lower``,
    ``bin_upper``); values rounded just outside [−1, 1] go to the end bins. Densities
    integrate to 1 over the bins (NaN if every trajectory is flagged).
    """
    if isinstance(bins, bool) or not isinstance(bins, (int, np.integer)) or bins < 1:
        raise ValueError(f"bins must be an integer >= 1, got {bins!r}")
    times = ds["time"].values
    indices = _slice_indices(times, time_slices)
    edges = np.linspace(-1.0, 1.0, int(bins) + 1)
    values = sigma_z(ds).where(_unflagged(ds))
    at_slices = values.isel(time=xr.DataArray(indices, dims="slice")).drop_vars("time")
    samples = at_slices.stack(sample=_trajectory_dims(values), create_index=False)
    samples = samples.drop_vars([c for c in samples.coords if "sample" in samples[c].dims])
    density = xr.apply_ufunc(
        _density,
        samples,
        kwargs={"edges": edges},
        input_core_dims=[["sample"]],
        output_core_dims=[["bin"]],
        vectorize=True,
        dask="parallelized",
        output_dtypes=[float],
        dask_gufunc_kwargs={"output_sizes": {"bin": int(bins)}, "allow_rechunk": True},
    )
    return density.assign_coords(
        slice=("slice", np.asarray(time_slices, dtype=float), {"long_name": "requested time"}),
        slice_time=("slice", times[indices], {"long_name": "stored time used"}),
        bin=("bin", 0.5 * (edges[:-1] + edges[1:]), {"long_name": "bin centre of <sigma_z>"}),
        bin_lower=("bin", edges[:-1]),
        bin_upper=("bin", edges[1:]),
    ).assign_attrs(
        long_name="probability density of conditional <sigma_z> at the time slices",
        units="1",
    )


def fit_decoherence_rate(ds: xr.Dataset, fit_window: Sequence[float] | None = None) -> xr.Dataset:
    """``gamma_fit`` and ``gamma_fit_se`` (dim sigma): fit of ``−log C(t) = Γ t`` (docs/physics.md).

    Least squares through the origin over the stored times ``t`` in ``fit_window``
    ``[t_start, t_end]`` (default: all; at most 100 of them, evenly spaced) where
    ``C(t) > 0``: ``Γ = Σ t y / Σ t²`` with ``y = −log C``. Standard error by the delta
    method over trajectories: trajectory k
    contributes ``u_k = Σ_t w_t c_k(t) / c̄(t)`` with ``w_t = t / Σ t²``, and
    ``SE = std(u) / sqrt(n)``. NaN when the window holds no time > 0 with C > 0.
    """
    coherence = pair_coherence(ds)
    keep = _unflagged(ds)
    # the influence of each trajectory needs the mean at every time: computing the (small)
    # mean first keeps the second pass over the data chunk by chunk (bounded memory)
    mean, _, count = (part.compute() for part in trajectory_mean(coherence, keep))
    curve = mean / mean.isel(time=0, drop=True)
    time = ds["time"]
    in_window = time > 0
    if fit_window is not None:
        t_start, t_end = (float(t) for t in fit_window)
        if not t_start < t_end:
            raise ValueError(
                f"fit_window must be [t_start, t_end] with t_start < t_end, got "
                f"{list(fit_window)!r}"
            )
        in_window = in_window & (time >= t_start) & (time <= t_end)
    # at most 100 of the window's times, evenly spaced by index (docs/physics.md)
    inside = np.flatnonzero(in_window.values)
    if inside.size > 100:
        keep_index = inside[np.round(np.linspace(0, inside.size - 1, 100)).astype(int)]
        in_window = in_window & time.isin(time.values[keep_index])
    usable = in_window & (curve > 0)
    norm = (time**2 * usable).sum("time")
    weight = (time * usable) / norm.where(norm > 0)
    log_curve = -np.log(curve.where(usable))
    points = usable.sum("time")
    gamma = (weight * log_curve).sum("time").where(points > 0)
    influence = (weight * coherence / mean.where(usable)).sum("time")
    _, se, _ = trajectory_mean(influence, keep)
    se = se.where(points > 0)
    window = [float(time[0]), float(time[-1])] if fit_window is None else list(fit_window)
    return xr.Dataset(
        {
            "gamma_fit": gamma.assign_attrs(
                long_name="fitted decoherence rate: -log C(t) = Gamma t",
                units="1 / model time",
                fit_window=[float(t) for t in window],
            ),
            "gamma_fit_se": se.assign_attrs(
                long_name="standard error of gamma_fit (delta method over trajectories)",
                units="1 / model time",
            ),
        }
    )


def flagged_count(ds: xr.Dataset) -> xr.DataArray:
    """``n_flagged`` (dim sigma): trajectories with ``status ≠ 0``, excluded from averages."""
    status = ds["status"]
    return (
        (status != 0)
        .sum(_trajectory_dims(status))
        .astype(np.int64)
        .assign_attrs(long_name="trajectories flagged by the kernel (left domain / non-finite)")
    )


def born_statistics(ds: xr.Dataset) -> xr.Dataset:
    """Born-rule check at the last stored time (docs/physics.md), dims (sigma).

    ``born_fraction``: fraction of unflagged trajectories with ⟨σz⟩ > 0 (ending nearer level
    a), with its binomial ``born_fraction_se``; ``born_weight``: the Born weight of level a in
    the initial state, ``|ψ_a|² / (|ψ_a|² + |ψ_b|²)`` — the fraction tends to it once the
    trajectories have collapsed.
    """
    keep = _unflagged(ds)
    final = sigma_z(ds).isel(time=-1, drop=True)
    fraction, _, count = trajectory_mean((final > 0).astype(float), keep)
    se = np.sqrt(fraction * (1.0 - fraction) / count.where(count > 0))
    initial = sigma_z(ds).isel(time=0, drop=True)
    weight = ((1.0 + initial) / 2.0).where(keep).max(_trajectory_dims(initial))
    return xr.Dataset(
        {
            "born_fraction": fraction.assign_attrs(
                long_name="fraction of trajectories with <sigma_z> > 0 at the last time"
            ),
            "born_fraction_se": se.assign_attrs(long_name="binomial standard error"),
            "born_weight": weight.assign_attrs(
                long_name="Born weight of level a in the initial state"
            ),
        }
    )


def summarise(
    ds: xr.Dataset,
    *,
    time_slices: Sequence[float],
    bins: int,
    fit_window: Sequence[float] | None = None,
) -> xr.Dataset:
    """The summary of a sweep: every variable of :data:`SUMMARY_VARIABLES` and more.

    Computed part by part, each part one streaming pass over the (lazily opened) cells, so
    memory is bounded by the chunk size, not the sweep's size (tests/test_bounded_memory.py).

    Parameters
    ----------
    ds
        From :func:`cq_core.open_sweep` (or one cell from :func:`cq_core.simulate`).
    time_slices
        Times (model units) of the ⟨σz⟩ histograms, within the stored times.
    bins
        Histogram bins on [−1, 1].
    fit_window
        ``[t_start, t_end]`` of the Γ fit (default: every stored time).

    Returns
    -------
    xarray.Dataset
        ``coherence``, ``coherence_se``, ``sigma_z_mean``, ``sigma_z_se`` (sigma, time);
        ``sigma_z_hist`` (sigma, slice, bin); ``gamma_fit``, ``gamma_fit_se``,
        ``gamma_theory``, ``n_flagged``, ``n_trajectories``, ``born_fraction``,
        ``born_fraction_se``, ``born_weight`` (sigma); attrs naming the model, its
        parameters and the run and analysis settings.
    """
    ds = as_sweep(ds)
    summary = xr.merge(
        # each part is computed on its own: one streaming pass over the cells per part keeps
        # memory bounded by the chunk size (one graph for all parts holds chunks that several
        # reductions share until the slowest of them is done)
        [
            part.compute()
            for part in (
                coherence_curve(ds),
                sigma_z_moments(ds),
                sigma_z_histogram(ds, time_slices, bins).rename("sigma_z_hist").to_dataset(),
                fit_decoherence_rate(ds, fit_window),
                theory_rate(ds).rename("gamma_theory").to_dataset(),
                flagged_count(ds).rename("n_flagged").to_dataset(),
                born_statistics(ds),
            )
        ],
        compat="override",
        join="exact",
        combine_attrs="drop",
    )
    summary["n_trajectories"] = xr.full_like(
        summary["n_flagged"], ds.sizes["seed"] * ds.sizes["trajectory"]
    ).assign_attrs(long_name="trajectories per sigma (flagged included)")
    copied = (
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
    summary.attrs = {key: ds.attrs[key] for key in copied if key in ds.attrs}
    summary.attrs.update(
        seeds=[int(s) for s in ds["seed"].values],
        n_traj_per_cell=int(ds.sizes["trajectory"]),
        time_slices=[float(t) for t in time_slices],
        hist_bins=int(bins),
        fit_window=None if fit_window is None else [float(t) for t in fit_window],
        cells_numerics_version=ds.attrs.get("numerics_version", ""),
        cq_core_version=__version__,
        numerics_version=NUMERICS_VERSION,
        equations="arXiv:2208.11722; cq-sweep docs/physics.md",
    )
    return summary
