"""Grid axes beyond σ: a sweep's points as labelled dimensions (README.md, "Sweep axes").

A sweep may vary model parameters (``lam``, ``phi``, ``r0``, …) and the run settings ``dt``,
``excess``, ``mode`` besides σ and the seed. Its cells record their point in the attrs
``grid_axes`` (JSON list of the axes, config order) and ``grid_point`` (JSON list of
``[axis, value]``, a vector axis by its index). Datasets of the whole grid carry one
dimension per axis before ``sigma``: the axis name, or ``<axis>_index`` for a vector axis
(whose values are the data variable ``<axis>``, dims ``(<axis>_index, <axis>_component)``).

:func:`stack_points` lays per-point Datasets out on those dimensions; :func:`point_attrs`
gives back the attrs of one point (its model parameters and run settings), which the
per-point analysis (the Γ fit, the theory rate) needs.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import xarray as xr

from ..models import params_to_json

__all__ = [
    "RUN_AXES",
    "axis_dim",
    "complete_grid",
    "grid_axes",
    "grid_dims",
    "grid_point",
    "grid_summary",
    "point_attrs",
    "points",
    "stack_points",
]

RUN_AXES = {"dt": ("dt", "save_every"), "excess": ("excess",), "mode": ("mode",)}
"""The run settings that may be axes, and the attributes each changes between points."""


def grid_axes(attrs: Mapping[str, Any]) -> list[str]:
    """The grid axes recorded in ``attrs`` (config order; ``[]`` for a σ × seed sweep)."""
    text = attrs.get("grid_axes")
    return list(json.loads(text)) if text else []


def grid_point(attrs: Mapping[str, Any]) -> tuple[Any, ...]:
    """A cell's value on each grid axis (a vector axis: its index), from its attrs."""
    text = attrs.get("grid_point")
    return tuple(value for _, value in json.loads(text)) if text else ()


def axis_dim(axis: str, vector: bool) -> str:
    """The dimension of a grid axis: its name, or ``<axis>_index`` for a vector axis."""
    return f"{axis}_index" if vector else axis


def grid_dims(ds: xr.Dataset) -> list[str]:
    """The grid dimensions of ``ds`` in config order (``[]`` without grid)."""
    return [axis_dim(a, f"{a}_index" in ds.dims) for a in grid_axes(ds.attrs)]


def points(ds: xr.Dataset) -> list[dict[str, int]]:
    """Positional selectors ``{grid dim: index}`` of every grid point of ``ds``."""
    dims = grid_dims(ds)
    return [
        dict(zip(dims, index, strict=True))
        for index in itertools.product(*(range(ds.sizes[d]) for d in dims))
    ]


def point_attrs(ds: xr.Dataset, selector: Mapping[str, int]) -> dict[str, Any]:
    """The attrs of one grid point of ``ds`` (from :func:`cq_core.open_sweep`).

    ``model_params`` gets the point's parameter values back (the grid's attrs hold only the
    parameters every point shares), a run axis sets its attribute, and ``grid_point``
    records the point as a cell does.
    """
    attrs = dict(ds.attrs)
    params = json.loads(attrs.get("model_params", "{}"))
    point = []
    for axis in grid_axes(attrs):
        vector = f"{axis}_index" in ds.dims
        dim = axis_dim(axis, vector)
        label = np.asarray(ds[dim].values[selector[dim]]).item()  # a number or a str
        point.append([axis, label])
        if vector:
            value = np.asarray(ds[axis].isel({dim: selector[dim]}).values)
        else:
            value = label
        if axis in RUN_AXES:
            attrs[axis] = value
        else:
            params[axis] = value
    attrs["model_params"] = params_to_json(params)
    attrs["grid_point"] = json.dumps(point)
    return attrs


def grid_summary(
    records: Sequence[Any], point_summary: Callable[[list[Any]], xr.Dataset]
) -> xr.Dataset:
    """The summary of a sweep with grid axes from its cells' statistics records.

    ``records``: :class:`cq_core.analysis.sweeps.StatisticsRecord` of every cell; they are
    grouped by grid point (their ``grid_point`` attr), ``point_summary(group)`` summarises
    each (its own Γ fit and theory rate), and the point summaries are stacked
    (:func:`stack_points`) along a dimension per axis before ``sigma``. The attrs are those
    every point shares; ``model_params`` holds the parameters no axis changes.
    """
    axes = grid_axes(records[0].attrs)
    groups: dict[tuple[Any, ...], list[Any]] = {}
    for record in records:
        if grid_axes(record.attrs) != axes:
            raise ValueError(
                f"cell statistics on different grid axes ({axes} vs "
                f"{grid_axes(record.attrs)}): they do not belong to one sweep"
            )
        groups.setdefault(grid_point(record.attrs), []).append(record)
    params = json.loads(records[0].attrs.get("model_params", "{}"))
    vectors = [a for a in axes if a not in RUN_AXES and isinstance(params.get(a), (list, dict))]
    parts = {}
    for point, group in groups.items():
        summary = point_summary(group)
        params = json.loads(group[0].attrs.get("model_params", "{}"))
        for axis, value in zip(axes, point, strict=True):
            if axis in vectors:
                values = _decoded(params[axis])
                summary = summary.assign_coords(
                    {f"{axis}_index": value, axis: (f"{axis}_component", values)}
                )
            else:
                summary = summary.assign_coords({axis: value})
        parts[point] = summary
    first = next(iter(parts.values()))
    attrs = {
        key: value
        for key, value in first.attrs.items()
        if key != "grid_point" and all(_same(p.attrs.get(key), value) for p in parts.values())
    }
    attrs["model_params"] = json.dumps(
        {key: value for key, value in params.items() if key not in axes}, sort_keys=True
    )
    attrs["grid_axes"] = records[0].attrs["grid_axes"]
    return stack_points(parts, axes, vectors=vectors, attrs=attrs)


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return np.array_equal(a, b)
    return a == b


def _decoded(value: Any) -> np.ndarray:
    """A vector parameter from its JSON form (``{"real", "imag"}`` for a complex one)."""
    if isinstance(value, Mapping) and set(value) == {"real", "imag"}:
        return np.asarray(value["real"]) + 1j * np.asarray(value["imag"])
    return np.asarray(value, dtype=float).ravel()


def _vector_values(parts: Mapping[tuple, xr.Dataset], axis: str) -> xr.DataArray | None:
    """The data variable ``<axis>`` (``<axis>_index``, ``<axis>_component``) of the parts."""
    values: dict[int, Any] = {}
    for part in parts.values():
        if axis in part.variables:
            values[int(part[f"{axis}_index"])] = part[axis].variable
    if not values:
        return None
    stacked = xr.Variable.concat([values[i] for i in sorted(values)], dim=f"{axis}_index")
    return xr.DataArray(stacked, coords={f"{axis}_index": sorted(values)})


def complete_grid(axes: Sequence[str], points: Iterable[tuple], what: str) -> list[list]:
    """The sorted values of each axis over ``points`` (tuples in ``axes`` order), checked to
    form the whole product: ``ValueError`` "<what>: missing <axis>=<value>, …" otherwise."""
    points = set(points)
    values = [sorted({point[i] for point in points}) for i in range(len(axes))]
    missing = [point for point in itertools.product(*values) if point not in points]
    if missing:
        listed = "; ".join(
            ", ".join(f"{a}={v!r}" for a, v in zip(axes, point, strict=True)) for point in missing
        )
        raise ValueError(f"{what}: missing {listed}")
    return values


def stack_points(
    parts: Mapping[tuple[Any, ...], xr.Dataset],
    axes: Sequence[str],
    *,
    vectors: Sequence[str] = (),
    attrs: Mapping[str, Any] | None = None,
) -> xr.Dataset:
    """Per-point Datasets as one, with a dimension per grid axis before the others.

    ``parts`` maps every point of the full grid (values ascending per axis; a vector axis:
    its index) to its Dataset, which holds the axis values as scalar coordinates (a vector
    axis: ``<axis>_index`` and the coordinate or variable ``<axis>``). Every part must hold
    the same times to rounding (``1e-9`` of the largest): a ``dt`` axis stores the same
    times at every dt; the first part's times label them all (``ValueError`` otherwise).
    """
    axes = list(axes)
    values = complete_grid(axes, parts, "the grid is not complete")
    reference = next(iter(parts.values()))["time"].variable
    scale = max(1.0, float(np.abs(reference.values).max(initial=0.0)))
    vector_data = {axis: _vector_values(parts, axis) for axis in vectors}

    def aligned(point: tuple[Any, ...]) -> xr.Dataset:
        ds = parts[point]
        times = ds["time"].values
        if times.shape != reference.shape or not np.allclose(
            times, reference.values, rtol=0, atol=1e-9 * scale
        ):
            where = ", ".join(f"{a}={v!r}" for a, v in zip(axes, point, strict=True))
            raise ValueError(
                f"the point {where} holds other times than the first grid point: a dt axis "
                "needs every dt to store the same times (dt values that divide the largest "
                "one; save_every counts its steps)"
            )
        ds = ds.assign_coords(time=reference).drop_vars([a for a in vectors if a in ds.variables])
        for axis in reversed(axes):
            ds = ds.expand_dims(axis_dim(axis, axis in vectors))
        return ds

    def nest(prefix: tuple[Any, ...]) -> Any:
        if len(prefix) == len(axes):
            return aligned(prefix)
        return [nest((*prefix, v)) for v in values[len(prefix)]]

    dims = [axis_dim(a, a in vectors) for a in axes]
    stacked = xr.combine_nested(
        nest(()),
        concat_dim=dims,
        data_vars="all",
        coords="minimal",
        compat="override",
        join="exact",
        combine_attrs="drop",
    )
    for axis, data in vector_data.items():
        if data is not None:
            stacked[axis] = data
    if attrs is not None:
        stacked.attrs = dict(attrs)
    order = [d for d in ("sigma", "seed", "trajectory") if d in stacked.dims]
    return stacked.transpose(*dims, *order, ...)
