"""Run a cell's trajectory blocks on Dask: the local cluster or an external scheduler.

:func:`run_cell` validates the cell, splits its trajectories into blocks, runs the blocks on
Dask workers with the simulation kernel (every block runs the same resolved kernel), gathers
them in trajectory order and concatenates them. The Dask settings of the pipeline (timeouts,
block size, when to use worker processes) are defined here.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import xarray as xr

from ..solver.settings import RunSettings
from .cell_spec import CellSpec, split_blocks
from .store_encoding import STORE_TRAJECTORY_CHUNK

__all__ = [
    "CONNECT_TIMEOUT",
    "DEFAULT_BLOCK_SIZE",
    "LOCAL_WORKER_PROCESS_CONFIG",
    "PROCESS_MIN_TRAJECTORY_STEPS",
    "WORKER_TIMEOUT",
    "dask_client",
    "iter_cell_blocks",
    "local_cluster",
    "run_cell",
    "use_processes",
]

LOGGER = logging.getLogger(__name__)

DEFAULT_BLOCK_SIZE = STORE_TRAJECTORY_CHUNK
"""Trajectories per Dask task by default: one block is then one stored chunk."""
CONNECT_TIMEOUT = 10.0
"""Seconds to wait for an external Dask scheduler before giving up."""
WORKER_TIMEOUT = 60.0
"""Seconds to wait for an external scheduler to have at least one worker."""
PROCESS_MIN_TRAJECTORY_STEPS = 20_000_000
"""Below this much work (~10 s of the NumPy kernel) a process cluster's start-up never pays."""


def _simulate_block(spec_json: str, first_trajectory: int, n_traj: int) -> xr.Dataset:
    """Dask task: one block of a cell (rebuilds the model in the worker; closures stay local)."""
    return CellSpec.from_json(spec_json).simulate(first_trajectory=first_trajectory, n_traj=n_traj)


def _positive_int(name: str, value: Any) -> int:
    """``value`` as an ``int`` if it is a whole number >= 1 (not a bool), else ``ValueError``
    naming ``name`` (the one check of worker, thread, block and batch counts)."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
    return int(value)


LOCAL_WORKER_PROCESS_CONFIG: dict[str, Any] = {
    "distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None
}
"""Dask config while a local cluster starts its worker processes: no ``MALLOC_TRIM_THRESHOLD_``.

Dask's nanny sets ``MALLOC_TRIM_THRESHOLD_=65536`` in every worker process it spawns (and in
its own process), so that freed memory goes back to the OS sooner. Any explicit value turns
off glibc's adaptive mmap threshold: every Zarr chunk's compression buffer and other large
temporaries become an ``mmap`` of their own with fresh page faults, and storing cells took
~30 % more CPU in the writes (8 seed cells: 0.63–0.69 s against 0.82–0.93 s). A worker here
holds a few blocks at a time, so its memory stays bounded without the setting (two workers
storing seed cells: peak 165–167 MiB each, against 149 MiB with it). Dask's other pre-spawn
settings (one BLAS/OpenMP thread per worker) are kept.
"""


@contextmanager
def local_cluster(workers: int, *, processes: bool) -> Iterator[Any]:
    """A ``LocalCluster`` of ``workers`` single-threaded workers, closed on exit.

    Worker processes (``processes=True``) start under :data:`LOCAL_WORKER_PROCESS_CONFIG`;
    ``processes=False`` runs the workers as threads of this process. Its dashboards listen on
    ``127.0.0.1`` at free ports. ``workers`` must be an integer ≥ 1 (else ``ValueError``).
    """
    import dask
    from distributed import LocalCluster

    workers = _positive_int("workers", workers)
    with dask.config.set(LOCAL_WORKER_PROCESS_CONFIG):  # read when the nannies are made
        cluster = LocalCluster(
            n_workers=workers,
            threads_per_worker=1,
            processes=processes,
            dashboard_address="127.0.0.1:0",
            worker_dashboard_address="127.0.0.1:0",
            silence_logs=logging.ERROR,
        )
    with cluster:
        yield cluster


@contextmanager
def dask_client(
    scheduler_address: str | None = None,
    *,
    threads: int = 1,
    processes: bool = False,
    connect_timeout: float = CONNECT_TIMEOUT,
    worker_timeout: float = WORKER_TIMEOUT,
) -> Iterator[Any]:
    """A ``distributed.Client``: a local cluster of ``threads`` workers, or an external scheduler.

    Without an address, a :func:`local_cluster` of ``threads`` single-threaded workers is
    started (in this process when ``processes`` is false) and closed on exit. With an
    address, the client connects to that scheduler, giving up after ``connect_timeout``
    seconds with a ``ConnectionError`` naming the address, and waits at most
    ``worker_timeout`` seconds for a worker.
    """
    from distributed import Client

    # keep the job's log readable: distributed logs every worker start and stop at INFO (its
    # loggers' levels are set when it is first imported, just above)
    logging.getLogger("distributed").setLevel(logging.WARNING)
    if scheduler_address is None:
        with (
            local_cluster(threads, processes=processes) as cluster,
            Client(cluster, set_as_default=False) as client,
        ):
            yield client
        return
    try:
        client = Client(scheduler_address, timeout=connect_timeout, set_as_default=False)
    except (OSError, TimeoutError) as err:
        raise ConnectionError(
            f"could not reach the Dask scheduler at {scheduler_address!r} within "
            f"{connect_timeout:g} s ({type(err).__name__}: {err}). Start one with "
            "`dask scheduler` and `dask worker <address>`, or set dask.scheduler_address "
            "to null for a local cluster."
        ) from err
    with client:
        try:
            client.wait_for_workers(1, timeout=worker_timeout)
        except TimeoutError as err:
            raise ConnectionError(
                f"the Dask scheduler at {scheduler_address!r} has no workers after "
                f"{worker_timeout:g} s; start some with `dask worker {scheduler_address}`"
            ) from err
        yield client


def use_processes(backend: str, threads: int, trajectory_steps: int) -> bool:
    """Whether a local cluster should use worker processes rather than threads.

    Measured on 2 cores (``benchmarks/bench_dask_cells.py``): the compiled kernel releases
    the GIL (it is called through ctypes), so threads scale and start in ~0.05 s; the NumPy
    kernel holds the GIL between its many small array operations, so threads give no
    speed-up, while processes halve the compute but cost 1–4 s to start. Processes therefore
    only for the NumPy kernel, with more than one worker, and at least
    :data:`PROCESS_MIN_TRAJECTORY_STEPS` of work.
    """
    return backend == "numpy" and threads > 1 and trajectory_steps >= PROCESS_MIN_TRAJECTORY_STEPS


def _dashboard_link(client: Any, *, local: bool) -> str:
    """The scheduler's dashboard URL (a local cluster binds it to 127.0.0.1 at a free port)."""
    if local:
        try:
            port = client.scheduler_info(n_workers=0)["services"].get("dashboard")
        except Exception:  # the link is informational only
            port = None
        if port:
            return f"http://127.0.0.1:{port}/status"
    return str(client.dashboard_link)


def iter_cell_blocks(
    spec: CellSpec,
    *,
    block_size: int | None = None,
    scheduler_address: str | None = None,
    client: Any = None,
    threads: int = 1,
    processes: bool | None = None,
    connect_timeout: float = CONNECT_TIMEOUT,
    worker_timeout: float = WORKER_TIMEOUT,
    log: logging.Logger | None = None,
) -> Iterator[tuple[int, xr.Dataset]]:
    """Run a cell's trajectory blocks on Dask; yield ``(block index, Dataset)`` as they finish.

    Parameters
    ----------
    spec
        The cell. It is validated completely (model, parameters, every run input) before any
        cluster starts: invalid input raises ``ValueError`` naming the key.
    block_size
        Trajectories per Dask task (default :data:`DEFAULT_BLOCK_SIZE`). Never changes a
        stored number.
    scheduler_address
        ``None``: an in-process (``processes=False``) or local process cluster of ``threads``
        workers. Otherwise the address of a running ``dask scheduler``; an unreachable one
        raises ``ConnectionError`` after ``connect_timeout`` seconds.
    client
        A connected ``distributed.Client`` to run the blocks with, instead of a cluster or a
        connection of the cell's own (not closed here). A script or notebook storing many
        cells reuses one client: connecting costs each cell ~15 ms of wall time and a few
        of CPU. Not together with ``scheduler_address``.
    threads
        Workers of the local cluster (ignored with an external scheduler or a client).
    processes
        Local cluster of worker processes (True) or threads (False). ``None`` decides per
        cell (:func:`use_processes`): threads, unless the GIL-bound NumPy kernel has enough
        work to repay the start-up of worker processes.
    log
        Receives progress: blocks done of total and trajectory-steps per second.

    Yields
    ------
    (int, xarray.Dataset)
        The block's index in trajectory order and its Dataset (trajectories ``first …
        first + count − 1`` of :func:`cq_core.simulate`), with the attrs ``cell_spec`` and
        ``cell_hash``. Blocks arrive in completion order.
    """
    plan = _plan_cell(
        spec, block_size, threads, processes, scheduler_address=scheduler_address, client=client
    )
    spec_json = plan.spec.to_json()
    for index, block in _run_blocks(
        plan,
        _submit_simulations,
        scheduler_address=scheduler_address,
        client=client,
        connect_timeout=connect_timeout,
        worker_timeout=worker_timeout,
        log=log,
    ):
        block.attrs["cell_spec"] = spec_json
        block.attrs["cell_hash"] = plan.spec.config_hash
        yield index, block


@dataclass(frozen=True)
class _CellPlan:
    """A validated cell: its kernel fixed, its blocks, and the local cluster to run them on."""

    spec: CellSpec
    settings: RunSettings
    blocks: list[tuple[int, int]]
    threads: int
    processes: bool


def _plan_cell(
    spec: CellSpec,
    block_size: int | None,
    threads: int,
    processes: bool | None,
    *,
    scheduler_address: str | None = None,
    client: Any = None,
) -> _CellPlan:
    """Check every input of a cell before any work starts; fix its kernel; split it into blocks.

    ``processes=None`` is decided here, once, by :func:`use_processes`.
    """
    settings = spec.check()  # everything is checked before any work starts
    if client is not None and scheduler_address is not None:
        raise ValueError(
            "give either client (a connected distributed.Client) or scheduler_address, "
            f"not both (scheduler_address={scheduler_address!r})"
        )
    spec = replace(spec, backend=settings.backend)  # every block runs the same kernel
    block_size = DEFAULT_BLOCK_SIZE if block_size is None else block_size
    block_size = _positive_int("block_size", block_size)
    threads = _positive_int("threads", threads)
    if processes is None:
        processes = use_processes(spec.backend, threads, settings.n_traj * settings.n_steps)
    blocks = split_blocks(settings.n_traj, block_size)
    return _CellPlan(spec, settings, blocks, threads, bool(processes))


def _run_blocks(
    plan: _CellPlan,
    submit: Callable[[Any, str, list[tuple[int, int]]], list[Any]],
    *,
    scheduler_address: str | None,
    client: Any,
    connect_timeout: float,
    worker_timeout: float,
    log: logging.Logger | None,
    fetch: bool = True,
) -> Iterator[tuple[int, Any]]:
    """Run every block of a cell on Dask; yield ``(block index, result)`` as they finish.

    ``fetch=False``: yield ``None`` for the result of a block that succeeded (a failed
    block's error is raised either way).

    ``submit(client, spec_json, blocks)`` submits the blocks' tasks and returns one future
    per block, in block order. Logs progress; unfinished tasks are cancelled on the way out.
    The options are those of :func:`iter_cell_blocks`.
    """
    log = log or LOGGER
    spec, settings, blocks = plan.spec, plan.settings, plan.blocks
    threads, processes = plan.threads, plan.processes
    steps_per_trajectory = settings.n_steps
    if client is not None:
        where = f"the given client's scheduler {client.scheduler.address}"
    else:
        where = scheduler_address or (
            f"a local {'process' if processes else 'in-process'} cluster of {threads} worker(s)"
        )
    log.info(
        "cell %s: %s, sigma=%r, seed=%d, %d trajectories x %d steps in %d block(s) "
        "(%s kernel) on %s",
        spec.config_hash[:12],
        spec.model,
        spec.sigma,
        spec.seed,
        settings.n_traj,
        steps_per_trajectory,
        len(blocks),
        spec.backend,
        where,
    )
    spec_json = spec.to_json()
    with (
        nullcontext(client)
        if client is not None
        else dask_client(
            scheduler_address,
            threads=threads,
            processes=processes,
            connect_timeout=connect_timeout,
            worker_timeout=worker_timeout,
        )
    ) as client:
        from distributed import as_completed

        if log.isEnabledFor(logging.INFO):  # asking the scheduler costs a round trip
            log.info(
                "Dask dashboard: %s", _dashboard_link(client, local=client.cluster is not None)
            )
        start = time.perf_counter()
        futures: list[Any] = []
        try:
            futures = submit(client, spec_json, blocks)
            position = {future.key: index for index, future in enumerate(futures)}
            done_steps = 0
            for done, future in enumerate(as_completed(futures, loop=client.loop), start=1):
                index = position[future.key]
                # a finished block's result stays on its worker unless asked for: worker-
                # written blocks return only their size, not worth a round trip each
                result = future.result() if fetch or future.status != "finished" else None
                future.release()  # the worker may forget it: memory stays bounded by blocks
                first, count = blocks[index]
                yield index, result
                del result
                done_steps += count * steps_per_trajectory
                elapsed = max(time.perf_counter() - start, 1e-9)
                log.info(
                    "block %d/%d done (trajectories %d-%d); %.3g trajectory-steps/s",
                    done,
                    len(blocks),
                    first,
                    first + count - 1,
                    done_steps / elapsed,
                )
        finally:
            unfinished = [f for f in futures if not f.done()]
            if unfinished:  # a call into the client's event loop otherwise spent for nothing
                client.cancel(unfinished)
            del futures, unfinished


def run_cell(spec: CellSpec, **options: Any) -> xr.Dataset:
    """Run every trajectory of a cell in blocks on Dask; return them as one Dataset (README.md).

    Options are those of :func:`iter_cell_blocks`. Returns the Dataset of
    :func:`cq_core.simulate` for trajectories ``0 … n_traj − 1`` (in memory), bit-identical to
    one ``simulate`` call, with the attrs ``cell_spec`` (JSON of :meth:`CellSpec.resolved`) and
    ``cell_hash`` (its :attr:`CellSpec.config_hash`). For cells larger than memory use
    :func:`run_cell_to_store`, which writes each block as it arrives.
    """
    blocks = sorted(iter_cell_blocks(spec, **options), key=lambda item: item[0])
    return xr.concat(
        [block for _, block in blocks],
        dim="trajectory",
        data_vars="minimal",
        coords="minimal",
        compat="override",
        join="exact",
        combine_attrs="override",
    )


def _submit_simulations(client: Any, spec_json: str, blocks: list[tuple[int, int]]) -> list:
    """One :func:`_simulate_block` task per block."""
    return [
        client.submit(_simulate_block, spec_json, first, count, pure=False)
        for first, count in blocks
    ]
