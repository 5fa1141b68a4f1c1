"""Γ against any sweep axis (docs/physics.md, "The decoherence rate Γ (theory line)").

``linear`` has ``Γ = (1+v)·2λ²/σ²``: against ``lam`` a power law of slope 2, against ``sigma``
one of slope −2, against ``phi`` flat. The figure draws the fitted Γ of every grid point with
its SE, the theory where docs/physics.md gives one, and on log–log axes the power-law fit of
:func:`cq_core.analysis.power_laws.rate_power_law` with its slope and SE in the legend.
"""

from __future__ import annotations

import matplotlib as mpl
import numpy as np
import xarray as xr
from matplotlib.figure import Figure

from ..analysis.grid_axes import axis_name, grid_axes, point_label
from ..analysis.power_laws import rate_power_law
from .decoherence import _label_log_ticks
from .limits import MAX_SERIES
from .style import FIGURE_STYLE, RATE_LABEL, axis_label, axis_text, mass_unit, model_title

__all__ = ["MAX_SERIES", "plot_rate_vs_axis"]


def _choose_axis(summary: xr.Dataset, axis: str | None) -> str:
    axes = grid_axes(summary)
    if axis is None:
        if len(axes) > 1:
            raise ValueError(f"axis must be given: the summary has the grid axes {', '.join(axes)}")
        return axes[0] if axes else "sigma"
    if f"{axis}_index" in axes:  # a vector axis by its config name
        axis = f"{axis}_index"
    if axis not in ("sigma", *axes):
        raise ValueError(
            f"axis must be one of the summary's axes {', '.join(('sigma', *axes))}, got {axis!r}"
        )
    return axis


def _positions(summary: xr.Dataset, axis: str) -> tuple[np.ndarray, list[str] | None]:
    """x positions of an axis: its numbers, or 0, 1, … with tick labels (words, vectors)."""
    values = summary[axis].values
    vector = axis_name(axis) != axis and axis_name(axis) in summary.data_vars
    if values.dtype.kind in "fiu" and values.ndim == 1 and not vector:
        return values.astype(float), None
    labels = [
        point_label(summary.isel({axis: i}), (axis,)).split(" = ", 1)[1] for i in range(values.size)
    ]
    return np.arange(values.size, dtype=float), labels


def _series_label(point: xr.Dataset, others: list[str], summary: xr.Dataset) -> str:
    parts = []
    for dim in others:
        value = point[dim].values
        if dim == "sigma" and mass_unit(summary) is not None:
            parts.append(f"sigma = {float(value) / mass_unit(summary):.3g} m")
        else:
            parts.append(point_label(point, (dim,)))
    return ", ".join(parts)


def plot_rate_vs_axis(summary: xr.Dataset, axis: str | None = None) -> Figure:
    """Fitted Γ ± SE against one sweep axis, one series per σ (and per other grid point).

    Parameters
    ----------
    summary
        A summary with ``gamma_fit``, ``gamma_fit_se``, ``gamma_theory`` over ``axis`` and
        ``sigma`` (and any other grid axes).
    axis
        ``sigma`` or a grid axis (``lam``, ``M``, ``phi``, ``dt``, …); default: the one grid
        axis (``sigma`` without one). ``ValueError`` if it is not an axis of the summary, if
        there are several grid axes and none is named, or if the other axes make more than
        :data:`MAX_SERIES` series.

    Returns
    -------
    matplotlib.figure.Figure
        One panel. A positive numeric axis spanning a factor ≥ 2 is drawn log–log with the
        weighted power-law fit per series (legend: ``slope s ± se``, beside the theory's
        slope); any other axis (``phi`` with 0, ``mode``, a vector axis) linear, points
        joined. The theory Γ (``gamma_theory``, dashed; NaN where docs/physics.md gives no
        closed form) in the series' colour. Γ in 1 / model time; gids ``rate-<k>``,
        ``fit-<k>``, ``theory-<k>`` per series k.
    """
    summary = summary.load()
    axis = _choose_axis(summary, axis)
    fits = rate_power_law(summary, axis)
    others = [d for d in summary["gamma_fit"].dims if d != axis]
    indices = list(np.ndindex(*[summary.sizes[d] for d in others]))
    n_series = len(indices)
    if n_series > MAX_SERIES:
        raise ValueError(
            f"plot_rate_vs_axis draws at most {MAX_SERIES} series, the axes "
            f"{', '.join(others)} make {n_series}: select some (summary.sel(...))"
        )
    x, tick_labels = _positions(summary, axis)
    mass = (mass_unit(summary) or 1.0) if axis == "sigma" else 1.0
    x = x / mass
    log_axis = bool(fits.attrs["log_axis"]) and tick_labels is None
    colours = mpl.colormaps["viridis"](np.linspace(0.0, 0.85, n_series))

    with mpl.rc_context(FIGURE_STYLE):
        fig = Figure(figsize=(7.4, 5.6 + 0.2 * n_series), layout="constrained")
        ax = fig.subplots()
        fine = np.geomspace(x.min() / 1.2, x.max() * 1.2, 100) if log_axis else None
        has_theory = False
        for k, index in enumerate(indices):
            where = dict(zip(others, index, strict=True))
            point, fit = summary.isel(where), fits.isel(where)
            colour = colours[k]
            label = _series_label(point, others, summary) if others else "fitted"
            text = f"{label}: fitted $\\Gamma$ ± SE"
            if log_axis and np.isfinite(float(fit["slope"])):
                slope, slope_se = float(fit["slope"]), float(fit["slope_se"])
                text = f"{label}: fit slope {slope:.2f} ± {slope_se:.2f}"
                if np.isfinite(float(fit["theory_slope"])):
                    text += f" (theory {float(fit['theory_slope']):.2f})"
                ax.plot(
                    fine, np.exp(float(fit["intercept"])) * (fine * mass) ** slope, color=colour,
                    alpha=0.7, gid=f"fit-{k}",
                )  # fmt: skip
            rate, rate_se = point["gamma_fit"].values, point["gamma_fit_se"].values
            joined = not log_axis and tick_labels is None  # a numeric axis without a fit
            ax.errorbar(
                x, rate, yerr=rate_se, fmt="o-" if joined else "o", color=colour,
                markersize=5, capsize=3, label=text, gid=f"rate-{k}",
            )  # fmt: skip
            theory = point["gamma_theory"].values
            if np.isfinite(theory).any():
                has_theory = True
                if log_axis and np.isfinite(float(fit["theory_slope"])):
                    curve_x = fine
                    curve = np.exp(float(fit["theory_intercept"])) * (fine * mass) ** float(
                        fit["theory_slope"]
                    )
                else:
                    curve_x, curve = x, theory
                style = {"linestyle": "--", "linewidth": 1.2}
                if tick_labels is not None:  # categories: a dash at each, no line between
                    style = {"linestyle": "none", "marker": "_", "markersize": 22}
                ax.plot(curve_x, curve, color=colour, gid=f"theory-{k}", **style)
        if log_axis:
            ax.plot([], [], color="0.3", alpha=0.7, label="solid: power-law fit per series")
        if has_theory:
            ax.plot(
                [], [], color="0.3", linestyle="--",
                label=r"dashed: theory $\Gamma_{\rm th}$ (docs/physics.md)",
            )  # fmt: skip
        if log_axis:
            ax.set_xscale("log")
            ax.set_yscale("log")
            _label_log_ticks(ax.xaxis, x)
        if tick_labels is not None:
            ax.set_xticks(x, labels=tick_labels)
        ax.set_xlabel(axis_label(axis_name(axis), summary))
        ax.set_ylabel(RATE_LABEL)
        kind = "log–log, power-law fit" if log_axis else "linear axis: no power law fitted"
        ax.set_title(f"each point: Γ fitted to C(t) of one grid point ({kind})", fontsize=9.5)
        fig.legend(loc="outside lower center", fontsize=8.5, ncols=2 if n_series > 2 else 1)
        fig.suptitle(
            f"Decoherence rate against {axis_text(axis_name(axis))}\n" + model_title(summary)
        )
    return fig
