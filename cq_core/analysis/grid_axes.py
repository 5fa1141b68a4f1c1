"""The grid axes of a sweep summary: which dimensions they are, and one grid point's settings.

A sweep with a ``grid:`` of axes (a model parameter such as ``lam``, or a run setting ``dt``,
``excess``, ``mode``) has a summary whose variables carry every axis as a dimension before
``sigma``: ``gamma_fit`` (lam, sigma), ``coherence`` (lam, sigma, time). A sweep without a
grid has none. These helpers let the analysis and the figures treat both alike: the grid
axes are the dimensions of ``gamma_fit`` other than ``sigma``, in their stored order, and a
grid point is ``summary.sel(lam=0.5)`` (the value left as a scalar coordinate). A vector
axis (``r0``, ``psi0``) is the dimension ``<axis>_index`` with its vectors in the data variable
``<axis>`` (dims ``<axis>_index, <axis>_component``), as :func:`cq_core.open_sweep` lays it out.
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
    "axis_name",
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


def axis_name(dim: str) -> str:
    """The config name of a grid dimension: ``r0`` for ``r0_index``, else the dimension."""
    return dim.removesuffix("_index")


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
    parts = []
    for axis in axes:
        name = axis_name(axis)
        if name != axis and name in point.variables:  # a vector axis: its vector
            parts.append(f"{name} = {_value_text(point[name].values)}")
        else:
            parts.append(f"{axis} = {_value_text(point[axis].values)}")
    return ", ".join(parts)


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
    numeric coordinate that names a parameter of the model (or an axis listed in
    ``attrs["grid_axes"]``) replaces it in ``model_params`` (JSON); a vector axis
    (``r0_index`` with the variable ``r0``) puts its vector there. Complex vectors keep the
    ``{"real", "imag"}`` form of stored parameters.
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
    listed = set(json.loads(attrs.get("grid_axes", "[]") or "[]"))
    for name, value in scalars.items():
        if name in RUN_AXES or not (name in defaults or name in listed):
            continue
        if isinstance(value, int | float) and not isinstance(value, bool):
            params[name] = value if isinstance(value, int) else float(value)
    for dim in scalars:
        name = axis_name(dim)
        if name != dim and name in point.data_vars and point[name].ndim == 1:
            vector = np.asarray(point[name].values)
            params[name] = (
                {"real": vector.real.tolist(), "imag": vector.imag.tolist()}
                if np.iscomplexobj(vector)
                else vector.tolist()
            )
    attrs["model_params"] = json.dumps(params)
    return attrs
