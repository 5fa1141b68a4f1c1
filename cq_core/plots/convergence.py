"""Weak convergence in the time step: the error of C(t) and of E⟨σz⟩ at one time against dt
(docs/physics.md, "Observed convergence orders"), drawn from
:func:`cq_core.analysis.convergence.weak_order`."""

from __future__ import annotations

import matplotlib as mpl
import numpy as np
import xarray as xr
from matplotlib.figure import Figure

from ..analysis.convergence import weak_order
from ..analysis.grid_axes import grid_axes, point_label
from .decoherence import _label_log_ticks
from .rate_axis import MAX_SERIES
from .style import FIGURE_STYLE, SIGMA_Z, axis_label, model_title

__all__ = ["plot_convergence"]

OBSERVABLE_WORDS = {
    "coherence": r"mean conditional coherence $C(t)$",
    "sigma_z_mean": r"$\mathbb{E}$" + SIGMA_Z,
}


def plot_convergence(summary: xr.Dataset, *, time: float | None = None, axis: str = "dt") -> Figure:
    """|X(dt) − X(dt_min)| ± SE against dt (log–log) for X = C(t) and E⟨σz⟩_t at one time.

    Parameters
    ----------
    summary
        A summary with a ``dt`` grid axis (at least three step sizes): ``coherence``,
        ``sigma_z_mean`` and their SEs (dt, …, sigma, time).
    time
        The fixed time (model units; nearest stored time); default the last stored time.
    axis
        The step-size axis.

    Returns
    -------
    matplotlib.figure.Figure
        Two panels (C, E⟨σz⟩), one series per σ (and per value of any other grid axis, at
        most :data:`cq_core.plots.rate_axis.MAX_SERIES`): the weak error of each coarser
        step against the finest, ±1 SE (open markers: within 2 SE of zero, i.e. noise), the
        fit ``A dt^p`` with the observed weak order ``p ± SE`` in the legend (gid
        ``order-<observable>-<k>``), and a dotted order-1 guide. ``ValueError`` without the
        axis or with too many series.
    """
    summary = summary.load()
    if axis not in grid_axes(summary):
        raise ValueError(
            f"the convergence figure needs a {axis!r} grid axis; the summary's grid axes are "
            f"{list(grid_axes(summary))!r}"
        )
    orders = weak_order(summary, axis=axis, time=time)
    others = [d for d in orders["order"].dims if d != "observable"]
    indices = list(np.ndindex(*[orders.sizes[d] for d in others]))
    if len(indices) > MAX_SERIES:
        raise ValueError(
            f"plot_convergence draws at most {MAX_SERIES} series, the axes {', '.join(others)} "
            f"make {len(indices)}: select some (summary.sel(...))"
        )
    steps = orders[axis].values
    colours = mpl.colormaps["viridis"](np.linspace(0.0, 0.85, len(indices)))
    reference = float(orders.attrs["reference"])
    fine = np.geomspace(max(steps.min() / 1.3, 1.05 * reference), steps.max() * 1.3, 50)

    with mpl.rc_context(FIGURE_STYLE):
        fig = Figure(figsize=(10.0, 4.9), layout="constrained")
        panels = fig.subplots(1, orders.sizes["observable"], squeeze=False)[0]
        for ax, observable in zip(panels, orders["observable"].values, strict=True):
            part = orders.sel(observable=observable)
            floor = np.inf
            for k, index in enumerate(indices):
                where = dict(zip(others, index, strict=True))
                series = part.isel(where)
                error = np.abs(series["error"].transpose(axis).values)
                error_se = series["error_se"].transpose(axis).values
                clear = error > 2.0 * error_se
                label = point_label(series, tuple(others)) if others else ""
                colour = colours[k]
                ax.errorbar(
                    steps, error, yerr=np.minimum(error_se, 0.999 * error), fmt="none",
                    ecolor=colour, capsize=3,
                )  # fmt: skip
                ax.plot(steps[clear], error[clear], "o", color=colour)
                ax.plot(steps[~clear], error[~clear], "o", color=colour, markerfacecolor="white")
                order, order_se = float(series["order"]), float(series["order_se"])
                if not np.isfinite(order):
                    ax.plot([], [], color=colour, label=f"{label}: no weak order resolved")
                else:
                    ax.plot(
                        fine, abs(float(series["amplitude"])) * (fine**order - reference**order),
                        color=colour,
                        gid=f"order-{observable}-{k}",
                        label=(f"{label}: " if label else "")
                        + f"observed weak order {order:.2f} ± {order_se:.2f}",
                    )  # fmt: skip
                positive = error[error > 0]
                if positive.size:
                    floor = min(floor, positive.min())
            if np.isfinite(floor):
                anchor = np.nanmax(np.abs(part["error"].values))
                ax.plot(
                    fine, anchor * fine / steps.max(), color="0.4", linestyle=":",
                    label="order 1 guide",
                )  # fmt: skip
            ax.set_xscale("log")
            ax.set_yscale("log")
            _label_log_ticks(ax.xaxis, steps)
            ax.set_xlabel(axis_label(axis, summary))
            words = OBSERVABLE_WORDS.get(str(observable), str(observable))
            ax.set_ylabel(f"weak error of {words}\n" + r"$|X(\Delta t) - X(\Delta t_{\min})|$")
            ax.set_title(f"{words} at $t = {orders.attrs['time']:g}$", fontsize=10)
            ax.plot([], [], "o", color="0.4", markerfacecolor="white", label="within 2 SE of 0")
            ax.legend(loc="best", fontsize=8)
        fig.suptitle(
            f"Weak convergence in the time step (dt): error against the finest "
            f"dt = {orders.attrs['reference']:g}, ± 1 SE\n" + model_title(summary)
        )
    return fig
