"""Cost and grid convergence of the CQ master-equation solver (docs/physics.md, "The master
equation on phase space").

``python -m benchmarks.master_equation [--quick]`` prints two Markdown tables:

* cost: CPU seconds (``time.process_time``, one core) of :func:`cq_core.solve_master_equation`
  for a qubit (``linear``) to t = 1 on N × N grids, the number of time steps, and the cost
  per cell and step; the CFL step shrinks like 1/N, so the total grows like N³;
* convergence: observables of the same problem on a fixed (q, p) box at growing N, their
  differences from the finest grid, and the observed order ``log2(e(N/2)/e(N))``.
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np

import cq_core
from cq_core.solver import PhaseSpaceGrid, phase_space_grid

__all__ = ["PROBLEM", "cost", "convergence", "main"]

PROBLEM = dict(
    model=dict(lam=0.8, phi=0.5, m=0.6, p0=0.5, q0=-0.2, psi0=[0.8, 0.6]),
    run=dict(sigma=1.2, t_final=1.0, n_times=3),
)
"""The benchmark problem: ``linear`` (ω = 0), not the defaults, to t = 1."""


def _model():
    return cq_core.get_model("linear", **PROBLEM["model"])


def _box(n: int) -> PhaseSpaceGrid:
    base = phase_space_grid(_model(), sigma=1.2, t_final=1.0, shape=(16, 16))
    return PhaseSpaceGrid(
        np.linspace(base.q_edges[0], base.q_edges[-1], n + 1),
        np.linspace(base.p_edges[0], base.p_edges[-1], n + 1),
    )


def cost(sizes=(64, 128, 256)) -> list[dict]:
    """CPU seconds of one solve per grid size N (the grid is given: no pilot run)."""
    model = _model()
    cq_core.solve_master_equation(model, grid=_box(16), **PROBLEM["run"])  # compile once
    rows = []
    for n in sizes:
        grid = _box(n)
        start = time.process_time()
        solution = cq_core.solve_master_equation(model, grid=grid, **PROBLEM["run"])
        seconds = time.process_time() - start
        steps = round(PROBLEM["run"]["t_final"] / solution.attrs["dt"])
        rows.append(
            dict(n=n, cpu_s=seconds, steps=steps, ns_per_cell_step=1e9 * seconds / (n * n * steps))
        )
    return rows


def _observables(solution) -> dict[str, float]:
    """At t_final: ⟨q⟩ and Var q of ϱ_LL, ⟨σy⟩ and ∫|ϱ_LR|."""
    rho = solution["rho"].isel(time=-1).values
    q = solution["q"].values
    dq = float(np.diff(solution["q_edge"])[0])
    dp = float(np.diff(solution["p_edge"])[0])
    density = rho[..., 0, 0].real.sum(axis=1) * dp
    mass = density.sum() * dq
    mean = (density * q).sum() * dq / mass
    return {
        "mean_q_LL": mean,
        "var_q_LL": (density * (q - mean) ** 2).sum() * dq / mass,
        "sigma_y": float(-2 * rho[..., 0, 1].imag.sum() * dq * dp),
        "coherence": float(np.abs(rho[..., 0, 1]).sum() * dq * dp),
    }


def convergence(sizes=(32, 64, 128, 256)) -> list[dict]:
    """Observables per grid size and their differences from the finest grid."""
    model = _model()
    values = {
        n: _observables(cq_core.solve_master_equation(model, grid=_box(n), **PROBLEM["run"]))
        for n in sizes
    }
    finest = values[sizes[-1]]
    rows = []
    for n in sizes[:-1]:
        rows.append({"n": n, **{k: abs(v - finest[k]) for k, v in values[n].items()}})
    return rows, finest


def measure(quick: bool = False) -> dict:
    """Cost rows and convergence rows (``--quick``: smaller grids)."""
    sizes = (32, 64, 128) if quick else (64, 128, 256)
    conv_sizes = (16, 32, 64) if quick else (32, 64, 128, 256)
    rows, finest = convergence(conv_sizes)
    return {
        "problem": PROBLEM,
        "cost": cost(sizes),
        "convergence": {"sizes": list(conv_sizes), "rows": rows, "finest": finest},
    }


def markdown(result: dict) -> str:
    """Both tables of :func:`measure` and the observed orders, as Markdown."""
    lines = ["| N | CPU s | steps | ns per cell·step |", "|---|---|---|---|"]
    for row in result["cost"]:
        lines.append(
            f"| {row['n']} | {row['cpu_s']:.2f} | {row['steps']} | {row['ns_per_cell_step']:.0f} |"
        )
    finest, rows = result["convergence"]["finest"], result["convergence"]["rows"]
    keys = list(finest)
    lines.append(
        f"\nfinest N = {result['convergence']['sizes'][-1]}: "
        + ", ".join(f"{k} = {finest[k]:.5f}" for k in keys)
        + "\n"
    )
    lines.append("| N | " + " | ".join(f"Δ {k}" for k in keys) + " |")
    lines.append("|---|" + "---|" * len(keys))
    for row in rows:
        lines.append(f"| {row['n']} | " + " | ".join(f"{row[k]:.2e}" for k in keys) + " |")
    for a, b in zip(rows[:-1], rows[1:], strict=True):
        orders = [math.log2(a[k] / b[k]) if a[k] > 0 and b[k] > 0 else float("nan") for k in keys]
        lines.append(f"\norder {a['n']}→{b['n']}: " + ", ".join(f"{o:.2f}" for o in orders))
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller grids (a smoke run)")
    args = parser.parse_args()
    print(markdown(measure(args.quick)))


if __name__ == "__main__":
    main()
