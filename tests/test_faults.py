"""Faults (issue 9): a killed Dask worker, an interrupted Snakemake, damaged and stale stores.

Real processes on 127.0.0.1 only: an external ``dask scheduler`` with two ``dask worker``
processes (the fixture of ``test_cells``), and ``snakemake`` runs of a copy of the workflow
(the helpers of ``test_pipeline``) with a small sweep of four cells, each a few seconds of
``python -m cq_core run-batch`` (two blocks of the NumPy kernel each). Every process started here is
ended in a ``finally`` block or a fixture, by its id.

The rerun command is the README's (the ``snakemake …`` of its first shell block), so that the
test follows the README.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path

import pytest
import yaml
from test_cells import dask_cluster, store_digest  # noqa: F401  (dask_cluster: a fixture)
from workflow_helpers import REPO, SNAKEMAKE, copy_workflow, planned_jobs, run_snakemake

from cq_core.cells import CellSpec, run_cell, run_cell_to_store, write_cell
from cq_core.verify import DAMAGED_SUFFIX, verify_results, verify_store

# ----------------------------------------------------------------------- the small sweep

BLOCKS = 2
"""Blocks per cell: a cell job computes for ~1 s (two blocks) after ~2 s of start-up."""
SLOW = {
    "results": "results",
    "base_seed": 0,
    "dask": {"scheduler_address": None, "block_size": 200, "threads": 1, "processes": False},
    "figures": {"tradeoff": []},
    "sweeps": {
        "slow": {
            "model": "mass_superposition",
            "params": {},
            "sigma": [0.01, 0.02],
            "seeds": [0, 1],
            "n_traj": 200 * BLOCKS,
            "t_final": 0.03,
            "dt": 1.0e-4,
            "save_every": 10,
            "method": "auto",
            "mode": "pure",
            "excess": 0.0,
            "backend": "numpy",
            "analysis": {
                "time_slices": [0.0, 0.03],
                "hist_bins": 8,
                "fit_window": None,
                "figures": [],
            },
        }
    },
}
CELLS = [
    (repr(float(sigma)), seed)
    for sigma in SLOW["sweeps"]["slow"]["sigma"]
    for seed in SLOW["sweeps"]["slow"]["seeds"]
]
START_TIMEOUT = 240.0
"""Seconds a sweep may take to reach the moment of the interruption (a loaded machine)."""
STOP_TIMEOUT = 120.0
"""Seconds an interrupted Snakemake may take to stop."""


def readme_run_command() -> list[str]:
    """The README's run command: the ``snakemake …`` part of its first shell block."""
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    for block in re.findall(r"^```bash\n(.*?)^```", readme, re.M | re.S):
        for part in reversed(block.replace("\\\n", " ").split("&&")):
            words = shlex.split(part)
            if words and words[0] == "snakemake":
                return [SNAKEMAKE, *words[1:]]
    raise AssertionError("the README shows no snakemake run command")


def slow_workflow(destination: Path) -> Path:
    """A copy of the workflow whose config/config.yaml is the small sweep SLOW."""
    workdir = copy_workflow(destination)
    (workdir / "config" / "config.yaml").write_text(yaml.safe_dump(SLOW))
    return workdir


def cell_path(workdir: Path, label: str, seed: int) -> Path:
    return workdir / "results" / "slow" / "cells" / f"sigma={label}" / f"seed={seed}.zarr"


def stored_cells(workdir: Path) -> dict[tuple[str, int], Path]:
    """The cells with a store at their final path."""
    return {cell: cell_path(workdir, *cell) for cell in CELLS if cell_path(workdir, *cell).exists()}


def store_state(path: Path) -> tuple[int, dict[str, str]]:
    """Modification time (ns) of a store and the digest of its files."""
    return path.stat().st_mtime_ns, store_digest(path)


@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> Path:
    """The small sweep run once, uninterrupted, with the README's command."""
    workdir = slow_workflow(tmp_path_factory.mktemp("faults") / "finished")
    result = subprocess.run(
        readme_run_command(), cwd=workdir, capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert set(stored_cells(workdir)) == set(CELLS)
    return workdir


# ---------------------------------------------------------------------- a killed worker


def _is_our_child(pid: int) -> bool:
    """Whether ``pid`` is a child of this test process (the fixture's worker processes)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return int(stat.rsplit(")", 1)[1].split()[1]) == os.getpid()


class _Progress(logging.Handler):
    """Counts the ``block k/N done`` messages of :func:`run_cell`."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.done = 0
        self.event = threading.Event()

    def emit(self, record: logging.LogRecord) -> None:
        if record.getMessage().startswith("block "):
            self.done += 1
            self.event.set()


def test_a_killed_worker_leaves_the_cell_bit_identical(request, tmp_path):
    """SIGKILL one of two external workers mid-cell: the cell completes, byte for byte equal."""
    from distributed import Client

    address = request.getfixturevalue("dask_cluster")
    spec = CellSpec(
        model="mass_superposition",
        params={},
        sigma=0.02,
        seed=1,
        n_traj=1600,
        t_final=0.03,
        dt=1e-4,
        save_every=10,
        backend="numpy",
    )
    blocks = 8
    undisturbed = tmp_path / "undisturbed" / "seed=1.zarr"
    write_cell(run_cell(spec, block_size=200, scheduler_address=address), undisturbed)

    progress = _Progress()
    log = logging.getLogger("test_faults.killed_worker")
    log.setLevel(logging.INFO)
    log.propagate = False
    log.addHandler(progress)
    outcome: dict[str, object] = {}

    disturbed = tmp_path / "disturbed" / "seed=1.zarr"

    def compute() -> None:  # as the pipeline's run-cell does: blocks stored as they arrive
        try:
            run_cell_to_store(spec, disturbed, block_size=200, scheduler_address=address, log=log)
        except BaseException as err:  # reported by the main thread
            outcome["error"] = err

    worker = threading.Thread(target=compute, daemon=True)
    try:
        with Client(address, timeout=30, set_as_default=False) as client:
            pids = client.run(os.getpid)
            assert len(pids) == 2 and all(_is_our_child(pid) for pid in pids.values())
            worker.start()
            assert progress.event.wait(timeout=120), "no block finished"
            deadline = time.monotonic() + 60
            while True:  # a worker that is computing a block of this cell right now
                busy = [w for w, keys in client.processing().items() if keys and w in pids]
                if busy or time.monotonic() > deadline:
                    break
                time.sleep(0.02)
            assert busy, "no worker was busy"
            done_at_kill = progress.done
            os.kill(pids[busy[0]], signal.SIGKILL)
            worker.join(timeout=180)
            assert not worker.is_alive(), "the cell did not complete after the worker died"
            remaining = client.scheduler_info()["workers"]
            assert busy[0] not in remaining and len(remaining) == 1
    finally:
        log.removeHandler(progress)
    assert "error" not in outcome, outcome.get("error")
    assert done_at_kill < blocks  # the kill happened mid-cell
    assert progress.done >= blocks
    assert store_digest(disturbed) == store_digest(undisturbed)
    assert verify_store(disturbed) == []


# ----------------------------------------------------------------- interrupted snakemake


def _marked_incomplete(workdir: Path, store: Path) -> bool:
    """Whether Snakemake marks ``store`` as the output of a running job (never, with batches:
    a store is not a Snakemake output but moved into place whole by its batch job)."""
    key = base64.urlsafe_b64encode(str(store.relative_to(workdir)).encode()).decode()
    return (workdir / ".snakemake" / "incomplete" / key).exists()


def _cell_phase(workdir: Path, label: str, seed: int) -> str:
    """``waiting`` (its batch job not started), ``computing`` (its batch job runs) or ``stored``.

    A store is moved into place whole, so a store at its final path is complete.
    """
    store = cell_path(workdir, label, seed)
    if store.exists():
        return "stored"
    logs = (workdir / "results" / "slow" / "logs").rglob("*.log")  # the sweep job's, a batch's
    text = "".join(log.read_text() for log in logs)
    return "computing" if " to compute " in text else "waiting"


def _wait_until_gone(group: int, timeout: float) -> bool:
    """Wait until no process of the process group ``group`` is left."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.killpg(group, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.1)
    return False


DEFAULT_SIGNALS = (
    "import os, signal, sys; "
    "h, m = signal.getsignal(signal.SIGINT), signal.pthread_sigmask(signal.SIG_BLOCK, []); "
    "(h is not signal.default_int_handler or signal.SIGINT in m) and "
    "print('launcher: SIGINT was', h, 'blocked' if signal.SIGINT in m else '', file=sys.stderr); "
    "signal.signal(signal.SIGINT, signal.SIG_DFL); "
    "signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT}); "
    "os.execvp(sys.argv[1], sys.argv[1:])"
)
"""Exec the command with SIGINT at its default, as a terminal's Ctrl-C finds it. A child
inherits an ignored or blocked SIGINT across exec, and Python then never raises
KeyboardInterrupt: late in the suite the interrupted run could finish with status 0."""


def interrupt_sweep(workdir: Path, how: signal.Signals) -> subprocess.CompletedProcess:
    """Run the README's command; once a cell is stored and another is computing, send ``how``.

    The signal goes to Snakemake's whole process group (as Ctrl-C or a batch system's kill
    would). Returns the interrupted run (return code and output).
    """
    output = workdir / "interrupted.log"
    with output.open("w") as sink:
        process = subprocess.Popen(
            [sys.executable, "-c", DEFAULT_SIGNALS, *readme_run_command()],
            cwd=workdir,
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, led by Snakemake
        )
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            assert process.poll() is None, "the sweep finished before it was interrupted"
            phases = [_cell_phase(workdir, *cell) for cell in CELLS]
            # one cell stored, three to go: the run cannot finish before the signal lands
            if phases.count("stored") == 1 and "computing" in phases:
                break
            assert time.monotonic() < deadline, f"no moment to interrupt: {phases}"
            time.sleep(0.03)
        os.killpg(process.pid, how)
        returncode = process.wait(timeout=STOP_TIMEOUT)
        assert _wait_until_gone(process.pid, STOP_TIMEOUT), "jobs outlived Snakemake"
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    return subprocess.CompletedProcess(process.args, returncode, output.read_text(), "")


def lock_files(workdir: Path) -> dict[str, bytes]:
    """Snakemake's lock files in ``workdir`` (name -> content)."""
    folder = workdir / ".snakemake" / "locks"
    return {path.name: path.read_bytes() for path in sorted(folder.glob("*.lock"))}


STALE_LOCK_MESSAGE = "cq-sweep: removed stale Snakemake lock files"
"""How the workflow says that it removed the lock of a run that no longer exists."""


@pytest.mark.parametrize("how", [signal.SIGINT, signal.SIGKILL], ids=["SIGINT", "SIGKILL"])
def test_an_interrupted_sweep_resumes_with_the_readme_command(finished, tmp_path, how):
    workdir = slow_workflow(tmp_path / "repo")
    interrupted = interrupt_sweep(workdir, how)
    assert interrupted.returncode != 0
    # Ctrl-C lets Snakemake remove its lock; SIGKILL leaves it behind
    assert bool(lock_files(workdir)) == (how == signal.SIGKILL), lock_files(workdir)

    # no half-written store at a final path: what is there is complete
    done = stored_cells(workdir)
    assert done and len(done) < len(CELLS), interrupted.stdout
    for path in done.values():
        assert verify_store(path) == [], path
    # stores are not Snakemake outputs: a complete store is never marked incomplete
    assert not any(_marked_incomplete(workdir, path) for path in done.values())
    assert done, interrupted.stdout
    before = {cell: store_state(path) for cell, path in done.items()}

    # the rerun recomputes exactly the unfinished cells (a dry run leaves any lock alone)
    locks = lock_files(workdir)
    assert planned_jobs(workdir).get("sweep_slow") == 1  # its batch: the cells left
    assert lock_files(workdir) == locks
    # the README's command alone: a lock left by the killed run is removed, and said so
    rerun = subprocess.run(
        readme_run_command(), cwd=workdir, capture_output=True, text=True, timeout=600
    )
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    said = [line for line in rerun.stderr.splitlines() if line.startswith(STALE_LOCK_MESSAGE)]
    if how == signal.SIGKILL:
        assert len(said) == 1 and "no longer runs" in said[0], rerun.stderr
        assert all(f".snakemake/locks/{name}" in said[0] for name in locks), said
    else:
        assert said == [], rerun.stderr
    assert {cell: store_state(path) for cell, path in done.items()} == before
    for cell in CELLS:  # every store equals the uninterrupted run's
        assert store_digest(cell_path(workdir, *cell)) == store_digest(cell_path(finished, *cell))
    assert (workdir / "results" / "slow" / "summary.zarr" / "zarr.json").is_file()
    assert not list((workdir / "results").rglob("*.tmp*"))
    assert planned_jobs(workdir) == {}
    assert lock_files(workdir) == {}


@pytest.mark.parametrize("stored", [0, 1, 3], ids=["first-cell", "second-cell", "last-cell"])
def test_a_job_that_outlived_its_killed_snakemake_keeps_the_lock_and_its_store(
    finished, tmp_path, stored
):
    """kill -9 of Snakemake alone while its batch job computes (issue 21, the orphan case),
    once ``stored`` of the four cells are stored (at the first, second or last cell).

    The README command run at once must neither take the lock (a job of the run still lives)
    nor touch the orphan's temporary store; once the orphan has finished, it completes the
    sweep, every store bit-identical to an uninterrupted run's.
    """
    workdir = slow_workflow(tmp_path / "repo")
    output = workdir / "first.log"
    with output.open("w") as sink:
        first = subprocess.Popen(
            readme_run_command(),
            cwd=workdir,
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            phases = [_cell_phase(workdir, *cell) for cell in CELLS]
            if phases.count("stored") == stored and "computing" in phases:
                break
            assert first.poll() is None, output.read_text()
            assert time.monotonic() < deadline, f"no moment to interrupt: {phases}"
            time.sleep(0.01)
        os.kill(first.pid, signal.SIGKILL)  # Snakemake only: its batch job lives on
        first.wait()
        second = subprocess.run(
            readme_run_command(), cwd=workdir, capture_output=True, text=True, timeout=300
        )
        orphan_alive = _wait_until_gone(first.pid, 0.01) is False
        if orphan_alive:  # the usual case: refused while the orphan still computes
            assert second.returncode != 0 and "LockException" in second.stderr, second.stderr
            assert STALE_LOCK_MESSAGE not in second.stderr
        assert _wait_until_gone(first.pid, STOP_TIMEOUT), "the orphan job did not finish"
    finally:
        if first.poll() is None:
            os.killpg(first.pid, signal.SIGKILL)
            first.wait()
        try:
            os.killpg(first.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    rerun = subprocess.run(
        readme_run_command(), cwd=workdir, capture_output=True, text=True, timeout=600
    )
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    for cell in CELLS:
        assert store_digest(cell_path(workdir, *cell)) == store_digest(cell_path(finished, *cell))
    assert not list((workdir / "results").rglob("*.tmp*"))
    assert planned_jobs(workdir) == {}


def test_the_lock_of_a_live_run_is_kept(tmp_path):
    """A second README command while a sweep runs stops at Snakemake's lock; nothing is removed.

    The first run is held with SIGSTOP (alive, but unable to finish) while the second runs, so
    that the outcome does not depend on how fast the machine is; then it completes.
    """
    workdir = slow_workflow(tmp_path / "repo")
    output = workdir / "first.log"
    with output.open("w") as sink:
        first = subprocess.Popen(
            readme_run_command(),
            cwd=workdir,
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while "computing" not in [_cell_phase(workdir, *cell) for cell in CELLS]:
            assert first.poll() is None, output.read_text()
            assert time.monotonic() < deadline, "no cell started"
            time.sleep(0.03)
        os.kill(first.pid, signal.SIGSTOP)
        try:
            locks = lock_files(workdir)
            owners = list((workdir / ".snakemake").glob(f"*lock-owners/*-{first.pid}-*.json"))
            assert locks and len(owners) == 1, (locks, owners)  # the run recorded its lock
            second = subprocess.run(
                readme_run_command(), cwd=workdir, capture_output=True, text=True, timeout=300
            )
            assert lock_files(workdir) == locks
        finally:
            os.kill(first.pid, signal.SIGCONT)
        assert second.returncode != 0 and "LockException" in second.stderr, second.stderr
        assert STALE_LOCK_MESSAGE not in second.stderr
        assert first.wait(timeout=600) == 0, output.read_text()
    finally:
        if first.poll() is None:
            os.killpg(first.pid, signal.SIGKILL)
            first.wait()
    assert _wait_until_gone(first.pid, STOP_TIMEOUT)
    assert set(stored_cells(workdir)) == set(CELLS)
    assert lock_files(workdir) == {}


def _process_start(pid: int) -> int:
    """Start time (clock ticks since boot) of a live process: field 22 of /proc/<pid>/stat."""
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19])


@pytest.fixture(scope="module")
def ended_process() -> tuple[int, int]:
    """Pid and start time of a process that has ended (as a SIGKILLed Snakemake has)."""
    process = subprocess.Popen(["sleep", "60"])
    try:
        start = _process_start(process.pid)
    finally:
        process.kill()
        process.wait()
    return process.pid, start


THIS_PROCESS = "this process"
"""Stands for the pid or the start time of the test process (alive, and no Snakemake)."""
OWNERS = {
    # owner of the lock: (how its record differs from that of a run killed here, kept?)
    "no-record": (None, True),
    "live-run": ({"pid": THIS_PROCESS, "start": THIS_PROCESS}, True),
    "other-host": ({"host": "another-node"}, True),
    "other-container": ({"pid_namespace": "pid:[1]"}, True),
    "other-lock-file": ({"locks": {"0.output.lock": [1, 2, 3]}}, True),
    "unusable-record": ({"start": None}, True),
    "killed-run": ({}, False),
    "pid-taken-by-another-process": ({"pid": THIS_PROCESS, "start": 1}, False),
}


@pytest.mark.parametrize("owner", list(OWNERS))
def test_only_locks_of_runs_that_no_longer_run_are_removed(
    finished, tmp_path, ended_process, owner
):
    """A lock file (as Snakemake writes them) with an owner record made as the workflow makes
    it, or varied: only a lock whose recorded owner ran on this host and has ended is removed.
    """
    changes, kept = OWNERS[owner]
    workdir = tmp_path / "repo"
    shutil.copytree(finished, workdir, symlinks=True)
    lock = workdir / ".snakemake" / "locks" / "0.output.lock"
    lock.parent.mkdir(parents=True, exist_ok=True)
    # the run's outputs, as Snakemake lists them: the batch manifests and the summary
    outputs = sorted((workdir / "results" / "slow" / "batches").glob("*.json"))
    outputs.append(workdir / "results" / "slow" / "summary.zarr" / "zarr.json")
    lock.write_text("\n".join(str(path.relative_to(workdir)) for path in outputs) + "\n")
    if changes is not None:
        stat = lock.stat()
        pid, start = ended_process
        record = {
            "host": socket.gethostname(),
            "pid": pid,
            "start": start,
            "boot_id": Path("/proc/sys/kernel/random/boot_id").read_text().strip(),
            "pid_namespace": os.readlink("/proc/self/ns/pid"),
            "since": "2026-01-01 00:00:00",
            "locks": {lock.name: [stat.st_ino, stat.st_mtime_ns, stat.st_size]},
            **changes,
        }
        mine = {"pid": os.getpid(), "start": _process_start(os.getpid())}
        record.update({k: mine[k] for k, value in changes.items() if value == THIS_PROCESS})
        owners = workdir / ".snakemake" / "cq-sweep-lock-owners"
        owners.mkdir(exist_ok=True)
        (owners / f"{record['host']}-{record['pid']}-{record['start']}.json").write_text(
            json.dumps(record)
        )
    rerun = subprocess.run(
        readme_run_command(), cwd=workdir, capture_output=True, text=True, timeout=300
    )
    if kept:
        assert rerun.returncode != 0 and "LockException" in rerun.stderr, rerun.stderr
        assert STALE_LOCK_MESSAGE not in rerun.stderr
        assert lock.is_file()
    else:
        assert rerun.returncode == 0, rerun.stderr
        said = [line for line in rerun.stderr.splitlines() if STALE_LOCK_MESSAGE in line]
        assert len(said) == 1 and ".snakemake/locks/0.output.lock" in said[0], rerun.stderr
        assert f"pid {record['pid']} " in said[0]
        assert not lock.exists()
        assert "Nothing to be done" in rerun.stderr  # the finished sweep is kept as it is


def test_a_batch_killed_before_snakemake_recorded_it_does_not_stop_the_rerun(finished, tmp_path):
    """SIGKILL between the manifest's ``os.replace`` and Snakemake's bookkeeping (a tiny window).

    The manifest is complete, but Snakemake still has its incomplete marker. The marker is
    made here as Snakemake makes it at a job's start; the rerun reruns the batch, which finds
    every cell stored and keeps the stores as they are.
    """
    workdir = tmp_path / "repo"
    shutil.copytree(finished, workdir, symlinks=True)
    (manifest,) = (workdir / "results" / "slow" / "batches").glob("*.json")
    key = base64.urlsafe_b64encode(str(manifest.relative_to(workdir)).encode()).decode()
    marker = workdir / ".snakemake" / "incomplete" / key
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.write_text('{"external_jobid": null}')
    before = {cell: store_state(cell_path(workdir, *cell)) for cell in CELLS}
    rerun = subprocess.run(
        readme_run_command(), cwd=workdir, capture_output=True, text=True, timeout=600
    )
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    assert {cell: store_state(cell_path(workdir, *cell)) for cell in CELLS} == before
    assert manifest.is_file()


# ------------------------------------------------------------------------ damaged stores


TINY_CELL = CellSpec(
    model="linear", params={}, sigma=1.0, seed=2, n_traj=30, t_final=0.01, dt=1e-3, save_every=2
)


@pytest.fixture(scope="module")
def sound_store(tmp_path_factory) -> Path:
    """A small store, written in-process, whose first trajectory is flagged (status 1)."""
    cell = run_cell(TINY_CELL, block_size=10)
    cell["status"][0] = 1  # so that the status chunk is written (all-ok chunks are not)
    cell["status_time"][0] = 0.005
    path = tmp_path_factory.mktemp("verify") / "seed=2.zarr"
    write_cell(cell, path)
    return path


def _edit_attrs(store: Path, **changes: object) -> None:
    metadata = store / "zarr.json"
    root = json.loads(metadata.read_text())
    root["attributes"].update(changes)
    metadata.write_text(json.dumps(root))


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[:-7])


DAMAGE = {
    "psi-chunk-deleted": (lambda s: (s / "psi/c/0/0/0").unlink(), "chunk psi/c/0/0/0 is missing"),
    "classical-chunk-truncated": (
        lambda s: _truncate(s / "classical/c/0/0/0"),
        "chunk classical/c/0/0/0 cannot be read",
    ),
    "status-chunk-deleted": (lambda s: (s / "status/c/0").unlink(), "chunk status/c/0 is missing"),
    "time-chunk-deleted": (
        lambda s: (s / "time/c/0").unlink(),
        "time/c/0: missing (listed in the manifest)",
    ),
    "sigma-chunk-truncated": (lambda s: _truncate(s / "sigma/c"), "chunk sigma/c cannot be read"),
    "array-deleted": (
        lambda s: shutil.rmtree(s / "status_time"),
        "status_time/zarr.json: missing (listed in the manifest)",
    ),
    "root-metadata-deleted": (lambda s: (s / "zarr.json").unlink(), "no zarr.json"),
    "hash-altered": (
        lambda s: _edit_attrs(s, cell_hash="0" * 64),
        "is not the hash of the recorded cell_spec",
    ),
    "spec-altered": (
        lambda s: _edit_attrs(s, cell_spec=TINY_CELL.resolved().to_json().replace("30", "40")),
        "is not the hash of the recorded cell_spec",
    ),
    "spec-and-hash-altered": (  # a consistent edit of the recorded cell: the manifest tells
        lambda s: _edit_attrs(
            s,
            cell_spec=(edited := replace(TINY_CELL, n_traj=40).resolved()).to_json(),
            cell_hash=edited.config_hash,
        ),
        "(the store belongs to another cell)",
    ),
    "model-params-edited": (
        lambda s: _edit_attrs(s, model_params='{"G": 2.0}'),
        "zarr.json: content differs from the manifest",
    ),
    "scale-factor-added": (  # every value read through xarray would double
        lambda s: _edit_array_attrs(s / "classical", scale_factor=2.0),
        "classical/zarr.json: content differs from the manifest",
    ),
    "status-pair-deleted": (  # the flagged trajectory would read as ok
        lambda s: [(s / name / "c/0").unlink() for name in ("status", "status_time")],
        "status/c/0: missing (listed in the manifest)",
    ),
    "old-numerics": (lambda s: _edit_attrs(s, numerics_version="0"), "numerics version '0'"),
    "model-not-registered": (
        lambda s: _edit_attrs(s, cell_spec=TINY_CELL.to_json().replace('"linear"', '"os:system"')),
        "the store names model 'os:system', which is not registered",
    ),
}


def _edit_array_attrs(array: Path, **changes: object) -> None:
    metadata = array / "zarr.json"
    meta = json.loads(metadata.read_text())
    meta.setdefault("attributes", {}).update(changes)
    metadata.write_text(json.dumps(meta))


def test_verify_hash_is_the_cell_hash():
    from cq_core import NUMERICS_VERSION
    from cq_core.verify import recorded_hash

    spec = TINY_CELL.resolved()
    assert recorded_hash(spec.to_dict(), NUMERICS_VERSION) == spec.config_hash


@pytest.mark.parametrize("damage", list(DAMAGE))
def test_verify_store_names_each_kind_of_damage(sound_store, tmp_path, damage):
    assert verify_store(sound_store) == []
    store = tmp_path / sound_store.name
    shutil.copytree(sound_store, store)
    harm, expected = DAMAGE[damage]
    harm(store)
    problems = verify_store(store)
    assert problems and any(expected in problem for problem in problems), problems


def test_verify_checks_shapes_and_coordinates_against_the_configured_cell(sound_store, tmp_path):
    cell = TINY_CELL.resolved()  # the configuration's cell at this path: its model is built
    assert verify_store(sound_store, cell) == []
    store = tmp_path / sound_store.name
    shutil.copytree(sound_store, store)
    shutil.rmtree(store / "status_time")
    problems = verify_store(store, cell)
    assert "array status_time is missing" in problems, problems
    (store / "time/c/0").unlink()
    assert "chunk time/c/0 is missing" in verify_store(store, cell)


def test_verify_catches_a_valid_chunk_moved_in_from_another_seed(sound_store, tmp_path):
    other_cell = replace(TINY_CELL, seed=3)
    other = write_cell(run_cell(other_cell, block_size=10), tmp_path / "seed=3.zarr")
    assert verify_store(other) == []
    store = tmp_path / sound_store.name
    shutil.copytree(sound_store, store)
    shutil.copyfile(other / "psi/c/0/0/0", store / "psi/c/0/0/0")  # decodes: a valid chunk
    assert verify_store(store) == [
        "psi/c/0/0/0: content differs from the manifest "
        f"({(store / 'psi/c/0/0/0').stat().st_size} bytes, "
        f"{(sound_store / 'psi/c/0/0/0').stat().st_size} recorded)"
    ]


def test_verify_never_builds_the_model_a_store_names(sound_store, tmp_path, monkeypatch):
    import cq_core.models.registry as registry

    def refuse(*args, **kwargs):
        raise AssertionError("verify built a model from a store's text")

    monkeypatch.setattr(registry, "get_model", refuse)
    monkeypatch.setattr(CellSpec, "build_model", refuse)
    assert verify_store(sound_store) == []


def _damage(store: Path, how: str) -> str:
    """Delete, truncate or flip a byte of one chunk of ``psi``; return its name as verify has it.

    ``flipped`` inverts every bit of the chunk file's middle byte (the file keeps its length):
    the damage a failing disk or a bad copy does, which only the chunk's checksum reveals.
    """
    chunk = sorted(p for p in (store / "psi").rglob("*") if p.is_file() and p.name != "zarr.json")[
        0
    ]
    data = chunk.read_bytes()
    if how == "deleted":
        chunk.unlink()
    elif how == "flipped":
        middle = len(data) // 2
        chunk.write_bytes(data[:middle] + bytes([data[middle] ^ 0xFF]) + data[middle + 1 :])
        assert chunk.stat().st_size == len(data)
    else:
        chunk.write_bytes(data[: len(data) // 2])
    return "psi/" + chunk.relative_to(store / "psi").as_posix()


@pytest.mark.parametrize(
    ("how", "remedy"),
    [
        ("truncated", "repair"),
        ("deleted", "repair"),
        ("flipped", "repair"),
        ("truncated", "delete"),
    ],
    ids=["truncated-repair", "deleted-repair", "flipped-byte-repair", "truncated-delete-store"],
)
def test_a_damaged_store_is_found_and_only_its_cell_is_recomputed(finished, tmp_path, how, remedy):
    workdir = tmp_path / "repo"
    shutil.copytree(finished, workdir, symlinks=True)  # copy2: the mtimes are kept
    results = workdir / "results"
    assert all(problems == [] for problems in verify_results(results).values())
    damaged = cell_path(workdir, *CELLS[1])
    others = {cell: store_state(cell_path(workdir, *cell)) for cell in CELLS if cell != CELLS[1]}
    chunk = _damage(damaged, how)
    assert planned_jobs(workdir) == {}  # Snakemake alone cannot see the damage

    report = verify_results(results, workdir / "config" / "config.yaml")
    assert [store for store, problems in report.items() if problems] == [damaged]
    assert any(chunk in problem for problem in report[damaged]), report[damaged]

    command = [str(Path(SNAKEMAKE).with_name("python")), "-m", "cq_core", "verify", "results/"]
    if remedy == "repair":
        command.append("--repair")
    found = subprocess.run(command, cwd=workdir, capture_output=True, text=True, timeout=120)
    assert found.returncode == 1, found.stdout + found.stderr
    lines = found.stdout.splitlines()
    assert len(lines) == 1 and lines[0].startswith(str(damaged.relative_to(workdir)) + ":")
    assert chunk in lines[0]
    if how == "flipped":  # the chunk still decompresses: its Zstandard checksum tells
        assert f"chunk {chunk} cannot be read" in lines[0] and "checksum" in lines[0], lines
    if remedy == "repair":
        assert not damaged.exists()
        assert damaged.with_name(damaged.name + DAMAGED_SUFFIX).is_dir()
        assert not (results / "slow" / "summary.zarr").exists()  # built from the bad store
    else:
        shutil.rmtree(damaged)
    jobs = planned_jobs(workdir)
    assert jobs.get("sweep_slow") == 1  # the job of its batch (which recomputes it alone)
    assert set(jobs) <= {"sweep_slow", "all"}
    rerun = subprocess.run(
        readme_run_command(), cwd=workdir, capture_output=True, text=True, timeout=600
    )
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    assert store_digest(damaged) == store_digest(cell_path(finished, *CELLS[1]))
    assert {cell: store_state(cell_path(workdir, *cell)) for cell in others} == others
    assert verify_results(results)[damaged] == []


# -------------------------------------------------------------------------- stale stores


def _changed_slow(**changes: object) -> dict:
    config = yaml.safe_load(yaml.safe_dump(SLOW))
    config["sweeps"]["slow"].update(changes)
    return config


def _stale_clone(finished: Path, destination: Path, **changes: object) -> Path:
    """A fresh clone (no .snakemake) with finished's results/ and a changed config."""
    workdir = slow_workflow(destination)
    (workdir / "config" / "config.yaml").write_text(yaml.safe_dump(_changed_slow(**changes)))
    shutil.copytree(finished / "results", workdir / "results")
    return workdir


def test_the_stores_record_version_cell_and_hash(finished):
    from cq_core import NUMERICS_VERSION, __version__
    from cq_core.cells import read_cell_attrs
    from cq_core.sweep import sweep_cell_specs

    specs = sweep_cell_specs("slow", SLOW["sweeps"]["slow"])
    for cell in CELLS:
        attrs = read_cell_attrs(cell_path(finished, *cell))
        assert attrs["cq_core_version"] == __version__
        assert attrs["numerics_version"] == NUMERICS_VERSION
        assert CellSpec.from_json(attrs["cell_spec"]) == specs[cell]
        assert attrs["cell_hash"] == specs[cell].config_hash


def test_a_changed_cell_setting_reruns_every_cell_of_its_sweep(finished, tmp_path):
    """With Snakemake's metadata at hand, a cell parameter change reruns the cells (params)."""
    override = tmp_path / "more.yaml"
    override.write_text(yaml.safe_dump({"sweeps": {"slow": {"n_traj": 300}}}))
    jobs = planned_jobs(finished, override)
    assert jobs.get("sweep_slow") == 1  # the job of the one batch of the four cells


def test_copied_results_of_another_config_are_reported_stale(finished, tmp_path):
    workdir = _stale_clone(finished, tmp_path / "clone", n_traj=300)
    report = verify_results(workdir / "results", workdir / "config" / "config.yaml")
    assert set(report) == {cell_path(workdir, *cell) for cell in CELLS}
    for problems in report.values():
        assert len(problems) == 1 and problems[0].startswith("stale:"), problems
        assert "n_traj 400 (stored) vs 300 (config)" in problems[0]
    assert all(p == [] for p in verify_results(workdir / "results").values())  # not damaged


def test_copied_results_of_another_config_are_never_summarised(finished, tmp_path):
    workdir = _stale_clone(finished, tmp_path / "clone", n_traj=300)
    result = run_snakemake(workdir, "-n", "--quiet", "rules")
    output = result.stdout + result.stderr
    if result.returncode == 0:  # either every stale cell is planned for recomputation …
        assert "Nothing to be done" not in output, output
        table = output[output.index("Job stats:") :]
        assert re.search(r"^sweep_slow\s+1$", table, re.M), table
    else:  # … or the dry run stops, naming the stale stores
        assert "stale" in output and f"sigma={CELLS[0][0]}" in output, output
