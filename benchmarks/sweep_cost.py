"""``python -m benchmarks.sweep_cost [--quick]``: what a sweep costs beyond its physics (issue 17).

For tiny ``linear`` sweeps (10 trajectories x 20 steps per cell) of 20, 200 and 2 000 cells
(``--quick``: 20, and a dry run of 2 000) it runs the workflow in a temporary copy with
``snakemake --cores 2`` and measures the CPU of the whole process tree
(``RUSAGE_CHILDREN``) of the whole run (cells and summary), minus the CPU of simulating the
same cells one after another in this process: the marginal CPU per cell. The sweep's own job
(``sweep_tiny``: its summary, and its batch when the cells fit one) is timed from
Snakemake's log. Then ``open_sweep`` of
the biggest sweep (lazily), and ``snakemake -n`` of a 10 000-cell sweep (wall time and peak
RSS, from a small launcher process). Run as the ``sweep_cost`` section of ``python -m
benchmarks``: results are merged into ``benchmarks/results.json`` under ``"sweep_cost"``.
"""

from __future__ import annotations

import argparse
import copy
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from ._util import load_average
from .workflow_runs import (
    SNAKEMAKE,
    job_times,
    peak_rss_of,
    run_snakemake,
    simulate_cpu,
    sweep_cells,
    workflow_copy,
)

CELL = {
    "model": "linear",
    "params": {},
    "n_traj": 10,
    "t_final": 0.02,
    "dt": 1.0e-3,
    "save_every": 1,
    "method": "auto",
    "mode": "pure",
    "excess": 0.0,
    "analysis": {"time_slices": [0.0, 0.02], "hist_bins": 8, "fit_window": None, "figures": []},
}
"""One tiny cell: ``linear``, 10 trajectories × 20 steps."""
TARGETS = {
    "marginal_cpu_per_cell_s": 0.3,
    "open_sweep_s": 5.0,
    "summary_s": 20.0,
    "dry_run_wall_s": 20.0,
    "dry_run_peak_rss_mib": 300e6 / 2**20,
}
"""Issue 17's targets (seconds, MiB; 300 MB = 286 MiB)."""


def _config(n_sigma: int, n_seed: int) -> dict[str, Any]:
    sweep = copy.deepcopy(CELL)
    sweep["sigma"] = [round(0.5 + 0.01 * i, 4) for i in range(n_sigma)]
    sweep["seeds"] = list(range(n_seed))
    return {
        "results": "results",
        "base_seed": 0,
        "figures": {"tradeoff": []},
        "sweeps": {"tiny": sweep},
    }


def measure(n_cells: list[int], dry_cells: int) -> dict[str, Any]:
    """Marginal CPU per cell, summary, ``open_sweep`` and dry-run costs (module doc)."""
    try:
        from cq_core import open_sweep
    except ImportError:
        from cq_core.sweep import open_sweep
    out: dict[str, Any] = {"per_cell": {}, "targets": TARGETS}
    out["load_average_before"] = load_average()
    with tempfile.TemporaryDirectory() as folder:
        biggest = None
        for n in n_cells:
            n_seed = 10 if n >= 10 else 1
            config = _config(n // n_seed, n_seed)
            root = workflow_copy(Path(folder) / f"sweep-{n}", config)
            run = run_snakemake(root, "--cores", "2", "--quiet", "host")  # rule blocks in the log
            rules = job_times(root)["rules"]
            simulate = simulate_cpu(sweep_cells("tiny", config["sweeps"]["tiny"], 0))
            out["per_cell"][str(n)] = {
                "wall_s": run["wall_s"],
                "cpu_s": run["cpu_s"],
                "batch_jobs": rules.get("simulate_batch", {}).get("jobs", 0),
                "sweep_job_wall_s": rules.get("sweep_tiny", {}).get("max_s"),
                "simulate_cpu_s": simulate,
                "marginal_cpu_per_cell_s": (run["cpu_s"] - simulate) / n,
            }
            print(f"{n} cells: {out['per_cell'][str(n)]}", file=sys.stderr, flush=True)
            biggest = root
        start = time.perf_counter()
        open_sweep(biggest / "results" / "tiny")
        out["open_sweep_s"] = {"cells": max(n_cells), "seconds": time.perf_counter() - start}
        root = workflow_copy(Path(folder) / "dry", _config(dry_cells // 100, 100))
        dry = peak_rss_of([SNAKEMAKE, "-n", "--cores", "2", "--quiet", "rules"], root)
        out["dry_run"] = {"cells": dry_cells, **dry}
    out["load_average_after"] = load_average()
    return out


def main(argv: list[str] | None = None) -> int:
    """``python -m benchmarks --only sweep_cost [--quick]`` (results.json and the docs' page)."""
    from .__main__ import main as benchmarks_main

    parser = argparse.ArgumentParser(prog="python -m benchmarks.sweep_cost")
    parser.add_argument(
        "--quick", action="store_true", help="20 cells, a 2 000-cell dry run (< 1 min)"
    )
    args = parser.parse_args(argv)
    return benchmarks_main(["--only", "sweep_cost", *(["--quick"] if args.quick else [])])


if __name__ == "__main__":
    sys.exit(main())
