"""The decoherence–diffusion trade-off Γ·D2 ≥ |Δf|²/16 (docs/physics.md, "Trade-off"): as
measured, and in its universal form Γ·D2/|Δf|², where every model and σ meets one bound."""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib as mpl
import numpy as np
import xarray as xr
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from ..analysis.grid_axes import grid_points, point_attrs
from ..analysis.theory import force_gap_squared
from .style import FIGURE_STYLE, RATE_LABEL

__all__ = ["force_gap_squared", "plot_tradeoff"]  # force_gap_squared: moved to analysis

GROUP_COLOURS = (
    "tab:blue", "tab:red", "tab:green", "tab:purple", "tab:orange", "tab:brown", "tab:pink",
    "tab:olive", "tab:cyan", "tab:gray",
)  # fmt: skip
MARKERS = ("o", "s", "D", "^", "v")
FORBIDDEN = {"color": "0.55", "alpha": 0.25, "linewidth": 0}
"""The one style of the forbidden region: the shading and its legend swatch are the same."""


def _sweep_label(summary: xr.Dataset, point: str = "") -> str:
    """``linear (pure ψ)``, or ``linear (pure ψ), lam = 0.5`` at a grid point."""
    attrs = point_attrs(summary)
    name = attrs.get("sweep") or attrs.get("model", "run")
    mode = attrs.get("mode", "pure")
    excess = float(attrs.get("excess", 0.0))
    state = r"pure $\psi$" if mode == "pure" else rf"$\rho$, $v = {excess:g}$"
    return f"{name} ({state})" + (f", {point}" if point else "")


def _points(ax, summary, x, y, y_se, colour, marker, pure, label) -> None:
    """Markers, then error bars above them (small bars must not hide behind markers)."""
    face = colour if pure else "white"
    ax.plot(x, y, marker, color=colour, markerfacecolor=face, markersize=6, zorder=3, label=label)
    ax.errorbar(x, y, yerr=y_se, fmt="none", ecolor="black", elinewidth=1.0, capsize=3, zorder=4)


def plot_tradeoff(summaries: Sequence[xr.Dataset] | xr.Dataset) -> Figure:
    """Measured Γ against ``D2 = σ²/2``, and ``Γ·D2/|Δf|²`` against D2.

    Each summary needs ``gamma_fit``, ``gamma_fit_se`` (sigma) and the attrs ``model``,
    ``model_params``, ``basis_pair``, ``mode``, ``excess`` (``sweep`` for the legend).
    Left: for each distinct |Δf|² (:func:`force_gap_squared`, at z0) the bound
    ``Γ = |Δf|²/(16 D2)`` as a solid line across the whole axis (``gid="bound-<model>"``),
    the region below every bound shaded grey (forbidden: not completely positive).
    Right, the universal form: ``Γ·D2/|Δf|²`` (dimensionless) against D2, where the bound is
    the one horizontal line 1/16 (``gid="bound-universal"``), pure-state runs lie on it and
    runs with excess v at ``(1+v)/16`` (dotted). Filled markers: pure states; open: density
    matrices. Log–log left, log–linear right; D2 in model units (momentum²/time), Γ in
    1/time. A summary with grid axes (variables (lam, sigma)) gives one series per grid
    point, labelled ``lam = 0.5``, each with the |Δf|² and v of its point.
    """
    if isinstance(summaries, xr.Dataset):
        summaries = [summaries]
    # one series per grid point of each summary (lam = 0.5, …): its own |Δf|², v and label
    summaries = [point for s in summaries for point in grid_points(s.load())]
    gaps: dict[tuple[str, float], list[tuple[str, xr.Dataset]]] = {}
    for label, summary in summaries:
        key = (summary.attrs.get("model", "model"), round(force_gap_squared(summary), 12))
        gaps.setdefault(key, []).append((label, summary))

    with mpl.rc_context(FIGURE_STYLE):
        fig = Figure(figsize=(11.0, 5.4), layout="constrained")
        ax, ax_u = fig.subplots(1, 2, width_ratios=(1.15, 1.0))
        all_d2 = np.concatenate([0.5 * s["sigma"].values ** 2 for _, s in summaries])
        all_gamma = np.concatenate([s["gamma_fit"].values for _, s in summaries])
        line_x = np.geomspace(all_d2.min() / 2.5, all_d2.max() * 2.5, 100)
        ylim = (np.nanmin(all_gamma) / 6.0, np.nanmax(all_gamma) * 4.0)
        lowest = np.min([gap for _, gap in gaps], axis=0) / (16.0 * line_x)
        ax.fill_between(line_x, ylim[0], np.minimum(lowest, ylim[1]), **FORBIDDEN)
        ax_u.axhspan(0.0, 1.0 / 16.0, **FORBIDDEN)
        ax_u.axhline(1.0 / 16.0, color="black", linewidth=2.0, gid="bound-universal")
        excesses: set[float] = set()
        n_marker = 0
        for g, ((model, gap), members) in enumerate(gaps.items()):
            colour = GROUP_COLOURS[g % len(GROUP_COLOURS)]
            bound = gap / (16.0 * line_x)
            ax.plot(
                line_x, bound, color=colour, linewidth=2.0, gid=f"bound-{model}",
                label=rf"{model}: bound $|\Delta f|^2/(16 D_2)$, $|\Delta f|^2 = {gap:.3g}$",
            )  # fmt: skip
            for point, summary in members:
                attrs = point_attrs(summary)
                excess = float(attrs.get("excess", 0.0))
                pure = attrs.get("mode") == "pure" or excess == 0.0
                marker = MARKERS[n_marker % len(MARKERS)]
                n_marker += 1
                d2 = 0.5 * summary["sigma"].values ** 2
                gamma, gamma_se = summary["gamma_fit"].values, summary["gamma_fit_se"].values
                label = f"measured: {_sweep_label(summary, point)}"
                _points(ax, summary, d2, gamma, gamma_se, colour, marker, pure, label)
                _points(
                    ax_u,
                    summary,
                    d2,
                    gamma * d2 / gap,
                    gamma_se * d2 / gap,
                    colour,
                    marker,
                    pure,
                    None,
                )
                if excess > 0:
                    excesses.add(excess)
                    ax.plot(
                        line_x, (1.0 + excess) * bound, color=colour, linestyle=":",
                        label=rf"expected $(1+v)|\Delta f|^2/(16 D_2)$, $v = {excess:g}$",
                    )  # fmt: skip
        for excess in sorted(excesses):
            ax_u.axhline((1.0 + excess) / 16.0, color="0.3", linestyle=":", linewidth=1.2)
            ax_u.annotate(
                f"$(1+v)/16$, $v = {excess:g}$", (line_x[0], (1.0 + excess) / 16.0),
                xytext=(4, 3), textcoords="offset points", fontsize=8.5,
            )  # fmt: skip
        ax.set_xlim(line_x[0], line_x[-1])
        ax.set_ylim(*ylim)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel(r"classical diffusion $D_2 = \sigma^2/2$ (model units)")
        ax.set_ylabel(RATE_LABEL)
        ax.set_title("as measured: one bound per model")
        ax_u.set_xscale("log")
        ax_u.set_xlim(line_x[0], line_x[-1])
        top = max(1.0 + max(excesses, default=0.0), 1.5) / 16.0
        ax_u.set_ylim(0.0, 1.35 * top)
        ax_u.set_xlabel(r"classical diffusion $D_2 = \sigma^2/2$ (model units)")
        ax_u.set_ylabel(r"$\Gamma \cdot D_2 \,/\, |\Delta f|^2$ (dimensionless)")
        ax_u.set_title(r"universal form: every model on the bound $1/16$")
        handles, labels = ax.get_legend_handles_labels()
        handles.append(Patch(**FORBIDDEN, label=""))
        labels.append(r"forbidden: $\Gamma D_2 < |\Delta f|^2/16$ (not completely positive)")
        fig.legend(handles, labels, loc="outside lower center", ncols=2, fontsize=8.5)
        names = ", ".join(dict.fromkeys(model for model, _ in gaps))
        fig.suptitle(
            r"Decoherence–diffusion trade-off $\Gamma \cdot D_2 \geq |\Delta f|^2/16$"
            f"\n{names}; |Δf| at the initial classical point"
        )
    return fig
