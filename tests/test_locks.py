"""Stale locks and temporaries (cq_core.pipeline.locks): removed only when their owners are gone.

Real processes: ``sleep`` children of this test stand for a Snakemake run's job that outlived
its Snakemake, or for the writer of a temporary store; each is ended by its id.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
from pathlib import Path

import pytest

from cq_core.pipeline import locks


def _sleeper(env: dict[str, str] | None = None) -> subprocess.Popen:
    return subprocess.Popen(["sleep", "60"], env={**os.environ, **(env or {})})


def _end(process: subprocess.Popen) -> None:
    process.kill()
    process.wait()


def _record(pid: int, start: int | None, **extra: object) -> dict:
    return {
        "host": socket.gethostname(),
        "pid": pid,
        "start": start,
        "boot_id": locks._boot_id(),
        "pid_namespace": locks._pid_namespace(),
        **extra,
    }


@pytest.fixture
def ended() -> tuple[int, int]:
    """Pid and start time of a process that has ended (a SIGKILLed Snakemake)."""
    process = _sleeper()
    start = locks._process_start(process.pid)
    _end(process)
    return process.pid, start


def test_a_run_is_alive_while_any_job_it_started_is(ended):
    pid, start = ended
    run = locks._run_id(socket.gethostname(), pid, start)
    job = _sleeper({locks.RUN_ENV: run})  # a job that outlived its Snakemake
    try:
        assert locks.run_alive(_record(pid, start, run=run))
        assert not locks.run_alive(_record(pid, start, run=run + "-another"))
    finally:
        _end(job)
    assert not locks.run_alive(_record(pid, start, run=run))


def test_a_run_is_alive_while_its_snakemake_is():
    snakemake = _sleeper()
    try:
        start = locks._process_start(snakemake.pid)
        assert locks.run_alive(_record(snakemake.pid, start, run="x"))
        assert not locks.run_alive(_record(snakemake.pid, start + 1, run="x"))  # pid reused
    finally:
        _end(snakemake)


def _temporary(tmp_path: Path, writer: dict | None) -> Path:
    store = tmp_path / "seed=0.zarr"
    temporary = store.with_name(store.name + ".tmp")
    (temporary / "psi" / "c").mkdir(parents=True)
    (temporary / "zarr.json").write_text("{}")
    if writer is not None:
        store.with_name(store.name + locks.WRITER_SUFFIX).write_text(json.dumps(writer))
    return store


def test_a_temporary_whose_writer_lives_is_kept_until_it_is_gone(tmp_path):
    writer = _sleeper()
    try:
        store = _temporary(tmp_path, _record(writer.pid, locks._process_start(writer.pid)))
        with pytest.raises(RuntimeError, match=f"still alive.*{writer.pid}"):
            locks.remove_stale_temporaries(store)
        assert (tmp_path / "seed=0.zarr.tmp" / "zarr.json").is_file()
    finally:
        _end(writer)
    removed = locks.remove_stale_temporaries(store)
    assert {p.name for p in removed} == {"seed=0.zarr.tmp", "seed=0.zarr.tmp.writer"}
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("writer", "removed"),
    [(None, True), ({"host": "another-node"}, False), ("unreadable", False)],
    ids=["no-record", "other-host", "unreadable-record"],
)
def test_a_temporary_is_removed_only_when_its_writer_is_known_gone(
    tmp_path, ended, writer, removed
):
    pid, start = ended
    if writer == "unreadable":
        store = _temporary(tmp_path, None)
        store.with_name(store.name + locks.WRITER_SUFFIX).write_text("{not json")
    else:
        store = _temporary(tmp_path, None if writer is None else _record(pid, start, **writer))
    if removed:
        assert locks.remove_stale_temporaries(store)
        assert list(tmp_path.iterdir()) == []
    else:
        with pytest.raises(RuntimeError):
            locks.remove_stale_temporaries(store)
        assert (tmp_path / "seed=0.zarr.tmp").is_dir()


def test_a_temporary_of_an_ended_writer_is_removed(tmp_path, ended):
    store = _temporary(tmp_path, _record(*ended))
    assert len(locks.remove_stale_temporaries(store)) == 2
    assert list(tmp_path.iterdir()) == []
