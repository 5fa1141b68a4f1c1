"""Threads or processes for a cell's Dask blocks? (the ``dask_cells`` section)

Runs the seed's histogram cell (mass_superposition, 2000 trajectories x 1500 steps, blocks
of 500) with the NumPy kernel and with the generated (compiled) kernel, each serially, on an
in-process cluster of 2 threads and on a local cluster of 2 processes, reporting start-up and
per-run compute wall seconds (``python -m benchmarks --only dask_cells``, or on its own)::

    python -m benchmarks.bench_dask_cells
"""

from __future__ import annotations

import logging
import time
from dataclasses import replace
from typing import Any

SPEC = dict(
    model="mass_superposition",
    params={},
    sigma=0.02,
    seed=0,
    n_traj=2000,
    t_final=0.15,
    dt=1e-4,
    save_every=10,
)
"""The measured cell (``CellSpec`` keywords)."""


def _cells() -> Any:
    try:  # the target layout, then the old one
        from cq_core.pipeline import cells
    except ImportError:
        from cq_core import cells
    return cells


def bench(spec: Any, runs: int = 3) -> dict[str, Any]:
    """Serial, 2 threads and 2 processes for one cell: wall seconds of each run."""
    cells = _cells()
    _simulate_block, dask_client, split_blocks = (
        cells._simulate_block,
        cells.dask_client,
        cells.split_blocks,
    )
    spec_json, blocks = spec.to_json(), split_blocks(spec.n_traj, 500)
    out: dict[str, Any] = {"serial_s": []}
    for _ in range(2):  # the first includes warm-up (imports, first calls, JIT cache)
        start = time.perf_counter()
        for first, count in blocks:
            _simulate_block(spec_json, first, count)
        out["serial_s"].append(time.perf_counter() - start)
    for processes in (False, True):
        kind = "processes" if processes else "threads"
        start = time.perf_counter()
        with dask_client(None, threads=2, processes=processes) as client:
            entry = {"start_s": time.perf_counter() - start, "runs_s": []}
            for _ in range(runs):
                began = time.perf_counter()
                client.gather(
                    [client.submit(_simulate_block, spec_json, f, n, pure=False) for f, n in blocks]
                )
                entry["runs_s"].append(time.perf_counter() - began)
        entry["total_with_shutdown_s"] = time.perf_counter() - start
        out[kind] = entry
    return out


def measure(runs: int = 3) -> dict[str, Any]:
    """:func:`bench` for the NumPy and the generated kernel."""
    import distributed  # noqa: F401  (sets its loggers' levels on import)

    logging.getLogger("distributed").setLevel(logging.ERROR)
    spec = _cells().CellSpec(**SPEC)
    backends = ("numpy", "generated")
    return {backend: bench(replace(spec, backend=backend), runs) for backend in backends}


def markdown(result: dict[str, Any]) -> str:
    """One row per kernel: serial (warm), 2 threads, 2 processes (least of runs, start-up)."""
    lines = [
        "| kernel | serial (warm) | 2 threads | 2 processes |",
        "|---|---|---|---|",
    ]
    for backend, row in result.items():
        threads, processes = row["threads"], row["processes"]
        lines.append(
            f"| {backend} | {row['serial_s'][-1]:.2f} s | {min(threads['runs_s']):.2f} s "
            f"(start {threads['start_s']:.2f} s) | {min(processes['runs_s']):.2f} s "
            f"(start {processes['start_s']:.2f} s) |"
        )
    return "\n".join(lines)


if __name__ == "__main__":  # the process cluster re-imports this module in its workers
    print(markdown(measure()))
