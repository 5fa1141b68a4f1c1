"""How every store of the pipeline is chunked and compressed (cells and summaries).

A cell's Zarr chunking is a function of the cell alone (:func:`store_chunks`), never of the
Dask block size, so the stores are identical byte for byte, not only in value; every chunk
is compressed with checksummed Zstandard (:func:`_compressors`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import xarray as xr

__all__ = [
    "STORE_CHUNK_BYTES",
    "STORE_TRAJECTORY_CHUNK",
    "ZSTD_LEVEL",
    "chunks_bytes",
    "store_chunks",
]

STORE_TRAJECTORY_CHUNK = 500
"""Trajectories per Zarr chunk (the store's layout never depends on the Dask block size)."""
STORE_CHUNK_BYTES = 4 * 2**20
"""Target size of one chunk of the largest variable; sets how many time points a chunk holds."""
ZSTD_LEVEL = 1
"""Zstandard level of every stored chunk. Level 1 stores trajectories as small as zstd's
default level 3 (they are 5 % compressible either way) in two thirds of the time."""


def store_chunks(sizes: Mapping[str, int], bytes_per_sample: int) -> dict[str, int]:
    """Zarr chunk sizes of a cell: ``{"trajectory": …, "time": …}``.

    A chunk holds up to :data:`STORE_TRAJECTORY_CHUNK` trajectories and as many time points
    as keep the largest variable's chunk near :data:`STORE_CHUNK_BYTES`, so reading one time
    slice across all trajectories touches ``ceil(n_traj / 500)`` small chunks. Depends only
    on the cell's shape, never on the Dask block size.
    """
    n_traj, n_time = int(sizes["trajectory"]), int(sizes["time"])
    trajectory_chunk = max(1, min(n_traj, STORE_TRAJECTORY_CHUNK))
    per_time = max(1, trajectory_chunk * bytes_per_sample)
    time_chunk = max(1, min(n_time, STORE_CHUNK_BYTES // per_time))
    return {"trajectory": trajectory_chunk, "time": time_chunk}


def _bytes_per_sample(var: xr.Variable) -> int:
    """Bytes one (trajectory, time) sample of a variable takes."""
    others = [n for d, n in var.sizes.items() if d not in ("trajectory", "time")]
    return var.dtype.itemsize * math.prod(others)


def _cell_chunks(ds: xr.Dataset) -> dict[str, int]:
    return store_chunks(ds.sizes, chunks_bytes(ds))


def _compressors() -> list[Any]:
    """The compressor of every chunk: Zstandard with its frame checksum.

    The checksum (32 bits of the XXH64 of the decompressed bytes, ending the chunk's frame) makes
    a chunk whose bytes changed on disk fail to decode (``RuntimeError: Zstd decompression
    error: … doesn't match checksum``) instead of decoding to wrong numbers, so that
    :mod:`cq_core.pipeline.store_checks` and every reader see the damage. It is recorded in
    each array's ``zarr.json`` and checked on every read.
    """
    from zarr.codecs import ZstdCodec

    return [ZstdCodec(level=ZSTD_LEVEL, checksum=True)]


def _store_encoding(
    ds: xr.Dataset, encoding: Mapping[str, Mapping[str, Any]] | None = None
) -> dict[str, dict[str, Any]]:
    """``encoding`` for every variable of ``ds``, with the checksummed compressor added."""
    encoding = dict(encoding or {})  # a name that is not a variable is left for to_zarr to reject
    for name in ds.variables:
        encoding[name] = {"compressors": _compressors(), **encoding.get(name, {})}
    return encoding


def _cell_encoding(ds: xr.Dataset) -> dict[str, dict[str, Any]]:
    chunks = _cell_chunks(ds)
    return _store_encoding(
        ds,
        {
            name: {"chunks": tuple(chunks.get(d, n) for d, n in var.sizes.items())}
            for name, var in ds.variables.items()
            if var.ndim and var.dtype.kind != "O"
        },
    )


def chunks_bytes(ds: xr.Dataset) -> int:
    """Bytes of one (trajectory, time) sample of the largest sampled variable."""
    sampled = [v for v in ds.data_vars.values() if {"trajectory", "time"} <= set(v.dims)]
    return max((_bytes_per_sample(v) for v in sampled), default=8)
