"""Load (issue 9): memory bounded by the block, and many cells on one Dask cluster at once.

* A cell of 10⁵ trajectories runs in blocks: its peak resident memory grows with the block
  size, hardly with the cell size, and stays well below the cell's stored size. Each
  measurement runs in a fresh subprocess (``resource.getrusage(...).ru_maxrss``, measured
  after a warm-up run so that imports, the JIT and the cluster are in the baseline).
* Ten cells sent at once to one local Dask cluster (on 127.0.0.1) give the same stores, byte
  for byte, as the same cells computed one at a time.
"""

from __future__ import annotations

import json
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

from test_cells import store_digest

from cq_core.cells import CellSpec, run_cell_to_store
from cq_core.simulate import NOISE_CHUNK_STEPS

# ------------------------------------------------------------------ memory and block size

N_TRAJ, FEW_TRAJ = 100_000, 20_000
SMALL_BLOCK, LARGE_BLOCK = 2_000, 20_000
MEMORY_CELL = CellSpec(
    model="mass_superposition",  # three noises, six coordinates: large blocks
    params={},
    sigma=0.02,
    seed=0,
    n_traj=N_TRAJ,
    t_final=0.256,  # one noise chunk of NOISE_CHUNK_STEPS steps …
    dt=1.0e-3,
    save_every=16,  # … and 17 saved times: the stored cell (130 MiB) is large too
    backend="generated",  # the compiled kernel: the run takes seconds, not minutes
)
N_NOISES, N_CLASSICAL, DIM = 3, 6, 2
MEASURE = """
import json, sys
from dataclasses import replace
from cq_core.cells import CellSpec, run_cell_to_store

def status(key):
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) * 1024 for line in f if line.startswith(key))

spec = CellSpec.from_json(sys.argv[1])
block = int(sys.argv[2])
run_cell_to_store(replace(spec, n_traj=10), sys.argv[3], block_size=10)
# the warm-up's own peak (imports, a JIT compile if the cache is cold, the cluster) must not
# hide the run's: reset the peak to the current size (Linux: clear_refs 5)
with open("/proc/self/clear_refs", "w") as f:
    f.write("5")
before = status("VmRSS:")
run_cell_to_store(spec, sys.argv[3], block_size=block, threads=1, processes=False)
print(json.dumps({"growth": status("VmHWM:") - before}))
"""


def peak_growth(spec: CellSpec, block: int, store: Path) -> int:
    """Growth (bytes) of the peak resident memory while a fresh process runs and stores a cell.

    The cell is run the way the pipeline's ``run-cell`` runs it
    (:func:`cq_core.cells.run_cell_to_store`: blocks written as they arrive), after a tiny
    warm-up cell, so that imports, the JIT, the cluster and the writer are in the baseline.
    """
    result = subprocess.run(
        [sys.executable, "-c", MEASURE, spec.to_json(), str(block), str(store)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])["growth"]


def noise_chunk_bytes(n_traj: int) -> int:
    """Bytes of the noise chunk of ``n_traj`` trajectories (the NumPy path's largest array)."""
    return n_traj * NOISE_CHUNK_STEPS * N_NOISES * 8


def stored_bytes(n_traj: int) -> int:
    """Bytes of the stored classical and quantum samples of a cell of ``n_traj`` trajectories."""
    saved = MEMORY_CELL.check().saved_steps.size
    return n_traj * saved * (8 * N_CLASSICAL + 16 * DIM)


def test_peak_memory_follows_the_block_size_not_the_cell_size(tmp_path):
    large_blocks = peak_growth(MEMORY_CELL, LARGE_BLOCK, tmp_path / "large.zarr")
    small_blocks = peak_growth(MEMORY_CELL, SMALL_BLOCK, tmp_path / "small.zarr")
    few = peak_growth(replace(MEMORY_CELL, n_traj=FEW_TRAJ), SMALL_BLOCK, tmp_path / "few.zarr")
    assert store_digest(tmp_path / "small.zarr") == store_digest(tmp_path / "large.zarr")
    report = f"growth: {large_blocks=}, {small_blocks=}, {few=}"
    # ten times the block: the peak grows by at least the extra block's output arrays (the
    # compiled kernel draws its noise step by step, so no noise chunk is held) …
    extra_block = stored_bytes(LARGE_BLOCK) - stored_bytes(SMALL_BLOCK)
    assert large_blocks - small_blocks >= extra_block, report
    # … while five times the cell at the same block size adds a small part of its extra data
    extra_data = stored_bytes(N_TRAJ) - stored_bytes(FEW_TRAJ)
    assert small_blocks - few < 0.25 * extra_data, report
    # and the cell is never held whole: well below its stored samples, and its noise at once
    assert small_blocks < 0.5 * stored_bytes(N_TRAJ), report
    assert small_blocks < 0.1 * noise_chunk_bytes(N_TRAJ), report


# ------------------------------------------------------------------- ten cells at once

TINY_CELLS = [
    CellSpec(
        model="linear",
        params={},
        sigma=sigma,
        seed=seed,
        n_traj=30,
        t_final=0.01,
        dt=1e-3,
        save_every=2,
        backend="numpy",
    )
    for sigma in (0.5, 1.0, 2.0, 4.0, 8.0)
    for seed in (0, 1)
]


def test_ten_cells_at_once_on_one_cluster_equal_one_at_a_time(tmp_path):
    import logging

    from distributed import LocalCluster

    assert len(TINY_CELLS) == 10
    with LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=False,
        protocol="tcp://",
        host="127.0.0.1",
        dashboard_address="127.0.0.1:0",
        worker_dashboard_address="127.0.0.1:0",
        silence_logs=logging.ERROR,
    ) as cluster:
        address = cluster.scheduler_address
        assert address.startswith("tcp://127.0.0.1:")

        def run(index: int, folder: str) -> Path:
            path = tmp_path / folder / f"cell-{index}.zarr"
            return run_cell_to_store(
                TINY_CELLS[index], path, block_size=10, scheduler_address=address
            )

        one_at_a_time = [run(i, "serial") for i in range(len(TINY_CELLS))]
        with ThreadPoolExecutor(max_workers=len(TINY_CELLS)) as pool:
            at_once = list(pool.map(run, range(len(TINY_CELLS)), ["parallel"] * len(TINY_CELLS)))
    for serial, parallel in zip(one_at_a_time, at_once, strict=True):
        assert store_digest(parallel) == store_digest(serial), parallel.name
    assert len({json.dumps(store_digest(p)) for p in at_once}) == len(TINY_CELLS)  # all differ
