"""Sweeps: check a sweep's configuration, open its stored cells as one Dataset (README.md).

A sweep directory ``results/<sweep>/`` holds one Zarr store per cell at
``cells/sigma=<repr(σ)>/seed=<seed>.zarr`` (written by :func:`cq_core.cells.write_cell`).
:func:`open_sweep` opens them all with Dask (nothing is read until computed) and combines them
on a (σ, seed) grid::

    classical (sigma, seed, trajectory, time, coord)
    psi       (sigma, seed, trajectory, time, level)      or rho (…, time, ket, bra)
    status, status_time (sigma, seed, trajectory)

Trajectory ``i`` of seed ``s`` is the path driven by the noise keyed (base_seed, s, i); the
same (seed, trajectory) at different σ shares its noise (common random numbers). Averages
over all trajectories of a σ reduce over ``("seed", "trajectory")``
(:data:`TRAJECTORY_DIMS`). The aggregate rules of the pipeline read cells with this function.

:func:`sweep_cell_specs` and :func:`check_analysis` check one ``sweeps.<name>`` block of the
pipeline configuration (the Snakefile calls them while parsing, so ``snakemake -n`` already
fails on a bad value) and return its cells; every error names the configuration key.
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import xarray as xr

from .cells import TEMPORARY_SUFFIX, CellSpec
from .models import get_model, is_registered, registered_models
from .pipeline.lazy_sweep import StoredCell, read_cell_metadata, stacked_cells

__all__ = [
    "open_sweep",
    "open_store",
    "sweep_cells",
    "sigma_label",
    "sweep_cell_specs",
    "check_analysis",
    "TRAJECTORY_DIMS",
    "SHARED_ATTRS",
]

TRAJECTORY_DIMS = ("seed", "trajectory")
"""Dimensions that together enumerate the trajectories of one σ in a sweep Dataset."""
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
"""Attributes every cell of a sweep must share (they fix everything but σ and the seed)."""


def sweep_cells(path: str | os.PathLike) -> list[Path]:
    """The stored cells under ``<path>/cells`` (temporary, half-written stores excluded)."""
    root = Path(path) / "cells"
    return sorted(
        store
        for store in root.glob("sigma=*/seed=*.zarr")
        if store.is_dir() and TEMPORARY_SUFFIX not in store.name
    )


def open_store(store: str | os.PathLike, chunks: dict | None = None) -> xr.Dataset:
    """Open one Zarr store written by the pipeline (a cell or a summary), lazily.

    Stores of this version open silently with plain ``xarray.open_zarr`` (consolidated
    metadata, nothing foreign inside); the warnings stores of earlier versions raise (no
    consolidated metadata, Snakemake's ``.snakemake_timestamp``) are silenced here.
    """
    store = Path(store)
    if not (store / "zarr.json").is_file():
        raise FileNotFoundError(f"{store} is not a Zarr store (no zarr.json)")
    chunks = {} if chunks is None else chunks
    with warnings.catch_warnings():
        # stores of older versions: no consolidated metadata, Snakemake's timestamp file
        warnings.filterwarnings("ignore", message=r"Object at \.snakemake_timestamp")
        warnings.filterwarnings("ignore", message=r"Failed to open Zarr store with consolidated")
        return xr.open_zarr(store, chunks=chunks)


def open_sweep(
    path: str | os.PathLike,
    *,
    cells: Iterable[str | os.PathLike] | None = None,
    numerics_version: str | None = None,
    chunks: dict | None = None,
) -> xr.Dataset:
    """Open every stored cell of a sweep lazily as one Dataset on a (σ, seed) grid.

    Parameters
    ----------
    path
        The sweep directory, ``results/<sweep>``.
    cells
        Open only these cell stores (the pipeline passes the cells of the current config, so
        a store left from an earlier config is ignored). Default: all of
        :func:`sweep_cells`.
    numerics_version
        If given, every cell must record this ``numerics_version`` (else ``ValueError``
        naming the stale cell).
    chunks
        Dask chunks (default: the stores' own chunks).

    Returns
    -------
    xarray.Dataset
        Dask-backed; dimensions ``sigma`` (ascending), ``seed`` (ascending), ``trajectory``,
        ``time`` and the state dimensions; the attrs the cells share plus ``sweep`` (the
        directory name) and ``n_cells``.

    Raises
    ------
    FileNotFoundError
        No stored cell.
    ValueError
        Cells that do not form one sweep: different model, parameters, dt, t_final,
        save_every, method, mode, excess, base seed or numerics version (the message names
        the attribute and both cells), a missing (σ, seed) combination, a duplicate, or a
        different number of trajectories.
    """
    root = Path(path)
    stores = sweep_cells(root) if cells is None else [Path(c) for c in cells]
    if not stores:
        raise FileNotFoundError(f"no stored cells under {root / 'cells'}")
    records = [read_cell_metadata(store) for store in stores]
    opened: dict[Path, xr.Dataset] = {}
    if any(r.arrays is None or r.sigma is None for r in records):  # stores of older versions
        opened = {r.path: open_store(r.path, chunks) for r in records}
        records = [_record_of(r.path, ds) for r, ds in zip(records, opened.values(), strict=True)]
    grid = _cell_grid(root, records, numerics_version)
    template = opened.get(grid[0][0].path)
    if template is None:
        template = open_store(grid[0][0].path, chunks)
    attrs = {
        key: value
        for key, value in template.attrs.items()
        if all(r.attrs.get(key) == grid[0][0].attrs.get(key) for row in grid for r in row)
    }
    for key in ("cell_spec", "cell_hash"):
        attrs.pop(key, None)
    attrs["sweep"] = root.name
    attrs["n_cells"] = len(records)
    sweep = None if opened else stacked_cells(grid, template, attrs)
    if sweep is None:  # combine the cells opened one by one (same result, slower)
        nested = [[opened.get(r.path) or open_store(r.path, chunks) for r in row] for row in grid]
        sweep = xr.combine_nested(
            nested,
            concat_dim=["sigma", "seed"],
            data_vars="all",
            coords="minimal",
            compat="override",
            join="exact",
            combine_attrs="drop",
        )
        sweep.attrs = attrs
    elif chunks:
        sweep = sweep.chunk(chunks)
    return sweep.transpose("sigma", "seed", "trajectory", ...)


def _record_of(store: Path, ds: xr.Dataset) -> StoredCell:
    """The metadata record of a store opened with xarray (stores of older versions)."""
    sigma, seed = float(ds["sigma"].values), int(ds["seed"].values)
    return StoredCell(store, dict(ds.attrs), None, sigma, seed, ds.sizes["trajectory"])


def _cell_grid(
    root: Path, records: list[StoredCell], numerics_version: str | None
) -> list[list[StoredCell]]:
    """The cells as rows of ascending σ and columns of ascending seeds, checked to form one
    sweep (``ValueError`` naming the attribute and both cells, or the missing cells)."""
    first = records[0]
    grid: dict[tuple[float, int], StoredCell] = {}
    for cell in records:
        for key in SHARED_ATTRS:
            if cell.attrs.get(key) != first.attrs.get(key):
                raise ValueError(
                    f"cells {first.path} and {cell.path} differ in {key!r} "
                    f"({first.attrs.get(key)!r} vs {cell.attrs.get(key)!r}): they do not "
                    "belong to one sweep"
                )
        if numerics_version is not None and cell.attrs.get("numerics_version") != str(
            numerics_version
        ):
            raise ValueError(
                f"cell {cell.path} was computed with numerics version "
                f"{cell.attrs.get('numerics_version')!r}, but cq_core is at "
                f"{numerics_version!r}: recompute it (rerun snakemake)"
            )
        if cell.n_traj != first.n_traj:
            raise ValueError(
                f"cells {first.path} and {cell.path} hold different numbers of trajectories "
                f"({first.n_traj} vs {cell.n_traj})"
            )
        key = (cell.sigma, cell.seed)
        if key in grid:
            raise ValueError(f"two stores hold sigma={key[0]!r}, seed={key[1]}: {cell.path}")
        grid[key] = cell
    sigmas = sorted({sigma for sigma, _ in grid})
    seeds = sorted({seed for _, seed in grid})
    missing = [(s, k) for s in sigmas for k in seeds if (s, k) not in grid]
    if missing:
        listed = ", ".join(f"sigma={s!r} seed={k}" for s, k in missing)
        raise ValueError(
            f"the stored cells of {root} do not form a (sigma, seed) grid: missing {listed}"
        )
    return [[grid[(s, k)] for k in seeds] for s in sigmas]


# ------------------------------------------------------------------ configuration checks

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


def sigma_label(sigma: float) -> str:
    """σ as written in a cell's path: ``repr(float(σ))`` (``0.025``, ``1e-05``)."""
    return repr(float(sigma))


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


def sweep_cell_specs(
    name: str, sweep: Mapping[str, Any], *, base_seed: int = 0
) -> dict[tuple[str, int], CellSpec]:
    """Check one ``sweeps.<name>`` block and return its cells by ``(sigma_label, seed)``.

    Builds the model (``get_model``), checks every σ and every seed with ``check_run`` and
    rejects duplicate σ (after ``float``) or seed values. The cells come back with their
    kernel resolved (``backend="auto"`` becomes ``"c"``, ``"numba"`` or ``"numpy"`` here), so the
    pipeline's parameters name the kernel that computes the numbers. Raises ``ValueError``
    naming the key, e.g. ``invalid config: sweeps.hist.sigma[1]: sigma must be > 0, got -1.0``.
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
    for key in ("sigma", "seeds", "n_traj", "t_final", "dt"):
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
    cells: dict[tuple[str, int], CellSpec] = {}
    labels: dict[str, int] = {}
    backend = None
    for i, sigma in enumerate(sigmas):
        for j, seed in enumerate(seeds):
            spec = CellSpec(
                model=model, params=params, sigma=sigma, seed=seed, base_seed=base_seed, **run
            )
            # check_run's checks of σ and of the seed are independent of each other, so the
            # cells of the first seed and of the first σ check every value: a 10 000-cell
            # sweep is checked in 200 calls, not 10 000
            if i == 0 or j == 0:
                try:
                    settings = spec.check()
                except ValueError as err:
                    key = "base_seed" if str(err).startswith("base_seed") else None
                    raise _config_error(name, key or _failing_key(str(err), i, j), err) from err
                backend = settings.backend
            spec = replace(spec, backend=backend)  # "auto" fixed for this machine
            label = sigma_label(spec.sigma)
            if j == 0 and label in labels:
                raise _config_error(
                    name, f"sigma[{i}]", f"duplicate of sigma[{labels[label]}] = {sigma!r}"
                )
            labels[label] = i
            cells[(label, spec.seed)] = spec
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
