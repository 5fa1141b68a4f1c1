"""The figures drawn from one sweep summary, by the name a sweep lists in
``sweeps.<name>.analysis.figures``.

:func:`summary_figure` is what ``python -m cq_core figure <name> --summary …`` calls: the
workflow's rules name a figure and pass its options, and this module says which function draws
it and which options it takes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import xarray as xr
from matplotlib.figure import Figure

from .convergence import plot_convergence
from .decoherence import MAX_FACET_ROWS, plot_decoherence
from .histograms import plot_sigma_z_histograms
from .rate_axis import MAX_SERIES, plot_rate_vs_axis
from .trajectories import MAX_TRAJECTORY_ROWS

__all__ = ["SUMMARY_FIGURES", "check_figure", "summary_figure"]

SUMMARY_FIGURES: Mapping[str, tuple[Callable[..., Figure], tuple[str, ...]]] = {
    "histograms": (plot_sigma_z_histograms, ()),
    "decoherence": (plot_decoherence, ()),
    "rate_vs_axis": (plot_rate_vs_axis, ("axis",)),
    "convergence": (plot_convergence, ("time", "axis")),
}
"""Figure name → (drawing function, the options it takes)."""


def summary_figure(name: str, summary: xr.Dataset, **options: Any) -> Figure:
    """Draw figure ``name`` of :data:`SUMMARY_FIGURES` from ``summary``.

    ``options`` set to None are left at the figure's default; an unknown name or an option
    the figure does not take raises ``ValueError`` naming the allowed ones.
    """
    if name not in SUMMARY_FIGURES:
        raise ValueError(f"figure must be one of {', '.join(SUMMARY_FIGURES)}, got {name!r}")
    draw, allowed = SUMMARY_FIGURES[name]
    given = {key: value for key, value in options.items() if value is not None}
    unknown = sorted(set(given) - set(allowed))
    if unknown:
        raise ValueError(f"figure {name!r} takes the options {list(allowed)!r}, got {unknown!r}")
    return draw(summary, **given)


def _series(axes: Mapping[str, int], but: str) -> int:
    count = 1
    for name, size in axes.items():
        if name != but:
            count *= size
    return count


def check_figure(name: str, axes: Mapping[str, int], *, axis: str | None = None) -> None:
    """Whether figure ``name`` can draw a sweep with these axes, before any job runs.

    ``axes``: every axis of the sweep with its number of values, ``sigma`` included, grid
    axes by their config names (``{"sigma": 3, "lam": 4}``); ``axis``: the ``rate_vs_axis``
    option. ``ValueError`` saying why not (the caller prefixes the config key). Figures this
    module does not draw (``born``, ``phase_space``, ``tradeoff``) pass.
    """
    grid = [a for a in axes if a != "sigma"]
    if name == "histograms" and grid:
        raise ValueError(f"the histograms figure draws no grid axis; the sweep has {grid}")
    facets = {"decoherence": MAX_FACET_ROWS, "trajectories": MAX_TRAJECTORY_ROWS}
    facets["mean_field"] = MAX_TRAJECTORY_ROWS
    if name in facets:
        if len(grid) > 1:
            raise ValueError(f"the {name} figure facets one grid axis, the sweep has {grid}")
        if grid and axes[grid[0]] > facets[name]:
            raise ValueError(
                f"the {name} figure draws at most {facets[name]} rows, grid axis "
                f"{grid[0]!r} has {axes[grid[0]]} values"
            )
    if name == "rate_vs_axis":
        if axis is None and len(grid) > 1:
            raise ValueError(f"the rate_vs_axis figure needs an axis: the sweep has {grid}")
        chosen = axis or (grid[0] if grid else "sigma")
        if chosen not in axes:
            raise ValueError(f"rate_vs_axis axis must be one of {list(axes)}, got {chosen!r}")
        if _series(axes, chosen) > MAX_SERIES:
            raise ValueError(
                f"the rate_vs_axis figure draws at most {MAX_SERIES} series; the axes other "
                f"than {chosen!r} make {_series(axes, chosen)}"
            )
    if name == "convergence":
        if axes.get("dt", 0) < 3:
            raise ValueError(
                f"the convergence figure needs a dt grid axis with at least three values; "
                f"the sweep has {dict(axes)}"
            )
        if _series(axes, "dt") > MAX_SERIES:
            raise ValueError(
                f"the convergence figure draws at most {MAX_SERIES} series; the axes other "
                f"than 'dt' make {_series(axes, 'dt')}"
            )
