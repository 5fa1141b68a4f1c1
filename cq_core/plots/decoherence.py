"""Decoherence: the mean conditional coherence C(t) per σ and the fitted rate Γ(σ), faceted
by a grid axis when the sweep has one."""

from __future__ import annotations

import matplotlib as mpl
import numpy as np
import xarray as xr
from matplotlib.colors import LogNorm, Normalize
from matplotlib.figure import Figure
from matplotlib.ticker import NullFormatter

from ..analysis.checks import SWEEP_ALPHA, check_statistics, gamma_z
from ..analysis.grid_axes import axis_name, grid_axes, grid_points, point_attrs
from ..analysis.power_laws import power_law_fit
from .limits import check_facets
from .style import (
    FIGURE_STYLE,
    RATE_LABEL,
    TIME_LABEL,
    axis_text,
    mass_unit,
    model_title,
    sigma_label,
    sigma_symbol,
    sigma_text,
)


def _label_log_ticks(axis, values: np.ndarray) -> None:
    """Major ticks of a log axis at the 1–2–5 numbers spanning ``values``, labelled plainly
    (``0.02``, not ``2×10⁻²``); minor ticks unlabelled."""
    decades = np.arange(np.floor(np.log10(values.min())), np.ceil(np.log10(values.max())) + 1)
    ticks = np.ravel(np.outer(10.0**decades, [1.0, 2.0, 5.0]))
    ticks = ticks[(ticks >= values.min() / 1.3) & (ticks <= values.max() * 1.3)]
    axis.set_ticks(ticks, labels=[f"{v:g}" for v in ticks])
    axis.set_minor_formatter(NullFormatter())


def _row_settings(summary: xr.Dataset) -> dict:
    """What every row of the figure shares: σ colours (over all rows), symbol, mass unit."""
    sigmas = summary["sigma"].values
    norm = LogNorm(sigmas.min(), sigmas.max()) if sigmas.size > 1 else Normalize(0, 2 * sigmas[0])
    return {
        "colours": mpl.colormaps["plasma"](0.85 * norm(sigmas)),
        "symbol": sigma_symbol(summary),
        "mass": mass_unit(summary) or 1.0,  # σ in multiples of the test mass where it has one
    }


def _draw_coherence(ax_c, summary: xr.Dataset, colours, has_theory: bool) -> None:
    """C(t) per σ with ±1 SE bands and the theory exp(−Γ_theory t), on a log axis."""
    sigmas = summary["sigma"].values
    time = summary["time"].values
    floor = np.inf
    for sigma, colour in zip(sigmas, colours, strict=True):
        row = summary.sel(sigma=sigma)
        curve, se = row["coherence"].values, row["coherence_se"].values
        ax_c.plot(
            time,
            curve,
            color=colour,
            label=sigma_text(summary, sigma),
            gid=f"coherence-{sigma:g}",
        )
        lower = np.clip(curve - se, 0.5 * curve, None)
        ax_c.fill_between(time, lower, curve + se, color=colour, alpha=0.25, linewidth=0)
        theory = float(row["gamma_theory"])
        if np.isfinite(theory):
            ax_c.plot(time, np.exp(-theory * time), color=colour, linestyle="--", linewidth=1.0)
        floor = min(floor, float(np.nanmin(np.where(curve > 0, curve, np.nan))))
    if has_theory:
        ax_c.plot(
            [],
            [],
            color="0.3",
            linestyle="--",
            linewidth=1.0,
            label=r"theory $e^{-\Gamma_{\rm th} t}$",
        )
    ax_c.plot([], [], color="0.3", linewidth=6, alpha=0.25, label=r"$\pm 1$ SE")
    window = summary.attrs.get("fit_window")
    if window:
        ax_c.axvspan(*window, color="0.5", alpha=0.07, label="fit window")
    ax_c.set_yscale("log")
    ax_c.set_ylim(max(0.5 * floor, 1e-6), 1.25)
    ax_c.set_xlim(time[0], time[-1])
    ax_c.set_xlabel(TIME_LABEL)
    ax_c.set_ylabel(r"$C(t) = \mathbb{E}\,2|\rho_{LR}(t)|\,/\,2|\rho_{LR}(0)|$")
    ax_c.set_title("mean conditional coherence")
    ax_c.legend(loc="lower left", ncols=2 if sigmas.size > 4 else 1, fontsize=8.5)


def _draw_rate(ax_g, summary: xr.Dataset, symbol: str, mass: float, has_theory: bool) -> None:
    """Γ_fit ± SE against σ (log–log), the theory line, the power-law fit and the checks."""
    sigmas = summary["sigma"].values
    gamma = summary["gamma_fit"].values
    gamma_se = summary["gamma_fit_se"].values
    # markers first, error bars drawn above them so that small ones stay visible
    ax_g.plot(sigmas / mass, gamma, "o", color="tab:blue", markersize=5, zorder=3)
    ax_g.errorbar(
        sigmas / mass, gamma, yerr=gamma_se, fmt="none", ecolor="black", elinewidth=1.2,
        capsize=4, capthick=1.2, zorder=4, gid="gamma-error-bars",
    )  # fmt: skip
    ax_g.plot(
        [],
        [],
        "o",
        color="tab:blue",
        markersize=5,
        label=r"fitted $\Gamma$ ($\pm 1$ SE, black)",
    )
    fine = np.geomspace(sigmas.min() / 1.3, sigmas.max() * 1.3, 100)
    theory = summary["gamma_theory"].values
    if has_theory:
        finite = np.isfinite(theory) & (theory > 0)
        # Γ_theory ∝ σ⁻² for a noise kernel σ·(constant shape): extend it as that law
        scale = np.exp(np.mean(np.log(theory[finite] * sigmas[finite] ** 2)))
        attrs = point_attrs(summary)  # an excess or mode axis: this row's value
        pure = attrs.get("mode") != "density" or not float(attrs.get("excess", 0))
        factor = "" if pure else "(1+v)"
        ax_g.plot(
            fine / mass,
            scale / fine**2,
            color="black",
            linestyle="--",
            gid="gamma-theory",
            label=r"theory $" + factor + r"|\Delta f|^2/(8" + symbol + "^2)$",
        )
    fit = power_law_fit(sigmas, gamma, gamma_se)
    if fit is not None:
        slope, slope_se, intercept = fit
        ax_g.plot(
            fine / mass,
            np.exp(intercept) * fine**slope,
            color="tab:blue",
            alpha=0.6,
            label=f"power-law fit: slope {slope:.3f} ± {slope_se:.3f}",
        )
    if not has_theory:  # no theory line: a slope −2 guide through the data instead
        anchor = np.nanmedian(gamma * sigmas**2)
        ax_g.plot(fine / mass, anchor / fine**2, color="0.4", linestyle=":", label="slope −2 guide")
    ax_g.set_xscale("log")
    ax_g.set_yscale("log")
    _label_log_ticks(ax_g.xaxis, sigmas / mass)
    ax_g.set_xlabel(sigma_label(summary))
    ax_g.set_ylabel(RATE_LABEL)
    title = r"$\Gamma(" + symbol + r")$, expected slope $-2$"
    if has_theory and "gamma_fit_se" in summary:
        checks = check_statistics(summary, alpha=SWEEP_ALPHA)
        tested = "gamma" in checks["check"].values
        z = (checks["z"].sel(check="gamma") if tested else gamma_z(summary)).values
        verdict = "pass" if checks.attrs["passed"] else "FAIL"
        title += (
            f"\nfit vs theory: z from {np.nanmin(z):+.1f} to {np.nanmax(z):+.1f}"
            + ("" if tested else "\n(theory approximate here: shown, not tested)")
            + f"\nsweep's checks (Holm, {100 * SWEEP_ALPHA:g} %): {verdict}"
        )
    ax_g.set_title(title, fontsize=9.5)
    ax_g.legend(loc="upper right")


def plot_decoherence(summary: xr.Dataset) -> Figure:
    """Decoherence-rate curves (docs/physics.md, "Decoherence rate"): C(t) per σ and Γ(σ).

    Needs ``coherence``, ``coherence_se`` (sigma, time), ``gamma_fit``, ``gamma_fit_se``,
    ``gamma_theory`` (sigma; NaN where no closed form exists) and ``attrs["fit_window"]``
    (optional). Left: ``C(t) = E[2|ρ_ab(t)|]/2|ρ_ab(0)|`` with ±1 SE bands on a log axis
    and the theory ``exp(−Γ_theory t)`` dashed. Right: Γ_fit ± SE against σ on log–log axes
    with the theory ``Γ = |Δf|²/(8σ²)`` (times ``1+v`` in density mode with excess v) and
    a weighted power-law fit (its slope against the expected −2). Rates in 1/(model time).

    A summary with one grid axis (e.g. ``phi``: variables (phi, sigma, …)) is drawn faceted:
    one row of these two panels per value (at most ``limits.MAX_FACET_ROWS``), each row titled
    ``phi = 5``, with shared axes so the rows compare at a glance. Two or more grid axes
    raise ``ValueError``: a grid of panels over two axes is unreadable; select one value of
    the other axes (``summary.sel(lam=1.0)``), or draw Γ against an axis with
    :func:`cq_core.plots.plot_rate_vs_axis`.
    """
    summary = summary.load()
    axes = grid_axes(summary)
    check_facets(
        "decoherence",
        {a: summary.sizes[a] for a in axes},
        many="; select one value of all but one (summary.sel(...)) or use plot_rate_vs_axis",
        too_long=": select some (summary.isel(...))",
    )
    shared = _row_settings(summary)
    points = list(grid_points(summary))

    with mpl.rc_context(FIGURE_STYLE):
        rows = len(points)
        fig = Figure(figsize=(9.2, 4.9 if not axes else 3.9 * rows + 1.0), layout="constrained")
        panels = fig.subplots(
            rows, 2, width_ratios=(1.2, 1.0), squeeze=False, sharex="col" if axes else False
        )
        for (label, point), (ax_c, ax_g) in zip(points, panels, strict=True):
            has_theory = bool(np.isfinite(point["gamma_theory"]).any())
            _draw_coherence(ax_c, point, shared["colours"], has_theory)
            _draw_rate(ax_g, point, shared["symbol"], shared["mass"], has_theory)
            if label:
                ax_c.set_title(f"{label}: mean conditional coherence", fontweight="bold")
                ax_g.set_title(f"{label}: " + ax_g.get_title(), fontsize=9.5)
        if axes:
            for ax_c, ax_g in panels[:-1]:
                ax_c.set_xlabel("")
                ax_g.set_xlabel("")
            facet = axis_text(axis_name(axes[0]))
            title = f"Decoherence rate against noise strength, one row per {facet}\n" + model_title(
                summary
            )
        else:
            title = "Decoherence rate against noise strength\n" + model_title(summary)
        fig.suptitle(title)
    return fig
