"""Figures of the master-equation solution beside a trajectory ensemble (docs/physics.md,
"The master equation on phase space"): panels of ϱ_LL, ϱ_RR and |ϱ_LR| on (q, p) at the
solution's times, and the marginal comparison. They draw what the solver and
:mod:`cq_core.analysis.phase_space` computed; they compute nothing themselves.
"""

from __future__ import annotations

import numpy as np
import xarray as xr
from matplotlib.figure import Figure

__all__ = ["plot_phase_space", "plot_marginals"]


def plot_phase_space(solution: xr.Dataset, estimate: xr.Dataset | None = None) -> Figure:
    """Rows: ϱ_aa, ϱ_bb, |ϱ_ab| of the basis pair (a, b) (and the ensemble's estimate of each,
    from :func:`cq_core.analysis.phase_space.bin_ensemble`, on the rows below); columns: the
    solution's times after 0. Returns the matplotlib Figure."""
    a, b = solution.attrs.get("basis_pair", [0, solution.sizes["ket"] - 1])
    times = solution["time"].values[1:]
    sources = [("solution", solution)]
    if estimate is not None:
        sources.append(("trajectories", estimate))
    rows = [(src, f"ϱ_{k}{k}", k, k) for src in sources for k in (a, b)]
    rows += [(src, f"|ϱ_{a}{b}|", a, b) for src in sources]
    fig = Figure(figsize=(2.6 * len(times), 2.2 * len(rows)))
    axes = fig.subplots(len(rows), len(times), squeeze=False)
    extent = [
        *solution["q_edge"].values[[0, -1]],
        *solution["p_edge"].values[[0, -1]],
    ]
    for r, ((label, state), name, i, j) in enumerate(rows):
        values = np.abs(state["rho"].isel(ket=i, bra=j).values)  # (time, q, p)
        vmax = float(values[1:].max()) or 1.0
        for c, _ in enumerate(times):
            ax = axes[r, c]
            ax.imshow(values[c + 1].T, origin="lower", extent=extent, aspect="auto", vmax=vmax)
            if r == 0:
                ax.set_title(f"t = {times[c]:.3g}")
            if c == 0:
                ax.set_ylabel(f"{name} ({label})\np")
            if r == len(rows) - 1:
                ax.set_xlabel("q")
    fig.tight_layout()
    return fig


def plot_marginals(comparison: xr.Dataset, axis: str = "p") -> Figure:
    """The ``axis`` marginal of each diagonal element: the solution as a line, the ensemble
    with ±2 standard-error bars (a Dataset of
    :func:`cq_core.analysis.phase_space.compare_marginals`); one panel per time after 0."""
    times = comparison["time"].values[1:]
    fig = Figure(figsize=(3.2 * len(times), 2.8))
    axes = fig.subplots(1, len(times), squeeze=False)
    centres = comparison[f"{axis}_bin"].values
    for c, t in enumerate(times):
        ax = axes[0, c]
        for level in comparison["level"].values:
            sel = dict(time=t, level=level)
            ax.plot(centres, comparison[f"{axis}_solution"].sel(sel), label=f"{level} solution")
            ax.errorbar(
                centres,
                comparison[f"{axis}_estimate"].sel(sel),
                yerr=2 * comparison[f"{axis}_se"].sel(sel),
                fmt=".",
                label=f"{level} trajectories",
            )
        ax.set_title(f"t = {t:.3g}")
        ax.set_xlabel(axis)
    axes[0, 0].set_ylabel("mass per bin")
    axes[0, 0].legend(fontsize="small")
    fig.tight_layout()
    return fig
