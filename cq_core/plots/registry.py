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
from .decoherence import plot_decoherence
from .histograms import plot_sigma_z_histograms
from .limits import check_figure
from .rate_axis import plot_rate_vs_axis

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
