"""What a person sees: the console of a real default run, and the command line's own help.

A copy of the workflow with the tiny config (tests/workflow_helpers.py) runs with the default
profile, as ``snakemake --cores 2`` does at the repository root: the output names the sweeps
and cells, counts cells done of total with trajectory-steps/s, says where the results are,
names a failed job with its log, and stays short. Snakemake's full output is one option away.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/: the shared helpers
from workflow_helpers import copy_workflow, run_snakemake  # noqa: E402

MAX_LINES = 15
"""A default run of the tiny config (4 jobs) prints at most this many lines (96 before)."""


@pytest.fixture(scope="module")
def workflow(tmp_path_factory) -> Path:
    return copy_workflow(tmp_path_factory.mktemp("console") / "repo")


def _override(workdir: Path, name: str, config: dict) -> str:
    path = workdir / f"{name}.yaml"
    path.write_text(yaml.safe_dump(config))
    return str(path)


def test_a_default_run_says_what_it_runs_how_far_it_is_and_where_the_results_are(workflow):
    dry = run_snakemake(workflow, "-n")
    assert dry.returncode == 0, dry.stderr
    assert "cq-sweep: 1 sweep, 2 cells: 0 stored already, 2 to run; results in results/" in (
        dry.stdout
    ), dry.stdout

    first = run_snakemake(workflow, "--cores", "2")
    assert first.returncode == 0, first.stderr
    lines = first.stderr.splitlines()
    assert len(lines) <= MAX_LINES, first.stderr
    assert "cq-sweep: 1 sweep, 2 cells: 0 stored already, 2 to run; results in results/" in lines
    row = "tiny 2 σ × 1 seed = 2 cells: 0 stored, 2 to run, 400 trajectory-steps"
    assert any(line.split() == row.split() for line in lines), first.stderr
    assert re.search(r"^cq-sweep: cells 2/2 done, [0-9.e+]+ trajectory-steps/s", first.stderr, re.M)
    assert "cq-sweep: results in results/" in first.stderr
    assert "snakemake --report results/report.html" in first.stderr
    # none of Snakemake's per-job blocks, banner, "n of N steps" or scheduling lines
    assert "rule sweep_tiny:" not in first.stderr and "SNAKEMAKE" not in first.stderr
    assert "steps (" not in first.stderr and "Select jobs" not in first.stderr

    # (cells stored already are counted as such: tests/pipeline/test_progress.py)


def test_a_failed_job_is_named_with_its_log(workflow):
    failing = _override(
        workflow,
        "unreachable",
        {
            "dask": {"scheduler_address": "tcp://127.0.0.1:9", "connect_timeout": 1},
            "batch": {"dask_min_trajectory_steps": 1},
            "sweeps": {"tiny": {"seeds": [7]}},
        },
    )
    result = run_snakemake(workflow, "--cores", "2", "--configfile", failing)
    assert result.returncode != 0
    log = "results/tiny/logs/sweep.log"  # the sweep's job ran its batch
    assert "127.0.0.1:9" in (workflow / log).read_text()
    assert f"cq-sweep: FAILED: sweep_tiny; log: {log}" in result.stderr, result.stderr
    assert f"its log: {log}; last lines:" in result.stderr
    assert "could not reach the Dask scheduler" in result.stderr  # the log's last lines
    assert "cq-sweep: cells 0/2 done" in result.stderr
    assert "--quiet reason" in result.stderr  # how to see everything


def test_snakemake_s_full_output_is_one_option_away(workflow):
    # a --quiet on the command line replaces the default profile's list
    result = run_snakemake(workflow, "-n", "--quiet", "reason", "--forcerun", "sweep_tiny")
    assert result.returncode == 0, result.stderr
    assert "Job stats:" in result.stdout and "rule sweep_tiny:" in result.stdout
    full = run_snakemake(workflow, "--cores", "1", "--quiet", "reason", "--forcerun", "all")
    assert full.returncode == 0, full.stderr
    assert "localrule all:" in full.stderr and "Select jobs to execute..." in full.stderr


def test_verify_calls_itself_by_its_command_and_takes_v_after_it(tmp_path):
    command = [sys.executable, "-m", "cq_core", "verify"]
    helped = subprocess.run([*command, "--help"], capture_output=True, text=True, timeout=60)
    assert helped.returncode == 0, helped.stderr
    assert helped.stdout.startswith("usage: python -m cq_core verify "), helped.stdout
    verbose = subprocess.run([*command, str(tmp_path), "-v"], capture_output=True, text=True)
    assert verbose.returncode == 0, verbose.stderr
    assert "0 cell store(s)" in verbose.stderr
