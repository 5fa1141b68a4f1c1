"""Cost of a sweep's summary: from stored per-cell statistics vs. from the trajectories.

``python -m benchmarks.summary_cost ROOT [--cells 200 2000] [--workers 2]`` writes tiny
``linear`` cells (10 trajectories × 20 steps, 20 σ × N/20 seeds) with
:func:`cq_core.cells.write_cell` under ``ROOT`` (reused when present) and times, in one run:

* ``trajectories_s``: :func:`cq_core.pipeline.statistics_store.summarise_stores` with no
  statistics files: every cell is read and reduced (in ``workers`` processes when there are
  many) and its statistics are written;
* ``statistics_s``: the same call again: every cell's statistics are read and merged;
* ``read_s``: of that, :func:`read_statistics` alone;
* ``open_sweep_s``: ``summarise(open_sweep(…))``, the lazy Dask path through every trajectory
  (up to ``--open-sweep-max`` cells).

Wall seconds (``time.perf_counter``): the worker processes' CPU would be hidden by a CPU clock.
:func:`summary_cost` is the function to call from another benchmark.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

SETTINGS = {"time_slices": [0.0, 0.01, 0.02], "hist_bins": 40, "fit_window": None}
"""Analysis settings of the measurement (the defaults' number of bins)."""
TINY = {"model": "linear", "params": {}, "n_traj": 10, "t_final": 0.02, "dt": 1e-3}
"""One tiny cell: 10 trajectories × 20 steps (21 saved times)."""
SIGMAS = 20
"""σ values of every measured sweep (the seeds make up the number of cells)."""


def tiny_sweep(root: Path, n_cells: int) -> list[Path]:
    """The stores of a tiny sweep of ``n_cells`` cells under ``root`` (written if missing)."""
    try:  # the target layout, then the old one
        from cq_core.pipeline.cells import CellSpec, write_cell
        from cq_core.pipeline.sweep import sigma_label
    except ImportError:
        from cq_core.cells import CellSpec, write_cell
        from cq_core.sweep import sigma_label

    seeds = max(1, n_cells // SIGMAS)
    paths = []
    for i in range(SIGMAS):
        sigma = 0.5 + 0.1 * i
        for seed in range(seeds):
            path = root / "cells" / f"sigma={sigma_label(sigma)}" / f"seed={seed}.zarr"
            if not (path / "zarr.json").is_file():
                write_cell(CellSpec(sigma=sigma, seed=seed, **TINY).simulate(), path)
            paths.append(path)
    return paths


def summary_cost(
    root: Path, n_cells: int, *, workers: int = 2, open_sweep_max: int = 500
) -> dict[str, Any]:
    """Wall seconds of the summary of a tiny sweep of ``n_cells`` cells (module doc).

    ``open_sweep_s`` is measured only up to ``open_sweep_max`` cells (None above: opening
    thousands of cells with ``open_sweep`` alone takes minutes today).
    """
    from cq_core import open_sweep
    from cq_core.analysis import summarise
    from cq_core.pipeline.statistics_store import (
        read_statistics,
        statistics_path,
        summarise_stores,
    )

    paths = tiny_sweep(Path(root), n_cells)
    for path in paths:
        statistics_path(path).unlink(missing_ok=True)
    start = time.perf_counter()
    from_trajectories = summarise_stores(paths, SETTINGS, workers=workers)
    trajectories_s = time.perf_counter() - start
    start = time.perf_counter()
    from_statistics = summarise_stores(paths, SETTINGS, workers=workers)
    statistics_s = time.perf_counter() - start
    start = time.perf_counter()
    read_statistics(paths, SETTINGS)
    read_s = time.perf_counter() - start
    compared = [from_trajectories]
    open_sweep_s = None
    if len(paths) <= open_sweep_max:
        start = time.perf_counter()
        lazy = summarise(
            open_sweep(Path(root), cells=paths),
            time_slices=SETTINGS["time_slices"],
            bins=SETTINGS["hist_bins"],
            fit_window=SETTINGS["fit_window"],
        )
        open_sweep_s = time.perf_counter() - start
        compared.append(lazy)
    same = all(
        bool(abs(other[v] - from_statistics[v]).max() <= 1e-12)
        for other in compared
        for v in ("coherence", "sigma_z_mean", "gamma_fit")
    )
    return {
        "cells": len(paths),
        "workers": workers,
        "trajectories_s": trajectories_s,
        "statistics_s": statistics_s,
        "read_s": read_s,
        "open_sweep_s": open_sweep_s,
        "statistics_bytes_per_cell": statistics_path(paths[0]).stat().st_size,
        "equal": same,
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", type=Path, help="scratch directory for the cells (reused)")
    parser.add_argument("--cells", type=int, nargs="+", default=[200, 2000])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--open-sweep-max", type=int, default=500)
    args = parser.parse_args(argv)
    for n in args.cells:
        result = summary_cost(
            args.root / f"tiny-{n}", n, workers=args.workers, open_sweep_max=args.open_sweep_max
        )
        print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
