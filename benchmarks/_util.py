"""Timing, fitting and machine-description helpers shared by the benchmark modules.

Units: every duration is in seconds (``*_s``), every memory size in MiB (``*_mib``,
2²⁰ bytes), every throughput in trajectory-steps per second (``*_per_s``).
"""

from __future__ import annotations

import datetime as _datetime
import gc
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

CPU_CLOCK = "time.process_time (CPU seconds of this process)"
"""The clock of every one-core measurement: CPU time is not inflated by other processes."""
WALL_CLOCK = "time.perf_counter (wall seconds)"
"""The clock of every multi-worker measurement (CPU time would hide the parallelism)."""
MIB = 2.0**20
"""Bytes per MiB."""
REPOSITORY = Path(__file__).resolve().parent.parent
"""The repository root (the parent of ``benchmarks/``)."""


def interleaved(
    tasks: Mapping[str, Callable[[], Any]],
    rounds: int,
    *,
    clock: Callable[[], float] = time.process_time,
    max_runs: Mapping[str, int] | None = None,
) -> dict[str, dict[str, float | int]]:
    """Time each task once per round, alternating tasks, for ``rounds`` rounds.

    Interleaving spreads slow phases of a noisy machine over every task alike. ``max_runs``
    caps the runs of expensive tasks. Returns, per task, ``min_s`` (the estimate used: the
    least disturbed run), ``median_s``, ``runs`` and ``samples_s`` (every run, in order);
    durations in seconds of ``clock``.
    """
    limits = dict(max_runs or {})
    samples: dict[str, list[float]] = {name: [] for name in tasks}
    for index in range(rounds):
        for name, task in tasks.items():
            if index >= limits.get(name, rounds):
                continue
            gc.collect()
            start = clock()
            result = task()
            elapsed = clock() - start
            del result
            samples[name].append(elapsed)
    return {name: timing_summary(runs) for name, runs in samples.items() if runs}


def timing_summary(runs: Sequence[float]) -> dict[str, float | int | list[float]]:
    """``min_s`` (the estimate used), ``median_s``, ``runs`` and ``samples_s`` of timings."""
    return {
        "min_s": min(runs),
        "median_s": statistics.median(runs),
        "runs": len(runs),
        "samples_s": list(runs),
    }


def best_time(
    task: Callable[[], Any], repeats: int, *, clock: Callable[[], float] = time.process_time
) -> float:
    """The least of ``repeats`` timings of ``task`` (seconds of ``clock``)."""
    return interleaved({"task": task}, repeats, clock=clock)["task"]["min_s"]


def noise_floor_task(n_steps: int, n_traj: int, n_noises: int) -> Callable[[], np.ndarray]:
    """The yardstick: ``default_rng().standard_normal`` of ``n_steps × n_traj × n_noises``
    Gaussians, drawn into one preallocated array written once here (``out=``): a fresh array
    of tens of MB costs page faults that made the floor, and every ratio to it, swing
    severalfold from run to run."""
    out = np.empty((n_steps, n_traj, n_noises))
    rng = np.random.default_rng()
    rng.standard_normal(out=out)

    def draw() -> np.ndarray:
        return rng.standard_normal(out=out)

    return draw


def paired_ratio(numerator: Sequence[float], denominator: Sequence[float]) -> float:
    """Median over rounds of ``numerator[i] / denominator[i]`` (runs adjacent in time)."""
    pairs = zip(numerator, denominator, strict=False)
    return float(statistics.median(a / b for a, b in pairs))


def loglog_slope(x: Sequence[float], y: Sequence[float]) -> float:
    """Least-squares slope of ``log y`` against ``log x`` (dimensionless exponent)."""
    return float(np.polyfit(np.log(np.asarray(x, float)), np.log(np.asarray(y, float)), 1)[0])


def ru_maxrss_mib() -> float:
    """``getrusage(RUSAGE_SELF).ru_maxrss`` in MiB (KiB on Linux, bytes on macOS).

    Caveat (Linux): this is a per-process high-water mark that survives ``fork`` and
    ``execve``, so a child started by a large parent reports at least the parent's resident
    size at the time of the fork. :func:`peak_rss_mib` avoids that.
    """
    scale = 1.0 if sys.platform == "darwin" else 1024.0
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale / MIB


def affine_fit(x: Sequence[float], y: Sequence[float]) -> dict[str, float]:
    """Least-squares ``y = fixed + per_unit · x``: the fixed cost and the cost per unit of x."""
    per_unit, fixed = np.polyfit(np.asarray(x, float), np.asarray(y, float), 1)
    return {"fixed": float(fixed), "per_unit": float(per_unit)}


def peak_rss_mib() -> float:
    """Peak resident set size of this process's own address space so far, MiB.

    On Linux this is ``VmHWM`` of ``/proc/self/status``: the high-water mark of the memory
    map created at ``execve``, i.e. ``ru_maxrss`` without what was inherited from the parent.
    Elsewhere it falls back to :func:`ru_maxrss_mib`.
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024 / MIB
    except OSError:
        pass
    return ru_maxrss_mib()


def resident_split_mib() -> dict[str, float]:
    """Current resident memory split into anonymous (private data) and file-backed pages.

    File-backed pages (shared libraries such as LLVM's) are shared between processes that map
    the same files; anonymous pages are each process's own. Linux only (else empty), MiB.
    """
    split = {}
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            key = line.split(":", 1)[0]
            if key in ("RssAnon", "RssFile", "RssShmem"):
                split[f"{key.lower()}_mib"] = int(line.split()[1]) * 1024 / MIB
    except OSError:
        pass
    return split


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _memory_total_mib() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 1024 / MIB
    except OSError:
        pass
    return None


def _version(distribution: str) -> str | None:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None


def load_average() -> list[float] | None:
    """The 1, 5 and 15 minute load averages (runnable processes), if the OS reports them."""
    try:
        return [round(value, 2) for value in os.getloadavg()]
    except OSError:
        return None


_SPIN = (
    "import time\n"
    "cpu = time.process_time()\n"
    "end = time.perf_counter() + {seconds}\n"
    "while time.perf_counter() < end:\n"
    "    pass\n"
    "print(time.process_time() - cpu)\n"
)


def available_cores(processes: int = 2, seconds: float = 1.0) -> float:
    """How many cores ``processes`` busy-looping processes obtain together right now.

    Each spins for ``seconds`` of wall time; the sum of their CPU seconds divided by
    ``seconds`` is the number of cores the machine gave them (2.0 on an idle 2-core machine,
    less when other processes compete). It bounds any parallel speed-up measured meanwhile.
    """
    command = [sys.executable, "-c", _SPIN.format(seconds=seconds)]
    children = [
        subprocess.Popen(command, stdout=subprocess.PIPE, text=True) for _ in range(processes)
    ]
    total = 0.0
    for child in children:
        output, _ = child.communicate()
        total += float(output.strip().splitlines()[-1])
    return total / seconds


def machine_info() -> dict[str, Any]:
    """CPU model, core counts, memory, OS, date and the versions of the measured packages."""
    packages = (
        "numpy",
        "numba",
        "llvmlite",
        "scipy",
        "xarray",
        "dask",
        "distributed",
        "qutip",
        "cq-sweep",
    )
    return {
        "date_utc": _datetime.datetime.now(_datetime.UTC).isoformat(timespec="seconds"),
        "cpu_model": _cpu_model(),
        "logical_cpus": os.cpu_count(),
        "usable_cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "memory_total_mib": _memory_total_mib(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "versions": {name: _version(name) for name in packages},
        "thread_limits": {
            name: os.environ.get(name)
            for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMBA_NUM_THREADS")
        },
        "load_average_at_start": load_average(),
    }
