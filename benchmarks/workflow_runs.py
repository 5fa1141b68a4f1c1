"""Run the repository's Snakemake workflow in a scratch copy and measure it (issue 17).

Helpers shared by :mod:`benchmarks.sweep_cost` and :mod:`benchmarks.default_sweep`:

* :func:`workflow_copy`: the Snakefile, ``workflow/``, ``profiles/`` and ``config/`` of this
  repository copied into a new folder (a "fresh clone" without results), optionally with
  another ``config/config.yaml``;
* :func:`run_snakemake`: wall seconds and the CPU seconds of the whole process tree
  (``RUSAGE_CHILDREN``: Snakemake, every job and every process they waited for);
* :func:`job_times`: wall seconds per job and per rule, read from Snakemake's own log
  (``.snakemake/log/*.snakemake.log``: a timestamp before each job starts and finishes,
  one-second resolution);
* :func:`peak_rss_of`: peak RSS of a command started from a small launcher process (Linux
  carries a parent's RSS high-water mark across ``exec``, so a child of this big process
  would report at least this process's size).

Every duration is in seconds, every memory size in MiB.
"""

from __future__ import annotations

import datetime as _datetime
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from ._util import MIB, REPOSITORY

SNAKEMAKE = str(Path(sys.executable).with_name("snakemake"))
"""The ``snakemake`` of this interpreter's environment."""

RSS_LAUNCHER = """
import os, subprocess, sys
process = subprocess.Popen(sys.argv[2:])
_, status, usage = os.wait4(process.pid, 0)
with open(sys.argv[1], "w") as sink:
    sink.write(str(usage.ru_maxrss))
sys.exit(os.waitstatus_to_exitcode(status))
"""
"""Runs ``argv[2:]`` and writes its peak RSS (KiB, ``ru_maxrss`` of that child) to argv[1]."""


def workflow_copy(root: Path, config: dict[str, Any] | None = None) -> Path:
    """Copy the workflow into ``root`` (created); ``config`` replaces config/config.yaml."""
    root.mkdir(parents=True)
    shutil.copy2(REPOSITORY / "Snakefile", root)
    ignore = shutil.ignore_patterns("__pycache__", ".snakemake", "results")
    for folder in ("workflow", "profiles", "config"):
        shutil.copytree(REPOSITORY / folder, root / folder, ignore=ignore)
    if config is not None:
        (root / "config" / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    return root


def shipped_config() -> dict[str, Any]:
    """The repository's config/config.yaml, parsed."""
    return yaml.safe_load((REPOSITORY / "config" / "config.yaml").read_text())


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_snakemake(root: Path, *args: str) -> dict[str, float]:
    """Run ``snakemake ARGS`` in ``root`` (it must succeed): ``wall_s`` and ``cpu_s``.

    ``cpu_s`` is user + system CPU of the whole process tree (Snakemake, its jobs and every
    process they started and waited for), from ``getrusage(RUSAGE_CHILDREN)``.
    """
    cpu, wall = _children_cpu(), time.perf_counter()
    result = subprocess.run([SNAKEMAKE, *args], cwd=root, capture_output=True, text=True)
    wall, cpu = time.perf_counter() - wall, _children_cpu() - cpu
    if result.returncode:
        raise RuntimeError(f"snakemake {' '.join(args)} failed:\n{result.stderr[-3000:]}")
    return {"wall_s": wall, "cpu_s": cpu}


_STAMP = re.compile(r"^\[(\w{3} \w{3} +\d+ \d\d:\d\d:\d\d \d{4})\]$")
_RULE = re.compile(r"^(?:local)?(?:rule|checkpoint) (\w+):$")
_JOBID = re.compile(r"^\s+jobid: (\d+)$")
_FINISHED = re.compile(r"^Finished job(?:id)?:? (\d+)")


def _stamp(text: str) -> float:
    return _datetime.datetime.strptime(" ".join(text.split()), "%a %b %d %H:%M:%S %Y").timestamp()


def job_times(root: Path) -> dict[str, Any]:
    """Per-rule wall seconds of the latest Snakemake run in ``root``, from its log.

    Returns ``{"rules": {rule: {"jobs": n, "wall_s": summed job walls, "max_s": longest}},
    "log": name}``; job walls overlap when jobs run in parallel, so the sum over rules can
    exceed the run's wall time. Resolution: one second per timestamp.
    """
    logs = sorted((root / ".snakemake" / "log").glob("*.snakemake.log"))
    if not logs:
        return {"rules": {}, "log": None}
    now: float | None = None
    rule: str | None = None
    started: dict[str, tuple[str, float]] = {}
    rules: dict[str, dict[str, Any]] = {}
    for line in logs[-1].read_text().splitlines():
        if match := _STAMP.match(line.strip()):
            now, rule = _stamp(match.group(1)), None
        elif match := _RULE.match(line.strip()):
            rule = match.group(1)
        elif (match := _JOBID.match(line)) and rule is not None and now is not None:
            started[match.group(1)] = (rule, now)
        elif (match := _FINISHED.match(line.strip())) and match.group(1) in started:
            name, start = started.pop(match.group(1))
            entry = rules.setdefault(name, {"jobs": 0, "wall_s": 0.0, "max_s": 0.0})
            wall = (now or start) - start
            entry["jobs"] += 1
            entry["wall_s"] += wall
            entry["max_s"] = max(entry["max_s"], wall)
    return {"rules": rules, "log": logs[-1].name}


def peak_rss_of(command: Sequence[str], cwd: Path) -> dict[str, Any]:
    """Run ``command`` from a small launcher: ``wall_s``, ``peak_rss_mib``, ``returncode``."""
    with tempfile.TemporaryDirectory() as folder:
        sink = Path(folder) / "rss"
        start = time.perf_counter()
        result = subprocess.run(
            [sys.executable, "-c", RSS_LAUNCHER, str(sink), *command],
            cwd=cwd,
            capture_output=True,
            text=True,
            env={**os.environ},
        )
        wall = time.perf_counter() - start
        peak_kib = int(sink.read_text()) if sink.exists() else 0
    if result.returncode:
        raise RuntimeError(f"{' '.join(command)} failed:\n{result.stderr[-3000:]}")
    return {"wall_s": wall, "peak_rss_mib": peak_kib * 1024 / MIB, "returncode": 0}


def sweep_cells(name: str, sweep: dict[str, Any], base_seed: int) -> list[Any]:
    """The checked cells (``CellSpec``) of one sweep block, as the workflow builds them."""
    try:
        from cq_core.pipeline.sweep import sweep_cell_specs  # the target layout
    except ImportError:
        from cq_core.sweep import sweep_cell_specs
    return list(sweep_cell_specs(name, sweep, base_seed=base_seed).values())


def simulate_cpu(cells: Sequence[Any]) -> float:
    """CPU seconds of simulating ``cells`` one after another in this process (warm kernels)."""
    warm: dict[tuple[str, str, str], Any] = {}
    for cell in cells:  # one warm-up per model and mode: kernel load, first-call costs
        warm.setdefault((cell.model, repr(cell.params), str(cell.mode)), cell)
    for cell in warm.values():
        cell.simulate()
    start = time.process_time()
    for cell in cells:
        cell.simulate()
    return time.process_time() - start
