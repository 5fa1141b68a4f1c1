"""Stale Snakemake locks and stale temporary stores: removed only when their owners are gone.

Snakemake locks the working directory (``.snakemake/locks/``) while it runs and removes the
lock when it stops, even after Ctrl-C; a Snakemake killed with SIGKILL (or whose node went
down) cannot, and the next run would stop with a ``LockException`` until ``snakemake
--unlock``. So every run that takes the lock records, in its ``onstart`` hook
(:func:`record_lock_owner`; Snakemake runs it right after taking the lock), which process owns
which lock files: host, pid, the process's start time (``/proc/<pid>/stat``, so that a reused
pid is not taken for the owner), boot id, pid namespace, each lock file's inode, mtime and
size, and a *run id* that it puts in its environment (:data:`RUN_ENV`), which every job it
starts inherits. When the Snakefile is parsed by the main Snakemake process (not in a dry
run, not by a job's own Snakemake), :func:`remove_stale_locks` removes lock files only when
all of this holds: a record names them, they are unchanged since it was written, its owner
ran on this host, and **no process of that run is alive**: neither the Snakemake process (gone,
another process under its pid, or the machine rebooted since) nor any process carrying its
run id (a job that outlived a killed Snakemake keeps its run's lock). Locks of a live run, of
a run on another host and locks that no record names are left alone: Snakemake then stops
with its usual lock message.

A store is written to a temporary path beside its final one. Its writer records itself
(:func:`write_writer_record`: host, pid, start time, boot id) beside the temporary;
:func:`remove_stale_temporaries` removes a temporary only when that writer is provably gone,
and refuses (``RuntimeError`` naming the pid) while it may still write.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import sys
import time
from pathlib import Path
from typing import Any

__all__ = [
    "LOCK_OWNERS",
    "RUN_ENV",
    "record_lock_owner",
    "remove_stale_locks",
    "remove_stale_temporaries",
    "run_alive",
    "write_writer_record",
]

RUN_ENV = "CQ_SWEEP_RUN"
"""Environment variable naming the Snakemake run a process belongs to (inherited by jobs)."""
TEMPORARY_SUFFIX = ".tmp"
"""A store is written to ``<name>.tmp`` beside its final path, then moved into place."""
WRITER_SUFFIX = ".tmp.writer"
"""``<name>.tmp.writer``: JSON record of the process writing ``<name>.tmp``."""

LOCK_OWNERS = "cq-sweep-lock-owners"
"""Folder (inside .snakemake/) of the owner records, one JSON file per locking run."""


def _boot_id() -> str | None:
    """This boot of the machine (Linux), or None."""
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip() or None
    except OSError:
        return None


def _process_start(pid: int) -> int | None:
    """Start time of a live process in clock ticks since boot (/proc/<pid>/stat field 22).

    None when there is no such process, or only a zombie (it has exited), or no /proc.
    """
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()  # after "pid (comm)": field 3 (state) onwards
    if fields[0] in ("Z", "X"):
        return None
    return int(fields[19])


def _pid_namespace() -> str | None:
    """The pid namespace of this process (containers on one host each have their own)."""
    try:
        return os.readlink("/proc/self/ns/pid")
    except OSError:
        return None


def _lock_identity(path: str | os.PathLike) -> list[int]:
    """What makes a lock file this lock file: inode, modification time (ns) and size."""
    stat = os.stat(path)
    return [stat.st_ino, stat.st_mtime_ns, stat.st_size]


def _run_id(host: str, pid: int, start: int) -> str:
    return f"{host}-{pid}-{start}"


def _processes_of_run(run: str) -> list[int]:
    """Pids of live processes (of this pid namespace) whose environment names ``run``."""
    marker = f"{RUN_ENV}={run}".encode()
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            environ = (entry / "environ").read_bytes()
        except OSError:
            continue  # gone, or not ours to read
        if marker in environ.split(b"\0") and _process_start(int(entry.name)) is not None:
            pids.append(int(entry.name))
    return pids


def run_alive(record: dict[str, Any]) -> bool:
    """Whether a process of the run of an owner record may still be alive (on this host)."""
    if not _owner_gone(record):
        return True
    run = record.get("run")
    return bool(run) and bool(_processes_of_run(run))


def record_lock_owner(workflow: Any) -> None:
    """onstart: record this Snakemake process as the owner of the lock files it wrote.

    Only a main Snakemake process that took the lock records itself (not a run with
    --nolock, nor a job's own Snakemake); the record is written atomically.
    """
    if not workflow.is_main_process or not workflow.execution_settings.lock:
        return
    persistence = workflow.persistence
    lockfiles = getattr(persistence, "_lockfile", None)  # FilePersistence: {type: path}
    start = _process_start(os.getpid())
    if not lockfiles or start is None:
        return  # nothing to record, or no way to tell this process apart later
    host, pid = socket.gethostname(), os.getpid()
    run = _run_id(host, pid, start)
    os.environ[RUN_ENV] = run  # every job this run starts inherits it
    record = {
        "run": run,
        "host": host,
        "pid": pid,
        "start": start,
        "boot_id": _boot_id(),
        "pid_namespace": _pid_namespace(),
        "since": time.strftime("%Y-%m-%d %H:%M:%S"),
        "locks": {os.path.basename(path): _lock_identity(path) for path in lockfiles.values()},
    }
    folder = Path(persistence.path) / LOCK_OWNERS
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"{host}-{pid}-{start}.json"
    temporary = target.with_name(target.name + ".tmp")
    temporary.write_text(json.dumps(record))
    os.replace(temporary, target)


def _owner_gone(record: dict[str, Any]) -> bool:
    """Whether the process of an owner record on this host has certainly ended."""
    if _process_start(os.getpid()) is None:
        return False  # no /proc here: no way to tell
    boot = _boot_id()
    if record.get("boot_id") and boot and record["boot_id"] != boot:
        return True  # the machine rebooted since the record was written
    if record.get("pid_namespace") != _pid_namespace():
        return False  # another container's pid: this one cannot see that process
    if not isinstance(record.get("pid"), int) or not isinstance(record.get("start"), int):
        return False  # an unusable record: its owner is unknown
    return _process_start(record["pid"]) != record["start"]


def remove_stale_locks(workflow: Any, snakemake_dir: str = ".snakemake") -> list[str]:
    """Remove the lock files of Snakemake runs on this host that no longer run (see above).

    Called while the Snakefile is parsed (before Snakemake checks the lock). Acts only in the
    main Snakemake process and not in a dry run; prints one line on stderr per removal, naming
    the files and the run that left them. Returns the lock files removed.
    """
    if not workflow.is_main_process or workflow.output_settings.dryrun:
        return []
    owners = Path(snakemake_dir) / LOCK_OWNERS
    if not owners.is_dir():
        return []
    host = socket.gethostname()
    removed_all = []
    for path in sorted(owners.glob("*.json")):
        try:
            record = json.loads(path.read_text())
            locks = dict(record["locks"])
        except (OSError, ValueError, KeyError, TypeError):
            continue  # unreadable: its owner is unknown, its locks are kept
        if record.get("host") != host or run_alive(record):
            continue
        removed = []
        for name, identity in locks.items():
            lock = Path(snakemake_dir) / "locks" / os.path.basename(name)
            try:
                if _lock_identity(lock) != list(identity):
                    continue  # not the file the owner wrote (another run's lock)
                lock.unlink()
            except FileNotFoundError:
                continue  # removed by the owner when it stopped, or by another run
            removed.append(str(lock))
        path.unlink(missing_ok=True)  # the owner is gone: its record is no longer needed
        if removed:
            print(
                f"cq-sweep: removed stale Snakemake lock files {', '.join(removed)}: the "
                f"Snakemake run that took them (pid {record['pid']} on {host}, started "
                f"{record.get('since', '?')}) no longer runs (it was killed, or its machine "
                "went down), nor does any job it started.",
                file=sys.stderr,
            )
        removed_all += removed
    return removed_all


# ------------------------------------------------------------------ temporary stores


def _writer_path(path: Path) -> Path:
    return path.with_name(path.name + WRITER_SUFFIX)


def write_writer_record(path: str | os.PathLike) -> Path:
    """Record this process as the writer of the temporary store of ``path``; return the file."""
    path = Path(path)
    record = {
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "start": _process_start(os.getpid()),
        "boot_id": _boot_id(),
        "pid_namespace": _pid_namespace(),
    }
    target = _writer_path(path)
    temporary = target.with_name(target.name + f"-{os.getpid()}")
    temporary.write_text(json.dumps(record))
    os.replace(temporary, target)
    return target


def _writer_gone(path: Path) -> bool:
    """Whether the recorded writer of ``path``'s temporary has certainly ended.

    No record (a writer of an older version, or killed before it wrote one): gone, as
    before. A record of another host or an unreadable one: not known to be gone.
    """
    try:
        record = json.loads(_writer_path(path).read_text())
    except FileNotFoundError:
        return True
    except (OSError, ValueError):
        return False
    if not isinstance(record, dict) or record.get("host") != socket.gethostname():
        return False
    if record.get("pid") == os.getpid() and record.get("start") == _process_start(os.getpid()):
        return True  # this very process (a retry of its own write)
    return _owner_gone(record)


def remove_stale_temporaries(path: str | os.PathLike) -> list[Path]:
    """Remove ``<name>.tmp*`` left beside ``path`` by a writer that is gone; return them.

    Raises ``RuntimeError`` naming the writer while it may still be alive (e.g. a batch job
    that outlived a killed Snakemake): its store is never pulled from under it.
    """
    path = Path(path)
    if not path.parent.is_dir():
        return []
    stale = [p for p in path.parent.iterdir() if p.name.startswith(path.name + TEMPORARY_SUFFIX)]
    if not stale:
        return []
    if not _writer_gone(path):
        record = _writer_path(path).read_text()
        raise RuntimeError(
            f"{path} is being written by another process that is still alive ({record}); "
            "wait for it to finish (or stop it), then run again"
        )
    removed = []
    for item in sorted(stale, key=lambda p: p == _writer_path(path)):  # the record last
        if item.is_dir() and not item.is_symlink():
            shutil.rmtree(item)
        else:
            item.unlink(missing_ok=True)
        removed.append(item)
    return removed
