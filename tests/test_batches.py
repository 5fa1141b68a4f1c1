"""Batches of cells (cq_core.pipeline.batch): how cells are grouped, and one batch's run.

Real cells, stored with the real writer; Dask as a real in-process cluster.
"""

from __future__ import annotations

import json
import shutil
import warnings
from pathlib import Path

import pytest
import xarray as xr
from test_cells import store_digest

from cq_core.cells import CellSpec, run_cell_to_store
from cq_core.pipeline import layout
from cq_core.pipeline.batch import (
    CELLS_PER_JOB,
    batch_digest,
    manifest_cells,
    n_batches,
    partition,
    run_batch,
)
from cq_core.sweep import sweep_cell_specs
from cq_core.verify import verify_store

SWEEP = {
    "model": "linear",
    "params": {},
    "sigma": [1.0, 2.0],
    "seeds": [0, 1],
    "n_traj": 12,
    "t_final": 0.01,
    "dt": 1.0e-3,
    "save_every": 2,
}


def grid(n_sigma: int, n_seed: int) -> dict[tuple[str, int], object]:
    return {(repr(float(s + 1)), seed): None for s in range(n_sigma) for seed in range(n_seed)}


def test_the_number_of_batches_is_a_power_of_two_that_keeps_jobs_few():
    assert n_batches(1) == 1 and n_batches(CELLS_PER_JOB) == 1
    assert n_batches(CELLS_PER_JOB + 1) == 2
    assert n_batches(1000, 32) == 32 and n_batches(1000) <= 50  # SLURM: <= 50 jobs per 1 000
    assert n_batches(10_000, 32) == 512
    with pytest.raises(ValueError, match="batch.cells_per_job"):
        n_batches(10, 0)


def test_partition_covers_every_cell_once_and_is_stable_when_cells_are_added():
    cells = grid(10, 10)
    batches = partition(cells, 32)
    assert len(batches) == 4  # ceil(100 / 32) = 4
    flat = [cell for keys in batches.values() for cell in keys]
    assert sorted(flat) == sorted(cells) and len(flat) == len(cells)
    assert max(len(keys) for keys in batches.values()) <= 2 * 32  # roughly balanced
    # ten more cells (still 4 batches): no cell changes batch
    more = partition({**cells, **{(repr(11.0), seed): None for seed in range(10)}}, 32)
    where = {cell: b for b, keys in batches.items() for cell in keys}
    assert all(where[cell] == b for b, keys in more.items() for cell in keys if cell in where)


def test_the_digest_names_the_cells_and_their_hashes():
    cells = list(sweep_cell_specs("s", SWEEP).values())
    assert batch_digest(cells) == batch_digest(cells[::-1])
    assert batch_digest(cells) != batch_digest(cells[:-1])
    changed = list(sweep_cell_specs("s", {**SWEEP, "n_traj": 13}).values())
    assert batch_digest(cells) != batch_digest(changed)


def _cells(results: Path, sweep: dict = SWEEP) -> list[tuple[Path, CellSpec]]:
    return [
        (layout.cell_store(results, "s", label, seed), spec)
        for (label, seed), spec in sweep_cell_specs("s", sweep).items()
    ]


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Path:
    """Each cell of SWEEP stored alone by run_cell_to_store (an in-process Dask cluster)."""
    results = tmp_path_factory.mktemp("reference") / "results"
    for path, spec in _cells(results):
        run_cell_to_store(spec, path, block_size=5, threads=2, processes=False)
    return results


@pytest.mark.parametrize("on_dask", [False, True], ids=["in-process", "dask"])
def test_a_batch_stores_its_cells_bit_identical_to_single_cell_runs(reference, tmp_path, on_dask):
    results = tmp_path / "results"
    manifest = layout.batch_manifest(results, "s", 0, "0" * 16)
    content = run_batch(
        _cells(results),
        manifest,
        block_size=7,
        threads=2,
        processes=False,
        dask_min_trajectory_steps=1 if on_dask else 10**12,
    )
    for (path, _), (ref, _) in zip(_cells(results), _cells(reference), strict=True):
        assert store_digest(path) == store_digest(ref)
        assert verify_store(path) == []
    assert json.loads(manifest.read_text()) == content
    assert manifest_cells([manifest]) == [path for path, _ in _cells(results)]
    assert [cell["hash"] for cell in content["cells"]] == [
        s.config_hash for _, s in _cells(results)
    ]


def test_a_batch_computes_only_missing_or_stale_cells(reference, tmp_path, caplog):
    results = tmp_path / "results"
    shutil.copytree(reference, results)
    cells = _cells(results)
    kept, removed = cells[0][0], cells[1][0]
    shutil.rmtree(removed)
    stale = cells[2][0]  # holds another cell than asked for: another cell's store
    shutil.rmtree(stale)
    shutil.copytree(cells[3][0], stale)
    mtime = (kept / "zarr.json").stat().st_mtime_ns
    old = layout.batch_manifest(results, "s", 0, "1" * 16)
    old.parent.mkdir(parents=True)
    old.write_text("{}")
    manifest = layout.batch_manifest(results, "s", 0, "2" * 16)
    with caplog.at_level("INFO", logger="cq_core.pipeline.batch"):
        run_batch(cells, manifest, block_size=5)
    assert "4 cell(s), 2 stored already, 2 to compute" in caplog.text
    assert "stale" in caplog.text
    assert (kept / "zarr.json").stat().st_mtime_ns == mtime
    for (path, _), (ref, _) in zip(cells, _cells(reference), strict=True):
        assert store_digest(path) == store_digest(ref)
    assert manifest.is_file() and not old.exists()  # the superseded manifest is removed


def test_a_bad_cell_fails_the_batch_before_any_work(tmp_path):
    results = tmp_path / "results"
    cells = _cells(results)
    bad = CellSpec(**{**cells[-1][1].to_dict(), "sigma": -1.0})
    with pytest.raises(ValueError, match="sigma"):
        run_batch([*cells, (cells[-1][0], bad)], results / "m.json")
    assert not results.exists()


def test_every_store_opens_silently_with_plain_open_zarr(reference):
    stores = [path for path, _ in _cells(reference)]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for store in stores:
            xr.open_zarr(store).load()
