"""A sweep's cell stores as one lazy Dataset, built from their metadata alone.

Opening every cell with ``xarray.open_zarr`` and combining them costs ~50 ms per cell (2 000
cells: over a minute) before anything is read. Every cell of a sweep has the same arrays,
shapes, chunks and encodings, and each store's root ``zarr.json`` holds its consolidated
metadata, so one read of that file per cell is enough to check the cells and lay out the
grid; the first cell alone is opened with xarray, as the template of coordinates, attributes
and decoding. Each data variable is then one Dask array over
``(sigma, seed, *cell dims)`` whose every block is one stored chunk of one cell, read by
Zarr when computed.

:func:`stacked_cells` does that when the stores allow it, i.e. when reading a raw chunk gives
what xarray's decoding would give (no scale/offset, no integer fill value turned into NaN),
and returns None otherwise, so the caller combines xarray-opened cells instead. Either way
the result is the same Dataset.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

__all__ = ["StoredCell", "read_cell_metadata", "stacked_cells"]


@dataclass(frozen=True)
class StoredCell:
    """What a cell store's root ``zarr.json`` says, read without opening an array.

    ``attrs``: the Dataset attributes; ``arrays``: each array's consolidated metadata (None
    for a store without consolidated metadata); ``sigma``/``seed``: the recorded cell's.
    """

    path: Path
    attrs: Mapping[str, Any]
    arrays: Mapping[str, Any] | None
    sigma: float | None
    seed: int | None
    n_traj: int | None = None


def read_cell_metadata(store: str | os.PathLike) -> StoredCell:
    """The root metadata of one cell store (``FileNotFoundError`` without ``zarr.json``)."""
    path = Path(store)
    metadata = path / "zarr.json"
    if not metadata.is_file():
        raise FileNotFoundError(f"{path} is not a Zarr store (no zarr.json)")
    with metadata.open(encoding="utf-8") as handle:
        root = json.load(handle)
    attrs = root.get("attributes") or {}
    consolidated = (root.get("consolidated_metadata") or {}).get("metadata")
    sigma = seed = None
    try:
        cell = json.loads(attrs["cell_spec"])
        sigma, seed = float(cell["sigma"]), int(cell["seed"])
    except (KeyError, TypeError, ValueError):
        pass  # a bare simulate() result: its sigma and seed are read from its arrays
    n_traj = None
    if consolidated and "trajectory" in consolidated:
        n_traj = int(consolidated["trajectory"]["shape"][0])
    return StoredCell(path, attrs, consolidated, sigma, seed, n_traj)


def _read_block(path: str, name: str, index: tuple[int, ...]) -> np.ndarray:
    """One stored chunk of array ``name`` of the store at ``path``, with two leading axes."""
    import zarr

    array = zarr.open_array(f"{path}/{name}", mode="r")
    return np.asarray(array.get_block_selection(index))[None, None]


def _raw_reads_decode(template: xr.Dataset, name: str, meta: Mapping[str, Any]) -> bool:
    """True when a raw chunk of ``name`` equals what xarray's decoding of it gives."""
    var = template[name]
    encoding = var.encoding
    if any(key in encoding for key in ("scale_factor", "add_offset", "units", "calendar")):
        return False
    if var.dtype != np.dtype(encoding.get("dtype", var.dtype)):
        return False
    fill = encoding.get("_FillValue")
    if fill is not None and not (var.dtype.kind == "f" and np.isnan(fill)):
        return False  # masking would replace stored values by NaN
    return meta.get("node_type") == "array" and "regular" == meta["chunk_grid"]["name"]


def _stacked_array(
    name: str, grid: Sequence[Sequence[StoredCell]], meta: Mapping[str, Any], dtype: np.dtype
) -> Any:
    """Dask array (sigma, seed, *shape) of array ``name`` of every cell, one block per chunk."""
    import itertools

    import dask.array as da
    from dask.base import tokenize
    from dask.highlevelgraph import HighLevelGraph

    shape = tuple(meta["shape"])
    chunk = tuple(meta["chunk_grid"]["configuration"]["chunk_shape"])
    counts = [math.ceil(size / c) if size else 1 for size, c in zip(shape, chunk, strict=True)]
    cell_chunks = tuple(
        tuple(min(c, size - k * c) for k in range(n)) if size else (0,)
        for size, c, n in zip(shape, chunk, counts, strict=True)
    )
    key = (
        "cells-"
        + name
        + "-"
        + tokenize(
            name,
            [[c.attrs.get("cell_hash") for c in r] for r in grid],
            [[str(c.path) for c in r] for r in grid],
        )
    )
    layer = {}
    for i, row in enumerate(grid):
        for j, cell in enumerate(row):
            for index in itertools.product(*(range(n) for n in counts)):
                layer[(key, i, j, *index)] = (_read_block, str(cell.path), name, index)
    chunks = ((1,) * len(grid), (1,) * len(grid[0]), *cell_chunks)
    graph = HighLevelGraph.from_collections(key, layer, dependencies=())
    return da.Array(graph, key, chunks, dtype=dtype)


def stacked_cells(
    grid: Sequence[Sequence[StoredCell]], template: xr.Dataset, attrs: Mapping[str, Any]
) -> xr.Dataset | None:
    """The cells of ``grid`` (rows: ascending σ; columns: ascending seeds) as one Dataset.

    ``template`` is the first cell opened with xarray (coordinates, attributes, decoding);
    ``attrs`` the attributes of the result. None when a store does not allow reading raw
    chunks (no consolidated metadata, arrays that differ between cells, or a decoding that is
    not the identity): the caller then combines xarray-opened cells.
    """
    first = grid[0][0]
    if first.arrays is None:
        return None
    names = [name for name in template.data_vars if "trajectory" in template[name].dims]
    if sorted(names) != sorted(template.data_vars):
        return None
    for row in grid:
        for cell in row:
            if cell.arrays is None or cell.sigma is None:
                return None
            if any(cell.arrays.get(name) != first.arrays.get(name) for name in names):
                return None
    if not all(
        name in first.arrays and _raw_reads_decode(template, name, first.arrays[name])
        for name in names
    ):
        return None
    data_vars = {
        name: xr.Variable(
            ("sigma", "seed", *template[name].dims),
            _stacked_array(name, grid, first.arrays[name], template[name].dtype),
            template[name].attrs,
        )
        for name in names
    }
    coords: dict[str, Any] = {
        name: template[name].variable.load()
        for name in template.coords
        if name not in ("sigma", "seed")
    }  # a grid sweep's axis coordinates: the grid point's (every cell of ``grid`` shares it)
    for name, values in (
        ("sigma", [row[0].sigma for row in grid]),
        ("seed", [cell.seed for cell in grid[0]]),
    ):
        coords[name] = xr.Variable(
            name, np.asarray(values, dtype=template[name].dtype), template[name].attrs
        )
    return xr.Dataset(data_vars, coords, dict(attrs))
