"""Tests of :mod:`cq_core.plots` and :mod:`cq_core.tables` (docs/physics.md figures and tables).

Small real runs of :func:`cq_core.simulate` (a few hundred trajectories, coarse steps) and
their summaries from :func:`cq_core.analysis.summarise`; figures are inspected through their
artists (colours, gids, labels, data), drawn with the Agg backend.
"""

from __future__ import annotations

import matplotlib
import matplotlib.patches

matplotlib.use("Agg")

import numpy as np
import pytest
import xarray as xr
from matplotlib.colors import to_rgba
from matplotlib.lines import Line2D

import cq_core
from cq_core import plots
from cq_core.analysis import summarise
from cq_core.tables import BORN_COLUMNS, born_table

LINEAR_SIGMAS = (0.5, 1.0, 2.0)


def _summary(model, *, sigmas, mode="pure", excess=0.0, n_traj=200, t_final=0.2, seed=0):
    """A summary of a small σ sweep (cells concatenated along sigma, as open_sweep does)."""
    cells = [
        cq_core.simulate(
            model,
            sigma=s,
            n_traj=n_traj,
            t_final=t_final,
            dt=1e-3,
            seed=seed,
            save_every=5,
            mode=mode,
            excess=excess,
        )
        for s in sigmas
    ]
    sweep = xr.concat(cells, dim="sigma", combine_attrs="override")
    summary = summarise(sweep, time_slices=[0.0, 0.1, t_final], bins=20, fit_window=[0, t_final])
    return summary.compute()


@pytest.fixture(scope="module")
def mass_cells():
    """Four mass_superposition realisations at σ = 2.5m and the mean-field path (short)."""
    model = cq_core.get_model("mass_superposition")
    run = {"sigma": 0.025, "t_final": 0.05, "dt": 1e-4, "seed": 0, "save_every": 10}
    return (
        cq_core.simulate(model, n_traj=4, **run),
        cq_core.simulate(model, n_traj=1, mode="mean_field", **run),
    )


@pytest.fixture(scope="module")
def linear_summary():
    return _summary(cq_core.get_model("linear"), sigmas=LINEAR_SIGMAS)


@pytest.fixture(scope="module")
def linear_density_summary():
    return _summary(cq_core.get_model("linear"), sigmas=(0.5, 2.0), mode="density", excess=1.0)


def _lines_by_gid(fig) -> dict[str, list[tuple[object, Line2D]]]:
    found: dict[str, list[tuple[object, Line2D]]] = {}
    for ax in fig.axes:
        for line in ax.get_lines():
            if line.get_gid():
                found.setdefault(line.get_gid(), []).append((ax, line))
    return found


# ------------------------------------------------------------------------ trajectories


def test_trajectory_figure_has_one_colour_per_realisation_shared_by_all_panels(mass_cells):
    cells, mean_field = mass_cells
    fig = plots.plot_trajectories(cells, mean_field)
    lines = _lines_by_gid(fig)
    colours = []
    for i in range(4):
        entries = lines[f"realisation-{i}"]
        assert len({id(ax) for ax, _ in entries}) == 3  # x–y plane, Bloch sphere, ⟨σz⟩(t)
        assert len({to_rgba(line.get_color()) for _, line in entries}) == 1
        colours.append(to_rgba(entries[0][1].get_color()))
    assert len(set(colours)) == 4
    mean_field_lines = lines["mean-field"]
    assert len(mean_field_lines) == 2 + 4  # x–y plane, ⟨σz⟩(t) and each realisation's sphere
    assert all(line.get_linestyle() == "--" for _, line in mean_field_lines)


def test_trajectory_figure_panels_bloch_sphere_labels_and_title(mass_cells):
    cells, mean_field = mass_cells
    fig = plots.plot_trajectories(cells, mean_field)
    bloch = [ax for ax in fig.axes if ax.name == "3d"]
    assert len(bloch) == 4  # one small sphere per realisation: no path hides another
    for ax in bloch:
        assert {plots.KET_L, plots.KET_R, plots.KET_PLUS} <= {t.get_text() for t in ax.texts}
    legend = [t.get_text() for t in fig.axes[-1].get_legend().get_texts()]
    assert "mean field, end (spheres)" in legend  # the black diamond is named
    flat = [ax for ax in fig.axes if ax.name != "3d"]
    assert len(flat) == 2
    for ax in flat:
        assert ax.get_xlabel() and ax.get_ylabel()
        assert ax.get_legend() is not None
    classical, sigma_z = flat
    assert (classical.get_xlabel(), classical.get_ylabel()) == ("$x$", "$y$")
    assert "source" in " ".join(t.get_text() for t in classical.get_legend().get_texts())
    assert sigma_z.get_xlabel().startswith("time")
    title = fig.get_suptitle()
    assert "source mass in superposition" in title and r"2.5\,m" in title
    assert "G=" not in title and "eps" not in title  # no raw parameter dump


def test_trajectory_figure_accepts_an_open_sweep_style_dataset(mass_cells):
    """(sigma, seed, trajectory) dims: seeds are flattened, σ selected by value."""
    cells, _ = mass_cells
    other = cells.assign_coords(seed=1)
    sweep = xr.concat([cells, other], dim="seed").expand_dims("sigma")
    fig = plots.plot_trajectories(sweep, sigma=0.025, realisations=[0, 4])
    legend = fig.axes[-1].get_legend()
    labels = [t.get_text() for t in legend.get_texts()]
    assert labels[0].startswith("seed 0, #0") and labels[1].startswith("seed 1, #0")


def test_mean_field_comparison_uses_phase_space():
    model = cq_core.get_model("linear", p0=10.0)
    run = {"sigma": 0.8, "t_final": 0.05, "dt": 1e-4, "seed": 0, "save_every": 10}
    cells = cq_core.simulate(model, n_traj=2, **run)
    mean_field = cq_core.simulate(model, n_traj=1, mode="mean_field", **run)
    fig = plots.plot_mean_field_comparison(cells, mean_field)
    classical = fig.axes[0]
    assert (classical.get_xlabel(), classical.get_ylabel()) == ("$q$", "$p$")
    lines = _lines_by_gid(fig)
    assert set(lines) == {"realisation-0", "realisation-1", "mean-field", "mean-field-end"}
    _, line = next((ax, ln) for ax, ln in lines["mean-field"] if ax is classical)
    np.testing.assert_allclose(line.get_ydata(), 10.0)  # no force on average: p stays p0
    assert "linear" in fig.get_suptitle() and "p0 = 10" in fig.get_suptitle()
    assert "m = " not in fig.get_suptitle()  # only the parameters that differ from defaults


def test_bloch_vector_of_known_states():
    states = np.array([[1, 0], [0, 1], [1, 1], [1, 1j]]) / np.array([1, 1, 2, 2])[:, None] ** 0.5
    psi = xr.DataArray(states[:, None, :], dims=("trajectory", "time", "level"))
    ds = xr.Dataset({"psi": psi}, attrs={"basis_pair": [0, 1]})
    expected = [[0, 0, 1], [0, 0, -1], [1, 0, 0], [0, 1, 0]]
    np.testing.assert_allclose(plots.bloch_vector(ds).isel(time=0), expected, atol=1e-15)
    rho = xr.DataArray(
        np.einsum("nk,nb->nkb", states, states.conj())[:, None],
        dims=("trajectory", "time", "ket", "bra"),
    )
    from_rho = plots.bloch_vector(xr.Dataset({"rho": rho}, attrs={"basis_pair": [0, 1]}))
    np.testing.assert_allclose(from_rho.isel(time=0), expected, atol=1e-15)


# ----------------------------------------------------------------------- histograms


def test_histogram_figure_one_panel_per_sigma_and_slice_with_counts(linear_summary):
    fig = plots.plot_sigma_z_histograms(linear_summary)
    n_slices = linear_summary.sizes["slice"]
    assert len(fig.axes) == len(LINEAR_SIGMAS) * n_slices  # rows σ, columns time slices
    rows = np.array(fig.axes).reshape(len(LINEAR_SIGMAS), n_slices)
    for row, sigma in zip(rows, LINEAR_SIGMAS, strict=True):
        label = row[0].get_ylabel()
        assert f"{sigma:g}" in label and "n = 200" in label and "discarded = 0" in label
        times = linear_summary.slice_time.values
        for ax, t in zip(row, times, strict=True):
            assert ax.get_title().startswith(f"$t = {t:g}$") and "$C = " in ax.get_title()
            assert ax.get_xlim() == pytest.approx((-1.02, 1.02))
    assert "linear" in fig.get_suptitle()


def test_histogram_slices_are_picked_by_coherence(linear_summary):
    """More stored slices than panels: the ones nearest C = 0.9, 0.5, 0.2, 0.05 are drawn."""
    times = linear_summary.time.values
    slices = times[:: max(1, len(times) // 12)]
    summary = linear_summary.drop_dims(["slice", "bin"])
    hist = xr.DataArray(
        np.ones((summary.sizes["sigma"], len(slices), 4)),
        dims=("sigma", "slice", "bin"),
        coords={"slice_time": ("slice", slices), "bin_lower": ("bin", [-1, -0.5, 0, 0.5]),
                "bin_upper": ("bin", [-0.5, 0, 0.5, 1])},
    )  # fmt: skip
    summary["sigma_z_hist"] = hist
    from cq_core.plots.histograms import pick_slices

    coherence = summary.coherence.sel(sigma=0.5).sel(time=slices).values  # Γ = 8: 1 → 0.2
    chosen = pick_slices(summary, 0.5, 2)
    for target, index in zip((0.9, 0.5), chosen, strict=True):
        best = np.min(np.abs(np.log(coherence) - np.log(target)))
        assert abs(np.log(coherence[index]) - np.log(target)) == pytest.approx(best)
    fig = plots.plot_sigma_z_histograms(summary)
    assert len([ax for ax in fig.axes if ax.get_visible()]) == 4 * summary.sizes["sigma"]


def test_histogram_figure_from_trajectories(mass_cells):
    """Trajectories instead of a summary: histogrammed here, flagged ones counted."""
    cells, _ = mass_cells
    fig = plots.plot_sigma_z_histograms(cells, time_slices=[0.0, 0.05], bins=10)
    ax0, ax1 = fig.axes
    assert "n = 4, discarded = 0" in ax0.get_ylabel() and r"2.5\,m" in ax0.get_ylabel()
    assert [ax0.get_title(), ax1.get_title()] == ["$t = 0$", "$t = 0.05$"]


# ---------------------------------------------------------------------- decoherence


def test_decoherence_figure_axes_and_theory(linear_summary):
    fig = plots.plot_decoherence(linear_summary)
    ax_c, ax_g = fig.axes[:2]
    assert ax_c.get_yscale() == "log"
    assert (ax_g.get_xscale(), ax_g.get_yscale()) == ("log", "log")
    for ax in (ax_c, ax_g):
        assert ax.get_xlabel() and ax.get_ylabel() and ax.get_legend() is not None
    # one C(t) curve per σ, and the theory line Γ = 2λ²/σ² (λ = 1) through every σ
    assert all(f"coherence-{s:g}" in _lines_by_gid(fig) for s in LINEAR_SIGMAS)
    theory = _lines_by_gid(fig)["gamma-theory"][0][1]
    np.testing.assert_allclose(
        np.interp(LINEAR_SIGMAS, theory.get_xdata(), theory.get_ydata()),
        2.0 / np.square(LINEAR_SIGMAS),
        rtol=1e-3,
    )
    legend = " ".join(t.get_text() for t in ax_g.get_legend().get_texts())
    assert "slope" in legend and "(1+v)" not in legend  # a pure-state run: no excess factor
    # error bars drawn above the markers, so that small ones stay visible
    bars = [c for c in ax_g.collections if c.get_zorder() > 3]
    markers = [line for line in ax_g.lines if line.get_marker() == "o"]
    assert bars and markers
    assert all(c.get_zorder() > m.get_zorder() for c in bars for m in markers)
    assert "multiples" in ax_g.get_xlabel() or "model units" in ax_g.get_xlabel()
    assert "z from" in ax_g.get_title() and "Holm" in ax_g.get_title()  # the Γ check shown


# ------------------------------------------------------------------------ trade-off


def test_force_gap_of_the_built_in_models(linear_summary):
    assert plots.force_gap_squared(linear_summary) == pytest.approx(16.0)  # (4λ)², λ = 1
    mass = cq_core.simulate(
        cq_core.get_model("mass_superposition"), sigma=0.02, n_traj=1, t_final=1e-3, dt=1e-4, seed=0
    )
    assert np.sqrt(plots.force_gap_squared(mass)) == pytest.approx(0.143, abs=5e-4)


def test_tradeoff_bound_line_and_points(linear_summary, linear_density_summary):
    fig = plots.plot_tradeoff([linear_summary, linear_density_summary])
    ax, ax_universal = fig.axes
    assert (ax.get_xscale(), ax.get_yscale()) == ("log", "log")
    assert "D_2" in ax.get_xlabel() and "Gamma" in ax.get_ylabel()
    bound = _lines_by_gid(fig)["bound-linear"]
    assert len(bound) == 1  # both sweeps share |Δf|² = 16: one bound line
    d2, gamma = bound[0][1].get_xdata(), bound[0][1].get_ydata()
    np.testing.assert_allclose(gamma, 16.0 / (16.0 * d2))
    assert ax.collections  # the shaded forbidden region
    # pure-state points on the bound, v = 1 points above it (about twice the bound)
    on_line = linear_summary["gamma_fit"] * linear_summary["sigma"] ** 2 / 2
    above = linear_density_summary["gamma_fit"] * linear_density_summary["sigma"] ** 2 / 2
    np.testing.assert_allclose(on_line, 1.0, rtol=0.15)
    np.testing.assert_allclose(above, 2.0, rtol=0.15)
    assert len(fig.legends) == 1
    assert "trade-off" in fig.get_suptitle()
    # the universal form: one horizontal bound 1/16; pure runs on it, v = 1 runs at 2/16
    universal = _lines_by_gid(fig)["bound-universal"][0][1]
    np.testing.assert_allclose(universal.get_ydata(), 1 / 16)
    points = [ln for ln in ax_universal.get_lines() if ln.get_marker() in ("o", "s", "D", "^")]
    pure_y = np.concatenate(
        [ln.get_ydata() for ln in points if to_rgba(ln.get_markerfacecolor()) != to_rgba("white")]
    )
    np.testing.assert_allclose(pure_y, 1 / 16, rtol=0.15)
    # the shading and its legend swatch have one colour
    swatch = next(
        h
        for h in fig.legends[0].legend_handles
        if "forbidden" in h.get_label() or isinstance(h, matplotlib.patches.Patch)
    )
    shade = ax.collections[0]
    assert to_rgba(swatch.get_facecolor()) == pytest.approx(to_rgba(shade.get_facecolor()[0]))


# ----------------------------------------------------------------------- Born table


def test_born_table_covers_the_born_weight_of_a_fair_run():
    """ψ0 with |⟨L|ψ0⟩|² = 0.7, run until collapsed (C(T) ≈ 1%): CI and martingale hold."""
    model = cq_core.get_model("linear", psi0=[np.sqrt(0.7), np.sqrt(0.3)])
    cells = cq_core.simulate(model, sigma=0.5, n_traj=600, t_final=0.6, dt=1e-3, seed=3)
    table = born_table(cells)
    assert tuple(table.columns) == BORN_COLUMNS
    (row,) = table.itertuples()
    assert row.n_used == 600 and row.n_flagged == 0
    assert row.born_weight == pytest.approx(0.7)
    assert row.sigma_z_0 == pytest.approx(0.4)
    assert row.coherence_T < 0.05
    assert row.fraction_L_ci_low < 0.7 < row.fraction_L_ci_high and row.born_in_ci
    assert row.fraction_L_ci_high - row.fraction_L_ci_low < 0.1
    assert abs(row.martingale_z) < 3
    assert row.sigma_z_T_se == pytest.approx(np.sqrt(1 - 0.4**2) / np.sqrt(600), rel=0.15)


def test_born_table_from_summary_matches_table_from_trajectories(linear_summary):
    table = born_table(linear_summary)
    assert tuple(table.columns) == BORN_COLUMNS
    np.testing.assert_allclose(table["sigma"], LINEAR_SIGMAS)
    assert (table["n_used"] == 200).all() and (table["n_flagged"] == 0).all()
    assert (table["fraction_L_ci_low"] <= table["fraction_L"]).all()
    assert (table["fraction_L"] <= table["fraction_L_ci_high"]).all()
    cell = cq_core.simulate(
        cq_core.get_model("linear"),
        sigma=1.0,
        n_traj=200,
        t_final=0.2,
        dt=1e-3,
        seed=0,
        save_every=5,
    )
    direct = born_table(cell).iloc[0]
    from_summary = table.set_index("sigma").loc[1.0]
    for column in ("sigma_z_T", "sigma_z_T_se", "fraction_L", "fraction_L_ci_low", "coherence_T"):
        assert direct[column] == pytest.approx(from_summary[column], rel=1e-12)


# ---------------------------------------------------------------------------- files


def test_save_figure_writes_png_and_pdf(tmp_path, linear_summary):
    fig = plots.plot_sigma_z_histograms(linear_summary)
    png, pdf = plots.save_figure(fig, tmp_path / "figures" / "histograms")
    assert png.name == "histograms.png" and pdf.name == "histograms.pdf"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert pdf.read_bytes()[:5] == b"%PDF-"
    width = int.from_bytes(png.read_bytes()[16:20], "big")
    assert 800 <= width <= 1800  # README-sized at 150 dpi
