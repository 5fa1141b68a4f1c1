"""What each figure can draw, checked before any job runs (no matplotlib import here).

The workflow calls :func:`check_figure` while it parses the config, so ``snakemake -n``
refuses a figure that cannot draw a sweep's axes (too many rows or series, a histogram of a
grid sweep, a convergence figure without a dt axis); the figures take their limits from here.
"""

from __future__ import annotations

from collections.abc import Mapping

__all__ = [
    "MAX_FACET_ROWS",
    "MAX_SERIES",
    "MAX_TRAJECTORY_ROWS",
    "check_facets",
    "check_figure",
]

MAX_FACET_ROWS = 8
"""Rows of the faceted decoherence figure (one per value of the extra axis) drawn at most."""

MAX_SERIES = 10
"""Series (σ values × values of the other grid axes) one figure draws at most."""

MAX_TRAJECTORY_ROWS = 4
"""Rows (grid values) one faceted trajectory figure draws at most."""


FACET_ROWS = {
    "decoherence": MAX_FACET_ROWS,
    "trajectories": MAX_TRAJECTORY_ROWS,
    "mean_field": MAX_TRAJECTORY_ROWS,
}
"""The faceted figures and the rows (values of their one grid axis) each draws at most."""


def check_facets(name: str, grid: Mapping[str, int], *, many: str = "", too_long: str = "") -> None:
    """Whether faceted figure ``name`` (a key of :data:`FACET_ROWS`) can draw these grid
    axes (``{axis: number of values}``, σ and seeds excluded): one axis at most, with at most
    ``FACET_ROWS[name]`` values. ``ValueError`` otherwise; ``many`` and ``too_long`` end the
    message of either refusal (how a caller holding the data can select)."""
    axes = list(grid)
    if len(axes) > 1:
        raise ValueError(
            f"the {name} figure facets one grid axis, the sweep has {len(axes)}: "
            f"{', '.join(axes)}{many}"
        )
    if axes and grid[axes[0]] > FACET_ROWS[name]:
        raise ValueError(
            f"the {name} figure draws at most {FACET_ROWS[name]} rows, grid axis "
            f"{axes[0]!r} has {grid[axes[0]]} values{too_long}"
        )


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
    if name in FACET_ROWS:
        check_facets(name, {a: axes[a] for a in grid})
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
