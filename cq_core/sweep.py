"""Open the stored cells of a sweep as one lazy, labelled Dataset (SPEC §4).

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
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

import xarray as xr

from .cells import TEMPORARY_SUFFIX

__all__ = ["open_sweep", "sweep_cells", "TRAJECTORY_DIMS", "SHARED_ATTRS"]

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


def _open_cell(store: Path, chunks) -> xr.Dataset:
    if not (store / "zarr.json").is_file():
        raise FileNotFoundError(f"{store} is not a Zarr store (no zarr.json)")
    return xr.open_zarr(store, consolidated=False, chunks=chunks)


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
    chunks = {} if chunks is None else chunks
    grid: dict[tuple[float, int], xr.Dataset] = {}
    first_store, first = None, None
    for store in stores:
        cell = _open_cell(store, chunks)
        if first is None:
            first_store, first = store, cell
        for key in SHARED_ATTRS:
            if cell.attrs.get(key) != first.attrs.get(key):
                raise ValueError(
                    f"cells {first_store} and {store} differ in {key!r} "
                    f"({first.attrs.get(key)!r} vs {cell.attrs.get(key)!r}): they do not "
                    "belong to one sweep"
                )
        if numerics_version is not None and cell.attrs.get("numerics_version") != str(
            numerics_version
        ):
            raise ValueError(
                f"cell {store} was computed with numerics version "
                f"{cell.attrs.get('numerics_version')!r}, but cq_core is at "
                f"{numerics_version!r}: recompute it (snakemake --forcerun simulate_cell)"
            )
        if cell.sizes["trajectory"] != first.sizes["trajectory"]:
            raise ValueError(
                f"cells {first_store} and {store} hold different numbers of trajectories "
                f"({first.sizes['trajectory']} vs {cell.sizes['trajectory']})"
            )
        key = (float(cell["sigma"].values), int(cell["seed"].values))
        if key in grid:
            raise ValueError(f"two stores hold sigma={key[0]!r}, seed={key[1]}: {store}")
        grid[key] = cell
    sigmas = sorted({sigma for sigma, _ in grid})
    seeds = sorted({seed for _, seed in grid})
    missing = [(s, k) for s in sigmas for k in seeds if (s, k) not in grid]
    if missing:
        listed = ", ".join(f"sigma={s!r} seed={k}" for s, k in missing)
        raise ValueError(
            f"the stored cells of {root} do not form a (sigma, seed) grid: missing {listed}"
        )
    nested = [[grid[(s, k)] for k in seeds] for s in sigmas]
    sweep = xr.combine_nested(
        nested,
        concat_dim=["sigma", "seed"],
        data_vars="all",
        coords="minimal",
        compat="override",
        join="exact",
        combine_attrs="drop_conflicts",
    )
    sweep = sweep.transpose("sigma", "seed", "trajectory", ...)
    for key in ("cell_spec", "cell_hash"):
        sweep.attrs.pop(key, None)
    sweep.attrs["sweep"] = root.name
    sweep.attrs["n_cells"] = len(grid)
    return sweep
