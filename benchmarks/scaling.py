"""How the cost grows: with trajectories, steps, Hilbert dimension, Dask workers, cell size.

Single-core curves use CPU seconds (least of ``repeats`` runs); the Dask curve uses wall
seconds, since parallelism is exactly what CPU time would hide. Exponents are least-squares
slopes on log–log axes.
"""

from __future__ import annotations

import logging
import statistics
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import Any

from . import memory
from ._util import (
    affine_fit,
    available_cores,
    best_time,
    interleaved,
    load_average,
    loglog_slope,
    timing_summary,
)
from .workloads import SEED_WORKLOAD, Workload, lattice_workload, simulate_task, warm_up

__all__ = [
    "big_cell",
    "dask_sweep",
    "seed_cell_output_mib",
    "versus_dimension",
    "versus_steps",
    "versus_trajectories",
]

DASK_SIGMAS = (0.02, 0.025)
"""σ values of the Dask sweep (2 σ × 4 seeds = 8 cells)."""
DASK_SEEDS = (0, 1, 2, 3)
"""Seeds of the Dask sweep."""
WARM_UP_TIMEOUT_S = 120.0
"""Seconds the plain-process sweep waits for its processes to start and warm up."""


def _seed_like(n_traj: int, n_steps: int) -> Workload:
    """The seed workload's model and σ with another number of trajectories or steps."""
    base = SEED_WORKLOAD
    return Workload(
        model=base.model,
        params=base.params,
        sigma=base.sigma,
        n_traj=n_traj,
        n_steps=n_steps,
        dt=base.dt,
        save_every=base.save_every,
    )


def versus_trajectories(counts: list[int], n_steps: int, repeats: int) -> dict[str, Any]:
    """CPU seconds of the default kernel against the number of trajectories."""
    warm_up(SEED_WORKLOAD)
    seconds = [best_time(simulate_task(_seed_like(n, n_steps)), repeats) for n in counts]
    return {
        "model": SEED_WORKLOAD.model,
        "n_steps": n_steps,
        "n_traj": counts,
        "cpu_s": seconds,
        "slope": loglog_slope(counts, seconds),
        "slope_largest_4": loglog_slope(counts[-4:], seconds[-4:]),
        "affine_fit_s": affine_fit(counts, seconds),
        "affine_fit_meaning": "cpu_s = fixed + per_unit × n_traj (fixed: per-run overhead)",
    }


def versus_steps(counts: list[int], n_traj: int, repeats: int) -> dict[str, Any]:
    """CPU seconds of the default kernel against the number of time steps."""
    warm_up(SEED_WORKLOAD)
    seconds = [best_time(simulate_task(_seed_like(n_traj, n)), repeats) for n in counts]
    return {
        "model": SEED_WORKLOAD.model,
        "n_traj": n_traj,
        "n_steps": counts,
        "cpu_s": seconds,
        "slope": loglog_slope(counts, seconds),
        "slope_largest_4": loglog_slope(counts[-4:], seconds[-4:]),
        "affine_fit_s": affine_fit(counts, seconds),
        "affine_fit_meaning": "cpu_s = fixed + per_unit × n_steps (fixed: per-run and "
        "per-trajectory set-up)",
    }


def versus_dimension(
    sites: list[int],
    *,
    n_steps: int,
    levels_budget: int,
    repeats: int,
    backends: tuple[str, ...] = ("auto", "numpy"),
    fit_from_d: int = 64,
) -> dict[str, Any]:
    """CPU seconds per trajectory-step of ``qubit_lattice`` against d = 2ⁿ, per backend.

    Each run has ``max(4, levels_budget // d)`` trajectories so that every point costs about
    the same. The slope is fitted for d ≥ ``fit_from_d``, where the per-level work dominates
    the fixed per-step cost; a kernel linear in d (or d·log d) gives ~1 (~1.1), one that
    multiplies d×d matrices gives 2.
    """
    result: dict[str, Any] = {
        "model": "qubit_lattice",
        "n": sites,
        "d": [2**n for n in sites],
        "n_steps": n_steps,
        "fit_from_d": fit_from_d,
        "backends": {},
    }
    for backend in backends:
        per_step = []
        for n in sites:
            workload = lattice_workload(n, max(4, levels_budget // 2**n), n_steps, n_steps)
            warm_up(workload, (backend,))
            seconds = best_time(simulate_task(workload, backend), repeats)
            per_step.append(seconds / workload.trajectory_steps)
        fitted = [(d, t) for d, t in zip(result["d"], per_step, strict=True) if d >= fit_from_d]
        name = "default" if backend == "auto" else backend
        result["backends"][name] = {
            "cpu_s_per_trajectory_step": per_step,
            "slope": loglog_slope([d for d, _ in fitted], [t for _, t in fitted])
            if len(fitted) >= 2
            else None,
        }
    return result


def _warm_worker() -> bool:
    """Run on every Dask worker before timing: imports cq_core and runs the seed workload once."""
    warm_up(SEED_WORKLOAD)
    return True


def _worker_cpu(client: Any) -> float:
    """CPU seconds used so far by all worker processes of a cluster (this process if threads)."""
    return float(sum(client.run(time.process_time).values()))


def dask_sweep(
    *, n_traj: int, n_steps: int, block_size: int, repeats: int, kinds: tuple[str, ...]
) -> dict[str, Any]:
    """Wall time of a 2-σ × 4-seed sweep of cells with 1 and 2 Dask workers.

    Each cell goes through :func:`cq_core.cells.run_cell_to_store` (blocks of ``block_size``
    trajectories, written into the cell's Zarr store by the workers, as the pipeline's
    ``run-cell`` does) against a running ``LocalCluster`` of single-threaded workers, in two
    orders: cells one after another through one client (a script driving a sweep), and all
    cells at once (one client per cell, as Snakemake's cell jobs share a scheduler).
    ``kinds`` selects ``"processes"`` (one worker process each) and/or ``"threads"`` (workers
    as threads of this process, the pipeline's in-process default). Removing the stores
    afterwards is not timed. One cluster is up at a time, started afresh for each of the
    ``repeats`` rounds; the 1- and 2-worker clusters alternate. Cluster start-up and worker
    warm-up are not timed. Also reported:
    the same 8 cells run by plain ``simulate`` calls and stored by ``write_cell``, without
    Dask (the overhead yardstick), the cores the workers actually got (``cores_used``: their
    CPU seconds over the sweeps' wall seconds; for threads, this whole process's), and,
    before and after, how many cores two busy processes could get on this machine at that
    moment (:func:`available_cores`: other users' load caps any speed-up). For a process
    cluster, ``speedup_expected_on_2_free_cores`` is the load-independent Amdahl estimate from
    CPU seconds: the workers' share divides over two cores, the driver's (this process:
    scheduler, clients, store layouts) does not. With the process clusters, each round also
    stores the same cells with 1 and 2 plain processes and no Dask at all
    (``plain_processes``, :func:`_plain_summary`): the ratio this machine gives without any
    scheduler, the ceiling of the Dask ratio. Wall seconds, least of ``repeats``; also the
    median over rounds of each round's own 1-over-2 ratio (``median_round_speedup``).
    """
    from distributed import Client

    from cq_core.cells import CellSpec, local_cluster

    base = SEED_WORKLOAD
    specs = [
        CellSpec(
            model=base.model,
            params=base.params,
            sigma=sigma,
            seed=seed,
            n_traj=n_traj,
            t_final=n_steps * base.dt,
            dt=base.dt,
            save_every=base.save_every,
        )
        for sigma in DASK_SIGMAS
        for seed in DASK_SEEDS
    ]
    warm_up(base)

    def serial() -> tempfile.TemporaryDirectory:  # the same cells stored, without Dask
        folder = tempfile.TemporaryDirectory(prefix="cq-serial-sweep-")
        _store_serially(specs, folder.name)
        return folder  # removed once the timer has stopped (interleaved drops the result)

    result: dict[str, Any] = {
        "cells": len(specs),
        "sigmas": list(DASK_SIGMAS),
        "seeds": list(DASK_SEEDS),
        "n_traj_per_cell": n_traj,
        "n_steps": n_steps,
        "block_size": block_size,
        "clock": "wall",
        "no_dask_wall_s": best_time(serial, repeats, clock=time.perf_counter),
        "load_average_before": load_average(),
        "clusters": {},
    }
    result["cores_available_before"] = available_cores()
    plain_walls: dict[str, list[float]] = {"1": [], "2": []}
    plain_cpu: dict[str, list[float]] = {"1": [], "2": []}
    for kind in kinds:
        samples: dict[str, list[float]] = {}
        thread_cpu: dict[tuple[int, bool], list[float]] = {}
        used = {1: 0.0, 2: 0.0}
        # One cluster up at a time (an idle second cluster's scheduler, nannies and workers
        # would take CPU from the one being timed); the 1- and 2-worker clusters alternate
        # round by round, so drifts in load hit both alike. Start-up and warm-up untimed.
        for round_index in range(repeats):
            for workers in (1, 2) if round_index % 2 == 0 else (2, 1):
                with (
                    local_cluster(workers, processes=kind == "processes") as cluster,
                    Client(cluster, set_as_default=False) as client,
                ):
                    client.run(_warm_worker)
                    sweeps = {
                        f"{workers}{'-at-once' if at_once else ''}": partial(
                            _store_cells,
                            specs,
                            address=cluster.scheduler_address,
                            client=None if at_once else client,
                            block_size=block_size,
                            # as run_cell_to_store decides on a local cluster: worker
                            # processes write, in-process workers do not
                            worker_writes=kind == "processes",
                            at_once=at_once,
                            cpu_log=thread_cpu.setdefault((workers, at_once), []),
                        )
                        for at_once in (False, True)
                    }
                    before = _worker_cpu(client)
                    timed = interleaved(sweeps, 1, clock=time.perf_counter)
                    used[workers] += _worker_cpu(client) - before
                for name, entry in timed.items():
                    samples.setdefault(name, []).extend(entry["samples_s"])
                if kind == "processes":  # this round, the same cells with no Dask at all
                    wall, cpu = _plain_processes_sweep(specs, workers)
                    plain_walls[str(workers)].append(wall)
                    plain_cpu[str(workers)].append(cpu)
        times = {name: timing_summary(runs) for name, runs in samples.items()}
        for at_once in (False, True):
            order = "all cells at once" if at_once else "cells one after another, one client"
            suffix = "-at-once" if at_once else ""
            order_times = {str(w): times[f"{w}{suffix}"] for w in (1, 2)}
            cpu = {str(w): thread_cpu[w, at_once] for w in (1, 2)}
            result["clusters"][f"{kind}, {order}"] = _sweep_summary(
                kind, order_times, cpu, used, result["no_dask_wall_s"], len(specs)
            )
    if plain_walls["1"]:
        result["plain_processes"] = _plain_summary(plain_walls, plain_cpu)
    result["cores_available_after"] = available_cores()
    result["load_average_after"] = load_average()
    return result


def _store_serially(specs: list[Any], folder: str) -> float:
    """Store each cell by one ``simulate`` call and ``write_cell``, one after another, no Dask.

    Returns this process's CPU seconds (every thread's, Zarr's codec threads included).
    """
    from cq_core.cells import write_cell

    cpu = time.process_time()
    for spec in specs:
        write_cell(spec.simulate(), Path(folder) / f"{spec.sigma}-{spec.seed}.zarr")
    return time.process_time() - cpu


def _warm_process(ready: Any) -> None:
    """Pool initializer: warm up like a Dask worker, then wait until every process has."""
    warm_up(SEED_WORKLOAD)
    ready.wait(timeout=WARM_UP_TIMEOUT_S)


def _store_cells(
    specs: list[Any],
    *,
    address: str,
    client: Any,
    block_size: int,
    worker_writes: bool,
    at_once: bool,
    cpu_log: list[float],
) -> tempfile.TemporaryDirectory:
    """One sweep: every cell stored by ``run_cell_to_store`` against the scheduler at ``address``.

    ``at_once``: each cell from its own thread, all in flight together, as Snakemake runs cell
    jobs side by side against one scheduler (each job its own client); else one after another
    through ``client``, as a script or notebook driving a sweep does. Appends this process's
    CPU seconds to ``cpu_log``. Returns the folder of the stores: removing them is not part
    of the sweep, so it happens when the caller drops the folder, after its timer stopped.
    """
    from cq_core.cells import run_cell_to_store

    quiet = logging.getLogger("benchmarks.dask")
    quiet.setLevel(logging.WARNING)
    cpu = time.process_time()
    folder = tempfile.TemporaryDirectory(prefix="cq-dask-sweep-")

    def store(spec: Any) -> None:
        run_cell_to_store(
            spec,
            Path(folder.name) / f"sigma={spec.sigma}" / f"seed={spec.seed}.zarr",
            block_size=block_size,
            scheduler_address=None if client is not None else address,
            client=client,
            worker_writes=worker_writes,
            log=quiet,
        )

    if at_once:
        with ThreadPoolExecutor(len(specs)) as pool:
            list(pool.map(store, specs))
    else:
        for spec in specs:
            store(spec)
    cpu_log.append(time.process_time() - cpu)
    return folder


def _sweep_summary(
    kind: str,
    times: dict[str, dict[str, Any]],
    driver_cpu: dict[str, list[float]],
    worker_cpu: dict[int, float],
    no_dask_wall_s: float,
    cells: int,
) -> dict[str, Any]:
    """Speed-up, wall and CPU seconds of one way of running the sweep on 1 and 2 workers.

    ``worker_cpu`` is the workers' CPU over every sweep on that cluster (both orders), so
    the per-sweep worker CPU is their mean. For threads the workers are this process.
    """
    ratios = _two_versus_one(times)
    driver = {w: sum(cpu) / len(cpu) for w, cpu in driver_cpu.items()}
    runs = {w: 2 * len(driver_cpu[w]) for w in driver_cpu}  # both orders ran on each cluster
    if kind == "processes":
        work = {w: worker_cpu[int(w)] / runs[w] for w in driver_cpu}
        # Amdahl from CPU seconds: worker work splits over 2 cores, the driver's does not
        estimate = (work["1"] + driver["1"]) / (work["1"] / 2 + driver["1"])
    else:  # the workers are threads of this process
        work, estimate = dict(driver), None
    return {
        "driver_cpu_s_per_sweep": driver,
        "worker_cpu_s_per_sweep": work,
        "speedup_expected_on_2_free_cores": estimate,
        **ratios,
        "cores_used": {
            w: work[w] * len(times[w]["samples_s"]) / sum(times[w]["samples_s"]) for w in times
        },
        "dask_overhead_1_worker_s_per_cell": (ratios["wall_s"]["1"] - no_dask_wall_s) / cells,
    }


def _two_versus_one(times: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Wall seconds of a sweep run 1- and 2-way (``times``: :func:`timing_summary` of each,
    samples in round order) and the speed-up, both least over least (``speedup_2_vs_1``) and
    as the median of each round's own ratio, its two runs having been next to each other
    (``median_round_speedup``, robust to slow phases of the machine)."""
    rounds = [
        one / two for one, two in zip(times["1"]["samples_s"], times["2"]["samples_s"], strict=True)
    ]
    return {
        "wall_s": {n: entry["min_s"] for n, entry in times.items()},
        "median_wall_s": {n: entry["median_s"] for n, entry in times.items()},
        "speedup_2_vs_1": times["1"]["min_s"] / times["2"]["min_s"],
        "round_speedups": rounds,
        "median_round_speedup": statistics.median(rounds),
    }


def _plain_processes_sweep(specs: list[Any], processes: int) -> tuple[float, float]:
    """The sweep's cells stored by ``processes`` plain processes, no Dask: (wall s, CPU s).

    Each fresh, warmed-up process (spawned; start-up untimed) stores every
    ``processes``-th cell with :func:`_store_serially`; the wall time runs from handing out
    the shares to the last one done, the CPU seconds are the processes' own, every thread's.
    """
    import multiprocessing

    context = multiprocessing.get_context("spawn")
    ready = context.Barrier(processes + 1)
    with context.Pool(processes, initializer=_warm_process, initargs=(ready,)) as pool:
        ready.wait(timeout=WARM_UP_TIMEOUT_S)  # every process is up and warm (or it raises)
        with tempfile.TemporaryDirectory(prefix="cq-process-sweep-") as folder:
            shares = [(specs[first::processes], folder) for first in range(processes)]
            start = time.perf_counter()
            seconds = pool.starmap(_store_serially, shares, chunksize=1)
            wall = time.perf_counter() - start
    return wall, sum(seconds)


def _plain_summary(walls: dict[str, list[float]], cpu: dict[str, list[float]]) -> dict[str, Any]:
    """The sweep's ceiling on this machine: its cells stored by 1 and by 2 plain processes.

    No scheduler, no driver work. What keeps ``speedup_2_vs_1`` below 2 here caps the Dask
    sweep too: one process already keeps more than one core busy (``cores_used``, CPU
    seconds over wall seconds: Zarr compresses and writes a store's chunks on a pool of
    threads), and two processes share the machine's memory system. Ratios as for the Dask
    sweeps (:func:`_two_versus_one`).
    """
    return {
        "what": "the same cells, split over plain processes without Dask (the ceiling)",
        **_two_versus_one({n: timing_summary(runs) for n, runs in walls.items()}),
        "samples_s": walls,
        "cpu_s_per_sweep": {n: sum(runs) / len(runs) for n, runs in cpu.items()},
        "cores_used": {n: sum(cpu[n]) / sum(walls[n]) for n in walls},
    }


def big_cell(
    *, n_traj: int, n_steps: int, block_sizes: list[int], control_n_traj: int | None
) -> dict[str, Any]:
    """Peak resident memory of one big cell run in blocks, for each block size (fresh process).

    The cell is the seed workload's model and σ with ``n_traj`` trajectories, stored only at
    t = 0 and t_final (``save_every = n_steps``), so that the gathered output (which
    :func:`~cq_core.cells.run_cell` returns in memory) stays small and the working memory of
    a block is what is seen. ``control_n_traj``: the largest block size again on a smaller
    cell, to show that the cell size does not set the peak.
    """
    base = SEED_WORKLOAD

    def task(cell_traj: int, block: int) -> dict[str, Any]:
        cell = {
            "model": base.model,
            "params": base.params,
            "sigma": base.sigma,
            "seed": 0,
            "n_traj": cell_traj,
            "t_final": n_steps * base.dt,
            "dt": base.dt,
            "save_every": n_steps,
        }
        report = memory.measure(
            {"kind": "run_cell", "cell": cell, "block_size": block, "threads": 1}
        )
        return {"n_traj": cell_traj, "block_size": block, **report}

    runs = [task(n_traj, block) for block in block_sizes]
    if control_n_traj:
        runs.append(task(control_n_traj, max(block_sizes)))
    return {
        "via": "cq_core.cells.run_cell (in-process Dask cluster, 1 worker)",
        "n_steps": n_steps,
        "save_every": n_steps,
        "runs": runs,
    }


def seed_cell_output_mib(n_traj: int, n_steps: int, save_every: int) -> float:
    """Size (MiB) of the Dataset a ``mass_superposition`` cell returns (6 reals, 2 complex)."""
    saved = n_steps // save_every + 1 + (1 if n_steps % save_every else 0)
    return n_traj * saved * (6 * 8 + 2 * 16) / 2.0**20
