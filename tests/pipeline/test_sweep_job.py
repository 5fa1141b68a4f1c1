"""The sweep job (cq_core/pipeline/sweep_job.py): its outputs, its steps, and the ``steps``
command that runs them in one process (the workflow's use: tests/test_pipeline.py)."""

from __future__ import annotations

import json

import pytest

from cq_core.cli import main
from cq_core.pipeline.sweep_job import (
    FIGURE_OUTPUTS,
    parse_steps,
    summary_target,
    sweep_outputs,
    sweep_steps,
)

ANALYSIS = {"time_slices": [0.0, 0.01], "hist_bins": 4, "fit_window": None}
SETTINGS = {"dpi": 40, "realisations": 2}


def test_outputs_name_the_batch_only_when_the_job_runs_it():
    own = sweep_outputs("res", "s", ["decoherence", "born"], "res/s/batches/0000-ab.json")
    assert list(own) == [
        "manifest",
        "summary",
        "decoherence_png",
        "decoherence_pdf",
        "born_csv",
        "born_html",
    ]
    assert own["summary"].path == "res/s/summary.zarr/zarr.json" == summary_target("res", "s")
    assert own["decoherence_png"].path == "res/s/figures/s_decoherence.png"
    assert own["decoherence_png"].caption == "decoherence.rst"
    assert own["decoherence_png"].labels["sweep"] == "s"
    assert own["decoherence_pdf"].caption is None  # PDFs are not in the report
    assert "manifest" not in sweep_outputs("res", "s", [], None)


def test_every_figure_has_a_png_in_the_report():
    for figure, files in FIGURE_OUTPUTS.items():
        shown = [out for out in files.values() if out.caption is not None]
        assert shown, figure
        assert all(out.category and out.subcategory for out in shown), figure


def test_the_steps_run_the_batch_then_the_summary_then_each_figure():
    steps = sweep_steps(
        "res",
        "s",
        analysis=ANALYSIS,
        manifests=["res/s/batches/0000-ab.json"],
        figures=["trajectories", "born"],
        batch=("[]", "res/s/batches/0000-ab.json"),
        numerics_version="2",
        mean_field_manifests=["res/t/batches/0000-cd.json"],
        settings=SETTINGS,
    )
    assert [step[:2] for step in steps] == [
        ["run-batch", "--sweep-dir"],
        ["summarise", "--sweep-dir"],
        ["figure", "trajectories"],
        ["table", "born"],
    ]
    assert steps[0][-2:] == ["--numerics-version", "2"]
    assert json.loads(steps[1][steps[1].index("--analysis") + 1]) == ANALYSIS
    assert steps[1][-1] == "res/s/batches/0000-ab.json"  # the summary's cells: the manifests
    figure = steps[2]
    assert figure[figure.index("--mean-field-cells") + 1] == "res/t/batches/0000-cd.json"
    assert figure[-2:] == ["res/s/figures/trajectories.png", "res/s/figures/trajectories.pdf"]


def test_a_sweep_with_batch_jobs_of_its_own_starts_at_its_summary():
    steps = sweep_steps("res", "s", analysis=ANALYSIS, manifests=["a.json", "b.json"])
    assert [step[0] for step in steps] == ["summarise"]
    assert steps[0][-2:] == ["a.json", "b.json"]


def test_an_unknown_figure_is_refused_naming_the_valid_ones():
    with pytest.raises(ValueError, match=r"unknown figure 'nope'; valid: trajectories, "):
        sweep_steps("res", "s", analysis=ANALYSIS, manifests=[], figures=["nope"])


def test_batch_options_go_to_the_batch_steps_only():
    text = json.dumps([["run-batch", "--cells", "[]"], ["summarise", "--output", "x"]])
    steps = parse_steps(text, ["--threads", "2"])
    assert steps == [
        ["run-batch", "--cells", "[]", "--threads", "2"],
        ["summarise", "--output", "x"],
    ]


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("not json", r"steps: not JSON"),
        ("[]", r"steps: expected a non-empty JSON list"),
        ('{"a": 1}', r"steps: expected a non-empty JSON list"),
        ('[["run-batch"], "figure"]', r"steps\[1\]: expected a non-empty list of strings"),
        ('[["figure", 3]]', r"steps\[0\]: expected a non-empty list of strings"),
        ('[["verify", "results"]]', r"steps\[0\]: 'verify' is not a step command; valid: "),
        ('[["steps", "[]"]]', r"steps\[0\]: 'steps' is not a step command"),
    ],
)
def test_bad_steps_are_refused_before_any_runs(text, says):
    with pytest.raises(ValueError, match=says):
        parse_steps(text)


def test_the_steps_command_stops_at_the_first_failing_step(tmp_path, caplog):
    missing = tmp_path / "missing.zarr"
    written = tmp_path / "x.png"
    steps = [
        ["figure", "decoherence", "--summary", str(missing), "--output", str(written)],
        ["table", "born", "--summary", str(missing), "--output", str(tmp_path / "b.csv")],
    ]
    with pytest.raises(SystemExit) as stopped:
        main(["steps", json.dumps(steps)])
    assert stopped.value.code == 2  # the failing step's status: bad input
    assert "step 1/2 (figure decoherence) failed" in caplog.text
    assert not written.exists() and not (tmp_path / "b.csv").exists()  # step 2 never ran


def test_the_steps_command_refuses_a_bad_list_with_status_2(capsys):
    assert main(["steps", '[["verify", "results"]]']) == 2
