"""``python -m benchmarks.sweep_cost [--quick]``: what a sweep costs beyond its physics (issue 17).

For tiny ``linear`` sweeps (10 trajectories x 20 steps per cell) of 20, 200 and 2 000 cells
(``--quick``: 20, and a dry run of 2 000) it runs the workflow in a temporary copy with
``snakemake --cores 2`` and measures the CPU of the whole process tree
(``RUSAGE_CHILDREN``) for the cells alone
(``--until simulate_batch``) and for the rest (summary), minus the CPU of simulating the same
cells one after another in this process: the marginal CPU per cell. Then ``open_sweep`` of
the biggest sweep (lazily), and ``snakemake -n`` of a 10 000-cell sweep (wall time and peak
RSS). Results are merged into ``benchmarks/results.json`` under ``"sweep_cost"``.
"""

from __future__ import annotations

import argparse
import copy
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

REPOSITORY = Path(__file__).resolve().parents[1]
SNAKEMAKE = str(Path(sys.executable).with_name("snakemake"))
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


def _workflow(root: Path, config: dict[str, Any]) -> Path:
    root.mkdir(parents=True)
    shutil.copy2(REPOSITORY / "Snakefile", root)
    ignore = shutil.ignore_patterns("__pycache__", ".snakemake")
    shutil.copytree(REPOSITORY / "workflow", root / "workflow", ignore=ignore)
    shutil.copytree(REPOSITORY / "profiles", root / "profiles", ignore=ignore)
    (root / "config").mkdir()
    shutil.copy2(REPOSITORY / "config" / "schema.yaml", root / "config")
    (root / "config" / "config.yaml").write_text(yaml.safe_dump(config))
    return root


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _snakemake(root: Path, *args: str) -> tuple[float, float]:
    """Wall and process-tree CPU seconds of one snakemake run (which must succeed)."""
    cpu, wall = _children_cpu(), time.perf_counter()
    result = subprocess.run([SNAKEMAKE, *args], cwd=root, capture_output=True, text=True)
    if result.returncode:
        raise RuntimeError(result.stderr[-3000:])
    return time.perf_counter() - wall, _children_cpu() - cpu


def _simulate_cpu(config: dict[str, Any]) -> float:
    """CPU of simulating every cell of the sweep one after another in this process."""
    from cq_core.sweep import sweep_cell_specs

    specs = list(sweep_cell_specs("tiny", config["sweeps"]["tiny"]).values())
    specs[0].simulate()  # warm-up (kernel load)
    start = time.process_time()
    for spec in specs:
        spec.simulate()
    return time.process_time() - start


def measure(n_cells: list[int], dry_cells: int) -> dict[str, Any]:
    out: dict[str, Any] = {"per_cell": {}}
    with tempfile.TemporaryDirectory() as folder:
        biggest = None
        for n in n_cells:
            n_seed = 10 if n >= 10 else 1
            config = _config(n // n_seed, n_seed)
            root = _workflow(Path(folder) / f"sweep-{n}", config)
            cells_wall, cells_cpu = _snakemake(root, "--cores", "2", "--until", "simulate_batch")
            rest_wall, rest_cpu = _snakemake(root, "--cores", "2")
            simulate = _simulate_cpu(config)
            out["per_cell"][n] = {
                "cells_wall_s": cells_wall,
                "cells_cpu_s": cells_cpu,
                "summary_wall_s": rest_wall,
                "summary_cpu_s": rest_cpu,
                "simulate_cpu_s": simulate,
                "marginal_cpu_per_cell_s": (cells_cpu - simulate) / n,
                "marginal_cpu_per_cell_with_summary_s": (cells_cpu + rest_cpu - simulate) / n,
            }
            print(f"{n} cells: {out['per_cell'][n]}", file=sys.stderr)
            biggest = root
        from cq_core.sweep import open_sweep

        start = time.perf_counter()
        open_sweep(biggest / "results" / "tiny")
        out["open_sweep_s"] = {"cells": max(n_cells), "seconds": time.perf_counter() - start}
        root = _workflow(Path(folder) / "dry", _config(dry_cells // 100, 100))
        wall = time.perf_counter()
        result = subprocess.run(
            ["/usr/bin/time", "-f", "%M", SNAKEMAKE, "-n", "--quiet", "rules"],
            cwd=root,
            capture_output=True,
            text=True,
        )
        out["dry_run"] = {
            "cells": dry_cells,
            "wall_s": time.perf_counter() - wall,
            "peak_rss_mib": int(result.stderr.strip().splitlines()[-1]) / 1024,
        }
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.sweep_cost")
    parser.add_argument(
        "--quick", action="store_true", help="20 cells, a 2 000-cell dry run (< 1 min)"
    )
    args = parser.parse_args(argv)
    sizes = [20] if args.quick else [20, 200, 2000]
    results = measure(sizes, 2000 if args.quick else 10_000)
    results["command"] = "python -m benchmarks.sweep_cost" + (" --quick" if args.quick else "")
    path = REPOSITORY / "benchmarks" / "results.json"
    stored = json.loads(path.read_text()) if path.exists() else {}
    stored["sweep_cost"] = results
    path.write_text(json.dumps(stored, indent=1, default=str) + "\n")
    print(json.dumps(results, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
