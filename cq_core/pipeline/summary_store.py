"""Read and write a sweep's ``summary.zarr`` (the analysis layer never opens a store)."""

from __future__ import annotations

import os
from pathlib import Path

import xarray as xr

from .cell_store import atomic_write_zarr
from .sweep_dataset import open_store

__all__ = ["open_summary", "write_summary"]


def write_summary(summary: xr.Dataset, path: str | os.PathLike) -> Path:
    """Compute a (lazy) summary and store it as Zarr at ``path`` atomically."""
    computed = summary.compute()
    for name, coord in computed.coords.items():
        if coord.dtype.kind in "UT":
            computed = computed.assign_coords({name: coord.astype(object)})
    return atomic_write_zarr(computed, path)


def open_summary(path: str | os.PathLike) -> xr.Dataset:
    """Open a stored ``summary.zarr`` (lazily; Snakemake's timestamp file is ignored)."""
    return open_store(path)
