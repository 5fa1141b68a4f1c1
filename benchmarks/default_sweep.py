"""``python -m benchmarks.default_sweep``: the README's default run, measured (issue 17 target 2).

In a fresh copy of the workflow with the shipped ``config/config.yaml`` (no results), it runs
``snakemake --cores 2 --printshellcmds`` and records, in one run:

* ``wall_s`` and ``cpu_s`` of the whole Snakemake process tree (target: wall ≤ 25 s);
* ``per_rule``: jobs and summed job wall seconds per rule, from Snakemake's own log;
* ``simulate_cpu_s``: CPU of simulating every cell of every sweep one after another in this
  process (the physics);
* ``render_cpu_s``: CPU of drawing every figure and table again in one process, from the
  stored results, with the very commands the figure jobs ran (their ``python -m cq_core``
  arguments, taken from the log), after one warm-up import: the plotting without process
  start-up;
* ``ratio``: ``wall_s / (simulate_cpu_s / 2 + render_cpu_s)`` (target ≤ 3).

The machine's load average before and after is recorded: other processes inflate the wall time.
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from ._util import load_average
from .workflow_runs import (
    job_times,
    run_snakemake,
    shipped_config,
    simulate_cpu,
    sweep_cells,
    workflow_copy,
)

CORES = 2
"""Cores given to Snakemake, and the divisor of the single-process simulate CPU."""
WALL_TARGET_S = 25.0
RATIO_TARGET = 3.0
FIGURE_COMMANDS = ("figure", "table")
"""First arguments of ``python -m cq_core`` that draw a figure or write a table."""

_RENDER = """
import json, sys, time
import cq_core.cli
commands = json.loads(sys.argv[1])
times = []
for args in commands:
    start = time.process_time()
    code = cq_core.cli.main(args)
    times.append(time.process_time() - start)
    if code:
        raise SystemExit(f"{args} exited with {code}")
print(json.dumps(times))
"""


def figure_commands(log: Path) -> list[list[str]]:
    """The ``python -m cq_core figure|table …`` arguments the run's log shows (after ``-m``),
    those of the figure and table steps of each sweep's ``python -m cq_core steps`` job too."""
    commands = []
    for line in log.read_text().splitlines():
        words = line.strip()
        if " -m cq_core " not in words:
            continue
        try:
            argv = shlex.split(words.split(" 2> ")[0])
        except ValueError:
            continue
        try:
            args = argv[argv.index("cq_core") + 1 :]
        except ValueError:
            continue
        if args and args[0] == "steps" and len(args) > 1:  # a sweep's job: its figure steps
            try:
                steps = json.loads(args[1])
            except json.JSONDecodeError:
                continue
            commands += [step for step in steps if step and step[0] in FIGURE_COMMANDS]
        elif args and args[0] in FIGURE_COMMANDS:
            commands.append(args)
    return commands


def render_cpu(root: Path, commands: list[list[str]]) -> dict[str, Any]:
    """CPU seconds of running ``commands`` in one fresh process in ``root`` (after imports)."""
    if not commands:
        return {"cpu_s": 0.0, "commands": 0}
    result = subprocess.run(
        [sys.executable, "-c", _RENDER, json.dumps(commands)],
        cwd=root,
        capture_output=True,
        text=True,
    )
    if result.returncode:
        raise RuntimeError(f"re-rendering the figures failed:\n{result.stderr[-3000:]}")
    times = json.loads(result.stdout.strip().splitlines()[-1])
    # the first command also pays for its plotting imports (matplotlib): kept, it is render work
    return {"cpu_s": float(sum(times)), "commands": len(times), "per_command_s": times}


def measure(cores: int = CORES) -> dict[str, Any]:
    """The default run's wall, CPU, per-rule times, physics CPU and render CPU (module doc)."""
    config = shipped_config()
    out: dict[str, Any] = {"cores": cores, "load_average_before": load_average()}
    with tempfile.TemporaryDirectory() as folder:
        root = workflow_copy(Path(folder) / "default")
        # --quiet host replaces the default profile's list, which keeps the rule blocks (and
        # the shell commands) out of the log this benchmark reads per-rule times from
        run = run_snakemake(root, "--cores", str(cores), "--printshellcmds", "--quiet", "host")
        out["load_average_after"] = load_average()
        out.update(run)
        times = job_times(root)
        out["per_rule"] = times["rules"]
        commands = figure_commands(root / ".snakemake" / "log" / times["log"])
        render = render_cpu(root, commands)
    cells = [
        cell
        for name, sweep in config["sweeps"].items()
        for cell in sweep_cells(name, sweep, config.get("base_seed", 0))
    ]
    out["cells"] = len(cells)
    out["jobs"] = sum(rule["jobs"] for rule in out["per_rule"].values())
    out["simulate_cpu_s"] = simulate_cpu(cells)
    out["render_cpu_s"] = render["cpu_s"]
    out["render_commands"] = render["commands"]
    floor = out["simulate_cpu_s"] / cores + out["render_cpu_s"]
    out["floor_s"] = floor
    out["ratio"] = out["wall_s"] / floor if floor > 0 else None
    out["targets"] = {"wall_s": WALL_TARGET_S, "ratio": RATIO_TARGET}
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.default_sweep")
    parser.parse_args(argv)
    print(json.dumps(measure(), indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
