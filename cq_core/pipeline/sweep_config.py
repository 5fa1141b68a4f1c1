"""Check one ``sweeps.<name>`` block of the pipeline configuration and return its cells.

:func:`sweep_cell_specs` and :func:`check_analysis` check one ``sweeps.<name>`` block of the
pipeline configuration (the Snakefile calls them while parsing, so ``snakemake -n`` already
fails on a bad value) and return its cells; every error names the configuration key.

A sweep's cells are the points of ``(grid axes…, σ, seed)``: ``grid`` (optional) maps axes to
lists of values; an axis is a model parameter or one of the run settings ``dt``, ``excess``,
``mode`` (:func:`grid_points`).
"""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from ..models import get_model, is_registered, registered_models
from .cell_spec import RUN_AXES, CellSpec
from .layout import axis_label, sigma_label

__all__ = [
    "RUN_KEYS",
    "GridPoint",
    "check_analysis",
    "grid_points",
    "sigma_label",
    "sweep_cell_specs",
]


RUN_KEYS = (
    "n_traj",
    "t_final",
    "dt",
    "save_every",
    "method",
    "mode",
    "excess",
    "backend",
    "seed",
)
"""Keys of a sweep that :func:`cq_core.check_run` checks (its messages start with the key)."""


DEFAULT_DT = 1.0e-4
"""``dt`` of a sweep that sets none (and has no dt axis)."""


def _model_exists(name: Any) -> bool:
    return is_registered(name)  # a declared builder only; nothing is imported here


def _failing_key(message: str, sigma_index: int, seed_index: int) -> str:
    """The configuration key a :func:`cq_core.check_run` message is about."""
    first = message.split(" ", 1)[0]
    if first == "sigma":
        return f"sigma[{sigma_index}]"
    if first == "seed":
        return f"seeds[{seed_index}]"
    if first in RUN_KEYS:
        return first
    if "would store" in message:  # the memory check: too many trajectories or saved times
        return "n_traj"
    return "params"


def _config_error(name: str, key: str, err: Exception | str) -> ValueError:
    where = "base_seed" if key == "base_seed" else f"sweeps.{name}.{key}"
    return ValueError(f"invalid config: {where}: {err}")


@dataclass(frozen=True)
class GridPoint:
    """One point of a sweep's grid axes.

    ``params``: the model parameters set by the point (merged over the sweep's ``params``);
    ``run``: the run settings it sets (``dt``, ``excess``, ``mode``, and ``save_every``
    scaled for a ``dt`` axis); ``grid``: the cell's ``(axis, index)`` pairs
    (:attr:`CellSpec.grid`); ``keys``: the configuration key of each axis value.
    """

    params: Mapping[str, Any]
    run: Mapping[str, Any]
    grid: tuple[tuple[str, int | None], ...]
    keys: Mapping[str, str]


def _canonical(value: Any) -> str:
    """A value as compared for duplicates: numbers as floats, vectors element-wise."""

    def plain(v: Any) -> Any:
        if isinstance(v, (list, tuple)):
            return [plain(x) for x in v]
        if isinstance(v, Mapping):
            return {k: plain(x) for k, x in v.items()}
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            return float(v)
        return v

    return json.dumps(plain(value), sort_keys=True)


def _check_axis(
    name: str, sweep: Mapping[str, Any], axis: Any, values: Any, model: str, params: Mapping
) -> list[str | None]:
    """Check one ``grid.<axis>`` entry; return its values' path labels' indices (vectors)."""
    key = f"grid.{axis}"
    if axis in ("sigma", "seeds", "seed"):
        raise _config_error(
            name,
            key,
            f"sigma and seeds are the axes of every sweep: list them in "
            f"sweeps.{name}.{'sigma' if axis == 'sigma' else 'seeds'}",
        )
    if axis in params:
        raise _config_error(
            name, key, f"{axis!r} is also set in sweeps.{name}.params: set it in one place"
        )
    if axis in RUN_AXES and axis in sweep:
        raise _config_error(
            name, key, f"{axis!r} is also set as sweeps.{name}.{axis}: set it in one place"
        )
    if not isinstance(values, list) or not values:
        raise _config_error(name, key, f"give a non-empty list of values, got {values!r}")
    vectors = [isinstance(v, list) for v in values]
    if any(vectors) and not all(vectors):
        raise _config_error(name, key, "mix of vectors and scalars: give one kind")
    seen: dict[str, int] = {}
    for i, value in enumerate(values):
        canonical = _canonical(value)
        if canonical in seen:
            raise _config_error(
                name,
                f"{key}[{i}]",
                f"duplicate of sweeps.{name}.{key}[{seen[canonical]}] = {value!r}",
            )
        seen[canonical] = i
        try:
            axis_label(value, i)
        except ValueError as err:
            raise _config_error(name, f"{key}[{i}]", err) from err
        if axis in RUN_AXES:
            continue
        try:
            get_model(model, **{**params, axis: value})
        except (ValueError, TypeError) as err:
            message = str(err)
            if "unknown parameter" in message and i == 0:
                valid = message.split("valid parameters: ", 1)[-1]
                raise _config_error(
                    name,
                    key,
                    f"unknown axis {axis!r}; allowed axes: the run settings "
                    f"{', '.join(RUN_AXES)} or a parameter of model {model!r}: {valid}",
                ) from err
            raise _config_error(name, f"{key}[{i}]", err) from err
    return [None] * len(values) if not vectors[0] else list(range(len(values)))


def grid_points(name: str, sweep: Mapping[str, Any]) -> list[GridPoint]:
    """The points of ``sweeps.<name>.grid`` in config order (the last axis fastest).

    One point (no axis) without ``grid``. Refused, naming ``sweeps.<name>.grid.<axis>``: an
    unknown axis (the message lists the allowed ones), ``sigma``/``seeds`` as an axis, an
    axis also set in ``params`` or as a run key, an empty list, a duplicate value, a value
    the model rejects, a string that cannot name a directory. With a ``dt`` axis,
    ``save_every`` counts steps of the largest dt (each cell stores every
    ``save_every · dt_max / dt``-th step), so every dt value stores the same times; every dt
    must then divide the largest one.
    """
    grid = sweep.get("grid") or {}
    if not isinstance(grid, Mapping):
        raise _config_error(name, "grid", f"must be a mapping of axes to lists, got {grid!r}")
    model, params = sweep["model"], sweep.get("params") or {}
    indices = {
        axis: _check_axis(name, sweep, axis, values, model, params) for axis, values in grid.items()
    }
    save_every = sweep.get("save_every", 1)
    steps: dict[int, int] = {}
    if "dt" in grid:
        dts = grid["dt"]
        largest = max(float(dt) for dt in dts if isinstance(dt, (int, float)))
        for i, dt in enumerate(dts):
            ratio = largest / float(dt) if isinstance(dt, (int, float)) and dt > 0 else math.nan
            if not (ratio >= 1 and abs(ratio - round(ratio)) <= 1e-9 * ratio):
                raise _config_error(
                    name,
                    f"grid.dt[{i}]",
                    f"{dt!r} does not divide the largest dt {largest!r}: with a dt axis, "
                    "save_every counts steps of the largest dt, so that every dt stores the "
                    "same times",
                )
            steps[i] = round(ratio)
    points = []
    axes = list(grid)
    for combination in itertools.product(*(range(len(grid[axis])) for axis in axes)):
        point_params, run, keys = dict(params), {}, {}
        for axis, i in zip(axes, combination, strict=True):
            target = run if axis in RUN_AXES else point_params
            target[axis] = grid[axis][i]
            keys[axis] = f"grid.{axis}[{i}]"
            if axis == "dt" and isinstance(save_every, int):
                run["save_every"] = save_every * steps[i]
        cell_grid = tuple(
            (axis, indices[axis][i]) for axis, i in zip(axes, combination, strict=True)
        )
        points.append(GridPoint(point_params, run, cell_grid, keys))
    return points


def sweep_cell_specs(
    name: str, sweep: Mapping[str, Any], *, base_seed: int = 0
) -> dict[tuple[str, int], CellSpec]:
    """Check one ``sweeps.<name>`` block and return its cells by ``(point label, seed)``.

    Builds the model (``get_model``), checks every grid point (:func:`grid_points`), every
    σ and every seed with ``check_run`` and rejects duplicate σ (after ``float``) or seed
    values. Without ``grid`` the point label is σ's label (``sigma_label``); with one it is
    ``<axis>=<label>/…/sigma=<σ>`` (:func:`cq_core.pipeline.layout.point_label`). The cells
    come back with their kernel resolved (``backend="auto"`` becomes ``"generated"`` or ``"numpy"``
    here), so the pipeline's parameters name the kernel that computes the numbers.
    Raises ``ValueError`` naming the key, e.g. ``invalid config: sweeps.hist.sigma[1]: sigma
    must be > 0, got -1.0``.
    """
    model = sweep.get("model")
    if not _model_exists(model):
        raise _config_error(
            name,
            "model",
            f"unknown model {model!r}; valid models: {', '.join(registered_models())} "
            "(declare a user model with @cq_core.register_model or an entry point, "
            "see docs/models.md)",
        )
    params = sweep.get("params") or {}
    if not isinstance(params, Mapping):
        raise _config_error(name, "params", f"must be a mapping, got {params!r}")
    try:
        get_model(model, **params)
    except (ValueError, TypeError) as err:
        raise _config_error(name, "params", err) from err
    points = grid_points(name, sweep)
    for key in ("sigma", "seeds", "n_traj", "t_final"):
        if key not in sweep:
            raise _config_error(name, key, "missing")
    sigmas, seeds = list(sweep["sigma"]), list(sweep["seeds"])
    for key, values in (("sigma", sigmas), ("seeds", seeds)):
        if not values:
            raise _config_error(name, key, "give at least one value")
    for j, seed in enumerate(seeds):
        if seed in seeds[:j]:
            raise _config_error(name, f"seeds[{j}]", f"duplicate seed {seed!r}")
    run = {key: sweep[key] for key in RUN_KEYS if key in sweep and key != "seed"}
    if "dt" not in run and "dt" not in points[0].run:
        run["dt"] = DEFAULT_DT  # the schema's default, which a dt grid axis must not meet
    cells: dict[tuple[str, int], CellSpec] = {}
    backend = None
    for point in points:
        labels: dict[str, int] = {}
        for i, sigma in enumerate(sigmas):
            for j, seed in enumerate(seeds):
                spec = CellSpec(
                    model=model,
                    params=point.params,
                    sigma=sigma,
                    seed=seed,
                    base_seed=base_seed,
                    grid=point.grid,
                    **{**run, **point.run},
                )
                # check_run's checks of σ and of the seed are independent of each other, so
                # the cells of the first seed and of the first σ check every value: a
                # 10 000-cell sweep is checked in 200 calls per grid point, not 10 000
                if i == 0 or j == 0:
                    try:
                        settings = spec.check()
                    except ValueError as err:
                        key = "base_seed" if str(err).startswith("base_seed") else None
                        key = key or _failing_key(str(err), i, j)
                        key = point.keys.get(key, key)  # a run axis: the grid value's key
                        raise _config_error(name, key, err) from err
                    backend = settings.backend
                spec = replace(spec, backend=backend)  # "auto" fixed for this machine
                label = sigma_label(spec.sigma)
                if j == 0 and label in labels:
                    raise _config_error(
                        name, f"sigma[{i}]", f"duplicate of sigma[{labels[label]}] = {sigma!r}"
                    )
                labels[label] = i
                cells[(spec.point_label, spec.seed)] = spec
    return cells


def check_analysis(name: str, sweep: Mapping[str, Any]) -> dict[str, Any]:
    """Check ``sweeps.<name>.analysis`` against the sweep; return the summary's settings.

    Time slices must lie in ``[0, t_final]``, ``hist_bins`` be an integer >= 1 and the fit
    window ``[t_start, t_end]`` satisfy ``0 <= t_start < t_end <= t_final``. Returns
    ``{"time_slices", "hist_bins", "fit_window"}`` (the figures list is left out: it does not
    change the summary).
    """
    analysis = sweep.get("analysis") or {}
    t_final = float(sweep["t_final"])
    tolerance = 1e-9 * max(1.0, t_final)
    slices = analysis.get("time_slices", [0.0, t_final])
    if not isinstance(slices, list) or not slices:
        raise _config_error(name, "analysis.time_slices", "give a non-empty list of times")
    for i, t in enumerate(slices):
        if (
            isinstance(t, bool)
            or not isinstance(t, (int, float))
            or not math.isfinite(t)
            or not -tolerance <= t <= t_final + tolerance
        ):
            raise _config_error(
                name, f"analysis.time_slices[{i}]", f"{t!r} is not a time in [0, {t_final!r}]"
            )
    bins = analysis.get("hist_bins", 40)
    if isinstance(bins, bool) or not isinstance(bins, int) or bins < 1:
        raise _config_error(name, "analysis.hist_bins", f"must be an integer >= 1, got {bins!r}")
    window = analysis.get("fit_window")
    if window is not None:
        ok = (
            isinstance(window, list)
            and len(window) == 2
            and all(isinstance(t, (int, float)) and not isinstance(t, bool) for t in window)
            and -tolerance <= window[0] < window[1] <= t_final + tolerance
        )
        if not ok:
            raise _config_error(
                name,
                "analysis.fit_window",
                f"must be [t_start, t_end] with 0 <= t_start < t_end <= t_final = {t_final!r}, "
                f"got {window!r}",
            )
    return {
        "time_slices": [float(t) for t in slices],
        "hist_bins": int(bins),
        "fit_window": None if window is None else [float(t) for t in window],
    }
