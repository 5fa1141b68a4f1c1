"""Threads or processes for a cell's Dask blocks? (numbers quoted in config/README.md)

Runs the seed's histogram cell (mass_superposition, 2000 trajectories x 1500 steps, blocks
of 500) with the NumPy kernel and with the fused C kernel, each serially, on an
in-process cluster of 2 threads and on a local cluster of 2 processes, reporting start-up and
per-run compute times::

    python benchmarks/bench_dask_cells.py
"""

from __future__ import annotations

import logging
import time
from dataclasses import replace

from cq_core.cells import CellSpec, _simulate_block, dask_client, split_blocks

SPEC = CellSpec(
    model="mass_superposition",
    params={},
    sigma=0.02,
    seed=0,
    n_traj=2000,
    t_final=0.15,
    dt=1e-4,
    save_every=10,
)


def bench(spec: CellSpec) -> None:
    """Serial, 2 threads and 2 processes for one cell."""
    spec_json, blocks = spec.to_json(), split_blocks(spec.n_traj, 500)
    for run in range(2):  # the first includes warm-up (imports, first calls, JIT cache)
        start = time.perf_counter()
        for first, count in blocks:
            _simulate_block(spec_json, first, count)
        print(f"  serial run {run}: {time.perf_counter() - start:.2f} s")
    for processes in (False, True):
        start = time.perf_counter()
        with dask_client(None, threads=2, processes=processes) as client:
            kind = "processes" if processes else "threads"
            print(f"  2 {kind}: start {time.perf_counter() - start:.2f} s")
            for run in range(3):
                began = time.perf_counter()
                client.gather(
                    [client.submit(_simulate_block, spec_json, f, n, pure=False) for f, n in blocks]
                )
                print(f"    run {run}: {time.perf_counter() - began:.2f} s")
        print(f"    total with shutdown: {time.perf_counter() - start:.2f} s")


def main() -> None:
    import distributed  # noqa: F401  (sets its loggers' levels on import)

    logging.getLogger("distributed").setLevel(logging.ERROR)
    for backend in ("numpy", "c"):
        print(f"{backend} kernel:")
        bench(replace(SPEC, backend=backend))


if __name__ == "__main__":  # the process cluster re-imports this module in its workers
    main()
