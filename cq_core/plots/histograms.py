"""Seed Fig. 2: the distribution of the conditional ⟨σz⟩ over realisations, moving from the
initial value to ±1, as separate panels (rows: σ; columns: time slices)."""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib as mpl
import numpy as np
import xarray as xr
from matplotlib.figure import Figure

from .. import analysis
from .style import FIGURE_STYLE, SIGMA_Z, model_title, sigma_text

COHERENCE_TARGETS = (0.9, 0.5, 0.2, 0.05)
"""C(t) at the slices shown when a summary holds more slices than panels: from "just started"
(C ≈ 0.9) to "nearly all collapsed" (C ≈ 0.05)."""


def _kept_count(summary: xr.Dataset) -> xr.DataArray:
    flagged = summary["n_flagged"]
    if "n_trajectories" in summary:
        return summary["n_trajectories"] - flagged
    return xr.full_like(flagged, -1)


def _histogram_summary(ds: xr.Dataset, time_slices: Sequence[float] | None, bins: int):
    """``sigma_z_hist``, ``n_flagged``, ``n_trajectories`` computed from trajectories."""
    ds = analysis.as_sweep(ds)
    if time_slices is None:
        time_slices = np.linspace(float(ds["time"][0]), float(ds["time"][-1]), 4)
    summary = xr.Dataset(
        {
            "sigma_z_hist": analysis.sigma_z_histogram(ds, time_slices, bins),
            "n_flagged": analysis.flagged_count(ds),
        },
        attrs=ds.attrs,
    )
    summary["n_trajectories"] = xr.full_like(
        summary["n_flagged"], ds.sizes["seed"] * ds.sizes["trajectory"]
    )
    return summary


def pick_slices(summary: xr.Dataset, sigma: float, panels: int) -> list[int]:
    """Indices of the stored slices to draw for one σ.

    All of them when there are at most ``panels``; otherwise, with the summary's ``coherence``
    C(t), the slice whose C is nearest each of :data:`COHERENCE_TARGETS` (distinct slices, in
    time order), so every σ is shown at the same stages of its collapse; without C(t), slices
    evenly spread over the stored ones.
    """
    times = summary["slice_time"].values if "slice_time" in summary.coords else None
    n = summary.sizes["slice"]
    if n <= panels:
        return list(range(n))
    if times is None or "coherence" not in summary:
        return sorted({int(round(i)) for i in np.linspace(0, n - 1, panels)})
    curve = summary["coherence"].sel(sigma=sigma)
    at_slices = curve.sel(time=xr.DataArray(times, dims="s"), method="nearest").values
    chosen: list[int] = []
    for target in COHERENCE_TARGETS[:panels]:
        order = np.argsort(np.abs(np.log(np.clip(at_slices, 1e-12, None)) - np.log(target)))
        chosen.append(next(int(i) for i in order if int(i) not in chosen))
    return sorted(chosen)


def plot_sigma_z_histograms(
    data: xr.Dataset,
    *,
    time_slices: Sequence[float] | None = None,
    bins: int = 40,
    panels: int = 4,
) -> Figure:
    """Seed Fig. 2: the density of ⟨σz⟩ at time slices, one panel per (σ, slice).

    ``data`` is a summary with ``sigma_z_hist`` (sigma, slice, bin; coordinates
    ``bin_lower``, ``bin_upper`` = bin edges on [−1, 1] and ``slice_time``), ``n_flagged``
    and ``n_trajectories`` (sigma) and optionally ``coherence`` (sigma, time); or
    trajectories (a cell or an :func:`cq_core.open_sweep` Dataset), histogrammed here at
    ``time_slices`` (default: 4 times from 0 to the end) in ``bins`` bins. Rows are σ,
    columns up to ``panels`` slices chosen by :func:`pick_slices`; each panel states its
    time and C(t), each row n (trajectories used) and the number discarded (flagged: 0).
    A summary with grid axes raises ``ValueError``: select one grid point first.
    """
    summary = _histogram_summary(data, time_slices, bins) if "status" in data else data.load()
    extra = [d for d in summary["sigma_z_hist"].dims if d not in ("sigma", "slice", "bin")]
    if extra:
        raise ValueError(
            f"plot_sigma_z_histograms draws one grid point, the summary has the grid axes "
            f"{', '.join(extra)}: select one value of each (e.g. summary.sel({extra[0]}=...))"
        )
    hist = summary["sigma_z_hist"]
    edges = np.append(hist["bin_lower"].values, hist["bin_upper"].values[-1])
    times = hist["slice_time"].values if "slice_time" in hist.coords else hist["slice"].values
    kept, flagged = _kept_count(summary), summary["n_flagged"]
    sigmas = hist["sigma"].values
    chosen = {float(s): pick_slices(summary, s, panels) for s in sigmas}
    columns = max(len(v) for v in chosen.values())
    colours = mpl.colormaps["viridis"](np.linspace(0.0, 0.85, columns))

    with mpl.rc_context(FIGURE_STYLE):
        fig = Figure(figsize=(2.3 * columns + 0.8, 2.3 * len(sigmas) + 1.2), layout="constrained")
        axes = fig.subplots(len(sigmas), columns, sharex=True, squeeze=False)
        for row, sigma in zip(axes, sigmas, strict=True):
            n_used = int(kept.sel(sigma=sigma))
            for j, (ax, index) in enumerate(zip(row, chosen[float(sigma)], strict=False)):
                density = hist.sel(sigma=sigma).isel(slice=index).values
                label = f"$t = {times[index]:g}$"
                ax.stairs(density, edges, color=colours[j], linewidth=1.5, label=label)
                ax.stairs(density, edges, color=colours[j], alpha=0.2, fill=True)
                text = label
                if "coherence" in summary:
                    c = float(
                        summary["coherence"].sel(sigma=sigma, time=times[index], method="nearest")
                    )
                    text += f", $C = {c:.2f}$"
                ax.set_title(text, fontsize=9.5)
                ax.set_xlim(-1.02, 1.02)
                ax.set_ylim(0, None)
            for ax in row[len(chosen[float(sigma)]) :]:
                ax.set_visible(False)
            n_text = f"n = {n_used}" if n_used >= 0 else "n = ?"
            row[0].set_ylabel(
                f"{sigma_text(summary, sigma)}\n{n_text}, discarded = "
                f"{int(flagged.sel(sigma=sigma))}\nprobability density"
            )
        for ax in axes[-1]:
            ax.set_xlabel(SIGMA_Z + "\n" + r"($-1 = |R\rangle$, $+1 = |L\rangle$)")
        fig.suptitle(
            "How the conditional " + SIGMA_Z + " spreads to ±1 (collapse)\n" + model_title(summary)
        )
    return fig
