"""Throughput on one core, each next to its noise floor measured in the same run.

*Seed workload*: ``mass_superposition``, 2000 trajectories × 1500 steps, dt = 1e-4,
σ = 0.02, ``save_every=10`` (issue 8). *Noise floor*: the time NumPy takes to draw the same
Gaussian numbers, ``default_rng().standard_normal`` into a preallocated (n_steps, n_traj,
n_noises) array already written once (no page faults in the timing). Every
ratio below is (time of the thing) / (time of the floor), both CPU seconds of this process:
``ratio_to_floor`` divides the least of several interleaved runs of each, and
``paired_ratio_to_floor`` is the median over rounds of the ratio of runs adjacent in time.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

import cq_core
from cq_core.solver.integrate import NOISE_CHUNK_STEPS
from cq_core.solver.noise import BrownianIncrements

from ._util import interleaved, noise_floor_task, paired_ratio


@dataclass(frozen=True)
class Workload:
    """One ``simulate`` workload (times in model units)."""

    model: str
    params: dict[str, Any]
    sigma: float
    n_traj: int
    n_steps: int
    dt: float
    save_every: int
    seed: int = 0

    @property
    def trajectory_steps(self) -> int:
        """Trajectories × steps."""
        return self.n_traj * self.n_steps

    def build(self) -> cq_core.Model:
        """The model object."""
        return cq_core.get_model(self.model, **self.params)

    def run_keywords(self, backend: str = "auto") -> dict[str, Any]:
        """Keyword arguments of :func:`cq_core.simulate` (JSON-able)."""
        return {
            "sigma": self.sigma,
            "n_traj": self.n_traj,
            "t_final": self.n_steps * self.dt,
            "dt": self.dt,
            "seed": self.seed,
            "save_every": self.save_every,
            "backend": backend,
        }

    def cell_dict(self) -> dict[str, Any]:
        """The workload as a pipeline cell (:class:`cq_core.cells.CellSpec` keys)."""
        run = self.run_keywords()
        return {"model": self.model, "params": self.params, **run}

    def describe(self) -> dict[str, Any]:
        """The workload as a JSON-able dict."""
        return {
            "model": self.model,
            "params": self.params,
            "sigma": self.sigma,
            "n_traj": self.n_traj,
            "n_steps": self.n_steps,
            "dt": self.dt,
            "save_every": self.save_every,
            "trajectory_steps": self.trajectory_steps,
        }


SEED_WORKLOAD = Workload(
    model="mass_superposition",
    params={},
    sigma=0.02,
    n_traj=2000,
    n_steps=1500,
    dt=1e-4,
    save_every=10,
)
"""The workload named in issue 8."""


def simulate_task(workload: Workload, backend: str = "auto") -> Callable[[], Any]:
    """A no-argument callable running ``simulate`` on ``workload`` (model built once)."""
    model = workload.build()
    keywords = workload.run_keywords(backend)

    def run() -> Any:
        return cq_core.simulate(model, **keywords)

    return run


def warm_up(workload: Workload, backends: tuple[str, ...] = ("auto",)) -> None:
    """One tiny run per backend: kernels are built or loaded from the cache before timing."""
    model = workload.build()
    for backend in backends:
        cq_core.simulate(
            model,
            sigma=workload.sigma,
            n_traj=4,
            t_final=4 * workload.dt,
            dt=workload.dt,
            seed=0,
            save_every=2,
            backend=backend,
        )


def keyed_noise_task(workload: Workload, n_noises: int) -> Callable[[], None]:
    """Draw the run's keyed increments exactly as the engine does, and nothing else.

    One :class:`~cq_core.noise.BrownianIncrements` (a seeded generator per trajectory), drawn
    in chunks of ``NOISE_CHUNK_STEPS`` steps and laid out (trajectory, step, noise).
    """

    def draw() -> None:
        increments = BrownianIncrements(
            base_seed=0,
            seed=workload.seed,
            first_trajectory=0,
            n_traj=workload.n_traj,
            n_noises=n_noises,
            dt=workload.dt,
        )
        done = 0
        while done < workload.n_steps:
            chunk = min(NOISE_CHUNK_STEPS, workload.n_steps - done)
            np.ascontiguousarray(increments.draw(chunk).transpose(1, 0, 2))
            done += chunk

    return draw


def generator_setup_task(workload: Workload, n_noises: int) -> Callable[[], object]:
    """Only the set-up of the keyed noise: one seeded generator per trajectory, no draws."""

    def build() -> object:
        return BrownianIncrements(
            base_seed=0,
            seed=workload.seed,
            first_trajectory=0,
            n_traj=workload.n_traj,
            n_noises=n_noises,
            dt=workload.dt,
        )

    return build


def kernel_task(workload: Workload, backend: str = "auto") -> Callable[[], Any]:
    """``cq_core.integrate`` fed pre-drawn increments: the kernel without the noise draw.

    The increments are the run's own (same keys, same chunks), drawn once beforehand and
    handed out chunk by chunk without copying.
    """
    model = workload.build()
    settings = cq_core.check_run(model, **workload.run_keywords(backend))
    source = BrownianIncrements(
        base_seed=0,
        seed=workload.seed,
        first_trajectory=0,
        n_traj=workload.n_traj,
        n_noises=model.n_noises,
        dt=workload.dt,
    )
    chunks = []
    done = 0
    while done < workload.n_steps:
        size = min(NOISE_CHUNK_STEPS, workload.n_steps - done)
        chunks.append(np.ascontiguousarray(source.draw(size).transpose(1, 0, 2)))
        done += size

    def run() -> Any:
        queue = iter(chunks)

        def increments(n_steps: int) -> np.ndarray:
            chunk = next(queue)
            assert chunk.shape[1] == n_steps
            return chunk.transpose(1, 0, 2)  # the engine's (step, trajectory, noise) view

        return cq_core.integrate(model, settings, increments=increments)

    return run


def seed_workload(rounds: int, numpy_runs: int) -> dict[str, Any]:
    """Seed workload: every backend, the keyed noise alone, the kernel alone and the floor.

    ``backends`` holds ``default`` (``backend="auto"``: the generated kernel where a C
    compiler is found; its ``backend`` key says which ran) and ``numpy``. ``rounds``
    interleaved rounds (the numpy backend, ~5× slower, runs ``numpy_runs`` times).
    Returns CPU seconds (least of the runs), trajectory-steps per second and every ratio to
    the floor.
    """
    workload = SEED_WORKLOAD
    model = workload.build()
    warm_up(workload, ("auto", "numpy"))
    n_noises = model.n_noises
    tasks = {
        "floor": noise_floor_task(workload.n_steps, workload.n_traj, n_noises),
        "default": simulate_task(workload, "auto"),
        "keyed_noise": keyed_noise_task(workload, n_noises),
        "generator_setup": generator_setup_task(workload, n_noises),
        "kernel": kernel_task(workload, "auto"),
        "numpy": simulate_task(workload, "numpy"),
    }
    times = interleaved(tasks, rounds, max_runs={"numpy": numpy_runs})
    floor = times["floor"]["min_s"]
    steps = workload.trajectory_steps

    def entry(name: str) -> dict[str, Any]:
        seconds = times[name]["min_s"]
        return {
            "cpu_s": seconds,
            "median_cpu_s": times[name]["median_s"],
            "runs": times[name]["runs"],
            "trajectory_steps_per_s": steps / seconds,
            "ratio_to_floor": seconds / floor,
            "paired_ratio_to_floor": paired_ratio(
                times[name]["samples_s"], times["floor"]["samples_s"]
            ),
            "samples_cpu_s": times[name]["samples_s"],
        }

    resolved = cq_core.check_run(model, **workload.run_keywords()).backend
    default = {"backend": resolved, **entry("default")}
    return {
        "workload": workload.describe(),
        "n_noises": n_noises,
        "normals": steps * n_noises,
        "floor": {
            "what": f"default_rng().standard_normal(({workload.n_steps}, {workload.n_traj}, "
            f"{n_noises}))",
            **entry("floor"),
        },
        "backends": {
            "default": default,
            "numpy": entry("numpy"),
        },
        "split": {
            "keyed_noise": entry("keyed_noise"),
            "keyed_noise_generator_setup": {
                "what": "BrownianIncrements(...) alone: SeedSequence + SFC64 + Generator per "
                "trajectory (included in keyed_noise)",
                **entry("generator_setup"),
            },
            "kernel": entry("kernel"),
            "rest": {
                "what": "default total − keyed noise − kernel (validation, generator set-up "
                "overlap, Dataset labelling)",
                "cpu_s": default["cpu_s"]
                - times["keyed_noise"]["min_s"]
                - times["kernel"]["min_s"],
            },
        },
    }


def lattice_workload(n: int, n_traj: int, n_steps: int, save_every: int) -> Workload:
    """``qubit_lattice`` with ``n`` sites at its SPEC defaults (σ = 1, dt = 5e-6)."""
    return Workload(
        model="qubit_lattice",
        params={"n": n},
        sigma=1.0,
        n_traj=n_traj,
        n_steps=n_steps,
        dt=5e-6,
        save_every=save_every,
    )


def lattice(workloads: list[Workload], rounds: int) -> list[dict[str, Any]]:
    """Throughput of ``qubit_lattice`` runs, each against the floor for its own normals."""
    rows = []
    for workload in workloads:
        model = workload.build()
        warm_up(workload)
        tasks = {
            "floor": noise_floor_task(workload.n_steps, workload.n_traj, model.n_noises),
            "default": simulate_task(workload, "auto"),
        }
        times = interleaved(tasks, rounds)
        seconds, floor = times["default"]["min_s"], times["floor"]["min_s"]
        rows.append(
            {
                "n": workload.params["n"],
                "d": model.dim,
                "workload": workload.describe(),
                "cpu_s": seconds,
                "floor_cpu_s": floor,
                "trajectory_steps_per_s": workload.trajectory_steps / seconds,
                "ratio_to_floor": seconds / floor,
                "paired_ratio_to_floor": paired_ratio(
                    times["default"]["samples_s"], times["floor"]["samples_s"]
                ),
                "cpu_s_per_trajectory_step_per_level": seconds
                / workload.trajectory_steps
                / model.dim,
            }
        )
    return rows
