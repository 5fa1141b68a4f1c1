"""The sections of ``python -m benchmarks`` besides the kernel, each with a ``--quick`` variant.

Each section returns a JSON-able dict stored under its name in ``benchmarks/results.json``
(merged: a run of some sections keeps the others' stored results), with the section's own
wall seconds, date and load average before and after in ``results["sections"][name]``.

* ``default_sweep``: the README's default run (:mod:`benchmarks.default_sweep`);
* ``sweep_cost``: tiny sweeps of 20, 200, 2 000 cells, ``open_sweep``, the 10 000-cell dry
  run (:mod:`benchmarks.sweep_cost`);
* ``summary_cost``: a sweep's summary from statistics vs from trajectories, in one process
  (:mod:`benchmarks.summary_cost`);
* ``dask_cells``: one cell's Dask blocks serially, on 2 threads, on 2 processes
  (:mod:`benchmarks.bench_dask_cells`; config/README.md's threads-or-processes advice);
* ``master_equation``: cost and grid convergence of the phase-space solver;
* ``manifest_hashing``: hashing throughput of a store's manifest.

``benchmarks.checks_calibration`` is not a section: it simulates hundreds of reduced default
runs (tens of minutes); run it on its own.
"""

from __future__ import annotations

import datetime as _datetime
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ._util import load_average


def _default_sweep(quick: bool) -> dict[str, Any]:
    from . import default_sweep

    return default_sweep.measure()


def _sweep_cost(quick: bool) -> dict[str, Any]:
    from . import sweep_cost

    return sweep_cost.measure([20] if quick else [20, 200, 2000], 2000 if quick else 10_000)


def _summary_cost(quick: bool) -> dict[str, Any]:
    from .summary_cost import summary_cost

    with tempfile.TemporaryDirectory() as folder:
        return {
            "runs": [
                summary_cost(Path(folder) / f"tiny-{n}", n, workers=2, open_sweep_max=500)
                for n in ([50] if quick else [200])
            ]
        }


def _dask_cells(quick: bool) -> dict[str, Any]:
    from . import bench_dask_cells

    return bench_dask_cells.measure(1 if quick else 3)


def _master_equation(quick: bool) -> dict[str, Any]:
    from . import master_equation

    return master_equation.measure(quick)


def _manifest_hashing(quick: bool) -> dict[str, Any]:
    from . import manifest_hashing

    return manifest_hashing.measure(*((500, 500, 3) if quick else (2000, 1000, 5)))


SECTIONS: dict[str, Callable[[bool], dict[str, Any]]] = {
    "default_sweep": _default_sweep,
    "sweep_cost": _sweep_cost,
    "summary_cost": _summary_cost,
    "dask_cells": _dask_cells,
    "master_equation": _master_equation,
    "manifest_hashing": _manifest_hashing,
}
"""Section name → measurement (argument: ``quick``)."""

ALL = ("default_sweep", "sweep_cost", "kernel", *list(SECTIONS)[2:])
"""Every section ``--only`` accepts, in the order a run measures them (the issue-17 targets
first); ``kernel`` is :func:`benchmarks.__main__.run_all`."""


def parse_only(text: str | None) -> list[str]:
    """``--only a,b`` → ``["a", "b"]`` (every section when None); ValueError names bad ones."""
    if text is None:
        return list(ALL)
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in ALL]
    if unknown or not names:
        raise ValueError(
            f"--only: unknown section(s) {', '.join(unknown) or repr(text)}; "
            f"allowed: {', '.join(ALL)}"
        )
    return [name for name in ALL if name in names]


def timed(name: str, measure: Callable[[], Any]) -> tuple[Any, dict[str, Any]]:
    """Run one section: its result and its record (date, wall seconds, load averages)."""
    print(f"[benchmarks] section {name}", file=sys.stderr, flush=True)
    record: dict[str, Any] = {
        "date_utc": _datetime.datetime.now(_datetime.UTC).isoformat(timespec="seconds"),
        "load_average_before": load_average(),
    }
    start = time.perf_counter()
    try:
        result = measure()
    except Exception as err:  # report it, keep the other sections
        result = {"error": f"{type(err).__name__}: {err}"[-3000:]}
    record["wall_s"] = time.perf_counter() - start
    record["load_average_after"] = load_average()
    return result, record
