"""The grid axes of a sweep summary: which dimensions they are, and one grid point's settings.

A sweep with a ``grid:`` of axes (a model parameter such as ``lam``, or a run setting ``dt``,
``excess``, ``mode``) has a summary whose variables carry every axis as a dimension before
``sigma``: ``gamma_fit`` (lam, sigma), ``coherence`` (lam, sigma, time). A sweep without a
grid has none. These helpers let the analysis and the figures treat both alike: the grid
axes are the dimensions of ``gamma_fit`` other than ``sigma``, in their stored order, and a
grid point is ``summary.sel(lam=0.5)`` (the value left as a scalar coordinate).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import numpy as np
import xarray as xr

from ..models import get_model

__all__ = [
    "RUN_AXES",
    "grid_axes",
    "grid_points",
    "point_attrs",
    "point_label",
]

RUN_AXES = ("dt", "excess", "mode")
"""Run settings that may be grid axes (every other axis is a model parameter)."""


def grid_axes(summary: xr.Dataset) -> tuple[str, ...]:
    """The grid axes of ``summary``: the dimensions of ``gamma_fit`` other than ``sigma``.

    ``()`` for a summary of an ordinary σ sweep. Without ``gamma_fit`` the dimensions of
    ``coherence`` other than ``sigma`` and ``time`` are used.
    """
    if "gamma_fit" in summary:
        dims = summary["gamma_fit"].dims
    else:
        dims = tuple(d for d in summary["coherence"].dims if d != "time")
    return tuple(str(d) for d in dims if d != "sigma")


def _value_text(value: Any) -> str:
    array = np.asarray(value)
    if array.dtype.kind in "fiu" and array.ndim == 0:
        return f"{float(array):g}"
    if array.dtype.kind in "fiuc" and array.ndim == 1:
        return "(" + ", ".join(f"{v:g}" for v in array.tolist()) + ")"
    return str(array.item() if array.ndim == 0 else array.tolist())


def point_label(point: xr.Dataset | xr.DataArray, axes: tuple[str, ...] | None = None) -> str:
    """``"lam = 0.5"`` (``"lam = 0.5, phi = 5"`` for two axes) from the scalar coordinates.

    ``axes`` defaults to every scalar coordinate that is not ``sigma``, ``time``, ``seed``.
    """
    if axes is None:
        skip = {"sigma", "time", "seed", "slice", "bin", "check"}
        axes = tuple(str(c) for c in point.coords if point[c].ndim == 0 and c not in skip)
    return ", ".join(f"{axis} = {_value_text(point[axis].values)}" for axis in axes)


def grid_points(
    summary: xr.Dataset, axes: tuple[str, ...] | None = None
) -> Iterator[tuple[str, xr.Dataset]]:
    """``(label, summary at that grid point)`` over every point of ``axes`` (default: all
    grid axes), first axis slowest. One ``("", summary)`` for a summary without grid axes."""
    axes = grid_axes(summary) if axes is None else tuple(axes)
    if not axes:
        yield "", summary
        return
    shape = [summary.sizes[a] for a in axes]
    for index in np.ndindex(*shape):
        point = summary.isel(dict(zip(axes, index, strict=True)))
        yield point_label(point, axes), point


def point_attrs(point: xr.Dataset) -> dict[str, Any]:
    """The attrs of one grid point: the summary's attrs with its axis values filled in.

    Scalar coordinates named ``mode``, ``excess`` or ``dt`` replace those attrs; a scalar
    numeric coordinate that names a scalar parameter of the model replaces it in
    ``model_params`` (JSON). Vector axes (``r0``, ``psi0``) are left as stored.
    """
    attrs = dict(point.attrs)
    scalars = {
        str(c): point[c].values.item()
        for c in point.coords
        if point[c].ndim == 0 and c not in ("sigma", "time")
    }
    for name in RUN_AXES:
        if name in scalars:
            attrs[name] = scalars[name]
    params = json.loads(attrs.get("model_params", "{}"))
    try:
        defaults = get_model(attrs["model"]).params
    except Exception:  # a user model that needs arguments, or no model name
        defaults = params
    for name, value in scalars.items():
        default = defaults.get(name)
        if default is not None and np.ndim(default) == 0 and isinstance(value, int | float):
            params[name] = float(value)
    attrs["model_params"] = json.dumps(params)
    return attrs
