"""The kernel generated from a model's SymPy description: issue 22's workloads × noise floor.

Each workload runs ``simulate(..., save_every=10)`` (dt = 1e-4) with ``backend="generated"``
(its keyed noise drawn inside the kernel; the default path, ``backend="auto"``, of every model
with a C compiler), next to the NumPy reference path, and next to its noise floor, interleaved in
one process. The floor draws the same count of Gaussians with ``standard_normal`` into one
preallocated, already written array (``_util.noise_floor_task``). Ratios are CPU time / floor
time (least of the runs, and the median of paired ratios). Build times are wall seconds of
``load_kernel`` in fresh processes: the first with an empty cache (SymPy, code generation, the
C compiler), the second from the cache.

The built-in models run as ``cq_core.get_model`` gives them (their SymPy description built only
when a kernel is generated); the oscillator of docs/models.md is the user model of
``tests/solver/symbolic_models.py``. ``python -m benchmarks.generated [--quick]`` runs this part
alone and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import textwrap
from typing import Any

import cq_core

from ._util import REPOSITORY, interleaved, noise_floor_task, paired_ratio

SYMBOLIC_HELPERS = REPOSITORY / "tests" / "solver"
WORKLOADS = {
    # name: (model, params, mode, sigma)
    "linear omega=3, pure": ("linear", {"omega": 3.0}, "pure", 1.0),
    "linear omega=3, density": ("linear", {"omega": 3.0}, "density", 1.0),
    "linear, density": ("linear", {}, "density", 1.0),
    "sqrt_potential, pure": ("sqrt_potential", {}, "pure", 1.0),
    "oscillator (docs example), pure": ("oscillator", {}, "pure", 1.0),
    "oscillator (docs example), density": ("oscillator", {}, "density", 1.0),
    "mass_superposition (seed workload), pure": ("mass_superposition", {}, "pure", 0.02),
}


def _model(name: str, params: dict[str, Any]) -> cq_core.Model:
    if name != "oscillator":
        return cq_core.get_model(name, **params)
    if str(SYMBOLIC_HELPERS) not in sys.path:
        sys.path.insert(0, str(SYMBOLIC_HELPERS))
    from symbolic_models import oscillator

    return oscillator(**params)


def throughput(n_traj: int, n_steps: int, rounds: int) -> dict[str, Any]:
    """Every workload: generated and numpy (one run)."""
    rows = {}
    for label, (name, params, mode, sigma) in WORKLOADS.items():
        model = _model(name, params)
        run = dict(sigma=sigma, n_traj=n_traj, t_final=n_steps * 1e-4, dt=1e-4, seed=0)
        run.update(save_every=10, mode=mode)
        backends = ["generated", "numpy"]
        for backend in backends:  # warm up: build or load the kernel before timing
            cq_core.simulate(model, backend=backend, **{**run, "n_traj": 2})
        tasks = {"floor": noise_floor_task(n_steps, n_traj, model.n_noises)}
        for backend in backends:
            tasks[backend] = lambda b=backend, m=model, r=run: cq_core.simulate(m, backend=b, **r)
        times = interleaved(tasks, rounds, max_runs={"numpy": 1})
        floor = times["floor"]
        rows[label] = {
            "n_traj": n_traj,
            "n_steps": n_steps,
            "n_noises": model.n_noises,
            "floor_cpu_s": floor["min_s"],
            **{
                backend: {
                    "cpu_s": times[backend]["min_s"],
                    "ratio_to_floor": times[backend]["min_s"] / floor["min_s"],
                    "paired_ratio_to_floor": paired_ratio(
                        times[backend]["samples_s"], floor["samples_s"]
                    ),
                }
                for backend in backends
            },
        }
    return rows


_BUILD_CHILD = textwrap.dedent(
    """
    import json, sys, time
    import cq_core
    from cq_core.solver.fused import build
    model = cq_core.get_model("linear", omega=3.0)  # its SymPy description built if needed
    start = time.perf_counter()
    build.load_kernel(model, diagonal=False, density={density})
    print(json.dumps({{"wall_s": time.perf_counter() - start, "sympy": "sympy" in sys.modules}}))
    """
)


def build_times() -> dict[str, Any]:
    """First-use and cached ``load_kernel`` times (wall s) of ``linear`` ω=3, fresh processes."""
    rows = {}
    with tempfile.TemporaryDirectory() as cache:
        env = {**os.environ, "CQ_KERNEL_CACHE": cache}
        for mode in ("pure", "density"):
            code = _BUILD_CHILD.format(density=mode == "density")
            runs = []
            for _ in range(2):
                done = subprocess.run(
                    [sys.executable, "-c", code], env=env, capture_output=True, text=True,
                    check=True,
                )  # fmt: skip
                runs.append(json.loads(done.stdout.strip().splitlines()[-1]))
            rows[mode] = {"first_use": runs[0], "cached": runs[1]}
    return rows


def markdown(results: dict[str, Any]) -> str:
    """The throughput table and the build times."""
    lines = [
        "| workload | generated × floor (paired) | numpy × floor |",
        "|---|---|---|",
    ]
    for label, row in results["throughput"].items():
        lines.append(
            f"| {label} | {row['generated']['ratio_to_floor']:.2f} "
            f"({row['generated']['paired_ratio_to_floor']:.2f}) | "
            f"{row['numpy']['ratio_to_floor']:.1f} |"
        )
    for mode, row in results["build"].items():
        lines.append(
            f"\nbuild, linear omega=3 {mode}: first use {row['first_use']['wall_s']:.2f} s, "
            f"from the cache {row['cached']['wall_s']:.3f} s "
            f"(SymPy imported on the cached load: {row['cached']['sympy']})"
        )
    return "\n".join(lines)


def measure(n_traj: int, n_steps: int, rounds: int) -> dict[str, Any]:
    """Throughput of every workload and the build times."""
    return {"throughput": throughput(n_traj, n_steps, rounds), "build": build_times()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.generated", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="500 × 500 steps, one round")
    options = parser.parse_args(argv)
    results = measure(*((500, 500, 1) if options.quick else (2000, 1500, 3)))
    print(markdown(results))
    print(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
