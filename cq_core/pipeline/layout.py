"""Where a sweep's files live under ``results/`` (the one place that says so).

::

    results/<sweep>/cells/sigma=<σ>/seed=<seed>.zarr    one store per (sweep, σ, seed) cell
    results/<sweep>/cells/<axis>=<label>/…/sigma=<σ>/seed=<seed>.zarr
                                                        the same for a sweep with a ``grid``
    results/<sweep>/batches/<b>-<digest>.json           manifest of batch b (its cells, hashes)
    results/<sweep>/batches/stamp                       the batch jobs' rerun trigger
    results/<sweep>/logs/batches/<b>-<digest>.log       the log of a batch job of its own
    results/<sweep>/logs/sweep.log                      the sweep job's log (its batch when
                                                        it has one, summary, figures, tables)
    results/<sweep>/summary.zarr                        the sweep's summary

σ is written as ``repr(float(σ))`` (``0.025``, ``1e-05``); a grid axis's value as
:func:`axis_label` writes it (a float as σ, an int as an int, a path-safe string as it is, a
vector by its index in the configured list), one directory per axis in the configured order.
A sweep without ``grid`` keeps the two-level paths.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

__all__ = [
    "CELL_GLOB",
    "SUMMARY_STORE",
    "axis_label",
    "find_cell_stores",
    "point_label",
    "batch_log",
    "batch_manifest",
    "batch_stamp",
    "cell_id",
    "cell_store",
    "sigma_label",
    "sweep_dir_of",
    "sweep_log",
]


CELL_GLOB = "sigma=*/seed=*.zarr"
"""The cell stores below ``results/<sweep>/cells`` (temporary stores end in ``.tmp``)."""
SUMMARY_STORE = "summary.zarr"
"""The sweep's summary store, in ``results/<sweep>/``."""


def sigma_label(sigma: float) -> str:
    """σ as written in a cell's path: ``repr(float(σ))`` (``0.025``, ``1e-05``)."""
    return repr(float(sigma))


_PATH_SAFE = re.compile(r"[A-Za-z0-9_+-][A-Za-z0-9_.+-]{0,63}")


def axis_label(value: Any, index: int | None = None) -> str:
    """A grid axis value as written in a cell's path (``<axis>=<label>``).

    A float as σ (``repr(float(value))``), an int as an int, a string as it is when it is
    path-safe (letters, digits, ``_ . + -``, not starting with a dot, at most 64 characters);
    a vector (list) by its ``index`` in the configured list. ``ValueError`` otherwise.
    """
    if isinstance(value, (list, tuple)):
        if index is None:
            raise ValueError(f"a vector axis value {value!r} is labelled by its index: give it")
        return str(int(index))
    if isinstance(value, bool):
        raise ValueError(f"a boolean ({value!r}) is not an axis value")
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, str):
        if not _PATH_SAFE.fullmatch(value):
            raise ValueError(
                f"{value!r} cannot name a directory: use letters, digits and _ . + - "
                "(not starting with a dot, at most 64 characters)"
            )
        return value
    raise ValueError(f"{value!r} ({type(value).__name__}) is not an axis value")


def point_label(sigma: float, grid: Sequence[tuple[str, str]] = ()) -> str:
    """The label of a cell's (grid point, σ): ``repr(σ)`` alone without a grid, else the
    directories ``<axis>=<label>/…/sigma=<σ>`` (``grid``: ``(axis, label)`` in config order).

    :func:`cell_id` and :func:`cell_store` take either form.
    """
    if not grid:
        return sigma_label(sigma)
    return "/".join([*(f"{axis}={label}" for axis, label in grid), f"sigma={sigma_label(sigma)}"])


def cell_id(label: str, seed: int) -> str:
    """A cell's path below ``results/<sweep>/cells``, without the suffix: its stable name.

    ``label`` is a σ label (``sigma=<label>/seed=<seed>``) or a :func:`point_label` with a
    grid (``<axis>=<l>/…/sigma=<σ>/seed=<seed>``); a σ label never holds ``=``.
    """
    if "=" in label:
        return f"{label}/seed={int(seed)}"
    return f"sigma={label}/seed={int(seed)}"


def find_cell_stores(cells: str | os.PathLike) -> Iterator[Path]:
    """Every ``…/sigma=*/seed=*.zarr`` below ``cells`` (``results/<sweep>/cells``), at any
    grid depth; only ``<name>=<value>`` directories are entered, never a store."""
    root = Path(cells)
    if not root.is_dir():
        return
    for entry in sorted(os.scandir(root), key=lambda e: e.name):
        if not entry.is_dir() or "=" not in entry.name or entry.name.endswith(".zarr"):
            continue
        if entry.name.startswith("sigma="):
            yield from sorted(Path(entry.path).glob("seed=*.zarr"))
        else:
            yield from find_cell_stores(entry.path)


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


def sweep_dir_of(store: str | os.PathLike) -> Path:
    """``results/<sweep>`` of a cell store at any depth below ``results/<sweep>/cells``
    (grid axes add a folder per axis). Raises ValueError for a path not below a ``cells``."""
    store = Path(store)
    for parent in store.parents:
        if parent.name == "cells":
            return parent.parent
    raise ValueError(f"{store} is not a cell store below results/<sweep>/cells/")
