# ==========================================================================================
# Shared helpers: the cell grid and batches of every sweep, input functions, job resources,
# stale locks.
# Execution settings (dask.*) reach the jobs through DASK_OPTIONS on the command line, never
# through params, so changing them never reruns a cell (config/README.md).
# ==========================================================================================

import functools
import json
import math
import os
import shlex
import socket
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import cq_core
from cq_core.pipeline import layout
from cq_core.pipeline.batch import batch_digest, partition
from cq_core.sweep import check_analysis, sweep_cell_specs

PYTHON = sys.executable
RESULTS = config["results"].rstrip("/")
NUMERICS_VERSION = cq_core.NUMERICS_VERSION
DASK = config["dask"]
BATCH = config.get("batch") or {}


wildcard_constraints:
    sweep=r"[A-Za-z0-9][A-Za-z0-9_-]*",
    batch=r"[0-9][0-9][0-9][0-9]+",
    digest=r"[0-9a-f]+",


def _dask_options(dask, batch):
    """The run-batch options of the dask and batch blocks (--threads is added by the rule)."""
    options = [
        "--block-size", str(dask["block_size"]),
        "--connect-timeout", str(dask["connect_timeout"]),
        "--worker-timeout", str(dask["worker_timeout"]),
        "--dask-min-trajectory-steps",
        str(batch.get("dask_min_trajectory_steps", 2_000_000)),
    ]
    if dask["scheduler_address"]:
        options += ["--scheduler-address", dask["scheduler_address"]]
    processes = {True: "true", False: "false"}.get(dask["processes"], "auto")
    return shlex.join(options + ["--processes", processes])


DASK_OPTIONS = _dask_options(DASK, BATCH)


def check_sweeps(config):
    """Check every sweep against cq_core; return its cells and its summary settings.

    Returns ``({sweep: {(sigma_label, seed): CellSpec}}, {sweep: analysis settings})``.
    Raises ValueError naming the key (``invalid config: sweeps.<name>.<key>: ...``).
    """
    cells, analysis = {}, {}
    for name, sweep in config["sweeps"].items():
        cells[name] = sweep_cell_specs(name, sweep, base_seed=config["base_seed"])
        analysis[name] = check_analysis(name, sweep)
    return cells, analysis


def plan_batches(cells_by_sweep):
    """``{sweep: {batch: (digest, [(sigma_label, seed), ...])}}`` for every sweep.

    A batch's manifest is named by the digest of its cells' hashes, so a changed cell (or
    numerics version, or results copied from another config) asks for a manifest that does
    not exist yet: its batch job runs and recomputes exactly the cells not stored as asked.
    """
    per_job = BATCH.get("cells_per_job", 32)
    plan = {}
    for sweep, cells in cells_by_sweep.items():
        plan[sweep] = {
            batch: (batch_digest([cells[key] for key in keys]), keys)
            for batch, keys in partition(cells, per_job).items()
        }
    return plan


def get_batch_cells(wildcards):
    """The cells of the batch named by the wildcards, as one canonical JSON list.

    The batch rule's parameters: equal to the cells' hashes as a rerun trigger (the hash is a
    function of the cell and the numerics version, which is a parameter too).
    """
    _batch(wildcards)
    return _batch_cells_json(wildcards.sweep, int(wildcards.batch))


@functools.cache
def _batch_cells_json(sweep, batch):
    cells = SWEEP_CELLS[sweep]
    _, keys = SWEEP_BATCHES[sweep][batch]
    return "[" + ",".join(cells[key].to_json() for key in keys) + "]"


def _batch(wildcards):
    try:
        digest, keys = SWEEP_BATCHES[wildcards.sweep][int(wildcards.batch)]
    except KeyError:
        raise ValueError(
            f"no batch {wildcards.batch} in sweep {wildcards.sweep!r} of the config"
        ) from None
    if digest != wildcards.digest:
        raise ValueError(
            f"batch {wildcards.batch} of sweep {wildcards.sweep!r} holds other cells now "
            f"(digest {digest}, not {wildcards.digest})"
        )
    return digest, keys


def _batch_specs(wildcards):
    _, keys = _batch(wildcards)
    return [SWEEP_CELLS[wildcards.sweep][key] for key in keys]


def _manifest(sweep, batch, digest):
    return str(layout.batch_manifest(RESULTS, sweep, batch, digest))


def get_batch_stamp(wildcards):
    """The sweep's stamp: its modification time is a batch job's only rerun trigger.

    ``ancient`` (ignored) while every store the batch's manifest lists is in place. When one
    is missing (deleted by hand, moved aside by ``verify --repair``), the stamp is touched
    while the workflow is parsed, so it is newer than the manifest and the batch job reruns;
    it recomputes exactly the missing cells (the other batches keep ignoring the stamp).
    """
    stamp = layout.batch_stamp(RESULTS, wildcards.sweep)
    if (int(wildcards.batch), wildcards.sweep) in MISSING_STORES:
        return str(stamp)
    return ancient(str(stamp))


def find_missing_stores(plan):
    """Batches whose manifest exists but one of whose stores does not: ``{(batch, sweep)}``.

    Their stamps are touched here (see :func:`get_batch_stamp`).
    """
    missing = set()
    for sweep, batches in plan.items():
        for batch, (digest, keys) in batches.items():
            if not os.path.exists(_manifest(sweep, batch, digest)):
                continue
            for label, seed in keys:
                store = layout.cell_store(RESULTS, sweep, label, seed)
                if not os.path.exists(os.path.join(store, "zarr.json")):
                    missing.add((batch, sweep))
                    stamp = layout.batch_stamp(RESULTS, sweep)
                    if stamp.exists():
                        os.utime(stamp)
                    break
    return missing


def get_batch_threads(wildcards):
    """Local Dask workers of a batch job: dask.threads (1 with an external scheduler)."""
    if DASK["scheduler_address"]:
        return 1
    return max(1, DASK["threads"])


@functools.cache
def _sweep_cell_size_mb(sweep):
    """Stored MB of one block of a cell of the sweep (its cells differ only in σ and seed)."""
    return _cell_size_mb(next(iter(SWEEP_CELLS[sweep].values())))


def _cell_size_mb(spec):
    settings = spec.check()
    model = spec.build_model()
    state = model.dim**2 if spec.mode == "density" else model.dim
    per_sample = 8 * model.n_classical + 16 * state
    block = min(spec.n_traj, DASK["block_size"])
    return block * len(settings.saved_steps) * per_sample / 2**20


def get_batch_mem_mb(wildcards):
    """Memory of a batch job: a few blocks of its largest cell at a time, plus the runtime."""
    return int(1000 + 3 * (DASK["threads"] + 1) * max(_sweep_cell_size_mb(wildcards.sweep), 1))


def get_batch_runtime(wildcards):
    """Wall time (minutes) of a batch job, at a pessimistic 1e5 trajectory-steps/s."""
    specs = _batch_specs(wildcards)
    steps = len(specs) * specs[0].n_traj * round(specs[0].t_final / specs[0].dt)
    return int(10 + steps / 1e5 / 60)


def get_sweep_manifests(wildcards):
    """The batch manifests of a sweep in the config (batch order)."""
    return [
        _manifest(wildcards.sweep, batch, digest)
        for batch, (digest, _) in SWEEP_BATCHES[wildcards.sweep].items()
    ]


def get_analysis_json(wildcards):
    """The summary settings of a sweep (time slices, bins, fit window) as canonical JSON."""
    return json.dumps(SWEEP_ANALYSIS[wildcards.sweep], sort_keys=True, separators=(",", ":"))


def get_summary_mem_mb(wildcards):
    """Memory of a summary job: Dask reads the cells chunk by chunk."""
    return 2000


def get_all_summaries():
    """The summary of every sweep in the config."""
    return expand(rules.summarise_sweep.output.summary, sweep=list(SWEEP_CELLS))


# ------------------------------------------------------------------ figures and tables
# The figure rules (figures.smk) read only stored cells and summaries. Their parameters are
# figure settings (config["figures"]), never cell settings: a figure change reruns figures.


def _figure_config_error(key, message):
    return ValueError(f"invalid config: {key}: {message}")


def get_mean_field_sweep(sweep):
    """The mean-field twin named by sweeps.<sweep>.analysis.mean_field (None if unset)."""
    twin = (config["sweeps"][sweep].get("analysis") or {}).get("mean_field")
    if twin is None:
        return None
    key = f"sweeps.{sweep}.analysis.mean_field"
    if twin not in config["sweeps"]:
        raise _figure_config_error(key, f"no sweep {twin!r} in sweeps")
    if config["sweeps"][twin].get("mode") != "mean_field":
        raise _figure_config_error(key, f"sweep {twin!r} does not have mode: mean_field")
    if config["sweeps"][twin]["model"] != config["sweeps"][sweep]["model"]:
        raise _figure_config_error(key, f"sweep {twin!r} runs another model")
    return twin


def get_mean_field_manifests(wildcards):
    """The batch manifests of the sweep's mean-field twin ([] when it has none)."""
    twin = get_mean_field_sweep(wildcards.sweep)
    if twin is None:
        return []
    return get_sweep_manifests(SimpleNamespace(sweep=twin))


def get_tradeoff_summaries():
    """The summaries of the sweeps listed in figures.tradeoff (checked against sweeps)."""
    names = config["figures"]["tradeoff"]
    for i, name in enumerate(names):
        if name not in config["sweeps"]:
            raise _figure_config_error(f"figures.tradeoff[{i}]", f"no sweep {name!r} in sweeps")
    return expand(rules.summarise_sweep.output.summary, sweep=names)


def get_sweep_figure_rules():
    """Figure name (in sweeps.<name>.analysis.figures) -> the rule that draws it."""
    return {
        "trajectories": rules.figure_trajectories,
        "mean_field": rules.figure_mean_field,
        "histograms": rules.figure_histograms,
        "decoherence": rules.figure_decoherence,
        "born": rules.table_born,
    }


def get_all_figures():
    """Every figure and table the config asks for (checked: a bad name fails the dry run)."""
    figure_rules = get_sweep_figure_rules()
    targets = []
    for sweep, settings in config["sweeps"].items():
        figures = (settings.get("analysis") or {}).get("figures", [])
        twin = get_mean_field_sweep(sweep)
        for i, name in enumerate(figures):
            if name not in figure_rules:
                raise _figure_config_error(
                    f"sweeps.{sweep}.analysis.figures[{i}]",
                    f"unknown figure {name!r}; valid: {', '.join(figure_rules)}",
                )
            if name == "mean_field" and twin is None:
                raise _figure_config_error(
                    f"sweeps.{sweep}.analysis.figures[{i}]",
                    "the mean_field figure needs sweeps.<name>.analysis.mean_field",
                )
            targets += expand(list(figure_rules[name].output), sweep=sweep)
    if get_tradeoff_summaries():
        targets += list(rules.figure_tradeoff.output)
    return targets


# ------------------------------------------------------------------------- stale locks
# Snakemake locks the working directory (.snakemake/locks/) while it runs and removes the
# lock when it stops, even after Ctrl-C; a Snakemake killed with SIGKILL (or whose node went
# down) cannot, and the next run would stop with a LockException until `snakemake --unlock`.
# So every run that takes the lock records, in its onstart hook (Snakemake runs it right
# after taking the lock), which process owns which lock files: host, pid, the process's start
# time (/proc/<pid>/stat, so that a reused pid is not taken for the owner), boot id, pid
# namespace, and each lock file's inode, mtime and size. When the Snakefile is parsed by the
# main Snakemake process (not in a dry run, not by a job's own Snakemake), lock files are
# removed only when all of this holds: a record names them, they are unchanged since it was
# written, its owner ran on this host, and that process no longer runs (gone, another
# process under its pid, or the machine rebooted since). Locks of a live run, of a run on
# another host and locks that no record names are left alone: Snakemake then stops with its
# usual lock message.

LOCK_OWNERS = "cq-sweep-lock-owners"
"""Folder (inside .snakemake/) of the owner records, one JSON file per locking run."""


def _boot_id():
    """This boot of the machine (Linux), or None."""
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip() or None
    except OSError:
        return None


def _process_start(pid):
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


def _pid_namespace():
    """The pid namespace of this process (containers on one host each have their own)."""
    try:
        return os.readlink("/proc/self/ns/pid")
    except OSError:
        return None


def _lock_identity(path):
    """What makes a lock file this lock file: inode, modification time (ns) and size."""
    stat = os.stat(path)
    return [stat.st_ino, stat.st_mtime_ns, stat.st_size]


def record_lock_owner(workflow):
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
    record = {
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


def _owner_gone(record):
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


def remove_stale_locks(workflow, snakemake_dir=".snakemake"):
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
        if record.get("host") != host or not _owner_gone(record):
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
                "went down).",
                file=sys.stderr,
            )
        removed_all += removed
    return removed_all
