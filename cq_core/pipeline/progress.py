"""The run's console: what a default ``snakemake --cores N`` prints about the physics.

The default profile (``profiles/default/config.yaml``) silences Snakemake's per-job blocks
(``quiet: [rules, progress, host, reason]``); the Snakefile's ``onstart``/``onsuccess``/
``onerror`` handlers print these lines instead, through Snakemake's own logger:

* at the start (:func:`start_lines`): the sweeps, their cells (stored already / to run, and
  the trajectory-steps to compute) and where the results go;
* while cells are computed (:class:`Console`): cells done of the run's total and the run's
  trajectory-steps per second, read from the progress files the batch jobs append to
  (:func:`record_cell`, one line per stored cell, ``results/<sweep>/logs/progress.tsv``);
* at the end (:func:`end_lines`): where the results, figures, tables and the report are; on
  error, every failed job with its log (:class:`FailedJobs`, :func:`failure_lines`).

The progress file is a plain text file on the shared file system, so the console counts
cells the same way whether the batch jobs run here or on cluster nodes; it keeps the lines
of earlier runs (a few dozen bytes per stored cell), and a run counts only its own.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..verify import stale_reason
from .layout import cell_id, cell_store

__all__ = [
    "Console",
    "FailedJobs",
    "SchedulerChatter",
    "SweepPlan",
    "cells_done",
    "end_lines",
    "failure_lines",
    "plan_sweeps",
    "progress_file",
    "progress_line",
    "record_cell",
    "start_lines",
]

PREFIX = "cq-sweep:"
"""Every console line starts with it (so that it stands out among Snakemake's own lines)."""
FULL_OUTPUT_HINT = (
    "Snakemake's full per-job output: add --quiet reason (or --workflow-profile none)"
)
CLOCK_SLACK = 2.0
"""Seconds a progress record may predate the run's start and still count (:func:`cells_done`)."""
LOG_TAIL_LINES = 15
"""Lines of a failed job's log shown on the console (the whole log is in its file)."""


def progress_file(sweep_dir: str | os.PathLike) -> Path:
    """``results/<sweep>/logs/progress.tsv``: one line per stored cell (:func:`record_cell`)."""
    return Path(sweep_dir) / "logs" / "progress.tsv"


def record_cell(sweep_dir: str | os.PathLike, cell: str, trajectory_steps: int) -> None:
    """Append ``<unix time>\\t<cell id>\\t<trajectory-steps>`` for a cell just stored.

    ``cell`` is the cell's id (:func:`cq_core.pipeline.layout.cell_id`), ``trajectory_steps``
    its ``n_traj × steps``. One ``write`` of one short line to a file opened for appending,
    so concurrent batch jobs of a sweep never interleave their lines.
    """
    path = progress_file(sweep_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    line = f"{time.time():.3f}\t{cell}\t{int(trajectory_steps)}\n"
    with open(path, "a") as sink:
        sink.write(line)


@dataclass(frozen=True)
class SweepPlan:
    """A sweep's cells at the start of a run.

    ``to_run`` maps the id of every cell to compute (missing, or its store holds another
    cell) to its trajectory-steps (``n_traj × steps``).
    """

    name: str
    directory: Path
    n_sigma: int
    n_seeds: int
    cells: int
    to_run: Mapping[str, int]
    n_points: int = 1
    """Grid points (1 for a sweep without grid axes)."""

    @property
    def stored(self) -> int:
        """Cells whose store holds the cell already (the batch jobs skip them)."""
        return self.cells - len(self.to_run)

    @property
    def trajectory_steps(self) -> int:
        """Trajectory-steps to compute in this run."""
        return sum(self.to_run.values())


def plan_sweeps(
    cells_by_sweep: Mapping[str, Mapping[tuple[str, int], Any]], results: str
) -> list[SweepPlan]:
    """The :class:`SweepPlan` of every sweep: ``{sweep: {(sigma_label, seed): CellSpec}}``.

    A cell is stored when its store exists and records the cell's hash (the rule of
    :func:`cq_core.pipeline.batch.run_batch`); reads only each store's root metadata.
    """
    plans = []
    for sweep, cells in cells_by_sweep.items():
        to_run = {}
        for (label, seed), spec in cells.items():
            store = cell_store(results, sweep, label, seed)
            if not store.exists() or stale_reason(store, spec) is not None:
                to_run[cell_id(label, seed)] = spec.n_traj * round(spec.t_final / spec.dt)
        plans.append(
            SweepPlan(
                name=sweep,
                directory=Path(results) / sweep,
                n_sigma=len({spec.sigma for spec in cells.values()}),
                n_seeds=len({seed for _, seed in cells}),
                n_points=len({label.rpartition("/")[0] for label, _ in cells}),
                cells=len(cells),
                to_run=to_run,
            )
        )
    return plans


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def _points(n: int) -> str:
    return "" if n == 1 else f"{n} grid points × "


def start_lines(plans: Sequence[SweepPlan], results: str) -> list[str]:
    """The run's first lines: sweeps, cells stored / to run, trajectory-steps, results folder."""
    cells = sum(plan.cells for plan in plans)
    to_run = sum(len(plan.to_run) for plan in plans)
    lines = [
        f"{PREFIX} {_plural(len(plans), 'sweep')}, {_plural(cells, 'cell')}: "
        f"{cells - to_run} stored already, {to_run} to run; results in {results}/"
    ]
    width = max((len(plan.name) for plan in plans), default=0)
    for plan in plans:
        work = f", {plan.trajectory_steps:.3g} trajectory-steps" if plan.to_run else ""
        lines.append(
            f"  {plan.name:<{width}}  {_points(plan.n_points)}{plan.n_sigma} σ × "
            f"{_plural(plan.n_seeds, 'seed')}"
            f" = {_plural(plan.cells, 'cell')}: {plan.stored} stored, "
            f"{len(plan.to_run)} to run{work}"
        )
    return lines


def cells_done(plans: Sequence[SweepPlan], since: float) -> tuple[int, int]:
    """Cells of the plans' ``to_run`` stored since ``since`` (unix time), and their
    trajectory-steps, from the sweeps' progress files (a cell recorded twice counts once).

    Records up to :data:`CLOCK_SLACK` seconds before ``since`` count (times are written to
    the millisecond, and a cluster node's clock may lag a little).
    """
    done: dict[tuple[str, str], int] = {}
    for plan in plans:
        if not plan.to_run:
            continue
        try:
            text = progress_file(plan.directory).read_text()
        except FileNotFoundError:
            continue
        for line in text.splitlines():
            fields = line.split("\t")
            if len(fields) != 3 or fields[1] not in plan.to_run:
                continue  # a line being written, or a cell of another run
            try:
                when = float(fields[0])
            except ValueError:
                continue
            if when >= since - CLOCK_SLACK:
                done[(plan.name, fields[1])] = plan.to_run[fields[1]]
    return len(done), sum(done.values())


def progress_line(done: int, total: int, trajectory_steps: int, seconds: float) -> str:
    """``cq-sweep: cells 3/8 done, 1.2e+06 trajectory-steps/s (0:00:05)``."""
    rate = trajectory_steps / seconds if seconds > 0 else 0.0
    clock = time.strftime("%H:%M:%S", time.gmtime(max(seconds, 0.0)))
    return f"{PREFIX} cells {done}/{total} done, {rate:.3g} trajectory-steps/s ({clock})"


def end_lines(plans: Sequence[SweepPlan], results: str, outputs: Iterable[str]) -> list[str]:
    """Where everything is: the results folder, the summaries, figures, tables and report.

    ``outputs`` are the run's figure and table files (folders of them are listed).
    """
    folders: dict[str, None] = {}
    for path in outputs:
        folders[str(Path(path).parent) + "/"] = None
    lines = [
        f"{PREFIX} results in {results}/: one summary per sweep "
        f"({results}/<sweep>/summary.zarr), cells in {results}/<sweep>/cells/"
    ]
    if folders:
        lines.append(f"{PREFIX} figures and tables: {', '.join(folders)}")
    lines.append(
        f"{PREFIX} report: snakemake --report {results}/report.html (one HTML file, offline)"
    )
    return lines


def _tail(path: str | os.PathLike, n: int) -> list[str]:
    try:
        with open(path, errors="replace") as source:
            return source.read().splitlines()[-n:]
    except OSError as err:
        return [f"(cannot read it: {err.strerror})"]


def failure_lines(
    rule: str, output: Sequence[str], logs: Sequence[str], message: str | None = None
) -> list[str]:
    """A failed job: its rule, its output, the executor's message (e.g. a cluster job's
    state), its log(s) and each log's last lines."""
    where = f" ({', '.join(output)})" if output else ""
    lines = [f"{PREFIX} job {rule}{where} failed"]
    if message:
        lines.append(f"{PREFIX}   {message}")
    if not logs:
        lines.append(f"{PREFIX}   it has no log; see Snakemake's message above")
    for log in logs:
        lines.append(f"{PREFIX}   its log: {log}; last lines:")
        lines += [f"    {line}" for line in _tail(log, LOG_TAIL_LINES)]
    return lines


class FailedJobs(logging.Handler):
    """Collects the failed jobs that Snakemake reports on its logger, and prints each once.

    Snakemake logs a failed job as a record with ``event == "job_error"`` (its
    logger-plugin interface) carrying ``rule_name``, ``output``, ``log`` (with a cluster
    job's own log) and ``rule_msg`` (e.g. the cluster job's state); the default
    profile's ``quiet: rules`` keeps that record off the console, so this handler, added to
    Snakemake's logger, writes :func:`failure_lines` through ``write`` instead.
    """

    def __init__(self, write: Callable[[str], None]) -> None:
        super().__init__(level=logging.ERROR)
        self.write = write
        self.failed: list[tuple[str, tuple[str, ...]]] = []

    def emit(self, record: logging.LogRecord) -> None:
        if str(getattr(record, "event", "")) != "job_error":
            return
        rule = str(getattr(record, "rule_name", "?"))
        output = tuple(str(path) for path in getattr(record, "output", None) or ())
        logs = tuple(str(path) for path in getattr(record, "log", None) or ())
        message = getattr(record, "rule_msg", None)
        self.failed.append((rule, logs))
        for line in failure_lines(rule, output, logs, str(message) if message else None):
            self.write(line)


class SchedulerChatter(logging.Filter):
    """Drops Snakemake's scheduling lines from the console: "Select jobs to execute...",
    "Execute n jobs..." (``event == "job_started"``) and "Touching output file …" (the
    batch stamps), two or three lines per job that ``quiet`` categories do not cover."""

    def filter(self, record: logging.LogRecord) -> bool:
        if str(getattr(record, "event", "")) == "job_started":
            return False
        message = record.msg if isinstance(record.msg, str) else ""
        return message != "Select jobs to execute..." and not message.startswith(
            "Touching output file "
        )


CONSOLE_HANDLER = "DefaultStreamHandler"
"""The name Snakemake gives the handler that writes its console (not the log file)."""


class Console:
    """A run's console: start lines, a progress line while cells are computed, end lines.

    ``write`` prints one line (the Snakefile passes Snakemake's ``logger.info``, so the lines
    also go to Snakemake's log file). Progress is polled every ``interval`` seconds in a
    daemon thread and printed when the number of cells done changed, at most every
    ``every`` seconds (and always when the last cell is done).
    """

    def __init__(
        self,
        results: str,
        write: Callable[[str], None],
        *,
        interval: float = 1.0,
        every: float = 10.0,
    ) -> None:
        self.results, self.write = results, write
        self.interval, self.every = interval, every
        self.plans: list[SweepPlan] = []
        self.total = 0
        self.failures = FailedJobs(write)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._start = time.time()
        self._shown: int | None = None

    def start(
        self,
        plans: Sequence[SweepPlan],
        logger: logging.Logger | None = None,
        *,
        terse: bool = True,
    ) -> None:
        """Print the start lines of ``plans`` (:func:`plan_sweeps`, made when the run starts);
        watch the progress files; catch failed jobs on ``logger``.

        ``terse``: also keep Snakemake's scheduling lines (:class:`SchedulerChatter`) off
        ``logger``'s console handler (the Snakefile passes whether ``quiet`` has ``rules``).
        """
        self.plans = list(plans)
        self.total = sum(len(plan.to_run) for plan in self.plans)
        self._start = time.time()
        for line in start_lines(self.plans, self.results):
            self.write(line)
        if logger is not None:
            logger.addHandler(self.failures)
            if terse:
                for handler in logger.handlers:
                    if handler.get_name() == CONSOLE_HANDLER:
                        handler.addFilter(SchedulerChatter())
        if self.total:
            self._thread = threading.Thread(target=self._watch, name="cq-progress", daemon=True)
            self._thread.start()

    def _report(self, final: bool = False) -> None:
        if not self.total:
            return
        done, steps = cells_done(self.plans, self._start)
        if done != self._shown and (done or final):
            self._shown = done
            self.write(progress_line(done, self.total, steps, time.time() - self._start))

    def _watch(self) -> None:
        last = 0.0
        while not self._stop.wait(self.interval):
            done, _ = cells_done(self.plans, self._start)
            now = time.monotonic()
            if done != self._shown and (now - last >= self.every or done == self.total):
                self._report()
                last = now

    def _stop_watching(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def finish(self, outputs: Iterable[str]) -> None:
        """onsuccess: the last progress line, then where the results are."""
        self._stop_watching()
        self._report(final=True)
        for line in end_lines(self.plans, self.results, outputs):
            self.write(line)

    def fail(self) -> None:
        """onerror: the progress reached, the failed jobs again, and how to see more."""
        self._stop_watching()
        self._report(final=True)
        if self.failures.failed:
            for rule, logs in self.failures.failed:
                where = ", ".join(logs) if logs else "no log"
                self.write(f"{PREFIX} FAILED: {rule}; log: {where}")
        else:
            self.write(f"{PREFIX} FAILED (see Snakemake's message above)")
        self.write(f"{PREFIX} {FULL_OUTPUT_HINT}")
