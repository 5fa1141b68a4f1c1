"""Statistics of many cells: of a whole sweep in one Dask graph, and stacked for merging.

:func:`sweep_statistics` gives :func:`cq_core.analysis.cell_statistics` of every cell of a
sweep opened with :func:`cq_core.open_sweep`; :func:`stack_statistics` puts the statistics
of several cells along one dimension ``cell`` (what
:func:`cq_core.analysis.summary_from_statistics` merges).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import xarray as xr

from .observables import basis_pair
from .statistics import (
    STATISTICS_DIMS,
    _as_dataset,
    _block_statistics,
    _merge_all,
    analysis_settings,
    cell_statistics,
    fit_times,
    slice_indices,
)

__all__ = [
    "SHARED_ATTRS",
    "StatisticsRecord",
    "record_dataset",
    "stack_statistics",
    "statistics_record",
    "sweep_statistics",
]

SHARED_ATTRS = (
    "model",
    "model_params",
    "dt",
    "t_final",
    "save_every",
    "method",
    "mode",
    "excess",
    "base_seed",
    "numerics_version",
)
"""Attributes every cell of one summary must share (they fix everything but σ and the seed)."""


def sweep_statistics(ds: xr.Dataset, settings: Mapping[str, Any]) -> list[xr.Dataset]:
    """:func:`cell_statistics` of every (σ, seed) cell of a sweep, σ-major.

    ``ds`` has dims ``sigma, seed, trajectory, time`` (:func:`cq_core.open_sweep`). A
    Dask-backed sweep is reduced in one ``dask.compute`` whose tasks each reduce one stored
    trajectory chunk to its (small) statistics: memory stays bounded by a few chunks, and the
    sweep's graph is optimised once (a compute per cell would cull all of it each time).
    """
    settings = analysis_settings(settings)
    state = "psi" if "psi" in ds else "rho"
    if ds[state].chunks is None:
        return [
            cell_statistics(ds.isel(sigma=i, seed=j), settings)
            for i in range(ds.sizes["sigma"])
            for j in range(ds.sizes["seed"])
        ]
    import dask
    import dask.array

    times = ds["time"].values
    window = fit_times(times, settings["fit_window"])
    args = (
        slice_indices(times, settings["time_slices"]),
        np.linspace(-1.0, 1.0, settings["hist_bins"] + 1),
        window,
        min(ds.sizes["trajectory"], int(window.sum())),
    )
    values = ds[state].transpose("sigma", "seed", "trajectory", "time", ...)
    whole = {axis: -1 for axis in range(3, values.ndim)}
    data = values.data.rechunk({0: 1, 1: 1, **whole})
    status = dask.array.asarray(ds["status"].transpose("sigma", "seed", "trajectory").data)
    status = status.rechunk((1, 1, data.chunks[2]))
    chunks, flags = data.to_delayed(), status.to_delayed()
    rest = (0,) * (values.ndim - 3)
    frame = (state, values.dims[2:], list(basis_pair(ds)))
    tasks = [
        [
            dask.delayed(_chunk_statistics)(chunks[(i, j, k, *rest)], flags[i, j, k], frame, args)
            for k in range(flags.shape[2])
        ]
        for i in range(ds.sizes["sigma"])
        for j in range(ds.sizes["seed"])
    ]
    (results,) = dask.compute(tasks)
    shells = [
        xr.Dataset(
            coords={"time": ds["time"], "sigma": ds["sigma"][i], "seed": ds["seed"][j]},
            attrs=ds.attrs,
        )
        for i in range(ds.sizes["sigma"])
        for j in range(ds.sizes["seed"])
    ]
    return [
        _as_dataset(_merge_all(parts, window), shell, settings, window)
        for shell, parts in zip(shells, results, strict=True)
    ]


def _chunk_statistics(values, status, frame, args) -> dict[str, Any]:
    """:func:`_block_statistics` of one (1, 1, trajectory, time, …) chunk of a sweep."""
    state, dims, pair = frame
    block = xr.Dataset(
        {state: (dims, values[0, 0]), "status": (("trajectory",), status[0, 0])},
        attrs={"basis_pair": pair},
    )
    return _block_statistics(block, *args)


@dataclass(frozen=True)
class StatisticsRecord:
    """One cell's statistics as plain arrays (what files hold; cheaper than a Dataset).

    ``arrays`` holds every variable of :data:`STATISTICS_DIMS` and the coordinates ``time``,
    ``fit_time``, ``slice``; ``attrs`` those of :func:`cq_core.analysis.cell_statistics`.
    """

    arrays: Mapping[str, np.ndarray]
    sigma: float
    seed: int
    attrs: Mapping[str, Any]
    time_attrs: Mapping[str, Any]


COORDS = ("time", "fit_time", "slice")


def statistics_record(stats: xr.Dataset) -> StatisticsRecord:
    """The :class:`StatisticsRecord` of one cell's statistics Dataset."""
    arrays = {name: stats[name].values for name in (*STATISTICS_DIMS, *COORDS)}
    return StatisticsRecord(
        arrays, float(stats["sigma"]), int(stats["seed"]), stats.attrs, stats["time"].attrs
    )


def record_dataset(record: StatisticsRecord) -> xr.Dataset:
    """Inverse of :func:`statistics_record`."""
    arrays = record.arrays
    return xr.Dataset(
        {name: (dims, arrays[name]) for name, dims in STATISTICS_DIMS.items()},
        coords={
            "sigma": record.sigma,
            "seed": record.seed,
            "time": ("time", arrays["time"], dict(record.time_attrs)),
            "fit_time": ("fit_time", arrays["fit_time"]),
            "slice": ("slice", arrays["slice"]),
        },
        attrs=dict(record.attrs),
    )


def stack_statistics(stats: Sequence[xr.Dataset | StatisticsRecord] | xr.Dataset) -> xr.Dataset:
    """The statistics of several cells as one Dataset along a new dimension ``cell``.

    ``stats``: Datasets of :func:`cq_core.analysis.cell_statistics` or their
    :class:`StatisticsRecord`. Coordinates ``sigma`` and ``seed`` become ``(cell,)``; the
    attrs the cells share are kept (``cell_hash`` and any other differing one dropped).
    ``ValueError`` if the cells were computed with different analysis settings, hold
    different times or differ in one of :data:`SHARED_ATTRS`.
    """
    if isinstance(stats, xr.Dataset):
        return stats if "cell" in stats.dims else stack_statistics([stats])
    records = [s if isinstance(s, StatisticsRecord) else statistics_record(s) for s in stats]
    if not records:
        raise ValueError("no cell statistics to merge")
    first = records[0]
    shapes = {name: values.shape for name, values in first.arrays.items()}
    attrs = dict(first.attrs)
    for other in records[1:]:
        _check_same_sweep(first, other, shapes)
        for key in list(attrs):
            if _differs(other.attrs.get(key), attrs[key]):
                del attrs[key]
    data = {
        name: (("cell", *dims), np.stack([r.arrays[name] for r in records]))
        for name, dims in STATISTICS_DIMS.items()
    }
    coords = {
        "time": ("time", first.arrays["time"], dict(first.time_attrs)),
        "fit_time": ("fit_time", first.arrays["fit_time"]),
        "slice": ("slice", first.arrays["slice"]),
        "sigma": ("cell", np.array([r.sigma for r in records], dtype=float)),
        "seed": ("cell", np.array([r.seed for r in records], dtype=np.int64)),
    }
    return xr.Dataset(data, coords=coords, attrs=attrs)


def _check_same_sweep(
    first: StatisticsRecord, other: StatisticsRecord, shapes: Mapping[str, tuple]
) -> None:
    where = f"sigma={other.sigma!r}, seed={other.seed}"
    if other.attrs.get("settings_hash") != first.attrs.get("settings_hash"):
        raise ValueError(
            f"cell statistics computed with different analysis settings: "
            f"{first.attrs.get('analysis_settings')} vs {other.attrs.get('analysis_settings')} "
            f"({where})"
        )
    if any(other.arrays[name].shape != shape for name, shape in shapes.items()) or not (
        np.array_equal(other.arrays["time"], first.arrays["time"])
    ):
        raise ValueError(
            f"cell statistics of {where} hold other times or sizes than those of "
            f"sigma={first.sigma!r}, seed={first.seed}: the cells do not belong to one sweep"
        )
    for key in SHARED_ATTRS:
        if _differs(other.attrs.get(key), first.attrs.get(key)):
            raise ValueError(
                f"cells sigma={first.sigma!r}, seed={first.seed} and {where} differ in "
                f"{key!r} ({first.attrs.get(key)!r} vs {other.attrs.get(key)!r}): they do "
                "not belong to one sweep"
            )


def _differs(a: Any, b: Any) -> bool:
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return not np.array_equal(a, b)
    return a != b
