"""Atomic Zarr stores: written beside their final path and moved into place when complete.

:func:`write_cell` stores a cell's Dataset (and :class:`_CellStoreWriter` fills one block by
block): it is written to a temporary sibling path ``<name>.tmp``, its metadata consolidated,
its manifest written, and moved into place with ``os.replace`` only when complete, so no
reader ever sees half a store. :func:`atomic_write_zarr` does the same for any Dataset (the
summaries).
"""

from __future__ import annotations

import json
import os
import shutil
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import xarray as xr

from ..version import NUMERICS_VERSION, __version__
from .locks import TEMPORARY_SUFFIX, remove_stale_temporaries, write_writer_record
from .manifest import cell_identity, write_manifest
from .store_encoding import _store_encoding
from .zarr_layout import _create_store, _direct_layout, _write_region, _xarray_layout

__all__ = [
    "TEMPORARY_SUFFIX",
    "atomic_write_zarr",
    "consolidate",
    "read_cell_attrs",
    "write_cell",
]


def _temporary_path(path: Path) -> Path:
    return path.with_name(path.name + TEMPORARY_SUFFIX)


def atomic_write_zarr(
    ds: xr.Dataset, path: str | os.PathLike, *, encoding: Mapping[str, Any] | None = None
) -> Path:
    """Write ``ds`` as a Zarr v3 store at ``path`` atomically.

    The store is written to ``<path>.tmp`` (stale temporaries are removed first) and moved
    into place with ``os.replace`` only when complete; an existing store at ``path`` is
    replaced. Its metadata is consolidated (:func:`consolidate`), so that a plain
    ``xarray.open_zarr(path)`` opens it silently and with one read. Every chunk is
    compressed with checksummed Zstandard (:func:`_compressors`) unless ``encoding`` names
    other compressors for a variable.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(path)
    temporary = _temporary_path(path)
    ds.drop_encoding().to_zarr(
        temporary,
        mode="w-",
        encoding=_store_encoding(ds, encoding),
        consolidated=False,
        zarr_format=3,
    )
    consolidate(temporary)
    return _move_into_place(temporary, path)


def consolidate(store: str | os.PathLike) -> None:
    """Consolidate a complete store's metadata into its root ``zarr.json``.

    xarray's ``open_zarr`` reads consolidated metadata first and warns (``RuntimeWarning``)
    when there is none. Consolidated metadata is not yet part of the Zarr 3 specification, so
    Zarr warns when writing it; that warning (ours to know) is silenced here. Called when a
    store is complete, before it is moved into place (its array metadata never changes
    afterwards). The bytes are a function of the store's metadata alone.
    """
    import zarr

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r".*[Cc]onsolidated metadata")
        zarr.consolidate_metadata(str(store), zarr_format=3)


def _move_into_place(temporary: Path, path: Path) -> Path:
    """``os.replace`` a complete store over ``path``; an older store there is moved aside first."""
    if path.exists():
        displaced = path.with_name(path.name + TEMPORARY_SUFFIX + "-replaced")
        os.replace(path, displaced)
        os.replace(temporary, path)
        shutil.rmtree(displaced) if displaced.is_dir() else displaced.unlink()
    else:
        os.replace(temporary, path)
    return path


def _store_ready(ds: xr.Dataset) -> xr.Dataset:
    """String coordinates as ``object`` dtype and the version attrs every store records."""
    ds = ds.copy()
    for name, coord in ds.coords.items():
        if coord.dtype.kind in "UT":
            ds = ds.assign_coords({name: coord.astype(object)})
    ds.attrs.setdefault("cq_core_version", __version__)
    ds.attrs.setdefault("numerics_version", NUMERICS_VERSION)
    return ds


def _store_identity(sample: xr.Dataset) -> dict[str, Any] | None:
    """The manifest identity of a cell's store (None for a Dataset that records no cell)."""
    cell_hash = sample.attrs.get("cell_hash")
    if cell_hash is None or "sigma" not in sample.coords or "seed" not in sample.coords:
        return None
    return cell_identity(
        cell_hash=cell_hash, sigma=float(sample["sigma"]), seed=int(sample["seed"])
    )


class _CellStoreWriter:
    """A cell store filled block by block in a temporary sibling path, then moved in place.

    The layout (shapes, chunks, coordinates, attrs) is written first from one block and the
    cell's trajectory count; each block then fills its trajectory range (a Zarr region
    write). Chunks are whole along every dimension but (trajectory, time), so a block that
    does not start on a chunk boundary only completes chunks another block began: the final
    bytes do not depend on the order or size of the blocks.
    """

    def __init__(self, path: str | os.PathLike, sample: xr.Dataset, n_traj: int) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        remove_stale_temporaries(self.path)  # only those whose writer is gone
        self.temporary = _temporary_path(self.path)
        self.record = write_writer_record(self.path)
        sample = _store_ready(sample)
        self.identity = _store_identity(sample)
        layout = _direct_layout(sample, n_traj)
        if layout is None:  # something only xarray's encoding knows how to store
            _xarray_layout(self.temporary, sample, n_traj)
        else:
            _create_store(self.temporary, *layout)

    def write(self, block: xr.Dataset) -> None:
        """Fill the block's trajectory range (trajectories must be consecutive)."""
        _write_region(self.temporary, block)

    def commit(self) -> Path:
        """Consolidate the complete store's metadata, move it into place (replacing an older
        one) and return its path."""
        consolidate(self.temporary)
        if self.identity is not None:  # a cell: seal every byte before it is visible
            write_manifest(self.temporary, identity=self.identity)
        moved = _move_into_place(self.temporary, self.path)
        self.record.unlink(missing_ok=True)
        return moved

    def discard(self) -> None:
        """Remove the temporary store if it was not committed, and the writer's record."""
        if self.temporary.exists():
            shutil.rmtree(self.temporary)
        self.record.unlink(missing_ok=True)


def write_cell(ds: xr.Dataset, path: str | os.PathLike) -> Path:
    """Store a cell's Dataset (from :func:`run_cell`) as Zarr at ``path``, atomically.

    Chunks: :func:`store_chunks` over (trajectory, time), whole along the other dimensions;
    string coordinates stay ``object`` dtype. The attrs keep ``cell_spec``, ``cell_hash``,
    ``cq_core_version`` and ``numerics_version``. The same Dataset always gives the same
    bytes on disk, equal to :func:`run_cell_to_store`'s.
    """
    writer = _CellStoreWriter(path, ds, ds.sizes["trajectory"])
    try:
        writer.write(ds.compute() if any(v.chunks for v in ds.variables.values()) else ds)
        return writer.commit()
    finally:
        writer.discard()


def read_cell_attrs(path: str | os.PathLike) -> dict[str, Any]:
    """The attributes of a stored cell, read from its ``zarr.json`` without opening arrays."""
    metadata = Path(path) / "zarr.json"
    with metadata.open() as handle:
        return dict(json.load(handle).get("attributes", {}))
