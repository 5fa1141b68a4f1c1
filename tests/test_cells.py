"""Tests of :mod:`cq_core.cells`: cell specs, Dask blocks, atomic and reproducible Zarr stores.

Real Dask (in-process clusters, and a standalone ``dask scheduler`` with two ``dask worker``
processes on 127.0.0.1) and real Zarr; no mocks.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import dask.array as da
import numpy as np
import pytest
import xarray as xr

from cq_core import NUMERICS_VERSION, cells
from cq_core.cells import (
    STORE_TRAJECTORY_CHUNK,
    CellSpec,
    read_cell_attrs,
    remove_stale_temporaries,
    run_cell,
    run_cell_to_store,
    split_blocks,
    store_chunks,
    write_cell,
)
from cq_core.pipeline import cell_to_store

# 600 trajectories: two stored trajectory chunks; 10 steps keep it fast.
SPEC = CellSpec(
    model="mass_superposition",
    params={"phi": 1.0},
    sigma=0.02,
    seed=3,
    base_seed=7,
    n_traj=STORE_TRAJECTORY_CHUNK + 100,
    t_final=0.001,
    dt=1e-4,
    save_every=2,
)


def store_digest(path: Path) -> dict[str, str]:
    """sha256 of every file of a store (Snakemake's timestamp file left out)."""
    return {
        str(f.relative_to(path)): hashlib.sha256(f.read_bytes()).hexdigest()
        for f in sorted(path.rglob("*"))
        if f.is_file() and f.name != ".snakemake_timestamp"
    }


@pytest.fixture(scope="module")
def local_store(tmp_path_factory) -> Path:
    """The reference store: one local run with a block size that divides nothing evenly."""
    path = tmp_path_factory.mktemp("local") / "seed=3.zarr"
    write_cell(run_cell(SPEC, block_size=170, threads=2), path)
    return path


# ------------------------------------------------------------------------------ the spec


def test_spec_json_and_hash_are_canonical():
    same = CellSpec(
        model="mass_superposition",
        params={"phi": 1.0},
        sigma=0.02,  # run settings are coerced: 3.0 → 3, 7 → 7
        seed=3.0,
        base_seed=7,
        n_traj=600,
        t_final=0.001,
        dt=0.0001,
        save_every=2,
    )
    assert same == SPEC and same.to_json() == SPEC.to_json()
    assert same.config_hash == SPEC.config_hash
    assert CellSpec.from_json(SPEC.to_json()) == SPEC
    payload = json.dumps(
        {"cell": json.loads(SPEC.to_json()), "numerics_version": NUMERICS_VERSION},
        sort_keys=True,
        separators=(",", ":"),
    )
    assert SPEC.config_hash == hashlib.sha256(payload.encode()).hexdigest()
    for change in ({"sigma": 0.03}, {"seed": 4}, {"params": {"phi": 2.0}}, {"mode": "density"}):
        assert CellSpec(**{**SPEC.to_dict(), **change}).config_hash != SPEC.config_hash
    with pytest.raises(ValueError, match="unknown cell key"):
        CellSpec.from_dict({**SPEC.to_dict(), "block_size": 3})


def test_split_blocks_and_store_chunks():
    assert split_blocks(7, 3) == [(0, 3), (3, 3), (6, 1)]
    assert split_blocks(3, 10) == [(0, 3)]
    chunks = store_chunks({"trajectory": 2000, "time": 1501}, 48)
    assert chunks["trajectory"] == STORE_TRAJECTORY_CHUNK
    assert 1 <= chunks["time"] <= 1501
    assert store_chunks({"trajectory": 4, "time": 10}, 48) == {"trajectory": 4, "time": 10}


# --------------------------------------------------------------------------- invariance


@pytest.mark.parametrize("backend", ["numpy", "auto"])
def test_blocks_equal_one_simulate_call(backend):
    spec = CellSpec(**{**SPEC.to_dict(), "n_traj": 25, "backend": backend})
    blocked = run_cell(spec, block_size=4, threads=2)
    direct = spec.simulate()
    for name in ("classical", "psi", "status", "status_time"):
        np.testing.assert_array_equal(blocked[name].values, direct[name].values)
    resolved = spec.resolved()
    assert resolved.backend in ("numpy", "generated")
    assert blocked.attrs["backend"] == resolved.backend
    assert blocked.attrs["cell_hash"] == resolved.config_hash
    assert json.loads(blocked.attrs["cell_spec"]) == resolved.to_dict()


def test_block_size_and_workers_do_not_change_the_store(local_store, tmp_path):
    other = tmp_path / "seed=3.zarr"
    write_cell(run_cell(SPEC, block_size=SPEC.n_traj, threads=1), other)
    assert store_digest(other) == store_digest(local_store)
    stored = xr.open_zarr(local_store, consolidated=False)
    assert stored["psi"].encoding["chunks"][0] == STORE_TRAJECTORY_CHUNK
    attrs = read_cell_attrs(local_store)
    assert attrs["cell_hash"] == SPEC.resolved().config_hash
    assert attrs["numerics_version"] == NUMERICS_VERSION
    assert json.loads(attrs["cell_spec"]) == SPEC.resolved().to_dict()
    assert "cq_core_version" in attrs


@pytest.mark.parametrize(
    ("block_size", "worker_writes", "processes", "written_by"),
    [
        (170, True, False, "this job"),  # two blocks would share a stored chunk
        (500, True, False, "the workers"),
        (37, True, False, "this job"),
        (500, False, False, "this job"),
        (500, None, False, "this job"),  # in-process workers: the blocks are already here
        (500, None, True, "the workers"),  # worker processes write their own blocks
    ],
)
def test_streamed_store_equals_the_in_memory_write(
    local_store, tmp_path, caplog, block_size, worker_writes, processes, written_by
):
    """run_cell_to_store writes block by block (bounded memory) and gives the same bytes,
    whether the workers write their blocks or send them back to be written."""
    log = logging.getLogger("test_cells.streamed")
    with caplog.at_level(logging.INFO, logger=log.name):
        streamed = run_cell_to_store(
            SPEC,
            tmp_path / "seed=3.zarr",
            block_size=block_size,
            threads=2,
            processes=processes,
            worker_writes=worker_writes,
            log=log,
        )
    assert store_digest(streamed) == store_digest(local_store)
    assert [p.name for p in tmp_path.iterdir()] == ["seed=3.zarr"]
    assert f"blocks written into the store by {written_by}" in caplog.text


def test_workers_send_back_only_a_trajectory_count(local_store, tmp_path):
    """A worker writes its block into the laid-out store and returns only the block's size."""
    from cq_core.cells import _CellStoreWriter, _layout_sample, _plan_cell, _write_block

    plan = _plan_cell(SPEC, 500, threads=1, processes=False)
    spec, blocks = plan.spec, plan.blocks
    writer = _CellStoreWriter(tmp_path / "seed=3.zarr", _layout_sample(spec), plan.settings.n_traj)
    sizes = [
        _write_block(spec.simulate(first_trajectory=first, n_traj=count), str(writer.temporary))
        for first, count in reversed(blocks)
    ]
    assert sizes == [100, 500]
    assert store_digest(writer.commit()) == store_digest(local_store)


def test_a_failed_worker_written_block_raises_and_leaves_no_store(tmp_path, monkeypatch):
    """Worker-written blocks send nothing back, but a block that fails still fails the cell."""

    def broken_write(block, temporary):
        raise OSError("disk full while writing a block")

    monkeypatch.setattr(cell_to_store, "_write_block", broken_write)  # in-process workers see it
    with pytest.raises(OSError, match="disk full"):
        run_cell_to_store(
            SPEC, tmp_path / "seed=3.zarr", block_size=500, threads=2, processes=False,
            worker_writes=True,
        )  # fmt: skip
    assert list(tmp_path.iterdir()) == []


def test_local_worker_processes_keep_glibc_adaptive_malloc():
    """The nanny's MALLOC_TRIM_THRESHOLD_ (writes ~30 % dearer) is not given to our workers;
    Dask's other pre-spawn settings (one OpenMP/BLAS thread per worker) still are."""
    import dask
    import distributed  # noqa: F401  (loads Dask's distributed config)

    assert dask.config.get("distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_")
    assert "MALLOC_TRIM_THRESHOLD_" not in os.environ  # else every child would inherit it
    with cells.dask_client(threads=2, processes=True) as client:
        environments = client.run(lambda: dict(os.environ))
        assert os.getpid() not in client.run(os.getpid).values()  # really other processes
    assert len(environments) == 2
    for environment in environments.values():
        assert "MALLOC_TRIM_THRESHOLD_" not in environment
        assert environment["OMP_NUM_THREADS"] == "1"
    assert "MALLOC_TRIM_THRESHOLD_" not in os.environ  # nor left behind in this process
    assert dask.config.get("distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_")


@pytest.mark.parametrize("workers", [0, -1, 1.5, "2"])
def test_a_local_cluster_needs_a_positive_whole_number_of_workers(workers):
    with pytest.raises(ValueError, match=r"workers must be an integer >= 1"):
        with cells.local_cluster(workers, processes=False):
            pass


# ------------------------------------------------------------------------- atomic write


def test_no_final_path_until_the_store_is_complete(tmp_path):
    final = tmp_path / "cells" / "seed=0.zarr"
    seen = []

    def observe(block):
        if block.size:
            seen.append((final.exists(), final.with_name(final.name + ".tmp").exists()))
        return block

    data = da.from_array(np.arange(12.0).reshape(6, 2), chunks=(3, 2)).map_blocks(observe)
    ds = xr.Dataset({"x": (("trajectory", "time"), data)})
    write_cell(ds, final)
    assert seen and not any(exists for exists, _ in seen)  # never visible while writing
    assert any(temporary for _, temporary in seen)  # the data went to the temporary path
    assert final.is_dir() and not final.with_name(final.name + ".tmp").exists()
    np.testing.assert_array_equal(xr.open_zarr(final, consolidated=False)["x"], data.compute())


def test_a_failed_write_leaves_no_store_and_its_temporary_is_removed(tmp_path):
    final = tmp_path / "seed=0.zarr"

    def fail(block):
        raise RuntimeError("killed mid-write")

    bad = xr.Dataset(
        {
            "x": (
                ("trajectory", "time"),
                da.zeros((6, 2), chunks=(3, 2)).map_blocks(fail, dtype=float),
            )
        }
    )
    with pytest.raises(RuntimeError, match="killed mid-write"):
        write_cell(bad, final)
    assert not final.exists()
    assert list(tmp_path.iterdir()) == []  # a failed write cleans up after itself
    (tmp_path / "seed=0.zarr.tmp").mkdir()  # what a killed job leaves behind
    (tmp_path / "seed=0.zarr.tmp-replaced").mkdir()  # and an interrupted replacement
    good = xr.Dataset({"x": (("trajectory", "time"), np.ones((6, 2)))})
    write_cell(good, final)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["seed=0.zarr"]
    # replacing an existing store
    write_cell(good * 2, final)
    np.testing.assert_array_equal(xr.open_zarr(final, consolidated=False)["x"], 2.0)
    assert remove_stale_temporaries(final) == []


# ------------------------------------------------------------------- external scheduler


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _dask_cli() -> str:
    return str(Path(sys.executable).with_name("dask"))


@pytest.fixture(scope="module")
def dask_cluster(tmp_path_factory):
    """A real `dask scheduler` and two `dask worker` processes on 127.0.0.1 (torn down by pid)."""
    workdir = tmp_path_factory.mktemp("dask")
    address = f"tcp://127.0.0.1:{_free_port()}"
    env = {**os.environ, "DASK_DISTRIBUTED__WORKER__DAEMON": "False"}
    processes = []
    try:
        processes.append(
            subprocess.Popen(
                [_dask_cli(), "scheduler", "--host", "127.0.0.1", "--port",
                 address.rsplit(":", 1)[1], "--dashboard-address", "127.0.0.1:0"],
                cwd=workdir, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )
        )  # fmt: skip
        for name in ("w1", "w2"):
            processes.append(
                subprocess.Popen(
                    [_dask_cli(), "worker", address, "--host", "127.0.0.1", "--nthreads", "1",
                     "--no-nanny", "--name", name, "--dashboard-address", "127.0.0.1:0"],
                    cwd=workdir, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                )
            )  # fmt: skip
        from distributed import Client

        deadline = time.monotonic() + 60
        while True:
            try:
                with Client(address, timeout=5, set_as_default=False) as client:
                    client.wait_for_workers(2, timeout=max(1, deadline - time.monotonic()))
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)
        yield address
    finally:
        # the workers first: a worker told to stop while its scheduler stops too may wait
        # for the scheduler's answer until the timeout below
        for group in (processes[1:], processes[:1]):
            for process in group:
                process.terminate()
            for process in group:
                try:
                    process.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()


def test_external_scheduler_gives_the_same_store(dask_cluster, local_store, tmp_path):
    from distributed import Client

    external = tmp_path / "seed=3.zarr"
    write_cell(run_cell(SPEC, block_size=64, scheduler_address=dask_cluster), external)
    assert store_digest(external) == store_digest(local_store)
    with Client(dask_cluster, timeout=5, set_as_default=False) as client:
        workers = {w["name"] for w in client.scheduler_info()["workers"].values()}
        prefixes = client.run_on_scheduler(
            lambda dask_scheduler: sorted(dask_scheduler.task_prefixes)
        )
    assert workers == {"w1", "w2"}
    assert "simulate_block" in prefixes  # the blocks ran on the external workers


def test_a_given_client_stores_cells_and_stays_open(dask_cluster, local_store, tmp_path):
    """A script passes its own client: every cell runs on that scheduler's workers through
    it, no other client connects, and the client is still usable afterwards."""
    from distributed import Client

    def clients(dask_scheduler):
        return len(dask_scheduler.clients)

    with Client(dask_cluster, timeout=5, set_as_default=False) as client:
        before = client.run_on_scheduler(clients)
        stores = [
            run_cell_to_store(SPEC, tmp_path / f"{name}.zarr", block_size=block, client=client,
                              worker_writes=worker_writes)
            for name, block, worker_writes in (("written-there", 500, True),
                                               ("sent-back", 100, False))
        ]  # fmt: skip
        assert client.status == "running"
        assert client.run_on_scheduler(clients) == before
        prefixes = client.run_on_scheduler(
            lambda dask_scheduler: sorted(dask_scheduler.task_prefixes)
        )
    assert [store_digest(store) for store in stores] == [store_digest(local_store)] * 2
    assert "simulate_and_write_block" in prefixes  # the written-there blocks ran there
    with pytest.raises(ValueError, match="client.*scheduler_address"):
        run_cell_to_store(SPEC, tmp_path / "x.zarr", client=object(), scheduler_address="a")
    assert not (tmp_path / "x.zarr").exists()


def test_unreachable_scheduler_fails_clearly_and_quickly():
    address = f"tcp://127.0.0.1:{_free_port()}"  # nothing listens there
    start = time.monotonic()
    with pytest.raises(ConnectionError, match=address.replace(".", r"\.")):
        run_cell(SPEC, scheduler_address=address, connect_timeout=2)
    assert time.monotonic() - start < 15


def test_invalid_cells_fail_before_any_cluster_is_contacted():
    address = f"tcp://127.0.0.1:{_free_port()}"
    bad = {"sigma": -1.0, "dt": 3e-4, "mode": "quantum", "model": "nope"}
    messages = {"sigma": "sigma", "dt": "whole number of steps", "mode": "mode", "model": "nope"}
    for key, value in bad.items():
        with pytest.raises(ValueError, match=messages[key]):
            run_cell(CellSpec(**{**SPEC.to_dict(), key: value}), scheduler_address=address)
    with pytest.raises(ValueError, match="block_size"):
        run_cell(SPEC, block_size=0, scheduler_address=address)
