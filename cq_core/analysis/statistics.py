"""Per-cell statistics: the small sums from which every summary variable is rebuilt exactly.

:func:`cell_statistics` reduces one (σ, seed) cell (a Dataset as :func:`cq_core.simulate`
returns it, scalar coordinates ``sigma`` and ``seed``) to a Dataset whose size does not grow
with the number of trajectories; :func:`cq_core.analysis.summary_from_statistics` merges them
into the sweep's summary. Over the unflagged trajectories (``status == 0``) of the cell:

* ``n_traj``, ``n_kept``, ``n_flagged`` (scalars): trajectories in all, unflagged, flagged.
* ``coherence_mean``, ``coherence_m2`` (time): mean of the coherence ``2|ρ_ab(t)|`` and the
  sum of squared deviations from it, ``M2 = Σ_k (c_k − c̄)²``; ``sigma_z_mean``,
  ``sigma_z_m2`` (time) the same for ⟨σz⟩. Cells merge exactly (Chan et al.):
  ``n = Σ n_c``, ``m = Σ n_c m_c / n``, ``M2 = Σ M2_c + Σ n_c (m_c − m)²``.
* ``coherence_factor`` (rank, fit_time): an upper-triangular ``R`` with
  ``Rᵀ R = Σ_k d_k d_kᵀ``, ``d_k = c_k − c̄`` over the fit times (``t > 0`` inside the fit
  window): the co-moment matrix of the coherence across times, which the standard error of
  the fitted Γ needs (its influence function is linear in ``c_k``; docs/physics.md,
  "Decoherence rate"). ``rank = min(n_traj, fit times)``; from a QR factorisation, which keeps
  the quadratic forms as accurate as summing over the trajectories themselves.
* ``hist_count`` (slice, bin), ``hist_n`` (slice): counts of ⟨σz⟩ in the histogram bins at
  the time slices and the number of finite values.
* ``born_positive``: unflagged trajectories with ⟨σz⟩ > 0 at the last time; ``born_weight``:
  the largest ``(1 + ⟨σz⟩_0) / 2`` (the Born weight of level a).

The attrs record the run (model, parameters, dt, …), ``cell_hash`` when the cell has one, the
analysis settings and their :func:`settings_hash`.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import xarray as xr

from .observables import pair_coherence, sigma_z

__all__ = [
    "ANALYSIS_KEYS",
    "STATISTICS_DIMS",
    "STATISTICS_VERSION",
    "analysis_settings",
    "cell_statistics",
    "MAX_FIT_TIMES",
    "fit_times",
    "settings_hash",
    "slice_indices",
]

STATISTICS_VERSION = 1
"""Version of the per-cell statistics' layout (part of :func:`settings_hash`)."""
ANALYSIS_KEYS = ("time_slices", "hist_bins", "fit_window")
"""The analysis settings a summary depends on (``cq_core.sweep.check_analysis`` returns them)."""
RUN_ATTRS = (
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
    "numerics_version",
    "cell_hash",
    "grid_axes",
    "grid_point",
)
"""Attributes of a cell its statistics keep (the summary's attrs come from them)."""
STATISTICS_DIMS = {
    "n_traj": (),
    "n_kept": (),
    "born_positive": (),
    "n_flagged": (),
    "born_weight": (),
    "coherence_mean": ("time",),
    "coherence_m2": ("time",),
    "sigma_z_mean": ("time",),
    "sigma_z_m2": ("time",),
    "coherence_factor": ("rank", "fit_time"),
    "hist_count": ("slice", "bin"),
    "hist_n": ("slice",),
}
"""The variables of a cell's statistics and their dimensions."""
DEFAULT_BLOCK = 4096
"""Trajectories read at a time from an in-memory cell (a Dask-backed one uses its chunks)."""


def analysis_settings(settings: Mapping[str, Any]) -> dict[str, Any]:
    """Check and normalise the analysis settings of a summary.

    ``settings`` holds ``time_slices`` (non-empty list of times, model units), ``hist_bins``
    (integer ≥ 1) and optionally ``fit_window`` (``[t_start, t_end]``, ``t_start < t_end``,
    or None). Returns ``{"time_slices": [float…], "hist_bins": int, "fit_window": [float,
    float] | None}``; raises ``ValueError`` naming the key and what it allows.
    """
    if not isinstance(settings, Mapping):
        raise ValueError(f"analysis settings must be a mapping, got {settings!r}")
    unknown = sorted(set(settings) - set(ANALYSIS_KEYS))
    if unknown:
        raise ValueError(
            f"unknown analysis setting(s) {', '.join(map(str, unknown))}; valid keys: "
            f"{', '.join(ANALYSIS_KEYS)}"
        )
    slices = settings.get("time_slices")
    if (
        isinstance(slices, (str, bytes))
        or not isinstance(slices, (Sequence, np.ndarray))
        or len(slices) == 0
        or not all(_is_finite_number(t) for t in slices)
    ):
        raise ValueError(f"time_slices must be a non-empty list of times, got {slices!r}")
    bins = settings.get("hist_bins")
    if isinstance(bins, bool) or not isinstance(bins, (int, np.integer)) or bins < 1:
        raise ValueError(f"bins (hist_bins) must be an integer >= 1, got {bins!r}")
    window = settings.get("fit_window")
    if window is not None:
        if (
            isinstance(window, (str, bytes))
            or not isinstance(window, (Sequence, np.ndarray))
            or len(window) != 2
            or not all(_is_finite_number(t) for t in window)
            or not float(window[0]) < float(window[1])
        ):
            raise ValueError(
                f"fit_window must be [t_start, t_end] with t_start < t_end, got {window!r}"
            )
        window = [float(t) for t in window]
    return {
        "time_slices": [float(t) for t in slices],
        "hist_bins": int(bins),
        "fit_window": window,
    }


def _is_finite_number(value: Any) -> bool:
    return (
        not isinstance(value, bool)
        and isinstance(value, (int, float, np.integer, np.floating))
        and math.isfinite(value)
    )


def settings_hash(settings: Mapping[str, Any]) -> str:
    """sha256 (hex) of the normalised analysis settings and :data:`STATISTICS_VERSION`."""
    payload = {"settings": analysis_settings(settings), "statistics_version": STATISTICS_VERSION}
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def slice_indices(times: np.ndarray, time_slices: Sequence[float]) -> np.ndarray:
    """Index of the stored time nearest to each time slice (``ValueError`` if one lies outside)."""
    slices = np.asarray(time_slices, dtype=float)
    step = float(np.max(np.diff(times))) if times.size > 1 else 0.0
    outside = slices[(slices < times[0] - 1e-12) | (slices > times[-1] + 1e-9 * max(1, step))]
    if outside.size:
        raise ValueError(
            f"time_slices {outside.tolist()} lie outside the stored times "
            f"[{times[0]!r}, {times[-1]!r}]"
        )
    return np.abs(times[None, :] - slices[:, None]).argmin(axis=1)


MAX_FIT_TIMES = 100
"""Stored times the Γ fit uses at most: evenly spaced over the window's. Neighbouring stored
times carry nearly the same information, and each cell's statistics keep a (rank, fit time)
factor of the coherence's co-moments, whose cost grows with the square of the fit times."""


def fit_times(times: np.ndarray, fit_window: Sequence[float] | None) -> np.ndarray:
    """Boolean mask of the stored times the Γ fit uses: ``t > 0`` inside the fit window, at
    most :data:`MAX_FIT_TIMES` of them, evenly spaced by index (first and last kept)."""
    mask = times > 0
    if fit_window is not None:
        mask &= (times >= fit_window[0]) & (times <= fit_window[1])
    candidates = np.flatnonzero(mask)
    if candidates.size > MAX_FIT_TIMES:
        spread = np.round(np.linspace(0, candidates.size - 1, MAX_FIT_TIMES)).astype(int)
        chosen = candidates[spread]
        mask = np.zeros_like(mask)
        mask[chosen] = True
    return mask


def pool_moments(
    n: np.ndarray, mean: np.ndarray, m2: np.ndarray, axis: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Merge counts, means and sums of squared deviations of parts along ``axis``.

    ``n`` has the shape of ``mean`` without its trailing dimensions; parts with ``n = 0``
    contribute nothing. Returns the pooled ``n``, mean (0 where ``n = 0``) and ``M2``.
    """
    extra = mean.ndim - n.ndim
    weights = n.reshape(n.shape + (1,) * extra).astype(float)
    total = n.sum(axis=axis)
    total_w = np.expand_dims(total, axis).reshape(np.expand_dims(total, axis).shape + (1,) * extra)
    with np.errstate(invalid="ignore", divide="ignore"):
        pooled = np.where(total_w > 0, (weights * mean).sum(axis=axis, keepdims=True) / total_w, 0)
    spread = (weights * (mean - pooled) ** 2).sum(axis=axis)
    return total, np.squeeze(pooled, axis=axis), m2.sum(axis=axis) + spread


def _moments(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and ``Σ (x − x̄)²`` over axis 0 (zeros for no rows); exact zero for equal rows."""
    if values.shape[0] == 0:
        return np.zeros(values.shape[1:]), np.zeros(values.shape[1:])
    deviation = values - values[0]
    offset = deviation.mean(axis=0)
    return values[0] + offset, ((deviation - offset) ** 2).sum(axis=0)


def _triangular(rows: np.ndarray, rank: int) -> np.ndarray:
    """``R`` (rank, w) with ``Rᵀ R = rowsᵀ rows`` (QR), zero rows appended up to ``rank``."""
    width = rows.shape[1]
    out = np.zeros((rank, width))
    if rows.shape[0] and width:
        factor = np.linalg.qr(rows, mode="r")
        out[: factor.shape[0]] = factor[:rank]
    return out


def _block_statistics(
    block: xr.Dataset, indices: np.ndarray, edges: np.ndarray, window: np.ndarray, rank: int
) -> dict[str, Any]:
    """The statistics of one in-memory block of trajectories (NumPy arrays, see module doc)."""
    keep = block["status"].values == 0
    coherence = pair_coherence(block).transpose("trajectory", "time").values[keep]
    values = sigma_z(block).transpose("trajectory", "time").values[keep]
    coherence_mean, coherence_m2 = _moments(coherence)
    sigma_z_mean, sigma_z_m2 = _moments(values)
    counts = np.zeros((len(indices), len(edges) - 1), dtype=np.int64)
    finite_n = np.zeros(len(indices), dtype=np.int64)
    for k, index in enumerate(indices):
        finite = values[:, index][np.isfinite(values[:, index])]
        counts[k] = np.histogram(np.clip(finite, edges[0], edges[-1]), bins=edges)[0]
        finite_n[k] = finite.size
    weights = (1.0 + values[:, 0]) / 2.0
    weights = weights[np.isfinite(weights)]
    return {
        "n_traj": keep.size,
        "n_kept": int(keep.sum()),
        "coherence_mean": coherence_mean,
        "coherence_m2": coherence_m2,
        "sigma_z_mean": sigma_z_mean,
        "sigma_z_m2": sigma_z_m2,
        "coherence_factor": _triangular(coherence[:, window] - coherence_mean[window], rank),
        "hist_count": counts,
        "hist_n": finite_n,
        "born_positive": int((values[:, -1] > 0).sum()),
        "born_weight": float(weights.max()) if weights.size else math.nan,
    }


def _merge_blocks(a: dict[str, Any], b: dict[str, Any], window: np.ndarray) -> dict[str, Any]:
    """Statistics of two disjoint blocks of trajectories of one cell, merged."""
    n = np.array([a["n_kept"], b["n_kept"]])
    merged = dict(a)
    for name in ("coherence", "sigma_z"):
        means = np.stack([a[f"{name}_mean"], b[f"{name}_mean"]])
        m2 = np.stack([a[f"{name}_m2"], b[f"{name}_m2"]])
        _, merged[f"{name}_mean"], merged[f"{name}_m2"] = pool_moments(n, means, m2)
    total = n.sum()
    between = np.zeros((1, int(window.sum())))
    if total > 0:
        delta = (a["coherence_mean"] - b["coherence_mean"])[window]
        between[0] = math.sqrt(n[0] * n[1] / total) * delta
    rows = np.concatenate([a["coherence_factor"], b["coherence_factor"], between])
    merged["coherence_factor"] = _triangular(rows, a["coherence_factor"].shape[0])
    for name in ("n_traj", "n_kept", "hist_count", "hist_n", "born_positive"):
        merged[name] = a[name] + b[name]
    merged["born_weight"] = float(np.fmax(a["born_weight"], b["born_weight"]))
    return merged


def _one_cell(ds: xr.Dataset) -> xr.Dataset:
    for dim in ("sigma", "seed"):
        if dim in ds.dims:
            if ds.sizes[dim] != 1:
                raise ValueError(
                    f"cell_statistics takes one cell: dimension {dim!r} has {ds.sizes[dim]} "
                    "values (select one cell with ds.isel(sigma=i, seed=j))"
                )
            ds = ds.squeeze(dim)
        if dim not in ds.coords:
            raise ValueError(f"cell_statistics needs the scalar coordinate {dim!r} of the cell")
    missing = [name for name in ("status", "time") if name not in ds.variables]
    if "psi" not in ds and "rho" not in ds:
        missing.append("psi or rho")
    if missing:
        raise ValueError(f"cell_statistics needs the variables {', '.join(missing)}")
    return ds


def _blocks(ds: xr.Dataset, state: str, block_size: int | None) -> list[tuple[int, int]]:
    n = ds.sizes["trajectory"]
    chunks = ds[state].chunks
    if block_size is None and chunks is not None:
        sizes = chunks[ds[state].get_axis_num("trajectory")]
        starts = np.concatenate([[0], np.cumsum(sizes)])
        return [(int(s), int(e)) for s, e in zip(starts[:-1], starts[1:], strict=True)]
    size = DEFAULT_BLOCK if block_size is None else int(block_size)
    return [(start, min(start + size, n)) for start in range(0, n, size)] or [(0, 0)]


def cell_statistics(
    ds: xr.Dataset, settings: Mapping[str, Any], *, block_size: int | None = None
) -> xr.Dataset:
    """The statistics of one cell (module doc) under the analysis ``settings``.

    Parameters
    ----------
    ds
        One cell: dims ``trajectory, time`` and the state's (``psi`` or ``rho``), ``status``;
        scalar (or length-1) coordinates ``sigma`` and ``seed``; NumPy- or Dask-backed.
    settings
        ``time_slices``, ``hist_bins``, ``fit_window`` (:func:`analysis_settings`).
    block_size
        Trajectories read at a time (default: the Dask chunks, else 4096): memory is bounded
        by one block, and the result does not depend on it beyond rounding.

    Returns
    -------
    xarray.Dataset
        Scalars ``n_traj, n_kept, n_flagged, born_positive, born_weight``;
        ``coherence_mean, coherence_m2, sigma_z_mean, sigma_z_m2`` (time);
        ``coherence_factor`` (rank, fit_time); ``hist_count`` (slice, bin), ``hist_n`` (slice);
        coordinates ``sigma``, ``seed``, ``time``, ``fit_time``; its size is independent of
        the number of trajectories once that exceeds the number of fit times.
    """
    ds = _one_cell(ds)
    settings = analysis_settings(settings)
    times = ds["time"].values
    window = fit_times(times, settings["fit_window"])
    args = (
        slice_indices(times, settings["time_slices"]),
        np.linspace(-1.0, 1.0, settings["hist_bins"] + 1),
        window,
        min(ds.sizes["trajectory"], int(window.sum())),
    )
    state = "psi" if "psi" in ds else "rho"
    parts = [
        _block_statistics(
            ds[[state, "status"]].isel(trajectory=slice(start, stop)).compute(), *args
        )
        for start, stop in _blocks(ds, state, block_size)
    ]
    return _as_dataset(_merge_all(parts, window), ds, settings, window)


def _merge_all(parts: list[dict[str, Any]], window: np.ndarray) -> dict[str, Any]:
    merged = parts[0]
    for part in parts[1:]:
        merged = _merge_blocks(merged, part, window)
    return merged


def _as_dataset(
    stats: dict[str, Any], ds: xr.Dataset, settings: dict[str, Any], window: np.ndarray
) -> xr.Dataset:
    times = ds["time"]
    scalars = {name: np.int64(stats[name]) for name in ("n_traj", "n_kept", "born_positive")}
    data = {
        **{name: ((), value) for name, value in scalars.items()},
        "n_flagged": ((), np.int64(stats["n_traj"] - stats["n_kept"])),
        "born_weight": ((), np.float64(stats["born_weight"])),
        **{
            name: (("time",), stats[name])
            for name in ("coherence_mean", "coherence_m2", "sigma_z_mean", "sigma_z_m2")
        },
        "coherence_factor": (("rank", "fit_time"), stats["coherence_factor"]),
        "hist_count": (("slice", "bin"), stats["hist_count"]),
        "hist_n": (("slice",), stats["hist_n"]),
    }
    attrs = {key: ds.attrs[key] for key in RUN_ATTRS if key in ds.attrs}
    attrs.update(
        analysis_settings=json.dumps(settings, sort_keys=True),
        settings_hash=settings_hash(settings),
        statistics_version=STATISTICS_VERSION,
    )
    return xr.Dataset(
        data,
        coords={
            "sigma": float(ds["sigma"].values),
            "seed": int(ds["seed"].values),
            "time": times.variable.to_base_variable(),
            "fit_time": ("fit_time", times.values[window]),
            "slice": ("slice", np.asarray(settings["time_slices"], dtype=float)),
        },
        attrs=attrs,
    )
