"""Open a sweep's stored cells as one Dataset on a (σ, seed) grid (README.md).

A sweep directory ``results/<sweep>/`` holds one Zarr store per cell at
``cells/sigma=<repr(σ)>/seed=<seed>.zarr`` (written by
:func:`cq_core.pipeline.cell_store.write_cell`), or, with grid axes, at
``cells/<axis>=<label>/…/sigma=<repr(σ)>/seed=<seed>.zarr`` (each axis a dimension before
σ: :func:`open_grid`).
:func:`open_sweep` opens them all with Dask (nothing is read until computed) and combines them
on a (σ, seed) grid::

    classical (sigma, seed, trajectory, time, coord)
    psi       (sigma, seed, trajectory, time, level)      or rho (…, time, ket, bra)
    status, status_time (sigma, seed, trajectory)

Trajectory ``i`` of seed ``s`` is the path driven by the noise keyed (base_seed, s, i); the
same (seed, trajectory) at different σ shares its noise (common random numbers). Averages
over all trajectories of a σ reduce over ``("seed", "trajectory")``
(:data:`TRAJECTORY_DIMS`). The aggregate rules of the pipeline read cells with this function.
"""

from __future__ import annotations

import itertools
import json
import os
import warnings
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import xarray as xr

from ..analysis.grid import RUN_AXES, complete_grid, grid_point, stack_points
from ..analysis.observables import TRAJECTORY_DIMS
from ..analysis.sweeps import SHARED_ATTRS
from .layout import find_cell_stores
from .lazy_sweep import StoredCell, read_cell_metadata, stacked_cells
from .locks import TEMPORARY_SUFFIX

__all__ = ["SHARED_ATTRS", "TRAJECTORY_DIMS", "open_store", "open_sweep", "sweep_cells"]


def sweep_cells(path: str | os.PathLike) -> list[Path]:
    """The stored cells under ``<path>/cells`` (temporary, half-written stores excluded)."""
    root = Path(path) / "cells"
    return sorted(
        store
        for store in find_cell_stores(root)
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
        directory name) and ``n_cells``. A sweep with grid axes has one more dimension per
        axis first, in config order (:func:`open_grid`): e.g. ``(lam, sigma, seed,
        trajectory, time, level)``; its ``model_params`` attr then holds the parameters no
        axis changes.

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
    if not any("grid_axes" in r.attrs for r in records):
        return _open_point(root, records, numerics_version, chunks)
    return open_grid(root, records, numerics_version, chunks)


def _open_point(
    root: Path, records: list[StoredCell], numerics_version: str | None, chunks: dict | None
) -> xr.Dataset:
    """The cells of one grid point (all of a sweep without grid) on their (σ, seed) grid."""
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


def open_grid(
    root: Path, records: list[StoredCell], numerics_version: str | None, chunks: dict | None
) -> xr.Dataset:
    """The cells of a sweep with grid axes: dims ``(<axes in config order>, sigma, seed, …)``.

    Each grid point is opened on its (σ, seed) grid and the points are stacked along one
    dimension per axis, values ascending (a vector axis along ``<axis>_index``, with its
    values as the data variable ``<axis>``, dims ``(<axis>_index, <axis>_component)``).
    The cells of every point must share every attribute of ``SHARED_ATTRS`` but those an
    axis changes, the σ values, seeds and number of trajectories. A ``dt`` axis: every dt
    stores the same times (the configuration scales ``save_every`` so), equal to rounding;
    the first point's times label them all. ``ValueError`` naming the cells otherwise, or
    the missing grid points.
    """
    first = records[0]
    axes = json.loads(first.attrs["grid_axes"])
    groups: dict[tuple[Any, ...], list[StoredCell]] = {}
    for cell in records:
        if cell.attrs.get("grid_axes") != first.attrs["grid_axes"]:
            raise ValueError(
                f"cells {first.path} and {cell.path} lie on different grid axes "
                f"({first.attrs['grid_axes']} vs {cell.attrs.get('grid_axes')}): they do not "
                "belong to one sweep"
            )
        groups.setdefault(grid_point(cell.attrs), []).append(cell)
    values = complete_grid(axes, groups, f"the stored cells of {root} do not fill the grid")
    varying = {key for a in axes for key in RUN_AXES.get(a, ("model_params",))}
    shared = [key for key in (*SHARED_ATTRS, "grid_base_params") if key not in varying]
    heads = [groups[point][0] for point in itertools.product(*values)]
    _check_shared(heads, shared, ", which no grid axis changes")
    parts = {
        point: _open_point(root, groups[point], numerics_version, chunks)
        for point in itertools.product(*values)
    }
    vectors = [a for a in axes if f"{a}_index" in next(iter(parts.values())).coords]
    attrs = {
        key: value
        for key, value in first.attrs.items()
        if key not in ("cell_spec", "cell_hash", "grid_point", "coordinates")
        and all(c.attrs.get(key) == value for c in records)
    }
    params = json.loads(first.attrs.get("model_params", "{}"))
    attrs["model_params"] = json.dumps(
        {key: value for key, value in params.items() if key not in axes}, sort_keys=True
    )
    attrs.update(sweep=root.name, n_cells=len(records))
    return stack_points(parts, axes, vectors=vectors, attrs=attrs)


def _check_shared(cells: list[StoredCell], keys: Iterable[str], why: str = "") -> None:
    """``ValueError`` naming the first two of ``cells`` whose attribute ``key`` (of ``keys``)
    differs, with its two values: such cells do not belong to one sweep."""
    first = cells[0]
    for cell in cells[1:]:
        for key in keys:
            if cell.attrs.get(key) != first.attrs.get(key):
                raise ValueError(
                    f"cells {first.path} and {cell.path} differ in {key!r} "
                    f"({first.attrs.get(key)!r} vs {cell.attrs.get(key)!r}){why}: they do not "
                    "belong to one sweep"
                )


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
    _check_shared(records, SHARED_ATTRS)
    for cell in records:
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
