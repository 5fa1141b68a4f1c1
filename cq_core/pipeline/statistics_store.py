"""Per-cell statistics files beside the cell stores, and summaries merged from them.

A cell ``…/cells/sigma=<σ>/seed=<k>.zarr`` gets its statistics
(:func:`cq_core.analysis.cell_statistics`) in ``…/cells/sigma=<σ>/seed=<k>.stats.bin``: a JSON
header (array names, dtypes, shapes, offsets, metadata, a sha256) followed by the raw array
bytes, read with one ``read`` and ``numpy.frombuffer`` (an ``.npz`` archive costs ~20x more
to read, a small Zarr store over 100x; 0.3 ms per file here). The file records

* the hash of the analysis settings it was computed with: other settings find no statistics;
* the identity of its cell (the store's ``cell_hash``, else a sha256 of its ``zarr.json``):
  a statistics file of another cell, or left from an earlier cell at the same path, is not
  used;
* a sha256 of its own contents: a damaged or edited file is not used.

A file that fails any check is recomputed from the stored trajectories and rewritten, never
trusted and never an error. Files are written to a temporary name and moved into place.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from ..analysis import cell_statistics, settings_hash, summary_from_statistics
from ..analysis.sweeps import (
    StatisticsRecord,
    record_dataset,
    statistics_record,
)
from . import manifest

__all__ = [
    "STATISTICS_SUFFIX",
    "check_sealed",
    "compute_cell_statistics",
    "read_statistics",
    "statistics_path",
    "summarise_stores",
    "write_cell_statistics",
]

STATISTICS_SUFFIX = ".stats.bin"
"""File name ending of a cell's statistics (``seed=<k>.stats.bin`` beside ``seed=<k>.zarr``)."""
MAGIC = b"cq-sweep cell statistics 1\n"
"""First bytes of a statistics file."""


def statistics_path(store_path: str | os.PathLike) -> Path:
    """Where the statistics of the cell stored at ``store_path`` live."""
    store = Path(store_path)
    stem = store.name[: -len(".zarr")] if store.name.endswith(".zarr") else store.name
    return store.with_name(stem + STATISTICS_SUFFIX)


def cell_identity(store_path: str | os.PathLike) -> str:
    """The stored cell's ``cell_hash`` attribute (its spec and numerics version).

    A store without one (written from a bare ``simulate`` result) is identified by the
    sha256 of its root ``zarr.json`` and of the files of its ``sigma`` and ``seed`` arrays.
    """
    store = Path(store_path)
    raw = (store / "zarr.json").read_bytes()
    cell_hash = json.loads(raw).get("attributes", {}).get("cell_hash")
    if cell_hash:
        return str(cell_hash)
    digest = hashlib.sha256(raw)
    for part in ("sigma/zarr.json", "sigma/c", "seed/zarr.json", "seed/c"):
        try:  # a scalar equal to its fill value has no chunk file
            digest.update(part.encode() + (store / part).read_bytes())
        except FileNotFoundError:
            digest.update(part.encode())
    return digest.hexdigest()


def _digest(payload: bytes, meta: str) -> str:
    return hashlib.sha256(meta.encode() + payload).hexdigest()


def _encode(arrays: Mapping[str, np.ndarray], meta: Mapping[str, Any]) -> bytes:
    """``MAGIC``, the header's length (8 bytes, little-endian), the JSON header, the arrays."""
    table, parts, offset = [], [], 0
    for name, values in arrays.items():
        data = np.asarray(values)  # (ascontiguousarray would make a scalar 1-d)
        table.append([name, data.dtype.str, list(data.shape), offset, data.nbytes])
        parts.append(data.tobytes())
        offset += data.nbytes
    payload = b"".join(parts)
    text = json.dumps({"arrays": table, "meta": meta}, sort_keys=True)
    header = json.dumps({"body": text, "digest": _digest(payload, text)}).encode()
    return MAGIC + len(header).to_bytes(8, "little") + header + payload


def _decode(raw: bytes) -> tuple[dict[str, np.ndarray], dict[str, Any]] | None:
    """Inverse of :func:`_encode`; None if the file is not one or its digest does not match."""
    start = len(MAGIC) + 8
    if not raw.startswith(MAGIC) or len(raw) < start:
        return None
    size = int.from_bytes(raw[len(MAGIC) : start], "little")
    try:
        header = json.loads(raw[start : start + size])
        text = header["body"]
        payload = raw[start + size :]
        if _digest(payload, text) != header["digest"]:
            return None
        body = json.loads(text)
        arrays = {
            name: np.frombuffer(
                payload, dtype=dtype, count=nbytes // np.dtype(dtype).itemsize, offset=offset
            ).reshape(tuple(shape))
            for name, dtype, shape, offset, nbytes in body["arrays"]
        }
    except (ValueError, KeyError, TypeError):
        return None
    return arrays, body["meta"]


def write_cell_statistics(
    store_path: str | os.PathLike, stats: xr.Dataset, settings_hash: str | None = None
) -> Path:
    """Write a cell's statistics beside its store, atomically; returns the file's path.

    Parameters
    ----------
    store_path
        The cell's store (``…/seed=<k>.zarr``), already in place: its identity is read from
        it and recorded.
    stats
        :func:`cq_core.analysis.cell_statistics` of that cell.
    settings_hash
        If given, must equal ``stats.attrs["settings_hash"]`` (the hash of the analysis
        settings, :func:`cq_core.analysis.settings_hash`), else ``ValueError``.
    """
    recorded = stats.attrs.get("settings_hash")
    if recorded is None or (settings_hash is not None and settings_hash != recorded):
        raise ValueError(
            f"settings_hash {settings_hash!r} is not the hash of the analysis settings the "
            f"statistics were computed with ({recorded!r})"
        )
    arrays = {name: np.asarray(var.values) for name, var in stats.data_vars.items()}
    arrays.update({name: stats[name].values for name in ("time", "fit_time", "slice")})
    meta = {
        "attrs": {key: _plain(value) for key, value in stats.attrs.items()},
        "sigma": float(stats["sigma"]),
        "seed": int(stats["seed"]),
        "time_attrs": {key: _plain(value) for key, value in stats["time"].attrs.items()},
        "cell_identity": cell_identity(store_path),
    }
    path = statistics_path(store_path)
    temporary = path.with_name(f"{path.name}.tmp-{os.getpid()}")
    temporary.write_bytes(_encode(arrays, meta))
    os.replace(temporary, path)
    return path


def _plain(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value


def _load(path: Path, identity: str, expected_hash: str) -> StatisticsRecord | None:
    """The statistics in ``path`` if it passes every check (module doc), else None."""
    try:
        decoded = _decode(path.read_bytes())
    except OSError:
        return None
    if decoded is None:
        return None
    arrays, header = decoded
    attrs = header.get("attrs", {})
    if header.get("cell_identity") != identity or attrs.get("settings_hash") != expected_hash:
        return None
    return StatisticsRecord(arrays, header["sigma"], header["seed"], attrs, header["time_attrs"])


def _read_records(
    stores: Sequence[Path], settings: Mapping[str, Any]
) -> list[StatisticsRecord | None]:
    expected = settings_hash(settings)
    found = []
    for store in stores:
        path = statistics_path(store)
        found.append(_load(path, cell_identity(store), expected) if path.is_file() else None)
    return found


def read_statistics(
    store_paths: Sequence[str | os.PathLike], settings: Mapping[str, Any]
) -> list[xr.Dataset | None]:
    """The stored statistics of each cell under ``settings``; None where there are none.

    None for a cell whose statistics file is missing, unreadable, edited, of another cell,
    or computed with other analysis settings (:func:`summarise_stores` recomputes those).
    """
    records = _read_records([Path(p) for p in store_paths], settings)
    return [None if r is None else record_dataset(r) for r in records]


def _open_cell(store_path: Path) -> tuple[xr.Dataset, int | None]:
    """A stored cell opened without Dask, and its trajectories per stored chunk."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"Object at \.snakemake_timestamp")
        ds = xr.open_zarr(store_path, consolidated=False, chunks=None)
    state = "psi" if "psi" in ds else "rho"
    chunks = ds[state].encoding.get("chunks") or ds[state].encoding.get("preferred_chunks")
    if isinstance(chunks, Mapping):
        block = chunks.get("trajectory")
    elif chunks:
        block = chunks[ds[state].dims.index("trajectory")]
    else:
        block = None
    return ds, block


def check_sealed(store_path: str | os.PathLike) -> None:
    """``ValueError`` unless the cell store at ``store_path`` matches its manifest.

    A store that records a cell (``cell_hash``) must carry the manifest written when it was
    completed (:func:`cq_core.pipeline.manifest.write_manifest`), and every file must have the
    recorded content, keyed by that cell. The message names the store, its first problems
    and the remedy. A store that records no cell (a bare ``simulate`` result) is not checked.
    """
    store = Path(store_path)
    try:
        with (store / "zarr.json").open(encoding="utf-8") as handle:
            attrs = json.load(handle).get("attributes", {})
        spec = json.loads(attrs["cell_spec"])
        identity = manifest.cell_identity(
            cell_hash=attrs["cell_hash"], sigma=spec["sigma"], seed=spec["seed"]
        )
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return  # not a cell store: nothing to hold it against (reading it will tell)
    problems = manifest.check_manifest(store, identity=identity)
    if problems:
        shown = "; ".join(problems[:3]) + (
            f"; … {len(problems) - 3} more" if len(problems) > 3 else ""
        )
        raise ValueError(
            f"cell store {store} does not match its manifest, so it is not summarised: "
            f"{shown} (python -m cq_core verify <results> --repair moves it aside; the next "
            "snakemake run recomputes it)"
        )


def compute_cell_statistics(
    store_path: str | os.PathLike, settings: Mapping[str, Any], *, write: bool = True
) -> xr.Dataset:
    """Statistics of a stored cell from its trajectories (stored chunk by stored chunk).

    With ``write`` (default) they are also written beside the store
    (:func:`write_cell_statistics`), so that the next summary reads them. A cell store is
    read only if every byte of it matches its manifest (:func:`check_sealed`): a tampered or
    damaged store raises ``ValueError`` and is never summarised.
    """
    check_sealed(store_path)
    ds, block = _open_cell(Path(store_path))
    stats = cell_statistics(ds, settings, block_size=block)
    if write:
        write_cell_statistics(store_path, stats)
    return stats


INLINE_CELLS = 8
"""Up to this many cells without statistics are computed in the calling process (starting a
worker process and importing the package costs seconds, a tiny cell a tenth of that)."""


def _compute_all(stores: list[Path], settings: Mapping[str, Any], workers: int) -> list[xr.Dataset]:
    """Statistics of ``stores`` from their trajectories, written beside them.

    More than :data:`INLINE_CELLS` cells are shared among ``workers`` fresh processes
    (``python -m cq_core.pipeline.statistics_store``): no fork of a process whose Zarr or
    Dask threads may hold locks, and no re-import of the caller's ``__main__``.
    """
    if workers <= 1 or len(stores) <= INLINE_CELLS:
        return [statistics_record(compute_cell_statistics(store, settings)) for store in stores]
    text = json.dumps(dict(settings))
    jobs = [
        subprocess.Popen(
            [sys.executable, "-m", __name__, text, *map(str, stores[k::workers])],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        for k in range(min(workers, len(stores)))
    ]
    errors = [job.communicate()[1] for job in jobs]
    for job, error in zip(jobs, errors, strict=True):
        if job.returncode:
            raise RuntimeError(f"computing cell statistics failed: {error[-2000:]}")
    found = _read_records(stores, settings)
    broken = [str(store) for store, s in zip(stores, found, strict=True) if s is None]
    if broken:
        raise RuntimeError(f"no valid statistics were written for {', '.join(broken)}")
    return found


def summarise_stores(
    store_paths: Sequence[str | os.PathLike],
    settings: Mapping[str, Any],
    workers: int = 2,
    *,
    numerics_version: str | None = None,
) -> xr.Dataset:
    """The summary of the stored cells of one sweep, from their statistics.

    Uses each cell's statistics file where it is valid for ``settings``
    (:func:`read_statistics`); the others are computed from the stored trajectories in
    ``workers`` processes and written for next time. Equal to
    ``summarise(open_sweep(…), …)`` of the same cells to rounding.

    Parameters
    ----------
    store_paths
        The cell stores (``results/<sweep>/cells/sigma=<σ>/seed=<k>.zarr``), a complete
        (σ, seed) grid.
    settings
        ``time_slices``, ``hist_bins``, ``fit_window`` (``cq_core.sweep.check_analysis``).
    workers
        Processes for the cells without statistics (1: in this process).
    numerics_version
        If given, every cell must record it (``ValueError`` naming the stale cell).
    """
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ValueError(f"workers must be an integer >= 1, got {workers!r}")
    stores = [Path(p) for p in store_paths]
    if not stores:
        raise ValueError("no cell stores to summarise")
    settings_hash(settings)  # bad settings: ValueError before any work
    stats = _read_records(stores, settings)
    missing = [i for i, s in enumerate(stats) if s is None]
    for i, computed in zip(
        missing, _compute_all([stores[i] for i in missing], settings, workers), strict=True
    ):
        stats[i] = computed
    if numerics_version is not None:
        for store, s in zip(stores, stats, strict=True):
            if s.attrs.get("numerics_version") != str(numerics_version):
                raise ValueError(
                    f"cell {store} was computed with numerics version "
                    f"{s.attrs.get('numerics_version')!r}, not {numerics_version!r}: "
                    "recompute it"
                )
    summary = summary_from_statistics(stats, settings)  # a list: grid sweeps group by point
    sweeps = {
        next((p.parent.name for p in store.parents if p.name == "cells"), store.parents[2].name)
        for store in stores
        if len(store.parents) > 2
    }
    if len(sweeps) == 1 and "sweep" not in summary.attrs:
        summary.attrs["sweep"] = sweeps.pop()
    return summary


def _main(argv: Sequence[str]) -> None:
    """``python -m cq_core.pipeline.statistics_store SETTINGS_JSON STORE…``: compute, write."""
    settings = json.loads(argv[0])
    for store in argv[1:]:
        compute_cell_statistics(store, settings)


if __name__ == "__main__":
    _main(sys.argv[1:])
