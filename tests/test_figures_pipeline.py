"""End-to-end tests of the figures and tables (docs/physics.md): each sweep's job draws its own
(workflow/rules/sweeps.smk), the trade-off figure has its own job (workflow/rules/figures.smk).

A tiny sweep of ``linear`` (two σ, 20 trajectories, ten steps) and its mean-field twin run
once through real Snakemake in a temporary copy of the workflow (the helpers of
tests/test_pipeline.py build the copy and read Snakemake's dry-run job table). The figures
and tables must come from the stored cells and summaries: a figure-only setting reruns only
figure work (the sweep job again, which stores no cell), an analysis setting the summary and
the figures, and ``snakemake --report`` embeds every figure and table.
"""

from __future__ import annotations

import copy
import re
import shutil
from pathlib import Path

import pandas as pd
import pytest
import yaml
from workflow_helpers import TINY, config_override, copy_workflow, planned_jobs, run_snakemake

from cq_core.cli import main as cli_main
from cq_core.tables import BORN_COLUMNS

SWEEP_JOB = "sweep_tiny"
"""The job of the sweep with the figures (its cells, summary, figures and tables)."""
SWEEP_FIGURES = ("trajectories", "mean_field", "histograms", "decoherence")
# one decoherence figure per sweep: named apart
FILE_NAMES = {"decoherence": "tiny_decoherence"}
GRID_FIGURES = ("rate_vs_axis", "decoherence", "born")


def _figure_config() -> dict:
    """TINY with every per-sweep figure, a mean-field twin and the trade-off figure."""
    config = copy.deepcopy(TINY)
    tiny = config["sweeps"]["tiny"]
    tiny["analysis"]["figures"] = [*SWEEP_FIGURES, "born"]
    tiny["analysis"]["mean_field"] = "tiny_mean_field"
    twin = copy.deepcopy(tiny)
    twin.update(sigma=[1.0], n_traj=1, mode="mean_field")
    twin["analysis"].update(figures=[], mean_field=None)
    config["sweeps"]["tiny_mean_field"] = twin
    # a grid sweep (a lam axis): Γ against lam, the decoherence figure faceted by lam, the
    # Born table per grid point and one trade-off series per grid point
    grid = copy.deepcopy(tiny)
    grid["analysis"].update(figures=[*GRID_FIGURES], mean_field=None)
    grid.update(sigma=[1.0], grid={"lam": [1.0, 2.0]})
    config["sweeps"]["tiny_lam"] = grid
    config["figures"] = {"tradeoff": ["tiny", "tiny_lam"], "realisations": 2, "dpi": 40}
    return config


@pytest.fixture(scope="module")
def workflow(tmp_path_factory) -> Path:
    """A copy of the workflow with the figure config, run once for real with --cores 2."""
    workdir = copy_workflow(tmp_path_factory.mktemp("figures") / "repo")
    (workdir / "config" / "config.yaml").write_text(yaml.safe_dump(_figure_config()))
    result = run_snakemake(workdir, "--cores", "2")
    assert result.returncode == 0, result.stdout + result.stderr
    return workdir


def test_the_run_writes_every_figure_and_table(workflow):
    sweep = workflow / "results" / "tiny"
    stems = [sweep / "figures" / FILE_NAMES.get(name, name) for name in SWEEP_FIGURES]
    stems.append(workflow / "results" / "figures" / "tradeoff")
    for stem in stems:
        png, pdf = stem.with_suffix(".png"), stem.with_suffix(".pdf")
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", png
        assert pdf.read_bytes()[:5] == b"%PDF-", pdf
    table = pd.read_csv(sweep / "tables" / "born.csv")
    assert list(table.columns) == list(BORN_COLUMNS)
    assert table["sigma"].tolist() == [1.0, 2.0]
    assert (table["n_used"] == 20).all() and (table["n_flagged"] == 0).all()
    page = (sweep / "tables" / "born.html").read_text()
    assert page.startswith("<!DOCTYPE html>") and "fraction near |L⟩" in page
    log = (sweep / "logs" / "sweep.log").read_text()
    for step in ("run-batch", "summarise", *(f"figure {n}" for n in SWEEP_FIGURES), "table born"):
        assert re.search(rf"step \d/7 \({step}\b[^)]*\) done", log), (step, log)
    # no figure of the twin: its analysis.figures is empty
    assert not (workflow / "results" / "tiny_mean_field" / "figures").exists()


def test_a_grid_sweep_draws_its_axis(workflow):
    sweep = workflow / "results" / "tiny_lam"
    for name in ("rate_vs_axis", "decoherence"):
        png = sweep / "figures" / f"tiny_lam_{name}.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", png
    cells = sorted(p.relative_to(sweep / "cells") for p in (sweep / "cells").rglob("*.zarr"))
    assert [str(p) for p in cells] == [
        "lam=1.0/sigma=1.0/seed=0.zarr",
        "lam=2.0/sigma=1.0/seed=0.zarr",
    ]
    table = pd.read_csv(sweep / "tables" / "born.csv")
    assert table["lam"].tolist() == [1.0, 2.0] and (table["n_used"] == 20).all()
    log = (sweep / "logs" / "sweep.log").read_text()
    assert "(figure rate_vs_axis) done" in log, log


def test_a_figure_that_cannot_draw_a_grid_fails_the_dry_run(workflow, tmp_path):
    path = tmp_path / "override.yaml"
    path.write_text(
        yaml.safe_dump({"sweeps": {"tiny_lam": {"analysis": {"figures": ["histograms"]}}}})
    )
    result = run_snakemake(workflow, "-n", "--configfile", str(path))
    assert result.returncode != 0
    assert re.search(
        r"sweeps\.tiny_lam\.analysis\.figures\[0\]: the histograms figure draws no grid axis",
        result.stdout + result.stderr,
    ), result.stdout + result.stderr


def test_two_grid_axes_need_the_rate_axis_named(workflow, tmp_path):
    two = {"sweeps": {"tiny_lam": {"grid": {"lam": [1.0, 2.0], "phi": [0.0, 1.0]}}}}
    unnamed = tmp_path / "two.yaml"
    unnamed.write_text(yaml.safe_dump(two))
    result = run_snakemake(workflow, "-n", "--configfile", str(unnamed))
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert re.search(r"sweeps\.tiny_lam\.analysis\.figures\[0\]: the rate_vs_axis figure "
                     r"needs an axis", output), output  # fmt: skip
    named = tmp_path / "named.yaml"
    two["sweeps"]["tiny_lam"]["analysis"] = {"rate_axis": "lam", "figures": ["rate_vs_axis"]}
    named.write_text(yaml.safe_dump(two))
    # --quiet host in place of the default profile's list: the jobs' shell commands shown
    result = run_snakemake(workflow, "-n", "-p", "--quiet", "host", "--configfile", str(named))
    assert result.returncode == 0, result.stdout + result.stderr
    assert '"--axis","lam"' in result.stdout, result.stdout  # the sweep job's step


def test_a_finished_run_is_up_to_date(workflow):
    assert planned_jobs(workflow) == {}


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"dpi": 50}, {SWEEP_JOB, "sweep_tiny_lam", "figure_tradeoff"}),
        # the sweep job writes the summary again, so the trade-off figure follows
        ({"realisations": 1}, {SWEEP_JOB, "figure_tradeoff"}),
    ],
    ids=["dpi", "realisations"],
)
def test_a_figure_setting_reruns_only_the_jobs_that_draw(workflow, tmp_path, change, expected):
    jobs = planned_jobs(workflow, config_override(tmp_path, figures=change))
    assert set(jobs) - {"all"} == expected  # not the twin's job: it draws nothing
    assert all(count == 1 for rule, count in jobs.items())


def test_an_analysis_setting_reruns_the_summary_and_the_figures_drawn_from_it(workflow, tmp_path):
    jobs = planned_jobs(workflow, config_override(tmp_path, {"analysis": {"hist_bins": 4}}))
    assert set(jobs) - {"all"} == {SWEEP_JOB, "figure_tradeoff"}


def test_rerunning_a_sweep_job_for_its_figures_stores_no_cell(workflow, tmp_path):
    """A figure setting reruns the sweep's job; its batch step finds every cell stored."""
    copy = tmp_path / "repo"
    shutil.copytree(workflow, copy, symlinks=True)  # copy2: modification times kept
    cells = sorted((copy / "results" / "tiny" / "cells").rglob("zarr.json"))
    before = {path: path.stat().st_mtime_ns for path in cells}
    override = config_override(tmp_path, figures={"dpi": 50})
    result = run_snakemake(copy, "--cores", "2", "--configfile", str(override))
    assert result.returncode == 0, result.stdout + result.stderr
    assert {path: path.stat().st_mtime_ns for path in cells} == before
    assert "0 to run" in result.stderr  # the console: every cell stored
    log = (copy / "results" / "tiny" / "logs" / "sweep.log").read_text()
    assert re.search(r"2 cell\(s\), 2 stored already, 0 to compute", log), log


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ({"figures": {"tradeoff": ["tiny", "nope"]}}, r"figures\.tradeoff\[1\]: no sweep 'nope'"),
        (
            {"sweeps": {"tiny": {"analysis": {"figures": ["tradeoff"]}}}},
            r"\['sweeps'\]\['tiny'\]\['analysis'\]\['figures'\]\[0\]",
        ),
        (
            {"sweeps": {"tiny": {"analysis": {"mean_field": "tiny"}}}},
            r"sweeps\.tiny\.analysis\.mean_field: sweep 'tiny' does not have mode: mean_field",
        ),
        (
            {"sweeps": {"tiny": {"analysis": {"mean_field": None}}}},
            r"sweeps\.tiny\.analysis\.figures\[1\]: the mean_field figure needs",
        ),
        ({"figures": {"dpi": 5}}, r"\['figures'\]\['dpi'\]"),
    ],
    ids=["tradeoff-sweep", "figure-name", "twin-mode", "no-twin", "dpi"],
)
def test_an_invalid_figure_config_fails_the_dry_run_naming_the_key(
    workflow, tmp_path, override, expected
):
    path = tmp_path / "override.yaml"
    path.write_text(yaml.safe_dump(override))
    result = run_snakemake(workflow, "-n", "--configfile", str(path))
    assert result.returncode != 0
    assert re.search(expected, result.stdout + result.stderr), result.stdout + result.stderr


def test_the_report_embeds_figures_tables_and_config(workflow):
    result = run_snakemake(workflow, "--report", "report.html")
    assert result.returncode == 0, result.stdout + result.stderr
    page = (workflow / "report.html").read_text()
    for name in (*(FILE_NAMES.get(n, n) for n in SWEEP_FIGURES), "tradeoff"):
        assert f"figures/{name}.png" in page
        assert f'"name": "{name}.png"' in page
    assert "tables/born.csv" in page and "tables/born.html" in page
    assert re.search(r'"data:image/png;[^",]*base64,', page)  # self-contained: inlined
    assert not re.search(r'<(?:script|link|img)[^>]*(?:src|href)="https?:', page)
    assert "Configuration" in page and "tiny_mean_field" in page  # the config, rendered


def test_the_figure_command_reports_a_missing_summary(tmp_path):
    status = cli_main(
        [
            "figure",
            "decoherence",
            "--summary",
            str(tmp_path / "missing.zarr"),
            "--output",
            str(tmp_path / "x.png"),
        ]
    )
    assert status == 2
    assert not (tmp_path / "x.png").exists()
