"""The run's console (cq_core/pipeline/progress.py): plans, progress files, failed jobs.

The real Snakemake runs that print these lines are in tests/workflow/test_console.py.
"""

from __future__ import annotations

import logging
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/: the shared helpers
from workflow_helpers import TINY  # noqa: E402

from cq_core.pipeline import layout  # noqa: E402
from cq_core.pipeline.batch import run_batch  # noqa: E402
from cq_core.pipeline.progress import (  # noqa: E402
    Console,
    FailedJobs,
    SchedulerChatter,
    SweepPlan,
    cells_done,
    end_lines,
    plan_sweeps,
    progress_file,
    progress_line,
    record_cell,
    start_lines,
)
from cq_core.sweep import sweep_cell_specs  # noqa: E402

STEPS = 20 * 10  # TINY: 20 trajectories x 10 steps per cell


def tiny_cells(seeds=(0,)):
    sweep = {**TINY["sweeps"]["tiny"], "seeds": list(seeds)}
    return {"tiny": sweep_cell_specs("tiny", sweep, base_seed=0)}


def store_cells(results: Path, cells) -> None:
    pairs = [
        (layout.cell_store(results, "tiny", label, seed), spec)
        for (label, seed), spec in cells["tiny"].items()
    ]
    run_batch(pairs, layout.batch_manifest(results, "tiny", 0, "0" * 16))


def test_a_plan_counts_stored_and_missing_cells_and_their_work(tmp_path):
    results = tmp_path / "results"
    (plan,) = plan_sweeps(tiny_cells(), str(results))
    assert (plan.cells, plan.stored, plan.n_sigma, plan.n_seeds) == (2, 0, 2, 1)
    assert plan.to_run == {"sigma=1.0/seed=0": STEPS, "sigma=2.0/seed=0": STEPS}
    assert plan.trajectory_steps == 2 * STEPS
    store_cells(results, tiny_cells())
    (plan,) = plan_sweeps(tiny_cells(seeds=(0, 1)), str(results))
    assert (plan.cells, plan.stored, plan.n_seeds) == (4, 2, 2)
    assert sorted(plan.to_run) == ["sigma=1.0/seed=1", "sigma=2.0/seed=1"]
    # a store holding another cell (another n_traj) is to run again
    changed = {**TINY["sweeps"]["tiny"], "n_traj": 10}
    (plan,) = plan_sweeps({"tiny": sweep_cell_specs("tiny", changed)}, str(results))
    assert plan.stored == 0 and len(plan.to_run) == 2


def test_a_plan_counts_grid_points_apart_from_sigma(tmp_path):
    sweep = {**TINY["sweeps"]["tiny"], "seeds": [0, 1], "grid": {"lam": [0.5, 1.0, 2.0]}}
    cells = {"g": sweep_cell_specs("g", sweep, base_seed=0)}
    (plan,) = plan_sweeps(cells, str(tmp_path / "results"))
    assert (plan.n_points, plan.n_sigma, plan.n_seeds, plan.cells) == (3, 2, 2, 12)
    (row,) = start_lines([plan], "results")[1:]
    assert "g  3 grid points × 2 σ × 2 seeds = 12 cells" in row, row


def test_a_batch_job_records_every_cell_it_stores(tmp_path):
    results = tmp_path / "results"
    plans = plan_sweeps(tiny_cells(), str(results))
    since = time.time() - 1e-3
    store_cells(results, tiny_cells())
    lines = progress_file(results / "tiny").read_text().splitlines()
    assert sorted(line.split("\t")[1] for line in lines) == sorted(plans[0].to_run)
    assert cells_done(plans, since) == (2, 2 * STEPS)
    assert cells_done(plans, time.time() + 10) == (0, 0)  # recorded before the run started


def test_cells_done_ignores_other_cells_torn_lines_and_repeats(tmp_path):
    plan = SweepPlan("s", tmp_path / "s", 1, 3, 3, {"a": 10, "b": 20, "c": 40})
    since = time.time()
    record_cell(plan.directory, "a", 10)
    record_cell(plan.directory, "a", 10)  # computed twice (a rerun batch): one cell
    record_cell(plan.directory, "z", 99)  # not a cell of this run
    with open(progress_file(plan.directory), "a") as sink:
        sink.write(f"{time.time():.3f}\tb")  # a line still being written
    assert cells_done([plan], since) == (1, 10)
    with open(progress_file(plan.directory), "a") as sink:
        sink.write("\t20\n")  # now written whole
    record_cell(plan.directory, "c", 40)
    assert cells_done([plan], since) == (3, 70)


def test_the_console_lines_say_sweeps_cells_rate_and_where(tmp_path):
    plans = [
        SweepPlan("histograms", Path("results/histograms"), 2, 10, 20, {"x": 5, "y": 5}),
        SweepPlan("linear", Path("results/linear"), 4, 1, 4, {}),
        SweepPlan("lam", Path("results/lam"), 2, 1, 6, {}, n_points=3),
    ]
    first, *rows = start_lines(plans, "results")
    assert first == "cq-sweep: 3 sweeps, 30 cells: 28 stored already, 2 to run; results in results/"
    assert (
        rows[2].split() == "lam 3 grid points × 2 σ × 1 seed = 6 cells: 6 stored, 0 to run".split()
    )
    assert rows[0].split() == "histograms 2 σ × 10 seeds = 20 cells: 18 stored, 2 to run, 10 trajectory-steps".split()  # fmt: skip  # noqa: E501
    assert rows[1].split() == "linear 4 σ × 1 seed = 4 cells: 4 stored, 0 to run".split()
    line = progress_line(3, 8, 2_000_000, 4.0)
    assert line == "cq-sweep: cells 3/8 done, 5e+05 trajectory-steps/s (00:00:04)"
    end = end_lines(
        plans,
        "results",
        ["results/histograms/figures/histograms.png", "results/histograms/figures/h.pdf",
         "results/histograms/tables/born.csv", "results/figures/tradeoff.png"],
    )  # fmt: skip
    text = "\n".join(end)
    assert "results in results/" in text and "summary.zarr" in text
    assert "results/histograms/figures/, results/histograms/tables/, results/figures/" in text, text
    assert "snakemake --report results/report.html" in text


def _job_error(**fields) -> logging.LogRecord:
    record = logging.LogRecord("snakemake", logging.ERROR, __file__, 1, "Error in rule", (), None)
    record.__dict__.update(fields)
    return record


def test_a_failed_job_is_named_with_its_log_and_the_log_s_last_lines(tmp_path):
    log = tmp_path / "batch.log"
    log.write_text("".join(f"line {i}\n" for i in range(40)) + "ERROR: the reason\n")
    said: list[str] = []
    failures = FailedJobs(said.append)
    failures.handle(_job_error(msg="Error in rule x"))  # no job_error event: not a job
    assert said == []
    failures.handle(
        _job_error(
            event="job_error",
            rule_name="simulate_batch",
            output=["m.json"],
            log=[str(log)],
            rule_msg="SLURM-job '12' failed, SLURM status is: 'CANCELLED'",
        )
    )
    assert said[0] == "cq-sweep: job simulate_batch (m.json) failed"
    assert said[1] == "cq-sweep:   SLURM-job '12' failed, SLURM status is: 'CANCELLED'"
    assert said[2] == f"cq-sweep:   its log: {log}; last lines:"
    assert said[-1].strip() == "ERROR: the reason" and said[3].strip() == "line 26"
    assert len(said) == 3 + 15
    assert failures.failed == [("simulate_batch", (str(log),))]


def test_the_console_prints_progress_while_cells_are_stored(tmp_path):
    plan = SweepPlan("s", tmp_path / "s", 1, 2, 2, {"a": 100, "b": 300})
    said: list[str] = []
    console = Console("results", said.append, interval=0.02, every=0.0)
    logger = logging.getLogger("test_progress_console")
    console.start([plan], logger)
    try:
        assert said[0].startswith("cq-sweep: 1 sweep, 2 cells: 0 stored already, 2 to run")
        record_cell(plan.directory, "a", 100)
        deadline = time.monotonic() + 10
        while not any("cells 1/2 done" in line for line in said):
            assert time.monotonic() < deadline, said
            time.sleep(0.02)
        record_cell(plan.directory, "b", 300)
        logger.error("boom", extra={"event": "job_error", "rule_name": "r", "log": []})
        console.fail()
    finally:
        logger.removeHandler(console.failures)
    assert [line for line in said if "cells 2/2 done" in line][-1:]  # the last count shown
    assert sum("cells 2/2 done" in line for line in said) == 1  # and only once
    assert "cq-sweep: job r failed" in said
    assert "cq-sweep: FAILED: r; log: no log" in said
    assert "--quiet reason" in said[-1]


def test_scheduler_chatter_is_kept_off_the_console_and_nothing_else():
    chatter = SchedulerChatter()

    def record(msg, **fields):
        made = logging.LogRecord("snakemake", logging.INFO, __file__, 1, msg, (), None)
        made.__dict__.update(fields)
        return made

    assert not chatter.filter(record("Select jobs to execute..."))
    assert not chatter.filter(record("Execute 2 jobs...", event="job_started"))
    assert not chatter.filter(record("Touching output file results/s/batches/stamp."))
    assert chatter.filter(record("cq-sweep: cells 1/2 done"))
    assert chatter.filter(record("Error in rule x", event="job_error"))
    assert chatter.filter(record("Nothing to be done (all requested files are present)."))
