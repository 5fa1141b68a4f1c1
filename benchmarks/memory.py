"""Peak resident memory of one run, each measured in a fresh interpreter (MiB).

``ru_maxrss`` is a high-water mark that never goes down, so a measurement taken in the
benchmark process itself would include every earlier allocation (e.g. the 70 MiB noise-floor
array). :func:`measure` starts ``python -m benchmarks._child`` for each task instead and reads
the peak the child reports for itself: ``VmHWM``, its own ``ru_maxrss`` without the part
Linux inherits from the (large) parent across fork/exec.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

from ._util import REPOSITORY

CHILD_TIMEOUT_S = 600.0
"""Seconds after which a memory measurement is abandoned."""


def measure(task: dict[str, Any]) -> dict[str, Any]:
    """Run ``task`` (see :mod:`benchmarks._child`) in a fresh interpreter; return its report.

    The report holds ``baseline_rss_mib`` (after imports and kernel warm-up),
    ``peak_rss_mib`` (after the task), ``task_rss_mib`` (their difference: what the task
    itself added), ``task_wall_s``, ``task_cpu_s`` and ``output_mib`` (the returned
    Dataset's size). On failure it holds ``error`` instead.
    """
    command = [sys.executable, "-m", "benchmarks._child", json.dumps(task)]
    try:
        done = subprocess.run(
            command,
            cwd=REPOSITORY,
            env=dict(os.environ),
            capture_output=True,
            text=True,
            timeout=CHILD_TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {CHILD_TIMEOUT_S:g} s"}
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
        return {"error": f"exit code {done.returncode}: {' | '.join(tail)}"}
    report = json.loads(lines[-1])
    report["task_rss_mib"] = report["peak_rss_mib"] - report["baseline_rss_mib"]
    return report
