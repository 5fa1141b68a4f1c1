"""A sweep cell: one model, one σ, one seed block of trajectories, run on Dask (README.md).

A *cell* is the unit of work of the pipeline: ``(model, params, σ, seed, base_seed, n_traj,
t_final, dt, save_every, method, mode, excess, backend)``, described by the frozen
:class:`CellSpec`. :func:`run_cell` validates the cell, splits its trajectories into blocks,
runs the blocks on Dask workers with the simulation kernel (:func:`cq_core.simulate`; every
block runs the same resolved backend), gathers them in trajectory order and concatenates
them. :func:`write_cell` stores the result as Zarr atomically: it is
written to a temporary sibling path and moved into place with ``os.replace`` only when
complete, so no reader ever sees half a store.

Reproducibility: trajectory ``i`` of a cell is driven by Brownian increments fixed by
``(base_seed, seed, i)`` (:mod:`cq_core.noise`), so the stored numbers do not depend on the
block size, the number of workers, or whether the workers are local or on an external
scheduler. The Zarr chunking is a function of the cell alone (:func:`store_chunks`), never of
the block size, so the stores are identical byte for byte, not only in value.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import logging
import math
import os
import shutil
import struct
import time
import warnings
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from .models import Model, get_model, params_to_json
from .pipeline.locks import remove_stale_temporaries, write_writer_record
from .pipeline.manifest import cell_identity, write_manifest
from .simulate import Trajectories, _initial_state, _start, simulate, to_dataset
from .validity import RunSettings, check_run
from .version import NUMERICS_VERSION, __version__

__all__ = [
    "CellSpec",
    "DEFAULT_BLOCK_SIZE",
    "LOCAL_WORKER_PROCESS_CONFIG",
    "PROCESS_MIN_TRAJECTORY_STEPS",
    "STORE_TRAJECTORY_CHUNK",
    "dask_client",
    "decode_params",
    "atomic_write_zarr",
    "read_cell_attrs",
    "remove_stale_temporaries",
    "iter_cell_blocks",
    "local_cluster",
    "run_cell",
    "run_cell_to_store",
    "split_blocks",
    "store_chunks",
    "use_processes",
    "write_cell",
]

LOGGER = logging.getLogger(__name__)

STORE_TRAJECTORY_CHUNK = 500
"""Trajectories per Zarr chunk (the store's layout never depends on the Dask block size)."""
STORE_CHUNK_BYTES = 4 * 2**20
"""Target size of one chunk of the largest variable; sets how many time points a chunk holds."""
DEFAULT_BLOCK_SIZE = STORE_TRAJECTORY_CHUNK
"""Trajectories per Dask task by default: one block is then one stored chunk."""
CONNECT_TIMEOUT = 10.0
"""Seconds to wait for an external Dask scheduler before giving up."""
WORKER_TIMEOUT = 60.0
"""Seconds to wait for an external scheduler to have at least one worker."""
PROCESS_MIN_TRAJECTORY_STEPS = 20_000_000
"""Below this much work (~10 s of the NumPy kernel) a process cluster's start-up never pays."""
TEMPORARY_SUFFIX = ".tmp"
"""A store is written to ``<name>.tmp`` beside its final path, then moved into place."""
ZSTD_LEVEL = 1
"""Zstandard level of every stored chunk. Level 1 stores trajectories as small as zstd's
default level 3 (they are 5 % compressible either way) in two thirds of the time."""


def _number(value: Any, kind: type) -> Any:
    """Coerce plain numbers so equal values give equal JSON (``1`` and ``1.0`` for a float).

    Anything else (a bool, a string, None) is left as it is for :func:`check_run` to reject
    with a message naming the key.
    """
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        return value
    if kind is float:
        return float(value)
    if float(value).is_integer():
        return int(value)
    return value


def decode_params(params: Mapping[str, Any]) -> dict[str, Any]:
    """Model parameters from their JSON form (``params_to_json``): complex arrays restored."""

    def decode(value: Any) -> Any:
        if isinstance(value, Mapping) and set(value) == {"real", "imag"}:
            return np.asarray(value["real"]) + 1j * np.asarray(value["imag"])
        return value

    return {key: decode(value) for key, value in params.items()}


@dataclass(frozen=True)
class CellSpec:
    """Everything that fixes the numbers stored for one cell (README.md, "The sweep pipeline").

    Attributes
    ----------
    model, params
        Model name (a built-in name or ``"package.module:function"``) and its keyword
        parameters (JSON-able values; arrays as lists).
    sigma
        Noise strength σ > 0 (model units).
    seed, base_seed
        With the trajectory index they fix every Brownian increment (README.md).
    n_traj
        Trajectories of the cell, indices ``0 … n_traj − 1``.
    t_final, dt, save_every
        Final time and step (model units); every ``save_every``-th step is stored.
    method, mode, excess
        Integrator, state form and decoherence above the minimum ``v`` (docs/physics.md).
    backend
        Kernel: ``"numpy"``, ``"c"`` or ``"numba"`` (the fused kernels: equal to NumPy's
        to rounding, not bit for bit) or ``"auto"``. :meth:`resolved` fixes ``"auto"`` for
        this machine, so that every block of a cell runs the same kernel and the stored spec
        says which.

    Execution settings (block size, threads, scheduler address) are deliberately not part of
    a cell: they never change a stored number.
    """

    model: str
    params: Mapping[str, Any]
    sigma: float
    seed: int
    n_traj: int
    t_final: float
    dt: float
    base_seed: int = 0
    save_every: int = 1
    method: str = "auto"
    mode: str = "pure"
    excess: float = 0.0
    backend: str = "auto"

    def __post_init__(self) -> None:
        params = self.params if self.params is not None else {}
        if not isinstance(params, Mapping):
            raise ValueError(f"params must be a mapping of model parameters, got {params!r}")
        # canonical, JSON-round-tripped copy: arrays become lists, keys are sorted
        object.__setattr__(self, "params", json.loads(params_to_json(params)))
        for name in ("sigma", "t_final", "dt", "excess"):
            object.__setattr__(self, name, _number(getattr(self, name), float))
        for name in ("seed", "base_seed", "n_traj", "save_every"):
            object.__setattr__(self, name, _number(getattr(self, name), int))

    def __hash__(self) -> int:
        return hash(self.config_hash)

    def to_dict(self) -> dict[str, Any]:
        """The cell as a plain dict (the keys of the sweep configuration).

        Equal to ``dataclasses.asdict`` (params a deep copy), ~20× faster: the workflow
        hashes every cell of a sweep while it is parsed.
        """
        data = {name: getattr(self, name) for name in _FIELD_NAMES}
        data["params"] = json.loads(json.dumps(self.params))
        return data

    def to_json(self) -> str:
        """Canonical JSON of the cell: sorted keys, no whitespace (stable across runs)."""
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CellSpec:
        """Build a cell from a mapping; unknown keys raise ``ValueError`` naming them."""
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ValueError(
                f"unknown cell key(s) {', '.join(unknown)}; valid keys: {', '.join(sorted(names))}"
            )
        return cls(**dict(data))

    @classmethod
    def from_json(cls, text: str) -> CellSpec:
        """Inverse of :meth:`to_json`."""
        return cls.from_dict(json.loads(text))

    @property
    def config_hash(self) -> str:
        """sha256 (hex) of the canonical JSON of the cell and the kernel's numerics version.

        Two cells with the same hash store the same numbers; a change of
        :data:`cq_core.NUMERICS_VERSION` changes every hash.
        """
        payload = json.dumps(
            {"cell": self.to_dict(), "numerics_version": NUMERICS_VERSION},
            sort_keys=True,
            separators=(",", ":"),
        )
        return hashlib.sha256(payload.encode()).hexdigest()

    def build_model(self) -> Model:
        """The cell's model (``ValueError`` naming valid models or parameters if invalid)."""
        return get_model(self.model, **decode_params(self.params))

    def _run_kwargs(self, first_trajectory: int, n_traj: int | None) -> dict[str, Any]:
        """The keyword arguments of ``simulate``/``check_run`` for a block of this cell."""
        return dict(
            sigma=self.sigma,
            n_traj=self.n_traj if n_traj is None else n_traj,
            t_final=self.t_final,
            dt=self.dt,
            seed=self.seed,
            base_seed=self.base_seed,
            first_trajectory=first_trajectory,
            save_every=self.save_every,
            method=self.method,
            mode=self.mode,
            excess=self.excess,
            backend=self.backend,
        )

    def check(self, *, first_trajectory: int = 0, n_traj: int | None = None) -> RunSettings:
        """Validate the whole cell with :func:`cq_core.check_run` (``ValueError`` naming the key).

        ``first_trajectory``/``n_traj`` check one block of the cell instead of all of it.
        """
        return check_run(self.build_model(), **self._run_kwargs(first_trajectory, n_traj))

    def resolved(self) -> CellSpec:
        """The cell with ``backend="auto"`` replaced by the kernel it selects here (validated)."""
        return replace(self, backend=self.check(n_traj=1).backend)

    def simulate(self, *, first_trajectory: int = 0, n_traj: int | None = None) -> xr.Dataset:
        """Run trajectories ``first_trajectory … first_trajectory + n_traj − 1`` of the cell."""
        return simulate(self.build_model(), **self._run_kwargs(first_trajectory, n_traj))


_FIELD_NAMES = tuple(f.name for f in fields(CellSpec))


def split_blocks(n_traj: int, block_size: int) -> list[tuple[int, int]]:
    """``(first_trajectory, n_traj)`` of each block, in trajectory order."""
    return [(first, min(block_size, n_traj - first)) for first in range(0, n_traj, block_size)]


def _simulate_block(spec_json: str, first_trajectory: int, n_traj: int) -> xr.Dataset:
    """Dask task: one block of a cell (rebuilds the model in the worker; closures stay local)."""
    return CellSpec.from_json(spec_json).simulate(first_trajectory=first_trajectory, n_traj=n_traj)


def _positive_int(name: str, value: Any) -> int:
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

    Measured on 2 cores (``benchmarks/bench_dask_cells.py``): the fused kernels release the
    GIL (Numba's ``nogil``, ctypes for C), so threads scale and start in ~0.05 s; the NumPy
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


def run_cell_to_store(
    spec: CellSpec,
    path: str | os.PathLike,
    *,
    worker_writes: bool | None = None,
    block_size: int | None = None,
    scheduler_address: str | None = None,
    client: Any = None,
    threads: int = 1,
    processes: bool | None = None,
    connect_timeout: float = CONNECT_TIMEOUT,
    worker_timeout: float = WORKER_TIMEOUT,
    log: logging.Logger | None = None,
) -> Path:
    """Run a cell like :func:`run_cell` and store it at ``path``, one block at a time.

    The store's layout is written first to a temporary sibling path; each block then fills
    its trajectory range (:func:`_write_region`) and is dropped, so memory is bounded by the
    block size, not the cell size; the store is moved into place only when every block is
    in. The bytes on disk equal ``write_cell(run_cell(spec), path)``.

    ``worker_writes``: the Dask workers write their blocks themselves, each block one task
    that simulates and writes it, so nothing but a trajectory count travels back and this
    process does no per-block work (done here, the writes were the serial part of a cell).
    It needs the workers to see ``path`` (a local cluster, or a filesystem they share) and
    blocks that start on the store's trajectory chunks (a multiple of
    :data:`STORE_TRAJECTORY_CHUNK`), so that no two blocks write one chunk; otherwise the
    blocks come back and are written here. ``None`` (default): workers write on a local
    cluster of worker processes; on an in-process cluster (threads, the pipeline's default)
    the blocks are already in this process, and writing them here measured faster (2.9 s
    against 3.5 s for eight seed cells, one thread); an external scheduler or a given
    ``client`` sends them back. Other options are those of :func:`iter_cell_blocks`.
    """
    plan = _plan_cell(
        spec, block_size, threads, processes, scheduler_address=scheduler_address, client=client
    )
    if worker_writes is None:
        worker_writes = scheduler_address is None and client is None and plan.processes
    log = log or LOGGER
    chunk = store_chunks({"trajectory": plan.settings.n_traj, "time": 1}, 1)["trajectory"]
    if worker_writes and not all(first % chunk == 0 for first, _ in plan.blocks):
        log.info("blocks do not start on the store's %d-trajectory chunks: written here", chunk)
        worker_writes = False
    log.info("blocks written into the store by %s", "the workers" if worker_writes else "this job")
    options = dict(
        scheduler_address=scheduler_address,
        client=client,
        connect_timeout=connect_timeout,
        worker_timeout=worker_timeout,
        log=log,
    )
    writers: list[_CellStoreWriter] = []

    def lay_out() -> _CellStoreWriter:
        writers.append(_CellStoreWriter(path, _layout_sample(plan.spec), plan.settings.n_traj))
        return writers[0]

    def submit_and_write(client: Any, spec_json: str, blocks: list[tuple[int, int]]) -> list:
        # the layout takes ~10 ms, so it comes first and each block is then one task that
        # simulates and writes it: half the tasks and round trips of a task for each
        target = str(lay_out().temporary.resolve())
        return [
            client.submit(_simulate_and_write_block, spec_json, first, count, target, pure=False)
            for first, count in blocks
        ]

    try:
        if worker_writes:
            for _ in _run_blocks(plan, submit_and_write, fetch=False, **options):
                pass
        else:
            writer = lay_out()
            for _, block in _run_blocks(plan, _submit_simulations, **options):
                writer.write(block)
                del block
        return writers[0].commit()
    finally:
        for writer in writers:
            writer.discard()


def _submit_simulations(client: Any, spec_json: str, blocks: list[tuple[int, int]]) -> list:
    """One :func:`_simulate_block` task per block."""
    return [
        client.submit(_simulate_block, spec_json, first, count, pure=False)
        for first, count in blocks
    ]


def _write_block(block: xr.Dataset, temporary: str) -> int:
    """Dask task: write a block into its range of the cell's temporary store; return its size."""
    _write_region(Path(temporary), block)
    return block.sizes["trajectory"]


def _simulate_and_write_block(
    spec_json: str, first_trajectory: int, n_traj: int, temporary: str
) -> int:
    """Dask task: run one block of a cell, write it into the cell's temporary store; its size."""
    return _write_block(_simulate_block(spec_json, first_trajectory, n_traj), temporary)


def _layout_sample(spec: CellSpec) -> xr.Dataset:
    """One trajectory's Dataset with the cell's variables, coordinates and attrs, not run.

    The template of the cell's store (values unset): the same structure and attrs a block of
    ``spec`` (resolved) has when it comes back from :func:`iter_cell_blocks`.
    """
    model = spec.build_model()
    settings = spec.check(n_traj=1)
    state = _initial_state(model, settings.mode, 1)
    _, classical, quantum, status, status_step = _start(model, settings, state)
    sample = to_dataset(model, settings, Trajectories(classical, quantum, status, status_step))
    sample.attrs["cell_spec"] = spec.to_json()
    sample.attrs["cell_hash"] = spec.config_hash
    return sample


def store_chunks(sizes: Mapping[str, int], bytes_per_sample: int) -> dict[str, int]:
    """Zarr chunk sizes of a cell: ``{"trajectory": …, "time": …}``.

    A chunk holds up to :data:`STORE_TRAJECTORY_CHUNK` trajectories and as many time points
    as keep the largest variable's chunk near :data:`STORE_CHUNK_BYTES`, so reading one time
    slice across all trajectories touches ``ceil(n_traj / 500)`` small chunks. Depends only
    on the cell's shape, never on the Dask block size.
    """
    n_traj, n_time = int(sizes["trajectory"]), int(sizes["time"])
    trajectory_chunk = max(1, min(n_traj, STORE_TRAJECTORY_CHUNK))
    per_time = max(1, trajectory_chunk * bytes_per_sample)
    time_chunk = max(1, min(n_time, STORE_CHUNK_BYTES // per_time))
    return {"trajectory": trajectory_chunk, "time": time_chunk}


def _bytes_per_sample(var: xr.Variable) -> int:
    """Bytes one (trajectory, time) sample of a variable takes."""
    others = [n for d, n in var.sizes.items() if d not in ("trajectory", "time")]
    return var.dtype.itemsize * math.prod(others)


def _cell_chunks(ds: xr.Dataset) -> dict[str, int]:
    return store_chunks(ds.sizes, chunks_bytes(ds))


def _compressors() -> list[Any]:
    """The compressor of every chunk: Zstandard with its frame checksum.

    The checksum (32 bits of the XXH64 of the decompressed bytes, ending the chunk's frame) makes
    a chunk whose bytes changed on disk fail to decode (``RuntimeError: Zstd decompression
    error: … doesn't match checksum``) instead of decoding to wrong numbers, so that
    :mod:`cq_core.verify` and every reader see the damage. It is recorded in each array's
    ``zarr.json`` and checked on every read.
    """
    from zarr.codecs import ZstdCodec

    return [ZstdCodec(level=ZSTD_LEVEL, checksum=True)]


def _store_encoding(
    ds: xr.Dataset, encoding: Mapping[str, Mapping[str, Any]] | None = None
) -> dict[str, dict[str, Any]]:
    """``encoding`` for every variable of ``ds``, with the checksummed compressor added."""
    encoding = dict(encoding or {})  # a name that is not a variable is left for to_zarr to reject
    for name in ds.variables:
        encoding[name] = {"compressors": _compressors(), **encoding.get(name, {})}
    return encoding


def _cell_encoding(ds: xr.Dataset) -> dict[str, dict[str, Any]]:
    chunks = _cell_chunks(ds)
    return _store_encoding(
        ds,
        {
            name: {"chunks": tuple(chunks.get(d, n) for d, n in var.sizes.items())}
            for name, var in ds.variables.items()
            if var.ndim and var.dtype.kind != "O"
        },
    )


def _temporary_path(path: Path) -> Path:
    return path.with_name(path.name + TEMPORARY_SUFFIX)


def atomic_write_zarr(
    ds: xr.Dataset, path: str | os.PathLike, *, encoding: Mapping[str, Any] | None = None
) -> Path:
    """Write ``ds`` as a Zarr v3 store at ``path`` atomically.

    The store is written to ``<path>.tmp`` (stale temporaries are removed first) and moved
    into place with ``os.replace`` only when complete; an existing store at ``path`` is
    replaced. Its metadata is consolidated (:func:`consolidate`), so that a plain
    ``xarray.open_zarr(path)`` opens it silently and with one read. Every chunk is
    compressed with checksummed Zstandard (:func:`_compressors`) unless ``encoding`` names
    other compressors for a variable.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(path)
    temporary = _temporary_path(path)
    ds.drop_encoding().to_zarr(
        temporary,
        mode="w-",
        encoding=_store_encoding(ds, encoding),
        consolidated=False,
        zarr_format=3,
    )
    consolidate(temporary)
    return _move_into_place(temporary, path)


def consolidate(store: str | os.PathLike) -> None:
    """Consolidate a complete store's metadata into its root ``zarr.json``.

    xarray's ``open_zarr`` reads consolidated metadata first and warns (``RuntimeWarning``)
    when there is none. Consolidated metadata is not yet part of the Zarr 3 specification, so
    Zarr warns when writing it; that warning (ours to know) is silenced here. Called when a
    store is complete, before it is moved into place (its array metadata never changes
    afterwards). The bytes are a function of the store's metadata alone.
    """
    import zarr

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r".*[Cc]onsolidated metadata")
        zarr.consolidate_metadata(str(store), zarr_format=3)


def _move_into_place(temporary: Path, path: Path) -> Path:
    """``os.replace`` a complete store over ``path``; an older store there is moved aside first."""
    if path.exists():
        displaced = path.with_name(path.name + TEMPORARY_SUFFIX + "-replaced")
        os.replace(path, displaced)
        os.replace(temporary, path)
        shutil.rmtree(displaced) if displaced.is_dir() else displaced.unlink()
    else:
        os.replace(temporary, path)
    return path


def _store_ready(ds: xr.Dataset) -> xr.Dataset:
    """String coordinates as ``object`` dtype and the version attrs every store records."""
    ds = ds.copy()
    for name, coord in ds.coords.items():
        if coord.dtype.kind in "UT":
            ds = ds.assign_coords({name: coord.astype(object)})
    ds.attrs.setdefault("cq_core_version", __version__)
    ds.attrs.setdefault("numerics_version", NUMERICS_VERSION)
    return ds


def _store_identity(sample: xr.Dataset) -> dict[str, Any] | None:
    """The manifest identity of a cell's store (None for a Dataset that records no cell)."""
    cell_hash = sample.attrs.get("cell_hash")
    if cell_hash is None or "sigma" not in sample.coords or "seed" not in sample.coords:
        return None
    return cell_identity(
        cell_hash=cell_hash, sigma=float(sample["sigma"]), seed=int(sample["seed"])
    )


class _CellStoreWriter:
    """A cell store filled block by block in a temporary sibling path, then moved in place.

    The layout (shapes, chunks, coordinates, attrs) is written first from one block and the
    cell's trajectory count; each block then fills its trajectory range (a Zarr region
    write). Chunks are whole along every dimension but (trajectory, time), so a block that
    does not start on a chunk boundary only completes chunks another block began: the final
    bytes do not depend on the order or size of the blocks.
    """

    def __init__(self, path: str | os.PathLike, sample: xr.Dataset, n_traj: int) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        remove_stale_temporaries(self.path)  # only those whose writer is gone
        self.temporary = _temporary_path(self.path)
        self.record = write_writer_record(self.path)
        sample = _store_ready(sample)
        self.identity = _store_identity(sample)
        layout = _direct_layout(sample, n_traj)
        if layout is None:  # something only xarray's encoding knows how to store
            _xarray_layout(self.temporary, sample, n_traj)
        else:
            _create_store(self.temporary, *layout)

    def write(self, block: xr.Dataset) -> None:
        """Fill the block's trajectory range (trajectories must be consecutive)."""
        _write_region(self.temporary, block)

    def commit(self) -> Path:
        """Consolidate the complete store's metadata, move it into place (replacing an older
        one) and return its path."""
        consolidate(self.temporary)
        if self.identity is not None:  # a cell: seal every byte before it is visible
            write_manifest(self.temporary, identity=self.identity)
        moved = _move_into_place(self.temporary, self.path)
        self.record.unlink(missing_ok=True)
        return moved

    def discard(self) -> None:
        """Remove the temporary store if it was not committed, and the writer's record."""
        if self.temporary.exists():
            shutil.rmtree(self.temporary)
        self.record.unlink(missing_ok=True)


def _layout_coords(sample: xr.Dataset, n_traj: int) -> dict[str, xr.Variable]:
    """The stored coordinates of a cell: the sample's, but ``trajectory`` spans the whole cell.

    Coordinates along ``trajectory`` other than ``trajectory`` itself are not stored.
    """
    coords = {
        str(name): coord.variable
        for name, coord in sample.coords.items()
        if "trajectory" not in coord.dims
    }
    coords["trajectory"] = xr.Variable("trajectory", np.arange(n_traj, dtype=np.int64))
    return coords


def _xarray_layout(temporary: Path, sample: xr.Dataset, n_traj: int) -> None:
    """Lay a cell store out with xarray: data variables as lazy zeros, so no chunk is written.

    The reference of :func:`_direct_layout` (same bytes), and its fallback for a sample whose
    variables need CF encoding (~50 ms per cell: the Dask graph and one Zarr call per step).
    """
    import dask.array as da

    sizes = {**sample.sizes, "trajectory": n_traj}
    template = xr.Dataset(coords=_layout_coords(sample, n_traj), attrs=sample.attrs)
    chunks = store_chunks(sizes, chunks_bytes(sample))
    for name, var in sample.data_vars.items():
        shape = tuple(sizes[d] for d in var.dims)
        var_chunks = tuple(chunks.get(d, sizes[d]) for d in var.dims)
        template[name] = (var.dims, da.zeros(shape, dtype=var.dtype, chunks=var_chunks), var.attrs)
    template.to_zarr(
        temporary,
        mode="w-",
        compute=False,
        encoding=_cell_encoding(template),
        consolidated=False,
        zarr_format=3,
    )


NAN_FILL_VALUE = base64.standard_b64encode(struct.pack("<d", math.nan)).decode()
"""The ``_FillValue`` attribute xarray gives a float64 variable (NaN, as base64 of its bytes)."""
_TIME_UNITS = frozenset(
    {"days", "hours", "minutes", "seconds", "milliseconds", "microseconds", "nanoseconds"}
)
_CF_ATTRS = frozenset(
    {"_FillValue", "missing_value", "scale_factor", "add_offset", "calendar", "dtype",
     "_Unsigned", "coordinates"}
)  # fmt: skip
"""Attributes through which CF encoding could change a variable's values or metadata."""
_PLAIN_DTYPES = frozenset(
    np.dtype(name)
    for name in ("float64", "complex128", "int8", "int16", "int32", "int64", "uint8", "uint16",
                 "uint32", "uint64", "object")
)  # fmt: skip
"""Dtypes that xarray hands to Zarr unconverted (``object``: strings, coordinates only)."""


@dataclass(frozen=True)
class _StoreArray:
    """One array of a cell store's layout, with the arguments xarray's ``to_zarr`` gives Zarr."""

    name: str
    dims: tuple[str, ...]
    shape: tuple[int, ...]
    dtype: Any  # a NumPy dtype, or ``str`` for variable-length strings
    chunks: tuple[int, ...] | str  # "auto": Zarr's choice (xarray's for strings and scalars)
    fill_value: Any  # None: Zarr's default for the dtype
    attributes: dict[str, Any]
    values: np.ndarray | None  # written with the layout (coordinates); None: by the blocks


def _attr_value(value: Any) -> Any:
    """An attribute value as xarray hands it to Zarr (arrays as lists, NumPy scalars as Python)."""
    if isinstance(value, np.ndarray):
        return value.tolist()
    return value.item() if isinstance(value, np.generic) else value


def _plain_dtype(dtype: Any) -> bool:
    """Whether Zarr stores this dtype as it is (xarray encodes bools, dates and others)."""
    return dtype in _PLAIN_DTYPES


def _cf_neutral(attrs: Mapping[Any, Any], dtype: np.dtype, *, stored: bool) -> bool:
    """Whether xarray's CF encoding leaves a variable with these attrs and dtype as it is.

    Then xarray hands the values to Zarr unchanged and only adds the attributes
    :func:`_store_array` adds. ``stored``: attrs read back from a store, which may hold the
    ``coordinates`` and (float64) NaN ``_FillValue`` attributes that xarray writes itself.
    """
    if not _plain_dtype(dtype):
        return False
    own = {"coordinates", "_FillValue"} if stored else set()
    if any(not isinstance(key, str) or key in _CF_ATTRS - own for key in attrs):
        return False
    if "_FillValue" in attrs and (dtype.kind != "f" or attrs["_FillValue"] != NAN_FILL_VALUE):
        return False
    units = attrs.get("units")  # time units make xarray encode (or decode) dates and durations
    return not isinstance(units, str) or ("since" not in units and units not in _TIME_UNITS)


def _plain_layout(
    attrs: Mapping[Any, Any], coords: Mapping[str, xr.Variable], data: Mapping[str, xr.Variable]
) -> bool:
    """Whether :func:`_direct_layout` reproduces xarray's layout of these variables.

    That is: no variable needs CF encoding (:func:`_cf_neutral`), string coordinates hold only
    ``str``, data variables are numeric, and every non-dimension coordinate is named in some
    data variable's ``coordinates`` attribute (else xarray adds a global one).
    """
    if "coordinates" in attrs or not all(isinstance(key, str) for key in attrs):
        return False
    if set(coords) & set(data):
        return False
    for name, var in {**coords, **data}.items():
        if not _cf_neutral(var.attrs, var.dtype, stored=False):
            return False
        if var.dtype.kind == "O" and (
            name in data or not all(isinstance(v, str) for v in var.values.ravel())
        ):
            return False
    if any(var.encoding for var in coords.values()):  # data variables are made afresh
        return False
    for name, coord in coords.items():
        if coord.dims != (name,) and (
            " " in name or not any(set(coord.dims) <= set(v.dims) for v in data.values())
        ):
            return False
    return True


def _store_array(
    name: str,
    var: xr.Variable,
    shape: tuple[int, ...],
    chunks: Mapping[str, int],
    linked: list[str],
    values: np.ndarray | None,
) -> _StoreArray:
    """One array as xarray creates it: its ``coordinates``, float ``_FillValue``, chunks."""
    strings = var.dtype.kind == "O"
    attributes = {key: _attr_value(value) for key, value in var.attrs.items()}
    if linked:
        attributes["coordinates"] = " ".join(sorted(linked))
    fill_value = None  # Zarr's default (0, "", 0j), as xarray leaves it but for floats
    if var.dtype.kind == "f":
        fill_value = math.nan
        attributes["_FillValue"] = NAN_FILL_VALUE
    return _StoreArray(
        name=name,
        dims=tuple(str(d) for d in var.dims),
        shape=shape,
        dtype=str if strings else var.dtype,
        chunks="auto"
        if strings or not shape
        else tuple(chunks.get(d, n) for d, n in zip(var.dims, shape, strict=True)),
        fill_value=fill_value,
        attributes=attributes,
        values=values,
    )


def _direct_layout(
    sample: xr.Dataset, n_traj: int
) -> tuple[dict[str, Any], list[_StoreArray]] | None:
    """The group attributes and arrays :func:`_xarray_layout` would write, without xarray.

    ``None`` when the sample needs CF encoding (:func:`_plain_layout`); then xarray lays
    the store out. A cell's Dataset from :func:`cq_core.simulate` never does.
    """
    coords = _layout_coords(sample, n_traj)
    data = {str(name): var.variable for name, var in sample.data_vars.items()}
    if not _plain_layout(sample.attrs, coords, data):
        return None
    sizes = {**sample.sizes, "trajectory": n_traj}
    chunks = store_chunks(sizes, chunks_bytes(sample))
    extra = {name: var for name, var in coords.items() if var.dims != (name,)}
    arrays = [
        _store_array(name, var, var.shape, chunks, [], var.values) for name, var in coords.items()
    ]
    for name, var in data.items():
        linked = [c for c, coord in extra.items() if set(coord.dims) <= set(var.dims)]
        shape = tuple(sizes[d] for d in var.dims)
        arrays.append(_store_array(name, var, shape, chunks, linked, None))
    return {key: _attr_value(value) for key, value in sample.attrs.items()}, arrays


def _create_store(temporary: Path, attributes: dict[str, Any], arrays: list[_StoreArray]) -> None:
    """Write a store's layout with Zarr into memory, in one event-loop call, then to disk.

    Much cheaper than ``to_zarr(compute=False)`` (no Dask graph, no Zarr round trip per
    array, attribute update and file) and, for the arguments of :func:`_direct_layout`, the
    same bytes (``tests/test_store_writes.py``): Zarr encodes every file as it would for a
    directory store; only the ~20 small files are then written here, without its threads.
    """
    import zarr.api.asynchronous as zarr_async
    from zarr.core.sync import sync
    from zarr.storage import MemoryStore

    files: dict[str, Any] = {}

    async def create() -> None:
        group = await zarr_async.open_group(
            store=MemoryStore(files), mode="w-", zarr_format=3, attributes=attributes
        )
        created = await asyncio.gather(
            *(
                group.create_array(
                    a.name,
                    shape=a.shape,
                    dtype=a.dtype,
                    chunks=a.chunks,
                    fill_value=a.fill_value,
                    compressors=_compressors(),
                    dimension_names=a.dims,
                    attributes=a.attributes,
                    config={},
                )
                for a in arrays
            )
        )
        await asyncio.gather(
            *(
                array.setitem(tuple(slice(None) for _ in a.shape), a.values)
                for array, a in zip(created, arrays, strict=True)
                if a.values is not None
            )
        )

    sync(create())
    temporary.mkdir()  # like to_zarr's mode "w-": fails if anything is there
    for key, buffer in sorted(files.items()):
        path = temporary / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(buffer.to_bytes())


def _write_region(store: Path, block: xr.Dataset) -> None:
    """Write a block of consecutive trajectories into its range of a laid-out cell store.

    Straight into the Zarr arrays where that gives xarray's bytes (:func:`_write_arrays`),
    else with xarray's region write.
    """
    first = int(block.trajectory[0])
    count = block.sizes["trajectory"]
    if not np.array_equal(block.trajectory.values, np.arange(first, first + count)):
        raise ValueError("a block's trajectories must be consecutive")
    region_vars = [n for n, v in block.data_vars.items() if "trajectory" in v.dims]
    if _write_arrays(store, block, region_vars, first, count):
        return
    block[region_vars].drop_vars(
        [n for n in block.coords if n != "trajectory"]
    ).drop_encoding().to_zarr(
        store,
        region={"trajectory": slice(first, first + count)},
        consolidated=False,
        zarr_format=3,
    )


def _write_arrays(store: Path, block: xr.Dataset, names: list[str], first: int, count: int) -> bool:
    """Assign the block's variables to their trajectory range of the store's Zarr arrays.

    xarray's region write re-opens the store, decodes every array's metadata and encodes
    each variable with it (~6 ms of a block's ~23 ms write). When every array's dims and dtype
    are the block's and its attributes ask for no CF encoding (:func:`_cf_neutral`), that
    encoding hands Zarr the values unchanged, so writing them directly gives the same bytes.
    The ``trajectory`` coordinate is not rewritten: the layout holds these very values.
    Returns False, having written nothing, when xarray must write the block instead.
    """
    import zarr.api.asynchronous as zarr_async
    from zarr.core.sync import sync

    variables = [block[name].variable for name in names]
    if not all(_plain_dtype(v.dtype) and v.dtype.kind != "O" for v in variables):
        return False

    async def open_arrays() -> list[Any]:
        return await asyncio.gather(
            *(
                zarr_async.open_array(store=str(store), path=name, mode="r+", zarr_format=3)
                for name in names
            )
        )

    arrays = sync(open_arrays())
    for array, var in zip(arrays, variables, strict=True):
        metadata = array.metadata
        if (
            tuple(metadata.dimension_names or ()) != var.dims
            or array.dtype != var.dtype
            or not _cf_neutral(metadata.attributes, var.dtype, stored=True)
        ):
            return False

    async def write() -> None:  # every array at once, on Zarr's event loop
        await asyncio.gather(
            *(
                array.setitem(
                    tuple(
                        slice(first, first + count) if d == "trajectory" else slice(None)
                        for d in var.dims
                    ),
                    var.values,
                )
                for array, var in zip(arrays, variables, strict=True)
            )
        )

    sync(write())
    return True


def chunks_bytes(ds: xr.Dataset) -> int:
    """Bytes of one (trajectory, time) sample of the largest sampled variable."""
    sampled = [v for v in ds.data_vars.values() if {"trajectory", "time"} <= set(v.dims)]
    return max((_bytes_per_sample(v) for v in sampled), default=8)


def write_cell(ds: xr.Dataset, path: str | os.PathLike) -> Path:
    """Store a cell's Dataset (from :func:`run_cell`) as Zarr at ``path``, atomically.

    Chunks: :func:`store_chunks` over (trajectory, time), whole along the other dimensions;
    string coordinates stay ``object`` dtype. The attrs keep ``cell_spec``, ``cell_hash``,
    ``cq_core_version`` and ``numerics_version``. The same Dataset always gives the same
    bytes on disk, equal to :func:`run_cell_to_store`'s.
    """
    writer = _CellStoreWriter(path, ds, ds.sizes["trajectory"])
    try:
        writer.write(ds.compute() if any(v.chunks for v in ds.variables.values()) else ds)
        return writer.commit()
    finally:
        writer.discard()


def read_cell_attrs(path: str | os.PathLike) -> dict[str, Any]:
    """The attributes of a stored cell, read from its ``zarr.json`` without opening arrays."""
    metadata = Path(path) / "zarr.json"
    with metadata.open() as handle:
        return dict(json.load(handle).get("attributes", {}))
