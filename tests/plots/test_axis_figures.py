"""Tests of the figures of a sweep with grid axes (Γ against an axis, the faceted decoherence
figure, the trade-off per grid point, convergence in dt) and of their registration by name.

Summaries of small real runs of ``linear`` stacked along a grid axis before ``sigma`` (as a
sweep with a ``grid:`` stores them), and a synthetic ``dt`` summary of known weak order;
figures are inspected through their artists (Agg backend).
"""

from __future__ import annotations

import re

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pytest
import xarray as xr

import cq_core
from cq_core import plots
from cq_core.analysis import summarise
from cq_core.cli import main
from cq_core.pipeline.summary_store import write_summary

LAMS = (0.5, 1.0, 2.0)
SIGMAS = (1.0, 2.0)
STEPS = np.array([0.008, 0.004, 0.002, 0.001, 0.0005])


def _sweep_summary(run: dict | None = None, **params) -> xr.Dataset:
    model = cq_core.get_model("linear", **params)
    settings = {"n_traj": 200, "t_final": 0.2, "dt": 1e-3, "seed": 0, "save_every": 5}
    cells = [cq_core.simulate(model, sigma=s, **settings, **(run or {})) for s in SIGMAS]
    sweep = xr.concat(cells, dim="sigma", combine_attrs="override")
    return summarise(sweep, time_slices=[0.0, 0.2], bins=10, fit_window=[0.0, 0.2]).compute()


def _stack(axis: str, values, summaries) -> xr.Dataset:
    coord = xr.DataArray(list(values), dims=axis, name=axis)
    return xr.concat(
        summaries, dim=coord, coords="minimal", compat="override", combine_attrs="override"
    )


@pytest.fixture(scope="module")
def lam_summary():
    return _stack("lam", LAMS, [_sweep_summary(lam=lam) for lam in LAMS])


@pytest.fixture(scope="module")
def dt_summary():
    """C(T) of weak order 1 and E⟨σz⟩_T of weak order 2, SE 2e-5, two σ."""
    rng = np.random.default_rng(3)
    times, sigmas, se = np.linspace(0.0, 0.2, 11), np.array([1.0, 2.0]), 2e-5
    dt, t = STEPS[:, None, None], times[None, None, :]
    shape = (STEPS.size, sigmas.size, times.size)
    noise = rng.normal(0.0, se, (2, *shape)) * (t > 0)
    dims = ("dt", "sigma", "time")
    return xr.Dataset(
        {
            "coherence": (dims, np.exp(-2.0 * t / sigmas[:, None] ** 2) + dt * t + noise[0]),
            "coherence_se": (dims, np.full(shape, se)),
            "sigma_z_mean": (dims, 2000.0 * dt**2 * t + noise[1]),
            "sigma_z_se": (dims, np.full(shape, se)),
            "gamma_fit": (("dt", "sigma"), np.ones(shape[:2])),
        },
        coords={"dt": STEPS, "sigma": sigmas, "time": times},
        attrs={"model": "linear", "model_params": '{"lam": 1.0}', "mode": "pure"},
    )


def _by_gid(ax, prefix: str) -> list:
    artists = [*ax.get_lines(), *ax.collections]
    return [a for a in artists if (a.get_gid() or "").startswith(prefix)]


def _slopes(texts: list[str], word: str) -> list[tuple[float, float]]:
    found = [re.search(word + r" (-?[\d.]+) ± ([\d.]+)", t) for t in texts]
    return [(float(m[1]), float(m[2])) for m in found if m]


# --------------------------------------------------------------------- Γ against an axis


def test_rate_vs_lam_is_log_log_with_slope_two_in_the_legend(lam_summary):
    fig = plots.plot_rate_vs_axis(lam_summary)  # the one grid axis: lam
    (ax,) = fig.axes
    assert (ax.get_xscale(), ax.get_yscale()) == ("log", "log")
    assert "lam" in ax.get_xlabel() and r"\lambda" in ax.get_xlabel()
    assert "lam" in fig.get_suptitle()
    for k in range(len(SIGMAS)):  # one series per σ: points, fit and theory
        assert len(_by_gid(ax, f"rate-{k}")) >= 1
        assert len(_by_gid(ax, f"fit-{k}")) == 1 and len(_by_gid(ax, f"theory-{k}")) == 1
    texts = [t.get_text() for t in fig.legends[0].get_texts()]
    assert any("sigma = 1" in t for t in texts) and any("sigma = 2" in t for t in texts)
    slopes = _slopes(texts, "slope")
    assert len(slopes) == len(SIGMAS)
    for slope, se in slopes:
        assert abs(slope - 2.0) < 4.5 * max(se, 0.005)  # Γ ∝ λ²
    assert all("(theory 2.00)" in t for t in texts if "slope" in t)
    theory = _by_gid(ax, "theory-0")[0]  # Γ = 2λ²/σ² at σ = 1
    np.testing.assert_allclose(
        np.interp(LAMS, theory.get_xdata(), theory.get_ydata()), 2.0 * np.square(LAMS), rtol=2e-3
    )


def test_rate_vs_sigma_has_one_series_per_grid_point(lam_summary):
    fig = plots.plot_rate_vs_axis(lam_summary, axis="sigma")
    (ax,) = fig.axes
    texts = [t.get_text() for t in fig.legends[0].get_texts()]
    for lam in ("0.5", "1", "2"):
        assert any(t.startswith(f"lam = {lam}: fit slope") for t in texts)
    for slope, se in _slopes(texts, "slope"):
        assert abs(slope + 2.0) < 4.5 * max(se, 0.005)
    assert "noise strength" in ax.get_xlabel()


def test_rate_vs_a_linear_axis_draws_no_power_law(lam_summary):
    phi = lam_summary.rename(lam="phi").assign_coords(phi=[0.0, 2.0, 5.0])
    (ax,) = plots.plot_rate_vs_axis(phi).axes
    assert (ax.get_xscale(), ax.get_yscale()) == ("linear", "linear")
    assert not _by_gid(ax, "fit-")
    assert "phi" in ax.get_xlabel() and "no power law" in ax.get_title()


def test_rate_vs_a_vector_axis_labels_its_vectors(lam_summary):
    """A vector axis as open_sweep lays it out: dim r0_index, vectors in the variable r0."""
    vectors = [[0.0, -0.5, 0.0], [0.0, -1.0, 0.0], [0.4, -0.5, 0.0]]
    grid = lam_summary.rename(lam="r0_index").assign_coords(r0_index=[0, 1, 2])
    grid["r0"] = (("r0_index", "r0_component"), vectors)
    (ax,) = plots.plot_rate_vs_axis(grid, axis="r0").axes
    ticks = [t.get_text() for t in ax.get_xticklabels()]
    assert ticks == ["(0, -0.5, 0)", "(0, -1, 0)", "(0.4, -0.5, 0)"]
    assert ax.get_xscale() == "linear" and not _by_gid(ax, "fit-")
    assert "r0" in ax.get_xlabel() and "r0_index" not in ax.get_xlabel()
    theory = _by_gid(ax, "theory-0")[0]  # categories: theory dashes, no line between them
    assert theory.get_linestyle() == "None" and theory.get_marker() == "_"


def test_rate_vs_axis_refuses_what_it_cannot_draw(lam_summary):
    with pytest.raises(ValueError, match="axis must be one of .*sigma, lam.*got 'M'"):
        plots.plot_rate_vs_axis(lam_summary, axis="M")
    two = _stack("phi", [0.0, 5.0], [lam_summary, lam_summary])
    with pytest.raises(ValueError, match="axis must be given: .*grid axes phi, lam"):
        plots.plot_rate_vs_axis(two)
    many = _stack("phi", np.arange(6.0), [lam_summary] * 6)
    with pytest.raises(ValueError, match="at most 10 series"):
        plots.plot_rate_vs_axis(many, axis="lam")


# ------------------------------------------------------------ decoherence, faceted


def test_decoherence_figure_has_one_row_per_grid_value(lam_summary):
    fig = plots.plot_decoherence(lam_summary)
    assert len(fig.axes) == 2 * len(LAMS)
    rows = np.array(fig.axes).reshape(len(LAMS), 2)
    for (ax_c, ax_g), lam in zip(rows, LAMS, strict=True):
        assert ax_c.get_title().startswith(f"lam = {lam:g}:")
        assert ax_g.get_title().startswith(f"lam = {lam:g}:")
        theory = next(line for line in ax_g.get_lines() if line.get_gid() == "gamma-theory")
        np.testing.assert_allclose(  # each row its own theory: Γ = 2λ²/σ²
            np.interp(SIGMAS, theory.get_xdata(), theory.get_ydata()),
            2.0 * lam**2 / np.square(SIGMAS),
            rtol=1e-3,
        )
        gids = {line.get_gid() for line in ax_c.get_lines()}
        assert {f"coherence-{s:g}" for s in SIGMAS} <= gids
    title = fig.get_suptitle()
    assert "one row per coupling" in title and "(lam)" in title
    assert "lam = 0.5)" not in title  # the stored first value is not shown as the model's


def test_decoherence_figure_refuses_two_grid_axes(lam_summary):
    two = _stack("phi", [0.0, 5.0], [lam_summary, lam_summary])
    with pytest.raises(ValueError, match="facets one grid axis.*phi, lam"):
        plots.plot_decoherence(two)
    with pytest.raises(ValueError, match="grid axes lam"):
        plots.plot_sigma_z_histograms(lam_summary)


# ----------------------------------------------------------------------- trade-off


def test_tradeoff_has_one_series_and_bound_per_grid_point(lam_summary):
    fig = plots.plot_tradeoff(lam_summary)
    ax, ax_u = fig.axes[:2]
    labels = [t.get_text() for t in fig.legends[0].get_texts()]
    for lam in ("0.5", "1", "2"):
        assert sum(label.endswith(f"lam = {lam}") for label in labels) == 1
    gaps = sorted(float(m[1]) for m in (re.search(r"= ([\d.]+)\$$", t) for t in labels) if m)
    assert gaps == pytest.approx([4.0, 16.0, 64.0])  # |Δf|² = 16λ² per grid point
    assert len([line for line in ax.get_lines() if line.get_gid() == "bound-linear"]) == 3
    universal = np.concatenate(
        [line.get_ydata() for line in ax_u.get_lines() if line.get_marker() in ("o", "s", "D")]
    )
    assert universal.size == len(LAMS) * len(SIGMAS)
    np.testing.assert_allclose(universal, 1.0 / 16.0, rtol=0.2)  # every point on the bound


def test_tradeoff_over_an_excess_axis_puts_each_point_at_its_own_line():
    excesses = (0.0, 1.0)
    runs = [_sweep_summary({"mode": "density", "excess": v}) for v in excesses]
    for run in runs:
        run.attrs["excess"] = 0.0  # the grid's attrs hold no per-point value: the axis does
    fig = plots.plot_tradeoff(_stack("excess", excesses, runs))
    labels = [t.get_text() for t in fig.legends[0].get_texts()]
    assert any("v = 0$), excess = 0" in t for t in labels)
    assert any("v = 1$), excess = 1" in t for t in labels)
    assert any("expected $(1+v)" in t and "v = 1" in t for t in labels)  # the v = 1 line
    ax_u = fig.axes[1]
    markers = [line for line in ax_u.get_lines() if line.get_marker() in ("o", "s", "D")]
    assert len(markers) == 2
    for line, excess in zip(markers, excesses, strict=True):  # Γ·D2/|Δf|² = (1+v)/16
        np.testing.assert_allclose(line.get_ydata(), (1.0 + excess) / 16.0, rtol=0.2)


# --------------------------------------------------------------------- convergence


def test_convergence_figure_shows_the_weak_orders(dt_summary):
    fig = plots.plot_convergence(dt_summary)
    assert len(fig.axes) == 2
    for ax, order in zip(fig.axes, (1.0, 2.0), strict=True):
        assert (ax.get_xscale(), ax.get_yscale()) == ("log", "log")
        assert "dt" in ax.get_xlabel() and r"\Delta t" in ax.get_xlabel()
        assert "t = 0.2" in ax.get_title()
        texts = [t.get_text() for t in ax.get_legend().get_texts()]
        fitted = _slopes(texts, "observed weak order")
        assert len(fitted) == 2 and any(t.startswith("sigma = 2:") for t in texts)
        for value, se in fitted:
            assert abs(value - order) < 4.5 * se and se < 0.1
        assert (
            len([line for line in ax.get_lines() if (line.get_gid() or "").startswith("order-")])
            == 2
        )
    assert "0.0005" in fig.get_suptitle()  # the reference step is named


def test_convergence_figure_needs_a_dt_axis(lam_summary, dt_summary):
    with pytest.raises(ValueError, match="needs a 'dt' grid axis.*'lam'"):
        plots.plot_convergence(lam_summary)
    with pytest.raises(ValueError, match="time must lie within"):
        plots.plot_convergence(dt_summary, time=1.0)


# ------------------------------------------------------------------- by name, CLI


def test_summary_figures_by_name(lam_summary):
    assert {"decoherence", "histograms", "rate_vs_axis", "convergence"} <= set(
        plots.SUMMARY_FIGURES
    )
    with pytest.raises(ValueError, match="figure must be one of .*rate_vs_axis"):
        plots.summary_figure("gamma", lam_summary)
    with pytest.raises(ValueError, match="'decoherence' takes the options"):
        plots.summary_figure("decoherence", lam_summary, axis="lam")
    fig = plots.summary_figure("rate_vs_axis", lam_summary, axis="sigma", time=None)
    assert "noise strength" in fig.axes[0].get_xlabel()


def test_figure_command_draws_rate_vs_axis_and_convergence(tmp_path, lam_summary, dt_summary):
    write_summary(lam_summary, tmp_path / "lam.zarr")
    write_summary(dt_summary, tmp_path / "dt.zarr")
    png = tmp_path / "rate.png"
    args = ["figure", "rate_vs_axis", "--summary", str(tmp_path / "lam.zarr"), "--axis", "lam"]
    assert main([*args, "--output", str(png)]) == 0 and png.stat().st_size > 0
    conv = tmp_path / "conv.pdf"
    args = ["figure", "convergence", "--summary", str(tmp_path / "dt.zarr"), "--time", "0.1"]
    assert main([*args, "--output", str(conv)]) == 0 and conv.stat().st_size > 0
    args = ["figure", "rate_vs_axis", "--summary", str(tmp_path / "lam.zarr"), "--axis", "M"]
    assert main([*args, "--output", str(png)]) == 2  # a clear error, exit status 2


# -------------------------------------------------------------------- trajectories


def test_trajectory_figure_has_one_row_per_phi():
    """The paper's Fig. 7 pair as one sweep: phi = 0 and phi = 5 on a phi axis."""
    run = {"sigma": 0.05, "t_final": 0.02, "dt": 1e-4, "seed": 0, "save_every": 10}
    cells = [
        cq_core.simulate(cq_core.get_model("mass_superposition", phi=phi), n_traj=3, **run)
        for phi in (0.0, 5.0)
    ]
    sweep = xr.concat(cells, dim=xr.DataArray([0.0, 5.0], dims="phi", name="phi"))
    fig = plots.plot_trajectories(sweep)
    assert len(fig.subfigs) == 2
    for sub, phi in zip(fig.subfigs, ("0", "5"), strict=True):
        assert sub.get_suptitle().startswith(f"phi = {phi}: Classical–quantum trajectories")
        for i in range(3):  # x–y plane, Bloch sphere and <σz>(t) of each realisation
            gids = [line for ax in sub.axes for line in ax.get_lines()]
            assert sum(line.get_gid() == f"realisation-{i}" for line in gids) == 3
    assert not fig.get_suptitle()  # each row says its phi; no stale phi of the first cell
    with pytest.raises(ValueError, match="at most 4 rows.*'phi' has 5"):
        plots.plot_trajectories(xr.concat([sweep, sweep, sweep.isel(phi=[0])], dim="phi"))
    two = xr.concat([sweep, sweep], dim=xr.DataArray([1.0, 2.0], dims="lam", name="lam"))
    with pytest.raises(ValueError, match="facets one grid axis.*lam, phi"):
        plots.plot_trajectories(two)


# --------------------------------------------------------------------------- table


def test_born_table_has_a_row_per_grid_point_and_sigma(lam_summary):
    from cq_core.tables import BORN_COLUMNS, born_table, born_table_html

    table = born_table(lam_summary)
    columns = list(table.columns)
    assert columns[columns.index("sigma") - 1] == "lam"
    assert [c for c in columns if c != "lam"] == list(BORN_COLUMNS)
    assert len(table) == len(LAMS) * len(SIGMAS)
    assert list(zip(table["lam"], table["sigma"], strict=True)) == [
        (lam, sigma) for lam in LAMS for sigma in SIGMAS
    ]
    one = born_table(lam_summary.sel(lam=2.0))  # the same rows as the point's own table
    row = table[table["lam"] == 2.0].reset_index(drop=True)
    for name in ("fraction_L", "fraction_L_ci_low", "sigma_z_T", "martingale_z", "born_z"):
        np.testing.assert_allclose(row[name], one[name])
    assert np.all(row["born_p_holm"] >= one["born_p_holm"])  # Holm over 3× the checks
    page = born_table_html(table)
    assert page.count("<tr>") + page.count('<tr class="check">') == 1 + len(table)
    assert "<th>lam</th>" in page


@pytest.mark.parametrize(
    ("name", "axes", "axis", "match"),
    [
        ("histograms", {"sigma": 2, "lam": 3}, None, "no grid axis"),
        ("decoherence", {"sigma": 2, "lam": 3, "phi": 2}, None, "facets one grid axis"),
        ("decoherence", {"sigma": 2, "lam": 9}, None, "at most 8 rows"),
        ("trajectories", {"sigma": 1, "phi": 5}, None, "at most 4 rows"),
        ("rate_vs_axis", {"sigma": 2, "lam": 3, "phi": 2}, None, "needs an axis"),
        ("rate_vs_axis", {"sigma": 2, "lam": 3}, "M", "must be one of"),
        ("rate_vs_axis", {"sigma": 11, "lam": 3}, None, "at most 10 series"),
        ("convergence", {"sigma": 2, "lam": 3}, None, "needs a dt grid axis"),
        ("convergence", {"sigma": 2, "dt": 2}, None, "at least three values"),
        ("convergence", {"sigma": 4, "dt": 3, "lam": 3}, None, "at most 10 series"),
    ],
)
def test_check_figure_refuses_before_any_job(name, axes, axis, match):
    with pytest.raises(ValueError, match=match):
        plots.check_figure(name, axes, axis=axis)


def test_check_figure_passes_what_the_figures_draw(lam_summary, dt_summary):
    for name in ("decoherence", "rate_vs_axis", "trajectories", "born", "phase_space"):
        plots.check_figure(name, {"sigma": 2, "lam": 3})
    plots.check_figure("rate_vs_axis", {"sigma": 2, "lam": 3, "phi": 2}, axis="lam")
    plots.check_figure("convergence", {"sigma": 2, "dt": 5})
    plots.check_figure("histograms", {"sigma": 2})
    plots.plot_convergence(dt_summary)  # and the figures indeed draw these shapes
    plots.plot_decoherence(lam_summary)
