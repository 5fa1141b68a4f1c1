"""Bounded memory of the aggregation (issue 7): a summary is read from the stored cells chunk
by chunk, so a sweep whose trajectories exceed RAM still aggregates.

One real ``mass_superposition`` sweep (σ ∈ {0.02, 0.04}, four seeds of 10⁴ trajectories, 97
saved times) is stored with :func:`cq_core.cells.run_cell_to_store`: 593 MiB of samples once
decompressed. Its two-seed half and the whole sweep are summarised the way the
summary step of a sweep job does it (``python -m cq_core summarise … <cells>``, through
:func:`cq_core.cli.main`), each in a fresh process that first summarises a tiny sweep (imports,
the theory model and the Zarr writer are then in the baseline) and then reads the growth of its
peak resident memory from ``VmHWM`` (``/proc/self/status``, reset with ``clear_refs``).
``ru_maxrss`` would not do: a child process inherits it from the process that started it, here
pytest, whose peak after other tests can exceed the whole measurement (it then reads 0).

* Bounded memory: the growth stays well below the sweep's stored size, and doubling the sweep
  adds a small part of the extra data. An aggregation that keeps a per-(trajectory, time)
  array of the whole sweep in memory (a ``.load()``, or chunks kept alive until a reduction
  over every trajectory finishes) fails both.
* Correctness of the lazy path: the CLI's summary of the half sweep equals
  :func:`cq_core.analysis.summarise` of the same cells; on a sub-sweep of 1500 trajectories
  per cell (three stored chunks) the summary read chunk by chunk equals the one of the samples
  loaded into memory, and its C(t), E[⟨σz⟩_t], Born fraction and histograms equal direct
  NumPy formulas on the loaded ψ.
"""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import sys
from pathlib import Path

import dask
import numpy as np
import pytest
import xarray as xr

from cq_core.analysis import SUMMARY_VARIABLES, summarise
from cq_core.cells import CellSpec
from cq_core.pipeline.summary_store import open_summary
from cq_core.sweep import open_sweep, sigma_label

SIGMAS = (0.02, 0.04)
SEEDS = (0, 1, 2, 3)
HALF_SEEDS = SEEDS[:2]
N_TRAJ, WARM_UP_TRAJ = 10_000, 50
SUB_TRAJ = 1_500  # the eagerly checked sub-sweep: three stored trajectory chunks per cell
BLOCK = 5_000  # trajectories per Dask task while the cells are stored
RUN = {
    "model": "mass_superposition",
    "params": {},
    "t_final": 0.096,
    "dt": 1.0e-3,
    "save_every": 1,  # 97 saved times: the per-sample data outweighs per-trajectory arrays
    "backend": "generated",  # the compiled kernel: a cell takes about a second, mostly the writing
}
ANALYSIS = {"time_slices": [0.0, 0.05, 0.096], "hist_bins": 20, "fit_window": [0.0, 0.096]}
MIB = 2**20

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="reads the peak memory from /proc/self/status"
)

STORE = """
import json, sys
from cq_core.cells import CellSpec, run_cell_to_store
block = int(sys.argv[2])
for spec, path in json.loads(sys.argv[1]):
    run_cell_to_store(CellSpec.from_json(spec), path, block_size=block, threads=1, processes=False)
"""

MEASURE = """
import json, sys, time
from cq_core.cli import main
warm_up_dir, sweep_dir, analysis, warm_up_out, out, *cells = sys.argv[1:]


def peak_rss():
    # this process's own high-water mark: unlike ru_maxrss, which a child inherits from the
    # process that started it (pytest, often larger than the whole measurement)
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) * 1024 for line in status if line.startswith("VmHWM:"))


def summarise(sweep, output, cells):
    argv = ["summarise", "--sweep-dir", sweep, "--analysis", analysis, "--output", output]
    status = main([*argv, "--threads", "1", *cells])
    if status:
        sys.exit(status)


summarise(warm_up_dir, warm_up_out, [])
try:
    with open("/proc/self/clear_refs", "w") as refs:
        refs.write("5")  # reset the high-water mark to the current resident memory
except OSError:
    pass  # then the baseline is the warm-up's peak
before = peak_rss()
start = time.perf_counter()
summarise(sweep_dir, out, cells)
seconds = time.perf_counter() - start
print(json.dumps({"growth": peak_rss() - before, "seconds": seconds}))
"""


def cell_path(root: Path, sigma: float, seed: int) -> Path:
    """Where the pipeline keeps a cell: ``<sweep>/cells/sigma=<σ>/seed=<seed>.zarr``."""
    return root / "cells" / f"sigma={sigma_label(sigma)}" / f"seed={seed}.zarr"


def cells_of(root: Path, seeds: tuple[int, ...], n_traj: int) -> dict[Path, CellSpec]:
    """The cells of one sweep by their stores' paths."""
    return {
        cell_path(root, sigma, seed): CellSpec(sigma=sigma, seed=seed, n_traj=n_traj, **RUN)
        for sigma in SIGMAS
        for seed in seeds
    }


def store_cells(cells: dict[Path, CellSpec]) -> None:
    """Run and store cells block by block, as ``run-cell`` does, in a separate process.

    The test's own process then stays small: a process it starts later inherits its peak as
    ``ru_maxrss`` (tests/test_load.py measures that way).
    """
    jobs = [[spec.to_json(), str(path)] for path, spec in cells.items()]
    result = subprocess.run(
        [sys.executable, "-c", STORE, json.dumps(jobs), str(BLOCK)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]


def peak_growth(warm_up: Path, sweep: Path, cells: list[Path], output: Path) -> dict:
    """Peak-RSS growth (bytes) and time of ``python -m cq_core summarise`` in a fresh process."""
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            MEASURE,
            str(warm_up),
            str(sweep),
            json.dumps(ANALYSIS),
            str(output.with_name("warm-up-summary.zarr")),
            str(output),
            *map(str, cells),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def measured(tmp_path_factory):
    """The stored sweep, its half and whole summarised in fresh processes, and the numbers."""
    root = tmp_path_factory.mktemp("bounded-memory")
    warm_up, sweep = root / "warm-up", root / "sweep"
    whole = cells_of(sweep, SEEDS, N_TRAJ)
    store_cells({**cells_of(warm_up, HALF_SEEDS, WARM_UP_TRAJ), **whole})
    cells = list(whole)
    half = [cell_path(sweep, sigma, seed) for sigma in SIGMAS for seed in HALF_SEEDS]
    runs = {}
    for name, chosen in (("half", half), ("whole", cells)):
        lazy = open_sweep(sweep, cells=chosen)  # metadata only: sizes and dtypes
        runs[name] = {
            "cells": chosen,
            "stored": lazy.nbytes,
            "samples": math.prod(lazy.sizes[d] for d in ("sigma", "seed", "trajectory", "time")),
            "summary": root / f"{name}-summary.zarr",
        }
        runs[name].update(peak_growth(warm_up, sweep, chosen, runs[name]["summary"]))
    yield runs
    shutil.rmtree(root, ignore_errors=True)  # about 560 MB of cells on disk


def describe(runs: dict) -> str:
    return "; ".join(
        f"{name}: {run['stored'] / MIB:.0f} MiB stored, peak growth {run['growth'] / MIB:.1f} MiB "
        f"({run['growth'] / run['stored']:.3f}x) in {run['seconds']:.1f} s"
        for name, run in runs.items()
    )


def test_summary_memory_is_bounded_by_the_chunks_not_the_sweep(measured):
    half, whole = measured["half"], measured["whole"]
    report = describe(measured)
    assert whole["samples"] == 2 * half["samples"] and whole["stored"] > 500 * MIB, report
    # well below the stored samples (80 bytes each: 0.15x is 1.5 float64 per sample) …
    assert whole["growth"] < 0.15 * whole["stored"], report
    # … and twice the sweep adds under 5 % of the extra data (4 bytes per extra sample): the
    # peak follows the chunks, not the sweep, so a sweep larger than RAM still aggregates
    assert whole["growth"] - half["growth"] < 0.05 * (whole["stored"] - half["stored"]), report


def summary_of(sweep: xr.Dataset) -> xr.Dataset:
    """The summary the CLI computes, with its settings and its one-thread scheduler."""
    lazy = summarise(
        sweep,
        time_slices=ANALYSIS["time_slices"],
        bins=ANALYSIS["hist_bins"],
        fit_window=ANALYSIS["fit_window"],
    )
    with dask.config.set(scheduler="threads", num_workers=1):
        return lazy.compute()


def assert_same_summary(actual: xr.Dataset, expected: xr.Dataset, rtol: float) -> None:
    assert set(actual.data_vars) == set(expected.data_vars)
    assert set(SUMMARY_VARIABLES) <= set(expected.data_vars)
    for name, variable in expected.data_vars.items():
        assert actual[name].dims == variable.dims, name
        np.testing.assert_allclose(
            actual[name].values, variable.values, rtol=rtol, atol=1e-14, err_msg=name
        )


def test_the_cli_stored_the_summary_of_the_cells(measured):
    half = measured["half"]
    stored = open_summary(half["summary"]).load()
    lazy = open_sweep(half["cells"][0].parents[2], cells=half["cells"])
    assert lazy["psi"].chunks is not None
    assert_same_summary(stored, summary_of(lazy), rtol=1e-12)
    assert stored.attrs["n_traj_per_cell"] == N_TRAJ
    np.testing.assert_array_equal(stored["n_trajectories"], len(HALF_SEEDS) * N_TRAJ)


def test_the_lazy_summary_equals_the_eager_one(measured):
    half = measured["half"]
    sweep = open_sweep(half["cells"][0].parents[2], cells=half["cells"])
    lazy = sweep.isel(trajectory=slice(0, SUB_TRAJ))  # a sub-sweep, still read chunk by chunk
    assert len(lazy["psi"].chunks[lazy["psi"].get_axis_num("trajectory")]) == 3
    loaded = lazy.drop_vars("classical").load()  # the same samples in memory
    assert loaded["psi"].chunks is None
    from_chunks, eager = summary_of(lazy), summary_of(loaded)
    assert_same_summary(from_chunks, eager, rtol=1e-8)  # the same sums in another order

    # the same numbers from NumPy formulas on the loaded ψ (docs/physics.md), flagged ones excluded
    a, b = (int(level) for level in loaded.attrs.get("basis_pair", (0, 1)))
    psi = loaded["psi"].transpose("sigma", "seed", "trajectory", "time", "level").values
    keep = (loaded["status"].transpose("sigma", "seed", "trajectory").values == 0)[..., None]
    n_kept = keep.sum(axis=(1, 2))
    n_total = len(HALF_SEEDS) * SUB_TRAJ
    np.testing.assert_array_equal(from_chunks["n_flagged"], n_total - n_kept[:, 0])
    coherence = 2.0 * np.abs(psi[..., a]) * np.abs(psi[..., b])
    mean_coherence = np.where(keep, coherence, 0.0).sum(axis=(1, 2)) / n_kept
    np.testing.assert_allclose(
        from_chunks["coherence"], mean_coherence / mean_coherence[:, :1], rtol=1e-10
    )
    sigma_z = np.abs(psi[..., a]) ** 2 - np.abs(psi[..., b]) ** 2
    mean_sigma_z = np.where(keep, sigma_z, 0.0).sum(axis=(1, 2)) / n_kept
    np.testing.assert_allclose(from_chunks["sigma_z_mean"], mean_sigma_z, rtol=1e-10, atol=1e-14)
    ending_a = np.where(keep[..., 0], sigma_z[..., -1] > 0, False).sum(axis=(1, 2))
    np.testing.assert_allclose(from_chunks["born_fraction"], ending_a / n_kept[:, 0], rtol=1e-12)
    edges = np.linspace(-1.0, 1.0, ANALYSIS["hist_bins"] + 1)
    times = loaded["time"].values
    for k, t in enumerate(ANALYSIS["time_slices"]):
        at_t = sigma_z[..., int(np.abs(times - t).argmin())]
        for i in range(len(SIGMAS)):
            values = np.clip(at_t[i][keep[i, ..., 0]], -1.0, 1.0)
            density, _ = np.histogram(values, bins=edges, density=True)
            np.testing.assert_allclose(
                from_chunks["sigma_z_hist"].isel(sigma=i, slice=k), density, rtol=1e-12
            )
