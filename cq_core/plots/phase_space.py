"""Figures of the master-equation solution beside a trajectory ensemble (docs/physics.md,
"The master equation on phase space"): panels of ϱ_LL, ϱ_RR and |ϱ_LR| on (q, p) at the
solution's times, and the marginal comparison. They draw what the solver and
:mod:`cq_core.analysis.phase_space` computed; they compute nothing themselves.
"""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib as mpl
import numpy as np
import xarray as xr
from matplotlib.figure import Figure

from .style import FIGURE_STYLE

__all__ = ["plot_phase_space", "plot_marginals", "COORD_LABELS"]

COORD_LABELS = {"q": "position $q$ (model units)", "p": "momentum $p$ (model units)"}
"""Axis labels of the phase-space coordinates."""
SOLUTION_STYLE = {"linewidth": 1.6}
LEVEL_COLOURS = ("tab:blue", "tab:orange", "tab:green", "tab:red")


def _element_label(levels: Sequence[str], i: int, j: int) -> str:
    """``ϱ_LL`` for a diagonal element, ``|ϱ_LR|`` for a coherence (mathtext)."""
    name = rf"\varrho_{{{levels[i]}{levels[j]}}}"
    return f"${name}$" if i == j else f"$|{name}|$"


def plot_phase_space(
    solution: xr.Dataset, estimate: xr.Dataset | None = None, *, title: str | None = None
) -> Figure:
    """ϱ_aa, ϱ_bb and |ϱ_ab| on (q, p) for the basis pair (a, b), one row each.

    Columns: the solution's times after 0; with an ``estimate`` (the ensemble's, from
    :func:`cq_core.analysis.phase_space.bin_ensemble`, on the same grid) each time has two
    columns, the master equation's solution and the trajectories' estimate beside it, drawn
    on one colour scale (0 to the solution's maximum of that element at that time; density
    per unit q·p area). Returns the matplotlib Figure.
    """
    a, b = solution.attrs.get("basis_pair", [0, solution.sizes["ket"] - 1])
    levels = [str(level) for level in solution["ket"].values]
    times = solution["time"].values[1:]
    sources = [("master equation", solution)]
    if estimate is not None:
        n_traj = estimate.attrs.get("n_traj")
        sources.append((f"trajectories (N = {n_traj})" if n_traj else "trajectories", estimate))
    elements = [(a, a), (b, b), (a, b)]
    extent = [*solution["q_edge"].values[[0, -1]], *solution["p_edge"].values[[0, -1]]]
    # a fixed grid (panels, colour bar, gap per time) instead of a layout engine: drawing
    # 20-odd axes with constrained layout costs seconds per file
    ratios = []
    for _ in times:
        ratios += [1.0] * len(sources) + [0.07, 0.4]
    ratios = ratios[:-1]
    width, height = 1.2 + 1.95 * sum(ratios), 1.2 + 1.9 * len(elements)
    with mpl.rc_context({**FIGURE_STYLE, "axes.grid": False}):
        fig = Figure(figsize=(width, height))
        spec = fig.add_gridspec(
            len(elements),
            len(ratios),
            width_ratios=ratios,
            left=1.05 / width,
            right=1 - 0.5 / width,
            bottom=0.6 / height,
            top=1 - 0.75 / height,
            wspace=0.06,
            hspace=0.12,
        )
        first = None
        for r, (i, j) in enumerate(elements):
            for c, t in enumerate(times):
                column = c * (len(sources) + 2)
                vmax = float(np.abs(solution["rho"].isel(ket=i, bra=j).sel(time=t)).max())
                for k, (source, state) in enumerate(sources):
                    ax = fig.add_subplot(spec[r, column + k], sharex=first, sharey=first)
                    first = first or ax
                    values = np.abs(state["rho"].isel(ket=i, bra=j).sel(time=t).values)
                    image = ax.imshow(
                        values.T,
                        origin="lower",
                        extent=extent,
                        aspect="auto",
                        vmin=0.0,
                        vmax=vmax or 1.0,
                        cmap="magma",
                        interpolation="nearest",
                    )
                    if r == 0:
                        ax.set_title(f"t = {t:.3g}\n{source}", fontsize="small")
                    if r == len(elements) - 1:
                        ax.set_xlabel(COORD_LABELS["q"], fontsize="small")
                    else:
                        ax.tick_params(labelbottom=False)
                    if c == 0 and k == 0:
                        ax.set_ylabel(COORD_LABELS["p"], fontsize="small")
                        ax.annotate(
                            _element_label(levels, i, j),
                            xy=(-0.42, 0.5),
                            xycoords="axes fraction",
                            rotation=90,
                            ha="center",
                            va="center",
                            fontsize="x-large",
                        )
                    else:
                        ax.tick_params(labelleft=False)
                colour_bar = fig.colorbar(
                    image, cax=fig.add_subplot(spec[r, column + len(sources)])
                )
                colour_bar.ax.tick_params(labelsize="x-small")
        if title:
            fig.suptitle(title, y=1 - 0.2 / height)
    return fig


def plot_marginals(
    comparison: xr.Dataset, axis: str | Sequence[str] = "p", *, title: str | None = None
) -> Figure:
    """Marginals of each diagonal element along ``axis`` (``"q"``, ``"p"`` or both, one row
    each): the mass ``∫_B ϱ_aa`` per bin B of the solution as a line, the ensemble's with ±2
    standard-error bars (a Dataset of :func:`cq_core.analysis.phase_space.compare_marginals`);
    one column per time after 0. Returns the matplotlib Figure."""
    keys = [axis] if isinstance(axis, str) else list(axis)
    for key in keys:
        if key not in COORD_LABELS:
            raise ValueError(f"axis must be 'q' or 'p' (or both), got {key!r}")
    times = comparison["time"].values[1:]
    levels = [str(level) for level in comparison["level"].values]
    with mpl.rc_context(FIGURE_STYLE):
        width, height = 1.0 + 3.0 * len(times), 1.0 + 2.6 * len(keys)
        fig = Figure(figsize=(width, height))
        fig.subplots_adjust(
            left=0.8 / width,
            right=1 - 0.15 / width,
            bottom=0.55 / height,
            top=1 - 0.6 / height,
            wspace=0.12,
            hspace=0.4,
        )
        axes = fig.subplots(len(keys), len(times), squeeze=False, sharey="row")
        for r, key in enumerate(keys):
            centres = comparison[f"{key}_bin"].values
            for c, t in enumerate(times):
                ax = axes[r, c]
                for k, level in enumerate(comparison["level"].values):
                    sel = dict(time=t, level=level)
                    colour = LEVEL_COLOURS[k % len(LEVEL_COLOURS)]
                    element = _element_label(levels, k, k)
                    ax.plot(
                        centres,
                        comparison[f"{key}_solution"].sel(sel),
                        color=colour,
                        label=f"{element} master equation",
                        **SOLUTION_STYLE,
                    )
                    ax.errorbar(
                        centres,
                        comparison[f"{key}_estimate"].sel(sel),
                        yerr=2 * comparison[f"{key}_se"].sel(sel),
                        fmt="o",
                        markersize=3,
                        color=colour,
                        alpha=0.8,
                        label=f"{element} trajectories ±2 SE",
                    )
                if r == 0:
                    ax.set_title(f"t = {t:.3g}")
                ax.set_xlabel(COORD_LABELS[key])
            axes[r, 0].set_ylabel("probability per bin")
        # the last time's panel: the spread-out marginals leave its top free (shared y axis)
        axes[0, -1].legend(fontsize="x-small", loc="upper right")
        if title:
            fig.suptitle(title, y=1 - 0.15 / height)
    return fig
