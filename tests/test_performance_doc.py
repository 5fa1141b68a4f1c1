"""docs/performance.md is what the generator makes of the committed benchmarks/results.json.

No benchmark runs here: the page and the results are compared, and the generator's pass/fail
logic, the ``--only`` parser and the reading of Snakemake's log are checked on small inputs.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from benchmarks import performance, sections
from benchmarks.workflow_runs import job_times

REPOSITORY = Path(__file__).resolve().parents[1]


def committed_results() -> dict:
    return json.loads((REPOSITORY / "benchmarks" / "results.json").read_text())


def test_page_is_generated_from_the_committed_results():
    page = (REPOSITORY / "docs" / "performance.md").read_text()
    assert page == performance.render(committed_results()), (
        "docs/performance.md differs from benchmarks/results.json: run "
        "`python -m benchmarks.performance` (or `python -m benchmarks`)"
    )


def test_every_issue_17_target_is_measured_in_the_committed_results():
    rows = performance.target_rows(committed_results())
    assert {row[0].split(".")[0] for row in rows} >= {"1", "2", "3", "4", "6"}, rows
    judged = [row for row in rows if not row[2].startswith("—")]  # 20 cells: shown only
    assert all(row[3] in ("yes", "**no**") for row in judged), rows


def _tiny(per_cell_s: float, dry_mib: float) -> dict:
    return {
        "sweep_cost": {
            "targets": {
                "marginal_cpu_per_cell_s": 0.3,
                "dry_run_wall_s": 20.0,
                "dry_run_peak_rss_mib": 286.1,
                "summary_s": 20.0,
                "open_sweep_s": 5.0,
            },
            "per_cell": {
                "20": {
                    "wall_s": 5.0,
                    "cpu_s": 9.0,
                    "batch_jobs": 0,
                    "sweep_job_wall_s": 3.0,
                    "simulate_cpu_s": 0.1,
                    "marginal_cpu_per_cell_s": 0.445,
                },
                "200": {
                    "wall_s": 10.0,
                    "cpu_s": 20.0,
                    "batch_jobs": 8,
                    "sweep_job_wall_s": 3.0,
                    "simulate_cpu_s": 20.0 - 200 * per_cell_s,
                    "marginal_cpu_per_cell_s": per_cell_s,
                },
            },
            "open_sweep_s": {"cells": 200, "seconds": 1.0},
            "dry_run": {"cells": 10_000, "wall_s": 12.0, "peak_rss_mib": dry_mib},
        }
    }


def _met(results: dict, prefix: str) -> str:
    (row,) = [row for row in performance.target_rows(results) if row[0].startswith(prefix)]
    return row[3]


def test_the_marginal_cost_target_judges_200_cells_and_more():
    rows = performance.target_rows(_tiny(0.1, 200.0))
    (twenty,) = [row for row in rows if row[0].startswith("1. marginal CPU per cell, 20 ")]
    assert twenty[2].startswith("—") and twenty[3] == ""  # 0.445 > 0.3, but not a target


def test_targets_are_judged_against_their_bounds():
    good, bad = _tiny(0.1, 200.0), _tiny(0.5, 400.0)
    assert _met(good, "1. marginal CPU per cell, 200 ") == "yes"
    assert _met(bad, "1. marginal CPU per cell, 200 ") == "**no**"
    assert _met(good, "4. `snakemake -n` of 10,000 cells: peak") == "yes"
    assert _met(bad, "4. `snakemake -n` of 10,000 cells: peak") == "**no**"
    slow = copy.deepcopy(good)
    slow["sweep_cost"]["open_sweep_s"]["seconds"] = 6.0
    assert _met(slow, "6.") == "**no**"


def test_a_failed_section_is_reported_not_hidden():
    results = {"sections": {"default_sweep": {}}, "default_sweep": {"error": "RuntimeError: x"}}
    assert "section `default_sweep` failed: `RuntimeError: x`" in performance.render(results)


def test_only_names_the_allowed_sections():
    assert sections.parse_only("kernel,sweep_cost") == ["sweep_cost", "kernel"]
    assert sections.parse_only(None) == list(sections.ALL)
    with pytest.raises(ValueError, match="unknown section.*sweepcost.*allowed: default_sweep"):
        sections.parse_only("sweepcost")


SNAKEMAKE_LOG = """\
Select jobs to execute...
[Thu Dec  3 14:26:49 2026]
localrule simulate_batch:
    output: results/tiny/batches/0000-faf4464e94beec1b.json
    jobid: 1
    wildcards: sweep=tiny, batch=0000, digest=faf4464e94beec1b
Shell command: python -m cq_core run-batch --sweep-dir results/tiny
[Thu Dec  3 14:26:50 2026]
rule simulate_batch:
    jobid: 3
[Thu Dec  3 14:27:00 2026]
Finished jobid: 1 (Rule: simulate_batch)
[Thu Dec  3 14:27:02 2026]
Finished jobid: 3 (Rule: simulate_batch)
[Thu Dec  3 14:27:02 2026]
rule summarise_sweep:
    jobid: 2
[Thu Dec  3 14:27:07 2026]
Finished jobid: 2 (Rule: summarise_sweep)
"""


def test_job_times_read_from_snakemakes_log(tmp_path):
    log = tmp_path / ".snakemake" / "log"
    log.mkdir(parents=True)
    (log / "2026-12-03T142647.288771.snakemake.log").write_text(SNAKEMAKE_LOG)
    rules = job_times(tmp_path)["rules"]
    assert rules["simulate_batch"] == {"jobs": 2, "wall_s": 23.0, "max_s": 12.0}
    assert rules["summarise_sweep"] == {"jobs": 1, "wall_s": 5.0, "max_s": 5.0}


def test_the_checks_calibration_is_judged_against_99_percent():
    calibration = {
        "base_seeds": 200,
        "scale": 1.0,
        "pass_rate_correct": 0.995,
        "fail_rate_gamma_10pc_off": 1.0,
        "fail_rate_born_0.05_off": 0.97,
        "median_max_abs_z_correct": 1.6,
        "seconds": 2800.0,
    }
    page = performance.render({"checks_calibration": calibration})
    assert (
        "| a correct engine passes every check | 99.5% of 200 base seeds | ≥ 99 % | yes |" in page
    )
    assert "| a Born weight 0.05 off is caught | 97.0% of 200 |" in page
    failing = performance.render({"checks_calibration": {**calibration, "pass_rate_correct": 0.98}})
    assert (
        "| a correct engine passes every check | 98.0% of 200 base seeds | ≥ 99 % | **no** |"
        in failing
    )
