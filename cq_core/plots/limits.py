"""What each figure can draw, checked before any job runs (no matplotlib import here).

The workflow calls :func:`check_figure` while it parses the config, so ``snakemake -n``
refuses a figure that cannot draw a sweep's axes (too many rows or series, a histogram of a
grid sweep, a convergence figure without a dt axis); the figures take their limits from here.
"""

from __future__ import annotations

from collections.abc import Mapping

__all__ = ["MAX_FACET_ROWS", "MAX_SERIES", "MAX_TRAJECTORY_ROWS", "check_figure"]

MAX_FACET_ROWS = 8
"""Rows of the faceted decoherence figure (one per value of the extra axis) drawn at most."""

MAX_SERIES = 10
"""Series (σ values × values of the other grid axes) one figure draws at most."""

MAX_TRAJECTORY_ROWS = 4
"""Rows (grid values) one faceted trajectory figure draws at most."""


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
