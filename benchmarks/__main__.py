"""``python -m benchmarks [--quick] [--only SECTION[,SECTION]]``: measure, write the results.

Sections: ``kernel`` (the kernel, its scaling and memory), ``default_sweep``, ``sweep_cost``,
``summary_cost``, ``master_equation``, ``manifest_hashing`` (benchmarks/sections.py). A full
run takes 15–25 minutes on a 2-core machine; ``--quick`` shrinks every measurement for a
smoke run (a few minutes; its numbers are noisier). The results of the sections run are
merged into ``results.json`` (the others' stored results are kept), ``scaling.png`` is drawn
when the kernel section ran, and docs/performance.md is regenerated from results.json
(``python -m benchmarks.performance``). Progress goes to stderr, the Markdown to stdout.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import generated, memory, performance, qutip_ref, report, scaling, sections
from ._util import CPU_CLOCK, REPOSITORY, WALL_CLOCK, best_time, load_average, machine_info
from .reference import lean_reference_loop, reference_loop
from .workloads import SEED_WORKLOAD, Workload, lattice, lattice_workload, seed_workload

LATTICE_SITES = (4, 8, 12)
"""qubit_lattice sizes of the throughput table (d = 16, 256, 4096)."""


@dataclass(frozen=True)
class Preset:
    """How big each measurement is (counts of rounds, trajectories and steps)."""

    seed_rounds: int
    seed_numpy_runs: int
    reference: tuple[int, int]  # trajectories, steps
    qutip: tuple[int, int]
    lattice: dict[int, tuple[int, int]]  # n -> (trajectories, steps)
    lattice_rounds: int
    scaling_repeats: int
    trajectory_counts: list[int]
    trajectory_steps: int
    step_counts: list[int]
    step_trajectories: int
    dimension_sites: list[int]
    dimension_steps: int
    dimension_levels_budget: int
    dask: dict[str, Any]
    big_cell: dict[str, Any]
    generated: tuple[int, int, int] = (2000, 1500, 3)  # trajectories, steps, rounds


FULL = Preset(
    seed_rounds=5,
    seed_numpy_runs=3,
    reference=(5, 1500),
    qutip=(10, 1500),
    lattice={4: (1000, 1000), 8: (100, 1000), 12: (8, 500)},
    lattice_rounds=3,
    scaling_repeats=3,
    trajectory_counts=[500, 1000, 2000, 4000, 8000, 16000],
    trajectory_steps=1000,
    step_counts=[250, 500, 1000, 2000, 4000, 8000],
    step_trajectories=2000,
    dimension_sites=[2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12],
    dimension_steps=100,
    dimension_levels_budget=2**15,
    dask={
        "n_traj": 2000,
        "n_steps": 1500,
        "block_size": 500,
        "repeats": 5,
        "kinds": ("processes", "threads"),
    },
    big_cell={
        "n_traj": 100_000,
        "n_steps": 300,
        "block_sizes": [1000, 10_000],
        "control_n_traj": 20_000,
    },
)
"""The documented run (a few minutes)."""

QUICK = Preset(
    seed_rounds=2,
    seed_numpy_runs=1,
    reference=(2, 500),
    qutip=(2, 500),
    lattice={4: (200, 200), 8: (20, 200), 12: (2, 100)},
    lattice_rounds=1,
    scaling_repeats=1,
    trajectory_counts=[250, 500, 1000, 2000],
    trajectory_steps=500,
    step_counts=[250, 500, 1000, 2000],
    step_trajectories=1000,
    dimension_sites=[2, 4, 6, 8, 10],
    dimension_steps=50,
    dimension_levels_budget=2**12,
    dask={
        "n_traj": 400,
        "n_steps": 300,
        "block_size": 100,
        "repeats": 1,
        "kinds": ("processes",),
    },
    big_cell={
        "n_traj": 10_000,
        "n_steps": 100,
        "block_sizes": [500, 5000],
        "control_n_traj": None,
    },
    generated=(500, 500, 1),
)
"""A smoke run (under a minute)."""


def _say(message: str) -> None:
    print(f"[benchmarks] {message}", file=sys.stderr, flush=True)


def measure_reference(preset: Preset, default_per_s: float) -> dict[str, Any]:
    """The reference-style loops' throughput and the default kernel's speed-up over them.

    The headline numbers are those of :func:`reference_loop` (the notebook's per-step work);
    ``lean`` holds the same for :func:`lean_reference_loop` (each operator built once a step).
    """
    n_traj, n_steps = preset.reference
    base = SEED_WORKLOAD

    def measure(loop: Any) -> dict[str, Any]:
        seconds = best_time(lambda: loop(n_traj, n_steps, dt=base.dt, sigma=base.sigma), 2)
        per_s = n_traj * n_steps / seconds
        return {
            "n_traj": n_traj,
            "n_steps": n_steps,
            "cpu_s": seconds,
            "cpu_s_per_trajectory_step": seconds / (n_traj * n_steps),
            "trajectory_steps_per_s": per_s,
            "speedup_of_default": default_per_s / per_s,
        }

    return {
        "what": "benchmarks.reference.reference_loop: Python loop per trajectory and step, "
        "Euler–Maruyama, NumPy 2×2 operators rebuilt at every use as in the authors' "
        "notebook (13 per step), no renormalisation",
        **measure(reference_loop),
        "lean": {
            "what": "benchmarks.reference.lean_reference_loop: the same loop with each "
            "operator built once per step",
            **measure(lean_reference_loop),
        },
    }


def measure_qutip(preset: Preset, default_per_s: float, enabled: bool) -> dict[str, Any]:
    """QuTiP ``ssesolve`` on the quantum part, or ``null`` entries with the reason."""
    version = qutip_ref.available()
    empty = {"version": version, "trajectory_steps_per_s": None, "speedup_of_default": None}
    if not enabled:
        return {**empty, "reason": "skipped (--no-qutip)"}
    if version is None:
        return {**empty, "reason": "qutip not importable (optional: pip install qutip)"}
    n_traj, n_steps = preset.qutip
    base = SEED_WORKLOAD
    run = qutip_ref.run_ssesolve(
        n_traj, n_steps, dt=base.dt, sigma=base.sigma, save_every=base.save_every
    )
    per_s = run["trajectory_steps"] / run["cpu_s"]
    return {
        **run,
        "version": version,
        "n_traj": n_traj,
        "n_steps": n_steps,
        "cpu_s_per_trajectory_step": run["cpu_s"] / run["trajectory_steps"],
        "trajectory_steps_per_s": per_s,
        "speedup_of_default": default_per_s / per_s,
    }


def _memory_task(workload: Workload, backend: str) -> dict[str, Any]:
    return {
        "kind": "simulate",
        "model": workload.model,
        "params": workload.params,
        "run": workload.run_keywords(backend),
    }


def run_all(preset: Preset, options: argparse.Namespace) -> dict[str, Any]:
    """Every measurement, in order; returns the results dict written to results.json."""
    results: dict[str, Any] = {
        "machine": machine_info(),
        "units": {
            "*_s": "seconds",
            "cpu_s": CPU_CLOCK,
            "wall_s": WALL_CLOCK,
            "*_mib": "MiB (2^20 bytes); peak RSS of a fresh child process: VmHWM, i.e. its "
            "ru_maxrss without the part Linux inherits from the parent across fork/exec",
            "trajectory_steps_per_s": "trajectory-steps per second on one core",
            "ratio_to_floor": "time / time of default_rng().standard_normal of the same "
            "number of normals, same process",
            "estimate": "least of several interleaved runs",
        },
    }

    _say("seed workload: floor, default, keyed noise, kernel, numpy backend")
    results["seed_workload"] = seed_workload(preset.seed_rounds, preset.seed_numpy_runs)
    default_per_s = results["seed_workload"]["backends"]["default"]["trajectory_steps_per_s"]

    _say("reference-style Python loop")
    results["reference_loop"] = measure_reference(preset, default_per_s)

    _say("QuTiP ssesolve")
    results["qutip"] = measure_qutip(preset, default_per_s, not options.no_qutip)

    _say("generated kernels: issue 22 workloads, build times")
    results["generated"] = generated.measure(*preset.generated)

    _say(f"qubit_lattice n = {', '.join(map(str, LATTICE_SITES))}")
    workloads = [
        lattice_workload(n, *preset.lattice[n], save_every=preset.lattice[n][1] // 10)
        for n in LATTICE_SITES
    ]
    results["qubit_lattice"] = lattice(workloads, preset.lattice_rounds)

    results["memory"] = {"seed_cell": {}}
    if not options.no_memory:
        _say("peak memory (fresh processes)")
        backends = {"default": "auto", "numpy": "numpy"}
        if options.quick:
            backends = {"default": "auto"}
        for name, backend in backends.items():
            results["memory"]["seed_cell"][name] = memory.measure(
                _memory_task(SEED_WORKLOAD, backend)
            )
        # the pipeline's unit of work: one `python -m cq_core run-cell` job, from its start
        results["memory"]["cell_job"] = memory.measure(
            {"kind": "cell_job", "cell": SEED_WORKLOAD.cell_dict(), "threads": 1}
        )
        for row, workload in zip(results["qubit_lattice"], workloads, strict=True):
            row["memory"] = memory.measure(_memory_task(workload, "auto"))

    results["scaling"] = {}
    _say("scaling with trajectories and steps")
    results["scaling"]["trajectories"] = scaling.versus_trajectories(
        preset.trajectory_counts, preset.trajectory_steps, preset.scaling_repeats
    )
    results["scaling"]["steps"] = scaling.versus_steps(
        preset.step_counts, preset.step_trajectories, preset.scaling_repeats
    )
    _say("scaling with the Hilbert dimension")
    results["scaling"]["dimension"] = scaling.versus_dimension(
        preset.dimension_sites,
        n_steps=preset.dimension_steps,
        levels_budget=preset.dimension_levels_budget,
        repeats=preset.scaling_repeats,
    )
    if not options.no_dask:
        _say("Dask sweep with 1 and 2 workers")
        try:
            results["scaling"]["dask"] = scaling.dask_sweep(**preset.dask)
        except Exception as err:  # report, do not lose the rest of the run
            results["scaling"]["dask"] = {"error": f"{type(err).__name__}: {err}"}
    if not options.no_memory:
        _say("big cell in blocks (fresh processes)")
        results["big_cell"] = scaling.big_cell(**preset.big_cell)
        full = preset.big_cell["n_traj"]
        results["big_cell"]["note"] = (
            "run_cell gathers the whole cell in the driver: at save_every=10 and 1500 steps a "
            f"cell of {full:,} trajectories returns "
            f"{scaling.seed_cell_output_mib(full, 1500, 10):,.0f} MiB of output"
        )
    return results


KERNEL_KEYS = (
    "seed_workload",
    "reference_loop",
    "qutip",
    "generated",
    "qubit_lattice",
    "memory",
    "scaling",
    "big_cell",
)
"""Top-level keys of results.json that the kernel section writes."""


def _save(results: dict[str, Any], path: Path, output_dir: Path) -> str:
    """Write results.json (and docs/performance.md for the default output); return the page."""
    output_dir.mkdir(parents=True, exist_ok=True)
    with path.open("w") as handle:
        json.dump(results, handle, indent=1, ensure_ascii=False)
        handle.write("\n")
    page = performance.render(results)
    if output_dir.resolve() == (REPOSITORY / "benchmarks").resolve():
        performance.DOCUMENT.write_text(page)
    return page


def main(argv: list[str] | None = None) -> int:
    """Parse options, run the sections, merge results.json, regenerate the docs' page."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--quick", action="store_true", help="smoke run (a few minutes)")
    parser.add_argument(
        "--only",
        metavar="SECTION[,SECTION]",
        help=f"run only these sections (of: {', '.join(sections.ALL)})",
    )
    parser.add_argument(
        "--output-dir",
        type=Path,
        default=REPOSITORY / "benchmarks",
        help="where results.json and scaling.png go (default: benchmarks/; docs/performance.md "
        "is regenerated only for the default)",
    )
    parser.add_argument("--no-qutip", action="store_true", help="skip the QuTiP comparison")
    parser.add_argument("--no-dask", action="store_true", help="skip the Dask sweep")
    parser.add_argument(
        "--no-memory", action="store_true", help="skip the fresh-process memory measurements"
    )
    options = parser.parse_args(argv)
    try:
        chosen = sections.parse_only(options.only)
    except ValueError as err:
        parser.error(str(err))
    path = options.output_dir / "results.json"
    results: dict[str, Any] = json.loads(path.read_text()) if path.exists() else {}
    command = "python -m benchmarks" + (" --quick" if options.quick else "")
    if options.only:
        command += f" --only {','.join(chosen)}"
    start = time.perf_counter()
    machine = machine_info()
    results.setdefault("sections", {})
    results["command"] = command
    results["quick"] = options.quick
    results["machine"] = {**results.get("machine", {}), **machine}
    for name in chosen:
        if name == "kernel":
            kernel, record = sections.timed(
                name, lambda: run_all(QUICK if options.quick else FULL, options)
            )
            if "error" in kernel:
                results["kernel_error"] = kernel["error"]
            else:
                for key in KERNEL_KEYS:
                    results.pop(key, None)
                results.update({k: v for k, v in kernel.items() if k not in ("machine", "command")})
                results.pop("kernel_error", None)
        else:
            measure = sections.SECTIONS[name]
            results[name], record = sections.timed(name, lambda m=measure: m(options.quick))
        results["sections"][name] = {**record, "command": command, "quick": options.quick}
        # saved after every section: an interrupted run keeps what it measured
        results["machine"]["load_average_at_end"] = load_average()
        results["wall_s_total"] = time.perf_counter() - start
        page = _save(results, path, options.output_dir)
    if "kernel" in chosen and "seed_workload" in results:
        report.plot(results, options.output_dir / "scaling.png")
    print(page)
    print(f"\n{command}: {results['wall_s_total']:.0f} s wall; wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
