"""One memory measurement in a fresh interpreter: ``python -m benchmarks._child '<task JSON>'``.

Peak resident memory only ever grows, so each measurement gets a process of its own. The peak
is ``VmHWM`` (Linux), which equals ``getrusage(RUSAGE_SELF).ru_maxrss`` minus what Linux
carries over from the parent across fork/exec (``ru_maxrss`` is reported too). The child
imports what the task needs, warms the compiled kernel up on a tiny run (so loading it from
the on-disk kernel cache is part of the *baseline*, not of the task), records the baseline
peak, runs the task once and prints one JSON line::

    {"baseline_rss_mib": …, "peak_rss_mib": …, "ru_maxrss_mib": …, "task_wall_s": …,
     "task_cpu_s": …, "output_mib": …, "resident_after_warm_up": {"rssanon_mib": …, …},
     "resident_at_end": {…}}

Task kinds:

``{"kind": "simulate", "model": name, "params": {...}, "run": {simulate keywords}}``
    one :func:`cq_core.simulate` call;
``{"kind": "run_cell", "cell": {CellSpec keys}, "block_size": B, "threads": W}``
    one :func:`cq_core.cells.run_cell` on an in-process Dask cluster of ``W`` workers;
``{"kind": "cell_job", "cell": {CellSpec keys}, "threads": W}``
    what one pipeline job does: ``python -m cq_core run-cell`` (:func:`cq_core.cli.main`)
    storing the cell in a temporary folder. No imports or warm-up before it: the job's peak
    is this process's peak (``baseline_rss_mib`` is the bare interpreter);
``{"kind": "baseline", "model": name, "params": {...}}``
    imports and warm-up only.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any

from ._util import MIB, peak_rss_mib, resident_split_mib, ru_maxrss_mib


def _warm_up(model_name: str, params: dict[str, Any], backend: str = "auto") -> None:
    """Run a tiny simulation so the kernel is loaded (from the on-disk kernel cache)."""
    import cq_core

    model = cq_core.get_model(model_name, **params)
    cq_core.simulate(
        model, sigma=0.02, n_traj=4, t_final=4e-4, dt=1e-4, seed=0, save_every=2, backend=backend
    )


def _report(
    baseline: float, baseline_split: dict[str, float], wall: float, cpu: float, output_mib: float
) -> dict[str, Any]:
    """The measurements of a task that started at ``wall``/``cpu`` after ``baseline``."""
    return {
        "baseline_rss_mib": baseline,
        "peak_rss_mib": peak_rss_mib(),
        "ru_maxrss_mib": ru_maxrss_mib(),
        "task_wall_s": time.perf_counter() - wall,
        "task_cpu_s": time.process_time() - cpu,
        "output_mib": output_mib,
        "resident_after_warm_up": baseline_split,
        "resident_at_end": resident_split_mib(),
    }


def _cell_job(task: dict[str, Any]) -> dict[str, Any]:
    """One ``run-cell`` job in this (fresh) process, as the pipeline's rule runs it."""
    import tempfile
    from pathlib import Path

    baseline, baseline_split = peak_rss_mib(), resident_split_mib()
    wall, cpu = time.perf_counter(), time.process_time()
    from cq_core.cli import main

    with tempfile.TemporaryDirectory(prefix="cq-cell-job-") as folder:
        store = Path(folder) / "seed=0.zarr"
        command = ["run-cell", "--spec", json.dumps(task["cell"], sort_keys=True)]
        command += ["--output", str(store), "--threads", str(task.get("threads", 1))]
        status = main(command)
        if status != 0 or not (store / "zarr.json").is_file():
            raise RuntimeError(f"{' '.join(command)} exited with {status}; no store written")
        output_mib = sum(f.stat().st_size for f in store.rglob("*") if f.is_file()) / MIB
    return _report(baseline, baseline_split, wall, cpu, output_mib)  # output: the store on disk


def run(task: dict[str, Any]) -> dict[str, Any]:
    """Run one task (see the module docstring) and return its measurements."""
    kind = task["kind"]
    if kind == "cell_job":
        return _cell_job(task)
    if kind == "run_cell":
        import distributed  # noqa: F401 - the cluster's import cost belongs to the baseline

        from cq_core.cells import CellSpec, run_cell

        spec = CellSpec.from_dict(task["cell"])
        _warm_up(spec.model, dict(spec.params))
    else:
        import cq_core

        _warm_up(task["model"], task.get("params", {}), task.get("run", {}).get("backend", "auto"))
    baseline = peak_rss_mib()
    baseline_split = resident_split_mib()
    wall, cpu = time.perf_counter(), time.process_time()
    output_mib = 0.0
    if kind == "simulate":
        model = cq_core.get_model(task["model"], **task.get("params", {}))
        result = cq_core.simulate(model, **task["run"])
        output_mib = result.nbytes / MIB
    elif kind == "run_cell":
        result = run_cell(spec, block_size=task["block_size"], threads=task.get("threads", 1))
        output_mib = result.nbytes / MIB
    elif kind != "baseline":
        raise ValueError(f"unknown task kind {kind!r}")
    return _report(baseline, baseline_split, wall, cpu, output_mib)


def main(argv: list[str]) -> None:
    """Entry point: one JSON task in, one JSON line out."""
    if len(argv) != 1:
        raise SystemExit("usage: python -m benchmarks._child '<task JSON>'")
    print(json.dumps(run(json.loads(argv[0]))))


if __name__ == "__main__":
    main(sys.argv[1:])
