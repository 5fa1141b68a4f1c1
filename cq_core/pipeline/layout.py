"""Where a sweep's files live under ``results/`` (the one place that says so).

::

    results/<sweep>/cells/sigma=<σ>/seed=<seed>.zarr    one store per (sweep, σ, seed) cell
    results/<sweep>/batches/<b>-<digest>.json           manifest of batch b (its cells, hashes)
    results/<sweep>/batches/stamp                       the batch jobs' rerun trigger
    results/<sweep>/logs/batches/<b>-<digest>.log       the log of a batch job of its own
    results/<sweep>/logs/sweep.log                      the sweep job's log (its batch when
                                                        it has one, summary, figures, tables)
    results/<sweep>/summary.zarr                        the sweep's summary

σ is written as ``repr(float(σ))`` (``0.025``, ``1e-05``).
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = [
    "CELL_GLOB",
    "SUMMARY_STORE",
    "batch_log",
    "batch_manifest",
    "batch_stamp",
    "cell_id",
    "cell_store",
    "sigma_label",
    "sweep_log",
]


CELL_GLOB = "sigma=*/seed=*.zarr"
"""The cell stores below ``results/<sweep>/cells`` (temporary stores end in ``.tmp``)."""
SUMMARY_STORE = "summary.zarr"
"""The sweep's summary store, in ``results/<sweep>/``."""


def sigma_label(sigma: float) -> str:
    """σ as written in a cell's path: ``repr(float(σ))`` (``0.025``, ``1e-05``)."""
    return repr(float(sigma))


def cell_id(label: str, seed: int) -> str:
    """A cell's path below ``results/<sweep>/cells``, without the suffix: its stable name."""
    return f"sigma={label}/seed={int(seed)}"


def cell_store(results: str | os.PathLike, sweep: str, label: str, seed: int) -> Path:
    """``results/<sweep>/cells/sigma=<label>/seed=<seed>.zarr``."""
    return Path(results) / sweep / "cells" / f"{cell_id(label, seed)}.zarr"


def batch_manifest(results: str | os.PathLike, sweep: str, batch: int, digest: str) -> Path:
    """``results/<sweep>/batches/<batch>-<digest>.json``: the digest names its cells' hashes."""
    return Path(results) / sweep / "batches" / f"{batch:04d}-{digest}.json"


def batch_stamp(results: str | os.PathLike, sweep: str) -> Path:
    """``results/<sweep>/batches/stamp``: touched when a listed store has gone missing."""
    return Path(results) / sweep / "batches" / "stamp"


def batch_log(results: str | os.PathLike, sweep: str, batch: int, digest: str) -> Path:
    """``results/<sweep>/logs/batches/<batch>-<digest>.log``."""
    return Path(results) / sweep / "logs" / "batches" / f"{batch:04d}-{digest}.log"


def sweep_log(results: str | os.PathLike, sweep: str) -> Path:
    """``results/<sweep>/logs/sweep.log``: the log of the sweep's job."""
    return Path(results) / sweep / "logs" / "sweep.log"
