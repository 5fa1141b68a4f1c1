"""Figures of a sweep: the seed report's pictures and the SPEC §3 curves (matplotlib).

Every function takes xarray Datasets — a sweep summary (``summary.zarr``, see
:func:`cq_core.analysis.summarise`), a cell from :func:`cq_core.simulate`, or a sweep from
:func:`cq_core.open_sweep` — and returns a :class:`matplotlib.figure.Figure`. Nothing here
touches files except :func:`save_figure`. Figures are built with the object API
(``Figure(...)``, no pyplot state), so they work under any backend, including Agg.

SPEC §3 figures:

* :func:`plot_trajectories` — seed Fig. 1: realisations of ``mass_superposition`` in the x–y
  plane, on the Bloch sphere and as ⟨σz⟩(t), with the mean-field path dashed.
* :func:`plot_sigma_z_histograms` — seed Fig. 2: densities of ⟨σz⟩ at the time slices.
* :func:`plot_decoherence` — C(t) with standard-error bands and the theory ``exp(−Γt)``;
  fitted Γ(σ) on log–log axes against the expected ``σ⁻²`` law.
* :func:`plot_tradeoff` — measured Γ against ``D2 = σ²/2`` with the bound
  ``Γ·D2 = |Δf|²/16`` and the forbidden region.
* :func:`plot_mean_field_comparison` — ``linear``: stochastic realisations beside the
  deterministic mean-field path in phase space and on the Bloch sphere.

Conventions: level ``a`` of ``attrs["basis_pair"] = (a, b)`` is |L⟩ (⟨σz⟩ = +1), level ``b``
is |R⟩; the Bloch vector of that pair is ``(2 Re ρ_ab, −2 Im ρ_ab, ρ_aa − ρ_bb)``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib as mpl
import numpy as np
import xarray as xr
from matplotlib.axes import Axes
from matplotlib.colors import LogNorm, Normalize
from matplotlib.figure import Figure
from matplotlib.ticker import NullFormatter

from . import analysis
from .models import get_model

__all__ = [
    "FIGURE_STYLE",
    "PNG_DPI",
    "bloch_vector",
    "force_gap_squared",
    "model_description",
    "plot_decoherence",
    "plot_mean_field_comparison",
    "plot_sigma_z_histograms",
    "plot_tradeoff",
    "plot_trajectories",
    "save_figure",
    "sigma_text",
]

PNG_DPI = 150
"""Resolution of the PNG written by :func:`save_figure` (figures are 7–8 in wide: ≈1100 px)."""

FIGURE_STYLE: Mapping[str, Any] = {
    "font.size": 10.5,
    "axes.titlesize": 10.5,
    "axes.labelsize": 11,
    "xtick.labelsize": 9.5,
    "ytick.labelsize": 9.5,
    "legend.fontsize": 9,
    "legend.framealpha": 0.85,
    "figure.titlesize": 12,
    "lines.linewidth": 1.4,
    "axes.grid": True,
    "grid.alpha": 0.25,
    "savefig.bbox": "tight",
}
"""rcParams every figure of this module is drawn with (sized for an ≈800 px README column)."""

REALISATION_COLOURS = ("tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple")
MEAN_FIELD_STYLE = {"color": "black", "linestyle": "--", "linewidth": 1.6}
KET_L, KET_R, KET_PLUS = r"$|L\rangle$", r"$|R\rangle$", r"$|{+}\rangle$"
SIGMA_Z = r"$\langle\sigma_z\rangle$"


# ----------------------------------------------------------------------------- helpers


def save_figure(fig: Figure, stem: str | os.PathLike, *, dpi: int = PNG_DPI) -> list[Path]:
    """Write ``<stem>.png`` (``dpi``, for the README and the report) and ``<stem>.pdf``.

    Creates the parent directory. Returns the two paths written.
    """
    stem = Path(stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    paths = [stem.with_name(stem.name + ".png"), stem.with_name(stem.name + ".pdf")]
    fig.savefig(paths[0], dpi=dpi)
    fig.savefig(paths[1])
    return paths


def _model_params(ds: xr.Dataset) -> dict[str, Any]:
    """``attrs["model_params"]`` (JSON) as a dict; complex arrays restored."""
    params = json.loads(ds.attrs.get("model_params", "{}"))
    for key, value in params.items():
        if isinstance(value, dict) and set(value) == {"real", "imag"}:
            params[key] = np.asarray(value["real"]) + 1j * np.asarray(value["imag"])
    return params


def _format_value(value: Any) -> str:
    array = np.asarray(value)
    if np.iscomplexobj(array):
        return "(" + ", ".join(f"{z:.3g}" for z in array.ravel()) + ")"
    if array.ndim == 0:
        return f"{float(array):g}" if array.dtype.kind in "fiu" else str(value)
    return "(" + ", ".join(f"{float(v):g}" for v in array.ravel()) + ")"


def model_description(ds: xr.Dataset, *, width: int = 75) -> str:
    """One or two lines naming the model, its parameters and the run settings (for titles).

    E.g. ``mass_superposition: G=1, M=10, m=0.01, d=1, eps=0, phi=0, r0=(0, -0.5, 0), …;
    dt=0.0001, pure``. ``psi0`` is shown only when it is not |+⟩.
    """
    params = _model_params(ds)
    psi0 = params.pop("psi0", None)
    if psi0 is not None and not np.allclose(np.abs(psi0), np.sqrt(0.5)):
        params["psi0"] = psi0
    parts = [f"{key}={_format_value(value)}" for key, value in params.items()]
    run = []
    if "dt" in ds.attrs:
        run.append(f"dt={float(ds.attrs['dt']):g}")
    mode = ds.attrs.get("mode")
    if mode:
        excess = float(ds.attrs.get("excess", 0.0))
        run.append(f"{mode}" + (f", v={excess:g}" if mode == "density" else ""))
    # wrap between parameters only, so that a vector such as r0=(0, -0.5, 0) stays on a line
    pieces = [f"{ds.attrs.get('model', 'model')}: "] + [f"{part}, " for part in parts]
    if run:
        pieces[-1] = pieces[-1].removesuffix(", ") + "; "
        pieces += [f"{part}, " for part in run]
    pieces[-1] = pieces[-1].removesuffix(", ").removesuffix("; ")
    lines = [""]
    for piece in pieces:
        if lines[-1] and len(lines[-1] + piece.rstrip()) > width:
            lines[-1] = lines[-1].rstrip()
            lines.append("")
        lines[-1] += piece
    return "\n".join(line.rstrip() for line in lines)


def _sigma_symbol(ds: xr.Dataset) -> str:
    return r"\gamma" if ds.attrs.get("sigma_name") == "gamma" else r"\sigma"


def sigma_text(ds: xr.Dataset, sigma: float) -> str:
    """``σ = 0.025 (2.5m)`` for ``mass_superposition`` (SPEC §3 quotes σ in units of the test
    mass m), ``σ = 0.8`` otherwise (``γ`` for ``sqrt_potential``); mathtext."""
    text = rf"${_sigma_symbol(ds)} = {float(sigma):g}$"
    if ds.attrs.get("model") == "mass_superposition":
        mass = float(_model_params(ds).get("m", 0.0))
        if mass > 0:
            text += f" ({float(sigma) / mass:.3g}m)"
    return text


def _one_sigma(ds: xr.Dataset, sigma: float | None) -> xr.Dataset:
    """One σ of a cell or sweep Dataset, with trajectories along one ``trajectory`` dim.

    A sweep's (seed, trajectory) are flattened in order (seed-major); a ``label`` coordinate
    keeps ``"seed s, #i"``.
    """
    if "sigma" in ds.dims:
        if sigma is None:
            ds = ds.isel(sigma=0)
        else:
            ds = ds.sel(sigma=sigma, method="nearest", tolerance=1e-9 * abs(sigma))
    elif sigma is not None and not np.isclose(float(ds["sigma"]), sigma):
        raise ValueError(f"the Dataset holds sigma={float(ds['sigma'])!r}, not {sigma!r}")
    if "seed" in ds.dims:
        seeds = np.repeat(ds["seed"].values, ds.sizes["trajectory"])
        numbers = np.tile(ds["trajectory"].values, ds.sizes["seed"])
        ds = ds.stack(realisation=("seed", "trajectory"), create_index=False)
        ds = ds.drop_vars([c for c in ("seed", "trajectory") if c in ds.coords])
        ds = ds.rename(realisation="trajectory").assign_coords(
            trajectory=np.arange(seeds.size),
            label=("trajectory", [f"seed {s}, #{i}" for s, i in zip(seeds, numbers, strict=True)]),
        )
    return ds


def bloch_vector(ds: xr.Dataset) -> xr.DataArray:
    """Bloch vector of the basis pair ``(a, b)``: dims (…, time, component = x, y, z).

    ``x = 2 Re ρ_ab``, ``y = −2 Im ρ_ab``, ``z = ρ_aa − ρ_bb`` (``ρ_ab = ψ_a ψ_b*`` for pure
    states), so |L⟩ = level a is the north pole and |+⟩ = (|L⟩+|R⟩)/√2 is +x. Dimensionless;
    length 1 for a pure qubit.
    """
    a, b = (int(i) for i in ds.attrs.get("basis_pair", (0, 1)))
    if "psi" in ds:
        psi_a = ds["psi"].isel(level=a, drop=True)
        psi_b = ds["psi"].isel(level=b, drop=True)
        rho_ab = psi_a * np.conj(psi_b)
        z = abs(psi_a) ** 2 - abs(psi_b) ** 2
    else:
        rho = ds["rho"]
        rho_ab = rho.isel(ket=a, bra=b, drop=True)
        z = np.real(rho.isel(ket=a, bra=a, drop=True)) - np.real(rho.isel(ket=b, bra=b, drop=True))
    vector = xr.concat(
        [2.0 * np.real(rho_ab), -2.0 * np.imag(rho_ab), z],
        dim=xr.DataArray(["x", "y", "z"], dims="component", name="component"),
    )
    return vector.transpose(..., "component").rename("bloch").assign_attrs(units="1")


def force_gap_squared(ds: xr.Dataset) -> float:
    """``|Δf|² = Σ_j (L_j[a] − L_j[b])²`` at the initial classical point z0 (SPEC §3).

    The squared difference of the back-reaction (force) eigenvalues of the basis pair, summed
    over the coupled components: ``linear``: 16λ²; ``mass_superposition``: ≈ 0.0204 at r0.
    The trade-off bound is ``Γ·D2 ≥ |Δf|²/16``. Rebuilds the model from ``attrs``.
    """
    model = get_model(ds.attrs["model"], **_model_params(ds))
    a, b = (int(i) for i in ds.attrs.get("basis_pair", (0, 1)))
    operators = np.asarray(model.backreaction_operators(model.z0[None, :]))[0]
    if not model.diagonal:  # (c, d, d): the diagonal entries of the pair
        operators = np.real(np.diagonal(operators, axis1=-2, axis2=-1))
    return float(np.sum((operators[:, a] - operators[:, b]) ** 2))


def _pick(ds: xr.Dataset, realisations: Sequence[int] | int) -> xr.Dataset:
    if isinstance(realisations, (int, np.integer)):
        realisations = range(min(int(realisations), ds.sizes["trajectory"]))
    return ds.isel(trajectory=list(realisations)).load()


def _colour(i: int) -> str:
    return REALISATION_COLOURS[i % len(REALISATION_COLOURS)]


def _outcome(sigma_z_final: float) -> str:
    return KET_L if sigma_z_final > 0 else KET_R


# ----------------------------------------------------------------------- Bloch sphere


def _draw_bloch_sphere(ax: Axes) -> None:
    """A wireframe unit sphere with its x, y, z axes and the states |L⟩, |R⟩, |+⟩ labelled."""
    u, v = np.meshgrid(np.linspace(0, 2 * np.pi, 25), np.linspace(0, np.pi, 13))
    ax.plot_wireframe(
        np.cos(u) * np.sin(v), np.sin(u) * np.sin(v), np.cos(v), color="0.75", linewidth=0.4
    )
    circle = np.linspace(0, 2 * np.pi, 200)
    ax.plot(np.cos(circle), np.sin(circle), 0 * circle, color="0.45", linewidth=0.8)  # equator
    for axis in np.eye(3):
        ax.plot(*np.stack([-axis, axis], axis=1), color="0.45", linewidth=0.8)
    for position, label in (
        ((0, 0, 1.18), KET_L),
        ((0, 0, -1.25), KET_R),
    ):
        ax.text(*position, label, ha="center", va="center", fontsize=11)
    ax.text(1.25, 0, -0.1, KET_PLUS, ha="left", va="top", fontsize=11)
    ax.set(xlim=(-1, 1), ylim=(-1, 1), zlim=(-1, 1))
    ax.set_xlabel(r"$\langle\sigma_x\rangle$", labelpad=-12)
    ax.set_ylabel(r"$\langle\sigma_y\rangle$", labelpad=-12)
    ax.set_zlabel(SIGMA_Z, labelpad=-12)
    ax.set_xticks([-1, 0, 1], labels=[])
    ax.set_yticks([-1, 0, 1], labels=[])
    ax.set_zticks([-1, 0, 1], labels=[])
    ax.set_box_aspect((1, 1, 1), zoom=1.15)
    ax.view_init(elev=20, azim=-38)
    for axis in (ax.xaxis, ax.yaxis, ax.zaxis):
        axis.set_pane_color((1.0, 1.0, 1.0, 0.0))


# ------------------------------------------------------------------ trajectory figures


def _classical_panel(
    ax: Axes,
    cells: xr.Dataset,
    mean_field: xr.Dataset | None,
    colours: Sequence[str],
) -> None:
    """x–y plane (models with coords x, y) or phase space (first position, its momentum)."""
    coords = list(cells["coord"].values)
    if "x" in coords and "y" in coords:
        horizontal, vertical = "x", "y"
        ax.set_aspect("equal", adjustable="datalim")
    else:
        k = len(coords) // 2
        horizontal, vertical = coords[0], coords[k]
    classical = cells["classical"]
    for i, colour in enumerate(colours):
        path = classical.isel(trajectory=i)
        ax.plot(
            path.sel(coord=horizontal),
            path.sel(coord=vertical),
            color=colour,
            gid=f"realisation-{i}",
        )
        ax.plot(
            path.sel(coord=horizontal)[-1],
            path.sel(coord=vertical)[-1],
            "o",
            color=colour,
            markersize=4,
        )
    start = classical.isel(trajectory=0, time=0)
    ax.plot(
        start.sel(coord=horizontal),
        start.sel(coord=vertical),
        marker="*",
        color="black",
        markersize=11,
        linestyle="none",
        label="start",
    )
    if mean_field is not None:
        path = mean_field["classical"].isel(trajectory=0)
        ax.plot(
            path.sel(coord=horizontal),
            path.sel(coord=vertical),
            label="mean field",
            gid="mean-field",
            **MEAN_FIELD_STYLE,
        )
    if cells.attrs.get("model") == "mass_superposition":
        d = float(_model_params(cells).get("d", 1.0))
        ax.plot(
            [-d],
            [0],
            marker="o",
            markersize=13,
            color="0.25",
            linestyle="none",
            label=r"source in $|L\rangle$: $(-d, 0)$",
        )
        ax.plot(
            [d],
            [0],
            marker="s",
            markersize=12,
            color="0.6",
            linestyle="none",
            label=r"source in $|R\rangle$: $(+d, 0)$",
        )
        ax.set_title("test-mass path, x–y plane")
    else:
        ax.set_title("classical path in phase space")
    ax.set_xlabel(f"${horizontal}$")
    ax.set_ylabel(f"${vertical}$")
    ax.legend(loc="best")


def _trajectory_figure(
    cells: xr.Dataset,
    mean_field: xr.Dataset | None,
    realisations: Sequence[int] | int,
    sigma: float | None,
    heading: str,
) -> Figure:
    cells = _pick(_one_sigma(cells, sigma), realisations)
    if mean_field is not None:
        mean_field = _pick(_one_sigma(mean_field, None), 1)
    n = cells.sizes["trajectory"]
    colours = [_colour(i) for i in range(n)]
    bloch = bloch_vector(cells)
    time = cells["time"]
    labels = cells["label"].values if "label" in cells.coords else [f"#{i}" for i in range(n)]

    with mpl.rc_context(FIGURE_STYLE):
        fig = Figure(figsize=(8.0, 7.6), layout="constrained")
        grid = fig.add_gridspec(2, 2, height_ratios=(1.35, 1.0), width_ratios=(1.0, 1.0))
        ax_classical = fig.add_subplot(grid[0, 0])
        ax_bloch = fig.add_subplot(grid[0, 1], projection="3d")
        ax_sz = fig.add_subplot(grid[1, :])

        _classical_panel(ax_classical, cells, mean_field, colours)

        _draw_bloch_sphere(ax_bloch)
        for i, colour in enumerate(colours):
            path = bloch.isel(trajectory=i)
            # realisations often share a meridian: earlier ones drawn wider, so all stay visible
            ax_bloch.plot(
                *(path.sel(component=c) for c in "xyz"),
                color=colour,
                linewidth=1.0 + 1.3 * (n - 1 - i) / max(n - 1, 1),
                gid=f"realisation-{i}",
            )
            ax_bloch.plot(
                *(path.sel(component=c)[-1:] for c in "xyz"),
                "o",
                color=colour,
                markersize=6,
                markeredgecolor="black",
                markeredgewidth=0.5,
            )
        if mean_field is not None:
            path = bloch_vector(mean_field).isel(trajectory=0)
            ax_bloch.plot(
                *(path.sel(component=c) for c in "xyz"), gid="mean-field", **MEAN_FIELD_STYLE
            )
            # the mean-field state may hardly move (mass_superposition stays near |+⟩): mark
            # where it ends, so that it is visible even when its path is a point
            ax_bloch.plot(
                *(path.sel(component=c)[-1:] for c in "xyz"),
                "D",
                color="black",
                markersize=6,
                markeredgecolor="white",
                markeredgewidth=0.6,
            )
        ax_bloch.set_title("state on the Bloch sphere")

        for i, colour in enumerate(colours):
            z = bloch.isel(trajectory=i).sel(component="z")
            ax_sz.plot(
                time,
                z,
                color=colour,
                gid=f"realisation-{i}",
                label=f"{labels[i]} → {_outcome(float(z[-1]))}",
            )
        if mean_field is not None:
            z = bloch_vector(mean_field).isel(trajectory=0).sel(component="z")
            ax_sz.plot(
                mean_field["time"], z, label="mean field", gid="mean-field", **MEAN_FIELD_STYLE
            )
        ax_sz.set_ylim(-1.08, 1.08)
        ax_sz.set_yticks([-1, -0.5, 0, 0.5, 1])
        ax_sz.set_xlim(float(time[0]), float(time[-1]))
        ax_sz.set_xlabel(r"time $t$ (model units)")
        ax_sz.set_ylabel(SIGMA_Z + r"$ = P_L - P_R$")
        ax_sz.set_title(r"$\langle\sigma_z\rangle(t)$: +1 = " + KET_L + ", −1 = " + KET_R)
        ax_sz.legend(loc="center left", bbox_to_anchor=(1.0, 0.5), title="realisation (all panels)")

        fig.suptitle(
            f"{heading}, {sigma_text(cells, float(cells['sigma']))}\n" + model_description(cells),
        )
        fig.get_layout_engine().set(h_pad=0.08, hspace=0.05)
    return fig


def plot_trajectories(
    cells: xr.Dataset,
    mean_field: xr.Dataset | None = None,
    *,
    realisations: Sequence[int] | int = 4,
    sigma: float | None = None,
) -> Figure:
    """Seed Fig. 1: realisations of ``mass_superposition`` (SPEC §3, "Trajectories").

    Parameters
    ----------
    cells
        Trajectories with ``classical`` (trajectory, time, coord) and ``psi`` (trajectory,
        time, level) or ``rho``: one cell from :func:`cq_core.simulate` or a sweep from
        :func:`cq_core.open_sweep` (seeds are flattened; ``sigma`` selects the σ, default
        the first).
    mean_field
        Optional run with ``mode="mean_field"`` (its first trajectory is drawn dashed).
    realisations
        How many (the first N) or which trajectories to draw; one colour each, shared by all
        three panels.

    Returns
    -------
    Figure
        Top left: the test-mass path in the x–y plane (model length units) with the source
        positions (∓d, 0) marked; top right: the Bloch-sphere path of the basis pair (3-D);
        bottom: ⟨σz⟩(t). Every line of realisation i carries ``gid="realisation-i"``; the
        mean-field lines ``gid="mean-field"``.
    """
    return _trajectory_figure(
        cells, mean_field, realisations, sigma, "Classical–quantum trajectories"
    )


def plot_mean_field_comparison(
    cells: xr.Dataset,
    mean_field: xr.Dataset,
    *,
    realisations: Sequence[int] | int = 2,
    sigma: float | None = None,
) -> Figure:
    """Stochastic realisations beside the mean-field path (SPEC §3, "Mean-field comparison").

    Meant for ``linear`` in the reference variant ``p0=10, t_final=0.45, σ=0.8``: the
    classical panel is phase space (q, p); the Bloch sphere and ⟨σz⟩(t) as in
    :func:`plot_trajectories`. ``mean_field`` is the run with ``mode="mean_field"`` (the
    "standard semi-classical" dynamics: no noise, no collapse), drawn dashed.
    """
    return _trajectory_figure(
        cells, mean_field, realisations, sigma, "Stochastic realisations vs. mean field"
    )


# ------------------------------------------------------------------- ⟨σz⟩ histograms


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


def plot_sigma_z_histograms(
    data: xr.Dataset,
    *,
    time_slices: Sequence[float] | None = None,
    bins: int = 40,
    clip_factor: float = 1.3,
) -> Figure:
    """Seed Fig. 2: the density of ⟨σz⟩ at the configured time slices, one panel per σ.

    ``data`` is a summary with ``sigma_z_hist`` (sigma, slice, bin; coordinates
    ``bin_lower``, ``bin_upper`` = bin edges on [−1, 1] and ``slice_time`` = the stored time
    of each slice), ``n_flagged`` and ``n_trajectories`` (sigma); or trajectories (a cell or
    an :func:`cq_core.open_sweep` Dataset), histogrammed here with
    :func:`cq_core.analysis.sigma_z_histogram` at ``time_slices`` (default: 4 times from 0
    to the end) in ``bins`` bins (``time_slices`` and ``bins`` are ignored for a summary).

    Each panel title gives n (trajectories used) and the number discarded (flagged; SPEC §3
    requires 0). The y range is set by the slices after the first so that the initial
    δ-peak at ⟨σz⟩(0) does not flatten them; a clipped peak is marked with its height.
    """
    summary = _histogram_summary(data, time_slices, bins) if "status" in data else data
    hist = summary["sigma_z_hist"].load()
    edges = np.append(hist["bin_lower"].values, hist["bin_upper"].values[-1])
    times = hist["slice_time"].values if "slice_time" in hist.coords else hist["slice"].values
    kept = _kept_count(summary).load()
    flagged = summary["n_flagged"].load()
    colours = mpl.colormaps["viridis"](np.linspace(0.0, 0.85, hist.sizes["slice"]))
    n_sigma = hist.sizes["sigma"]

    with mpl.rc_context(FIGURE_STYLE):
        width = max(7.0, 3.7 * n_sigma + 0.6)
        fig = Figure(figsize=(width, 4.8), layout="constrained")
        axes = np.atleast_1d(fig.subplots(1, n_sigma, sharey=True, squeeze=False)[0])
        later = hist.isel(slice=slice(1, None)) if hist.sizes["slice"] > 1 else hist
        top = clip_factor * float(later.max())
        for ax, sigma in zip(axes, hist["sigma"].values, strict=True):
            for j, colour in enumerate(colours):
                density = hist.sel(sigma=sigma).isel(slice=j).values
                ax.stairs(density, edges, color=colour, linewidth=1.6, label=f"$t = {times[j]:g}$")
                ax.stairs(density, edges, color=colour, alpha=0.12, fill=True)
                peak = int(np.nanargmax(density))
                if density[peak] > top:
                    centre = 0.5 * (edges[peak] + edges[peak + 1])
                    ax.annotate(
                        f"$t = {times[j]:g}$: peak {density[peak]:.3g}",
                        xy=(centre, 0.97 * top),
                        xytext=(centre + (0.12 if centre < 0.5 else -0.7), 0.84 * top),
                        color=colour,
                        fontsize=8.5,
                        arrowprops={"arrowstyle": "->", "color": colour},
                    )
            n_used = int(kept.sel(sigma=sigma))
            n_text = f"n = {n_used}" if n_used >= 0 else "n = ?"
            ax.set_title(
                f"{sigma_text(summary, sigma)}\n{n_text}, discarded = "
                f"{int(flagged.sel(sigma=sigma))}"
            )
            ax.set_xlim(-1.02, 1.02)
            ax.set_ylim(0, top)
            ax.set_xlabel(SIGMA_Z + r"   ($-1 = |R\rangle$, $+1 = |L\rangle$)")
        axes[0].set_ylabel("probability density")
        handles, labels = axes[0].get_legend_handles_labels()
        fig.legend(
            handles,
            labels,
            loc="outside lower center",
            ncols=len(labels),
            title="time slice (density of " + SIGMA_Z + " at time t)",
        )
        fig.suptitle(
            "Distribution of the conditional "
            + SIGMA_Z
            + " over realisations\n"
            + model_description(summary, width=int(10 * width)),
        )
    return fig


# ------------------------------------------------------------------ decoherence rates


def _power_law_fit(
    x: np.ndarray, y: np.ndarray, y_se: np.ndarray
) -> tuple[float, float, float] | None:
    """Weighted least squares of ``log y = s log x + c``: ``(s, se(s), c)`` or None."""
    good = np.isfinite(y) & (y > 0) & np.isfinite(y_se) & (y_se > 0)
    if good.sum() < 3:
        return None
    weights = y[good] / y_se[good]  # 1 / se(log y)
    coefficients, covariance = np.polyfit(
        np.log(x[good]), np.log(y[good]), 1, w=weights, cov="unscaled"
    )
    return float(coefficients[0]), float(np.sqrt(covariance[0, 0])), float(coefficients[1])


def _label_log_ticks(axis, values: np.ndarray) -> None:
    """Major ticks of a log axis at the 1–2–5 numbers spanning ``values``, labelled plainly
    (``0.02``, not ``2×10⁻²``); minor ticks unlabelled."""
    decades = np.arange(np.floor(np.log10(values.min())), np.ceil(np.log10(values.max())) + 1)
    ticks = np.ravel(np.outer(10.0**decades, [1.0, 2.0, 5.0]))
    ticks = ticks[(ticks >= values.min() / 1.3) & (ticks <= values.max() * 1.3)]
    axis.set_ticks(ticks, labels=[f"{v:g}" for v in ticks])
    axis.set_minor_formatter(NullFormatter())


def plot_decoherence(summary: xr.Dataset) -> Figure:
    """Decoherence-rate curves (SPEC §3): C(t) per σ and the fitted Γ(σ).

    Needs ``coherence``, ``coherence_se`` (sigma, time), ``gamma_fit``, ``gamma_fit_se``,
    ``gamma_theory`` (sigma; NaN where SPEC gives no theory) and ``attrs["fit_window"]``
    (optional). Left: ``C(t) = E[2|ρ_ab(t)|]/2|ρ_ab(0)|`` with ±1 SE bands on a log axis
    and the theory ``exp(−Γ_theory t)`` dashed. Right: Γ_fit ± SE against σ on log–log axes
    with the theory ``Γ = (1+v)|Δf|²/(8σ²)`` and a weighted power-law fit (its slope against
    the expected −2). Rates in 1/(model time).
    """
    summary = summary.load()
    sigmas = summary["sigma"].values
    time = summary["time"].values
    norm = LogNorm(sigmas.min(), sigmas.max()) if sigmas.size > 1 else Normalize(0, 2 * sigmas[0])
    colours = mpl.colormaps["plasma"](0.85 * norm(sigmas))
    symbol = _sigma_symbol(summary)
    has_theory = bool(np.isfinite(summary["gamma_theory"]).any())

    with mpl.rc_context(FIGURE_STYLE):
        fig = Figure(figsize=(9.2, 4.9), layout="constrained")
        ax_c, ax_g = fig.subplots(1, 2, width_ratios=(1.2, 1.0))
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
        ax_c.set_xlabel(r"time $t$ (model units)")
        ax_c.set_ylabel(r"$C(t) = \mathbb{E}\,2|\rho_{LR}(t)|\,/\,2|\rho_{LR}(0)|$")
        ax_c.set_title("mean conditional coherence")
        ax_c.legend(loc="lower left", ncols=2 if sigmas.size > 4 else 1, fontsize=8.5)

        gamma = summary["gamma_fit"].values
        gamma_se = summary["gamma_fit_se"].values
        ax_g.errorbar(
            sigmas,
            gamma,
            yerr=gamma_se,
            fmt="o",
            color="tab:blue",
            capsize=3,
            label=r"fitted $\Gamma$ ($\pm 1$ SE)",
            zorder=3,
        )
        fine = np.geomspace(sigmas.min() / 1.3, sigmas.max() * 1.3, 100)
        theory = summary["gamma_theory"].values
        if has_theory:
            finite = np.isfinite(theory) & (theory > 0)
            # Γ_theory ∝ σ⁻² for a noise kernel σ·(constant shape): extend it as that law
            scale = np.exp(np.mean(np.log(theory[finite] * sigmas[finite] ** 2)))
            ax_g.plot(
                fine,
                scale / fine**2,
                color="black",
                linestyle="--",
                gid="gamma-theory",
                label=r"theory $(1+v)|\Delta f|^2/(8" + symbol + "^2)$",
            )
        fit = _power_law_fit(sigmas, gamma, gamma_se)
        if fit is not None:
            slope, slope_se, intercept = fit
            ax_g.plot(
                fine,
                np.exp(intercept) * fine**slope,
                color="tab:blue",
                alpha=0.6,
                label=f"power-law fit: slope {slope:.3f} ± {slope_se:.3f}",
            )
        if not has_theory:  # no theory line: a slope −2 guide through the data instead
            anchor = np.nanmedian(gamma * sigmas**2)
            ax_g.plot(fine, anchor / fine**2, color="0.4", linestyle=":", label="slope −2 guide")
        ax_g.set_xscale("log")
        ax_g.set_yscale("log")
        _label_log_ticks(ax_g.xaxis, sigmas)
        ax_g.set_xlabel(rf"noise strength ${symbol}$")
        ax_g.set_ylabel(r"decoherence rate $\Gamma$ (1/time)")
        ax_g.set_title(r"$\Gamma(" + symbol + r")$, expected slope $-2$")
        ax_g.legend(loc="upper right")
        if summary.attrs.get("model") == "mass_superposition":
            mass = float(_model_params(summary).get("m", 1.0))
            top = ax_g.secondary_xaxis("top", functions=(lambda s: s / mass, lambda u: u * mass))
            _label_log_ticks(top.xaxis, sigmas / mass)
            top.set_xlabel(rf"${symbol}$ / m  (units of the test mass)")
        fig.suptitle("Decoherence rate against noise strength\n" + model_description(summary))
    return fig


# ------------------------------------------------------------------------- trade-off


def _sweep_label(summary: xr.Dataset) -> str:
    name = summary.attrs.get("sweep") or summary.attrs.get("model", "run")
    mode = summary.attrs.get("mode", "pure")
    excess = float(summary.attrs.get("excess", 0.0))
    state = r"pure $\psi$" if mode == "pure" else rf"$\rho$, $v = {excess:g}$"
    return f"{name} ({state})"


def plot_tradeoff(summaries: Sequence[xr.Dataset] | xr.Dataset) -> Figure:
    """The decoherence–diffusion trade-off (SPEC §3): measured Γ against ``D2 = σ²/2``.

    Each summary needs ``gamma_fit``, ``gamma_fit_se`` (sigma) and the attrs ``model``,
    ``model_params``, ``basis_pair``, ``mode``, ``excess`` (``sweep`` for the legend). For
    each distinct |Δf|² (:func:`force_gap_squared`, at z0) the bound ``Γ = |Δf|²/(16 D2)``
    is drawn as a solid line (``gid="bound-<model>"``) with the forbidden region below it
    shaded; runs with ``excess = v > 0`` also get their expected ``(1+v)`` line, dotted.
    Pure-state runs (filled markers) sit on the bound, density runs with v > 0 (open
    markers) above it. Log–log axes; D2 in (momentum)²/time, Γ in 1/time.
    """
    if isinstance(summaries, xr.Dataset):
        summaries = [summaries]
    summaries = [s.load() for s in summaries]
    gaps: dict[tuple[str, float], list[xr.Dataset]] = {}
    for summary in summaries:
        key = (summary.attrs.get("model", "model"), round(force_gap_squared(summary), 12))
        gaps.setdefault(key, []).append(summary)
    group_colours = ("tab:blue", "tab:red", "tab:green", "tab:purple")
    markers = ("o", "s", "D", "^", "v")

    with mpl.rc_context(FIGURE_STYLE):
        fig = Figure(figsize=(7.6, 5.6), layout="constrained")
        ax = fig.add_subplot()
        all_d2 = np.concatenate([0.5 * s["sigma"].values ** 2 for s in summaries])
        all_gamma = np.concatenate([s["gamma_fit"].values for s in summaries])
        x_range = np.array([all_d2.min() / 2.5, all_d2.max() * 2.5])
        ylim = (np.nanmin(all_gamma) / 6.0, np.nanmax(all_gamma) * 4.0)
        ax.set_xlim(*x_range)
        ax.set_ylim(*ylim)
        n_marker = 0
        for g, ((model, gap), members) in enumerate(gaps.items()):
            colour = group_colours[g % len(group_colours)]
            d2 = np.concatenate([0.5 * s["sigma"].values ** 2 for s in members])
            pad = 2.5 if len(gaps) == 1 else 2.0  # one model: line and shading span the axes
            line_x = np.geomspace(d2.min() / pad, d2.max() * pad, 50)
            bound = gap / (16.0 * line_x)
            ax.plot(
                line_x,
                bound,
                color=colour,
                linewidth=2.0,
                gid=f"bound-{model}",
                label=rf"{model}: bound $\Gamma D_2 = |\Delta f|^2/16$"
                rf" ($|\Delta f|^2 = {gap:.3g}$)",
            )
            ax.fill_between(line_x, ylim[0], bound, color=colour, alpha=0.12, linewidth=0)
            for summary in members:
                excess = float(summary.attrs.get("excess", 0.0))
                pure = summary.attrs.get("mode") == "pure" or excess == 0.0
                marker = markers[n_marker % len(markers)]
                n_marker += 1
                ax.errorbar(
                    0.5 * summary["sigma"].values ** 2,
                    summary["gamma_fit"].values,
                    yerr=summary["gamma_fit_se"].values,
                    fmt=marker,
                    color=colour,
                    markerfacecolor=colour if pure else "white",
                    markersize=7,
                    capsize=2.5,
                    zorder=3,
                    label=f"measured: {_sweep_label(summary)}",
                )
                if excess > 0:
                    ax.plot(
                        line_x,
                        (1.0 + excess) * bound,
                        color=colour,
                        linestyle=":",
                        label=rf"expected $(1+v)|\Delta f|^2/(16 D_2)$, $v={excess:g}$",
                    )
        ax.fill_between(
            [],
            [],
            color=group_colours[0] if len(gaps) == 1 else "0.5",
            alpha=0.2,
            label=r"forbidden: $\Gamma D_2 < |\Delta f|^2/16$ (not CP)",
        )
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel(r"classical diffusion $D_2 = \sigma^2/2$")
        ax.set_ylabel(r"decoherence rate $\Gamma$ (1/time)")
        fig.legend(
            *ax.get_legend_handles_labels(), loc="outside lower center", ncols=2, fontsize=8.5
        )
        names = ", ".join(dict.fromkeys(model for model, _ in gaps))
        fig.suptitle(
            r"Decoherence–diffusion trade-off $\Gamma \cdot D_2 \geq |\Delta f|^2/16$"
            f"\n{names}; |Δf| at the initial point z0"
        )
    return fig
