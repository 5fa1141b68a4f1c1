"""Batches of cells: the unit of work of a Snakemake job (issue 17).

A sweep's cells are split into batches by a hash of each cell's name
(:func:`cq_core.pipeline.layout.cell_id`) modulo the number of batches, a power of two fixed
by the number of cells and ``batch.cells_per_job`` (:func:`n_batches`). Adding a σ or a seed
therefore moves no cell from one batch to another unless the number of batches doubles; a
batch whose cells are all stored already costs one short process start.

One job per (sweep, batch) runs :func:`run_batch` in one Python process: every cell of the
batch whose store is missing or holds another cell (its recorded cell hash differs) is
computed and stored atomically (a temporary path, moved into place when complete), one after
the other; cells already stored are skipped. Small cells run in this process, block by block,
without any Dask cluster; a cell of at least ``dask_min_trajectory_steps`` trajectory-steps,
when Dask has more than one worker to give (``threads > 1``) or an external scheduler is
configured, runs its blocks on Dask: one local cluster per batch process, started at the
first such cell and reused for the others. The stored bytes are the same either way
(``tests/test_batches.py``). The job's output is the batch's *manifest*, a small JSON file
listing its cells, their stores and hashes, written last and atomically.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import ExitStack
from dataclasses import replace
from pathlib import Path
from typing import Any

from ..version import NUMERICS_VERSION
from .cell_spec import CellSpec, split_blocks
from .cell_store import _CellStoreWriter
from .cell_to_store import _layout_sample, run_cell_to_store
from .dask_runner import (
    CONNECT_TIMEOUT,
    DEFAULT_BLOCK_SIZE,
    WORKER_TIMEOUT,
    _positive_int,
    dask_client,
    use_processes,
)
from .layout import cell_id
from .progress import record_cell
from .store_checks import stale_reason

__all__ = [
    "CELLS_PER_JOB",
    "DASK_MIN_TRAJECTORY_STEPS",
    "batch_digest",
    "batch_index",
    "manifest_cells",
    "n_batches",
    "partition",
    "run_batch",
]

LOGGER = logging.getLogger(__name__)

CELLS_PER_JOB = 32
"""Default ``batch.cells_per_job``: ≤ 32 SLURM jobs for 1 000 cells, one local job for a small
sweep (a process start costs ~1 CPU-s; a batch job's cells run one after the other)."""
DASK_MIN_TRAJECTORY_STEPS = 2_000_000
"""Default ``batch.dask_min_trajectory_steps``: below it (~0.2 s of the fused kernels) a cell
runs in the batch process; Dask's cluster start and task round trips would not pay."""
MANIFEST_VERSION = 1


def n_batches(n_cells: int, cells_per_job: int = CELLS_PER_JOB) -> int:
    """Batches of a sweep of ``n_cells``: ``ceil(n_cells / cells_per_job)`` rounded up to a
    power of two (so that growing a sweep moves cells only when the number doubles)."""
    cells_per_job = _positive_int("batch.cells_per_job", cells_per_job)
    wanted = max(1, math.ceil(n_cells / cells_per_job))
    return 1 << (wanted - 1).bit_length()


def batch_index(name: str, batches: int) -> int:
    """The batch of the cell named ``name`` (:func:`cell_id`): its sha256 mod ``batches``."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big") % batches


def partition(
    cells: Mapping[tuple[str, int], CellSpec], cells_per_job: int = CELLS_PER_JOB
) -> dict[int, list[tuple[str, int]]]:
    """The sweep's cells ``{(sigma_label, seed): spec}`` by batch (non-empty batches only).

    Within a batch the cells keep the order of ``cells``.
    """
    batches = n_batches(len(cells), cells_per_job)
    out: dict[int, list[tuple[str, int]]] = {}
    for label, seed in cells:
        out.setdefault(batch_index(cell_id(label, seed), batches), []).append((label, seed))
    return dict(sorted(out.items()))


def batch_digest(specs: Sequence[CellSpec]) -> str:
    """16 hex digits naming the cells of a batch and their hashes (numerics version included)."""
    text = "\n".join(sorted(spec.config_hash for spec in specs))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _cell_name(spec: CellSpec) -> str:
    return cell_id(spec.point_label, spec.seed)


def _store_in_process(spec: CellSpec, path: Path, block_size: int, log: logging.Logger) -> None:
    """Run a cell's blocks one after the other in this process and store them (no Dask).

    The same writer as :func:`cq_core.cells.run_cell_to_store` fills the same layout, so the
    bytes equal a Dask run's; memory is bounded by the block size.
    """
    spec_json, cell_hash = spec.to_json(), spec.config_hash
    writer = _CellStoreWriter(path, _layout_sample(spec), spec.n_traj)
    try:
        for first, count in split_blocks(spec.n_traj, block_size):
            block = spec.simulate(first_trajectory=first, n_traj=count)
            block.attrs["cell_spec"] = spec_json
            block.attrs["cell_hash"] = cell_hash
            writer.write(block)
            del block
        writer.commit()
    finally:
        writer.discard()


def run_batch(
    cells: Sequence[tuple[Path, CellSpec]],
    manifest: str | os.PathLike,
    *,
    block_size: int | None = None,
    threads: int = 1,
    processes: bool | None = None,
    scheduler_address: str | None = None,
    connect_timeout: float = CONNECT_TIMEOUT,
    worker_timeout: float = WORKER_TIMEOUT,
    dask_min_trajectory_steps: int = DASK_MIN_TRAJECTORY_STEPS,
    after_store: Callable[[Path, CellSpec], None] | None = None,
    log: logging.Logger | None = None,
) -> dict[str, Any]:
    """Store every missing or stale cell of a batch, then write the batch's manifest.

    Parameters
    ----------
    cells
        ``(store path, cell)`` pairs; the cells resolved (no ``backend="auto"``).
    manifest
        The JSON file to write last (atomically): ``{"version", "numerics_version",
        "digest", "cells": [{"id", "store", "hash"}]}``, ``store`` relative to the sweep
        folder (the manifest's grandparent), so a moved ``results/`` keeps its manifests.
        Older manifests of the same batch (``<batch>-*.json`` beside it) are removed.
    block_size, threads, processes, scheduler_address, connect_timeout, worker_timeout
        Execution settings (never change a stored number): see
        :func:`cq_core.cells.iter_cell_blocks`.
    dask_min_trajectory_steps
        Cells of fewer trajectory-steps (``n_traj × steps``) run in this process.
    after_store
        Called with ``(store, cell)`` after each cell is stored (per-cell statistics).
    log
        Receives one line per cell: cells done of total, trajectory-steps/s.

    Every cell is checked before any work starts (``ValueError`` naming the key).
    Returns the manifest's content.
    """
    log = log or LOGGER
    manifest = Path(manifest)
    block_size = _positive_int(
        "block_size", DEFAULT_BLOCK_SIZE if block_size is None else block_size
    )
    threads = _positive_int("threads", threads)
    plan = []
    for path, spec in cells:
        settings = spec.check()  # every cell checked before any work starts
        plan.append((Path(path), replace(spec, backend=settings.backend), settings.n_steps))
    todo = []
    for path, spec, steps in plan:
        reason = stale_reason(path, spec)
        if path.exists() and reason is None:
            continue
        if reason is not None:
            log.info("%s: %s; recomputed", path, reason)
        todo.append((path, spec, steps))
    total_steps = sum(spec.n_traj * steps for _, spec, steps in todo)
    log.info(
        "batch %s: %d cell(s), %d stored already, %d to compute (%.3g trajectory-steps)",
        manifest.name,
        len(plan),
        len(plan) - len(todo),
        len(todo),
        total_steps,
    )
    start, done_steps = time.perf_counter(), 0
    with ExitStack() as stack:
        client = None
        for done, (path, spec, steps) in enumerate(todo, start=1):
            work = spec.n_traj * steps
            on_dask = work >= dask_min_trajectory_steps and (
                threads > 1 or scheduler_address is not None
            )
            if on_dask and client is None:
                use = processes
                if use is None:
                    use = use_processes(spec.backend, threads, work)
                client = stack.enter_context(
                    dask_client(
                        scheduler_address,
                        threads=threads,
                        processes=bool(use),
                        connect_timeout=connect_timeout,
                        worker_timeout=worker_timeout,
                    )
                )
            if on_dask:
                run_cell_to_store(
                    spec, path, client=client, block_size=block_size, log=log.getChild("dask")
                )
            else:
                _store_in_process(spec, path, block_size, log)
            if after_store is not None:
                after_store(path, spec)
            record_cell(manifest.parent.parent, _cell_name(spec), work)  # the run's console
            done_steps += work
            elapsed = max(time.perf_counter() - start, 1e-9)
            log.info(
                "cell %d/%d stored: %s (%s, %d trajectories x %d steps)%s; %.3g trajectory-steps/s",
                done,
                len(todo),
                path,
                spec.backend,
                spec.n_traj,
                steps,
                " on Dask" if on_dask else "",
                done_steps / elapsed,
            )
    content = {
        "version": MANIFEST_VERSION,
        "numerics_version": NUMERICS_VERSION,
        "digest": batch_digest([spec for _, spec, _ in plan]),
        "cells": [
            {
                "id": _cell_name(spec),
                "store": os.path.relpath(path, manifest.parent.parent),
                "hash": spec.config_hash,
            }
            for path, spec, _ in plan
        ],
    }
    _write_manifest(manifest, content)
    return content


def _write_manifest(manifest: Path, content: Mapping[str, Any]) -> None:
    manifest.parent.mkdir(parents=True, exist_ok=True)
    temporary = manifest.with_name(manifest.name + ".tmp")
    temporary.write_text(json.dumps(content, indent=1, sort_keys=True) + "\n")
    os.replace(temporary, manifest)
    prefix = manifest.name.split("-", 1)[0] + "-"
    for older in manifest.parent.glob(prefix + "*.json"):
        if older != manifest:
            older.unlink(missing_ok=True)


def manifest_cells(manifests: Sequence[str | os.PathLike]) -> list[Path]:
    """The cell stores listed by batch manifests (in the manifests' order)."""
    stores = []
    for manifest in manifests:
        manifest = Path(manifest)
        content = json.loads(manifest.read_text())
        stores += [manifest.parent.parent / cell["store"] for cell in content["cells"]]
    return stores
