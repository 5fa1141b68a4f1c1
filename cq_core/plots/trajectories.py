"""Seed Fig. 1 and the mean-field comparison: realisations in phase space, on the Bloch
sphere and as ⟨σz⟩(t); one row per value of a sweep's grid axis (the paper's Fig. 7 pair,
φ = 0 and φ = 5, as one sweep with a ``phi`` axis).

Conventions: level ``a`` of ``attrs["basis_pair"] = (a, b)`` is |L⟩ (⟨σz⟩ = +1), level ``b``
is |R⟩; the Bloch vector of that pair is ``(2 Re ρ_ab, −2 Im ρ_ab, ρ_aa − ρ_bb)``.
"""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib as mpl
import numpy as np
import xarray as xr
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from ..analysis.grid_axes import point_label
from ..analysis.observables import bloch_vector
from .limits import check_facets
from .style import (
    FIGURE_STYLE,
    KET_L,
    KET_PLUS,
    KET_R,
    MEAN_FIELD_STYLE,
    REALISATION_COLOURS,
    SIGMA_Z,
    TIME_LABEL,
    model_params,
    model_title,
    sigma_text,
)

DECIDED = 0.99
"""|⟨σz⟩| at the last time above which a realisation's legend says it collapsed (→ |L⟩)."""


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


def _pick(ds: xr.Dataset, realisations: Sequence[int] | int) -> xr.Dataset:
    if isinstance(realisations, (int, np.integer)):
        realisations = range(min(int(realisations), ds.sizes["trajectory"]))
    return ds.isel(trajectory=list(realisations)).load()


def _colour(i: int) -> str:
    return REALISATION_COLOURS[i % len(REALISATION_COLOURS)]


def outcome_text(sigma_z_final: float) -> str:
    """``→ |L⟩`` / ``→ |R⟩`` once collapsed (|⟨σz⟩| ≥ :data:`DECIDED`), else the value."""
    if abs(sigma_z_final) >= DECIDED:
        return "→ " + (KET_L if sigma_z_final > 0 else KET_R)
    return r"still undecided, $\langle\sigma_z\rangle_T$" + f" = {sigma_z_final:+.2f}"


def _draw_bloch_sphere(ax: Axes, *, labels: bool = True) -> None:
    """A wireframe unit sphere with its axes and the states |L⟩, |R⟩, |+⟩ labelled."""
    u, v = np.meshgrid(np.linspace(0, 2 * np.pi, 25), np.linspace(0, np.pi, 13))
    ax.plot_wireframe(
        np.cos(u) * np.sin(v), np.sin(u) * np.sin(v), np.cos(v), color="0.8", linewidth=0.3
    )
    circle = np.linspace(0, 2 * np.pi, 200)
    ax.plot(np.cos(circle), np.sin(circle), 0 * circle, color="0.5", linewidth=0.6)  # equator
    for axis in np.eye(3):
        ax.plot(*np.stack([-axis, axis], axis=1), color="0.5", linewidth=0.6)
    size = 11 if labels else 8.5
    ax.text(0, 0, 1.2, KET_L, ha="center", va="center", fontsize=size)
    ax.text(0, 0, -1.3, KET_R, ha="center", va="center", fontsize=size)
    ax.text(1.25, 0, -0.1, KET_PLUS, ha="left", va="top", fontsize=size)
    ax.set(xlim=(-1, 1), ylim=(-1, 1), zlim=(-1, 1))
    if labels:
        ax.set_xlabel(r"$\langle\sigma_x\rangle$", labelpad=-12)
        ax.set_ylabel(r"$\langle\sigma_y\rangle$", labelpad=-12)
        ax.set_zlabel(SIGMA_Z, labelpad=-12)
    ax.set_xticks([-1, 0, 1], labels=[])
    ax.set_yticks([-1, 0, 1], labels=[])
    ax.set_zticks([-1, 0, 1], labels=[])
    ax.set_box_aspect((1, 1, 1), zoom=1.1)
    ax.view_init(elev=20, azim=-38)
    for axis in (ax.xaxis, ax.yaxis, ax.zaxis):
        axis.set_pane_color((1.0, 1.0, 1.0, 0.0))


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
        d = float(model_params(cells).get("d", 1.0))
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


def _bloch_panels(fig: Figure, cell, bloch: xr.DataArray, mean_field, colours, labels) -> None:
    """One small Bloch sphere per realisation (paths on one meridian would hide each other),
    the mean-field path dashed in each and its end point marked and named in a legend."""
    n = len(colours)
    columns = 2 if n > 1 else 1
    rows = int(np.ceil(n / columns))
    grid = cell.subgridspec(rows, columns, wspace=0.0, hspace=0.0)
    mean_path = None if mean_field is None else bloch_vector(mean_field).isel(trajectory=0)
    axes = []
    for i, colour in enumerate(colours):
        ax = fig.add_subplot(grid[i // columns, i % columns], projection="3d")
        axes.append(ax)
        _draw_bloch_sphere(ax, labels=False)
        path = bloch.isel(trajectory=i)
        ax.plot(
            *(path.sel(component=c) for c in "xyz"), color=colour, lw=1.8, gid=f"realisation-{i}"
        )
        ax.plot(
            *(path.sel(component=c)[-1:] for c in "xyz"),
            "o", color=colour, markersize=6, markeredgecolor="black", markeredgewidth=0.5,
        )  # fmt: skip
        if mean_path is not None:
            ax.plot(
                *(mean_path.sel(component=c) for c in "xyz"), gid="mean-field", **MEAN_FIELD_STYLE
            )
            # the mean-field state may hardly move (mass_superposition stays near |+⟩)
            ax.plot(
                *(mean_path.sel(component=c)[-1:] for c in "xyz"),
                "D", color="black", markersize=5, markeredgecolor="white", gid="mean-field-end",
            )  # fmt: skip
        ax.set_title(str(labels[i]), fontsize=9, color=colour, pad=-2)


TRAJECTORY_DIMS_OF_CELLS = ("sigma", "seed", "trajectory")
"""Dimensions of ``status`` in a sweep that are not grid axes."""


def _cell_grid_axes(cells: xr.Dataset) -> tuple[str, ...]:
    """Grid axes of a sweep Dataset: the dims of ``status`` other than sigma, seed, trajectory."""
    if "status" not in cells:
        return ()
    return tuple(str(d) for d in cells["status"].dims if d not in TRAJECTORY_DIMS_OF_CELLS)


def _draw_trajectories(fig, cells: xr.Dataset, mean_field: xr.Dataset | None, heading: str) -> None:
    """The panels of one (grid point, σ) into ``fig`` (a Figure or a SubFigure)."""
    n = cells.sizes["trajectory"]
    colours = [_colour(i) for i in range(n)]
    bloch = bloch_vector(cells)
    time = cells["time"]
    labels = cells["label"].values if "label" in cells.coords else [f"#{i}" for i in range(n)]
    grid = fig.add_gridspec(2, 2, height_ratios=(1.35, 1.0), width_ratios=(1.0, 1.0))
    ax_classical = fig.add_subplot(grid[0, 0])
    _classical_panel(ax_classical, cells, mean_field, colours)
    _bloch_panels(fig, grid[0, 1], bloch, mean_field, colours, labels)
    ax_sz = fig.add_subplot(grid[1, :])
    for i, colour in enumerate(colours):
        z = bloch.isel(trajectory=i).sel(component="z")
        ax_sz.plot(
            time, z, color=colour, gid=f"realisation-{i}",
            label=f"{labels[i]} {outcome_text(float(z[-1]))}",
        )  # fmt: skip
    if mean_field is not None:
        z = bloch_vector(mean_field).isel(trajectory=0).sel(component="z")
        ax_sz.plot(mean_field["time"], z, label="mean field", gid="mean-field", **MEAN_FIELD_STYLE)
    ax_sz.set_ylim(-1.08, 1.08)
    ax_sz.set_yticks([-1, -0.5, 0, 0.5, 1])
    ax_sz.set_xlim(float(time[0]), float(time[-1]))
    ax_sz.set_xlabel(TIME_LABEL)
    ax_sz.set_ylabel(SIGMA_Z + r"$ = P_L - P_R$")
    ax_sz.set_title(r"$\langle\sigma_z\rangle(t)$: +1 = " + KET_L + ", −1 = " + KET_R)
    handles, names = ax_sz.get_legend_handles_labels()
    if mean_field is not None:  # the diamond on the Bloch spheres, named
        handles.append(Line2D([], [], color="black", marker="D", ls="none", markersize=5))
        names.append("mean field, end (spheres)")
    ax_sz.legend(
        handles, names, loc="center left", bbox_to_anchor=(1.0, 0.5),
        title="realisation (all panels)",
    )  # fmt: skip
    fig.suptitle(f"{heading}, {sigma_text(cells, float(cells['sigma']))}\n{model_title(cells)}")


def _trajectory_figure(
    cells: xr.Dataset,
    mean_field: xr.Dataset | None,
    realisations: Sequence[int] | int,
    sigma: float | None,
    heading: str,
) -> Figure:
    axes = _cell_grid_axes(cells)
    check_facets(
        "trajectories",
        {a: cells.sizes[a] for a in axes},
        many="; select one value of all but one (cells.sel(...))",
        too_long=": select some (cells.isel(...))",
    )
    mean_axes = () if mean_field is None else _cell_grid_axes(mean_field)
    if mean_field is not None and not mean_axes:
        mean_field = _pick(_one_sigma(mean_field, None), 1)
    with mpl.rc_context(FIGURE_STYLE):
        if not axes:
            fig = Figure(figsize=(8.6, 8.0), layout="constrained")
            _draw_trajectories(
                fig, _pick(_one_sigma(cells, sigma), realisations), mean_field, heading
            )
            return fig
        rows = cells.sizes[axes[0]]
        fig = Figure(figsize=(8.6, 8.0 * rows), layout="constrained")
        for i, sub in enumerate(np.atleast_1d(fig.subfigures(rows, 1))):
            point = cells.isel({axes[0]: i})
            twin = mean_field
            if mean_axes:  # a mean-field twin on the same grid: the same point
                twin = _pick(_one_sigma(mean_field.isel({axes[0]: i}), None), 1)
            label = point_label(point, axes)
            _draw_trajectories(
                sub, _pick(_one_sigma(point, sigma), realisations), twin, f"{label}: {heading}"
            )
    return fig


def plot_trajectories(
    cells: xr.Dataset,
    mean_field: xr.Dataset | None = None,
    *,
    realisations: Sequence[int] | int = 4,
    sigma: float | None = None,
) -> Figure:
    """Seed Fig. 1: realisations of ``mass_superposition`` (docs/physics.md, "Figures").

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
        panels.

    Returns
    -------
    Figure
        Top left: the test-mass path in the x–y plane (model length units) with the source
        positions (∓d, 0) marked; top right: one small Bloch sphere per realisation (the
        basis pair), with the mean-field path and its marked end point; bottom: ⟨σz⟩(t).
        Every line of realisation i carries ``gid="realisation-i"``; the mean-field lines
        ``gid="mean-field"``.
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
    """Stochastic realisations beside the mean-field path (docs/physics.md, "Figures").

    Meant for ``linear`` in the reference variant ``p0=10, t_final=0.45, σ=0.8``: the
    classical panel is phase space (q, p); Bloch spheres and ⟨σz⟩(t) as in
    :func:`plot_trajectories`. ``mean_field`` is the run with ``mode="mean_field"`` (the
    "standard semi-classical" dynamics: no noise, no collapse), drawn dashed.
    """
    return _trajectory_figure(
        cells, mean_field, realisations, sigma, "Stochastic realisations vs. mean field"
    )
