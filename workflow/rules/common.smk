# ==========================================================================================
# Shared helpers: the cell grid and batches of every sweep, input functions, job resources.
# (Stale locks: cq_core/pipeline/locks.py, called from the Snakefile.)
# Execution settings (dask.*) reach the jobs through DASK_OPTIONS on the command line, never
# through params, so changing them never reruns a cell (config/README.md).
# ==========================================================================================

import functools
import json
import os
import re
import shlex
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import cq_core
from cq_core.pipeline import layout
from cq_core.pipeline.batch import DASK_MIN_TRAJECTORY_STEPS, batch_digest, partition
from cq_core.pipeline.sweep_config import check_analysis, sweep_cell_specs
from cq_core.plots.limits import check_figure
from cq_core.pipeline.sweep_job import (
    FIGURE_OUTPUTS,
    figure_paths,
    summary_target,
    sweep_outputs,
    sweep_steps,
)

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
        str(batch.get("dask_min_trajectory_steps", DASK_MIN_TRAJECTORY_STEPS)),
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
    is missing (deleted by hand, moved aside by ``verify --repair``), the stamp is rewritten
    while the workflow is parsed (new time and content: Snakemake compares both), so it is
    newer than the manifest and the batch job reruns;
    it recomputes exactly the missing cells (the other batches keep ignoring the stamp).
    """
    stamp = layout.batch_stamp(RESULTS, wildcards.sweep)
    if (int(wildcards.batch), wildcards.sweep) in MISSING_STORES:
        return str(stamp)
    return ancient(str(stamp))


def find_missing_stores(plan):
    """Batches whose manifest exists but one of whose stores does not: ``{(batch, sweep)}``.

    Their sweeps' stamps are rewritten here (see :func:`get_batch_stamp`).
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
                    if stamp.exists():  # new content: Snakemake compares checksums too
                        stamp.write_text(f"{time.time_ns()} {store} is missing\n")
                    break
    return missing


def get_batch_threads(wildcards):
    """Local Dask workers of a batch job: dask.threads (1 with an external scheduler)."""
    if DASK["scheduler_address"]:
        return 1
    return max(1, DASK["threads"])


@functools.cache
def _sweep_cell_size_mb(sweep):
    """Stored MB of one block of the sweep's largest cell: σ and seed change no size, so one
    cell per grid point (a dt or mode axis does) is enough."""
    cells = list(SWEEP_CELLS[sweep].values())
    first = cells[0]
    points = [c for c in cells if c.sigma == first.sigma and c.seed == first.seed]
    return max(_cell_size_mb(spec) for spec in points)


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
    steps = sum(spec.n_traj * round(spec.t_final / spec.dt) for spec in specs)
    return int(10 + steps / 1e5 / 60)


def get_sweep_manifests(wildcards):
    """The batch manifests of a sweep in the config (batch order)."""
    return [
        _manifest(wildcards.sweep, batch, digest)
        for batch, (digest, _) in SWEEP_BATCHES[wildcards.sweep].items()
    ]


def get_all_manifests():
    """Every batch manifest of every sweep: targets of their own, so that a missing one (a
    changed cell, copied results of another config) is made even where the summary is there.
    """
    return [
        _manifest(sweep, batch, digest)
        for sweep, batches in SWEEP_BATCHES.items()
        for batch, (digest, _) in batches.items()
    ]


def get_all_summaries():
    """The summary of every sweep in the config."""
    return [summary_target(RESULTS, sweep) for sweep in SWEEP_CELLS]


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
    return [summary_target(RESULTS, name) for name in names]


@functools.cache
def get_sweep_figures(sweep):
    """The figures and tables sweeps.<sweep>.analysis.figures asks for, checked (unknown
    name, a mean_field figure without its twin, bad phase_space settings: the dry run fails
    naming the key)."""
    figures = (config["sweeps"][sweep].get("analysis") or {}).get("figures", [])
    twin = get_mean_field_sweep(sweep)
    for i, name in enumerate(figures):
        if name not in FIGURE_OUTPUTS:
            raise _figure_config_error(
                f"sweeps.{sweep}.analysis.figures[{i}]",
                f"unknown figure {name!r}; valid: {', '.join(FIGURE_OUTPUTS)}",
            )
        if name == "mean_field" and twin is None:
            raise _figure_config_error(
                f"sweeps.{sweep}.analysis.figures[{i}]",
                "the mean_field figure needs sweeps.<name>.analysis.mean_field",
            )
        try:  # what the figure can draw: grid axes, rows, series (cq_core.plots)
            check_figure(name, _sweep_axes(sweep), axis=get_rate_axis(sweep))
        except ValueError as err:
            raise _figure_config_error(f"sweeps.{sweep}.analysis.figures[{i}]", str(err))
    return tuple(figures)


def get_rate_axis(sweep):
    """sweeps.<sweep>.analysis.rate_axis: the axis of its rate_vs_axis figure (None: default)."""
    return (config["sweeps"][sweep].get("analysis") or {}).get("rate_axis")


def _sweep_axes(sweep):
    """{axis: number of values} of a sweep: sigma and each grid axis."""
    settings = config["sweeps"][sweep]
    grid = settings.get("grid") or {}
    return {"sigma": len(settings["sigma"]), **{axis: len(v) for axis, v in grid.items()}}


def _own_batch(sweep):
    """The manifest of the sweep's one batch when its sweep job runs it (else None)."""
    batches = SWEEP_BATCHES[sweep]
    if len(batches) != 1:
        return None
    (batch, (digest, _)), = batches.items()
    return _manifest(sweep, batch, digest)


def get_single_batch_sweeps():
    """Sweeps whose one batch runs in their sweep job (no simulate_batch job of their own)."""
    return [sweep for sweep in SWEEP_CELLS if _own_batch(sweep)]


def get_sweep_job(sweep):
    """Inputs, outputs, steps and resources of the sweep's job (sweeps.smk)."""
    figures = get_sweep_figures(sweep)
    own = _own_batch(sweep)
    manifests = get_sweep_manifests(SimpleNamespace(sweep=sweep))
    twin = get_mean_field_manifests(SimpleNamespace(sweep=sweep))
    settings = {
        "dpi": config["figures"]["dpi"],
        "realisations": config["figures"]["realisations"],
        "rate_axis": get_rate_axis(sweep),
    }
    if "phase_space" in figures:
        settings["phase_space"] = get_phase_space_settings(SimpleNamespace(sweep=sweep))
    inputs = {}
    threads, mem_mb, runtime = 1, 2000, 20
    batch = None
    if own:
        (batch_no, (digest, _)), = SWEEP_BATCHES[sweep].items()
        wildcards = SimpleNamespace(sweep=sweep, batch=f"{batch_no:04d}", digest=digest)
        inputs["stamp"] = get_batch_stamp(wildcards)
        batch = (_batch_cells_json(sweep, batch_no), own)
        threads = get_batch_threads(wildcards)
        mem_mb = max(mem_mb, get_batch_mem_mb(wildcards))
        runtime += get_batch_runtime(wildcards)
    else:
        inputs["manifests"] = manifests
    if twin and {"trajectories", "mean_field"} & set(figures):
        inputs["mean_field_manifests"] = twin
    steps = sweep_steps(
        RESULTS,
        sweep,
        analysis=SWEEP_ANALYSIS[sweep],
        manifests=manifests,
        figures=figures,
        batch=batch,
        numerics_version=NUMERICS_VERSION,
        mean_field_manifests=twin,
        settings=settings,
    )
    return SimpleNamespace(
        inputs=inputs,
        outputs=sweep_outputs(RESULTS, sweep, figures, own),
        steps=json.dumps(steps, separators=(",", ":")),
        threads=threads,
        mem_mb=mem_mb,
        runtime=runtime,
    )


def get_all_figures():
    """Every figure and table the config asks for (checked: a bad name fails the dry run)."""
    targets = []
    for sweep in SWEEP_CELLS:
        for figure in get_sweep_figures(sweep):
            targets += [out.path for out in figure_paths(RESULTS, sweep, figure).values()]
    if get_tradeoff_summaries():
        targets += list(rules.figure_tradeoff.output)
    return targets
