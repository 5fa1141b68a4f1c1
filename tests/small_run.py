"""One small real run of the default workflow, shared by the docs-example and report tests.

``config/config.yaml`` cut to the sweeps the documents read and one of each figure kind
(histograms, linear, trajectories and their mean-field twin), each with at most two σ, one
seed and a few trajectories (same models and times), run once per test session by real Snakemake
in a temporary copy of the workflow (:func:`workflow_helpers.copy_workflow`), and its
report made with ``snakemake --report``. Built on first use; later users in the same session
reuse the directory.
"""

from __future__ import annotations

import copy
import os
import subprocess
from pathlib import Path

import yaml
from workflow_helpers import REPO, SNAKEMAKE, copy_workflow

MAX_TRAJECTORIES = 16
KEPT_SWEEPS = ("histograms", "linear", "trajectories", "trajectories_mean_field")


def small_config() -> dict:
    """The default config with each sweep reduced to ≤ 2 σ, 1 seed, ≤ 24 trajectories."""
    config = copy.deepcopy(yaml.safe_load((REPO / "config" / "config.yaml").read_text()))
    config["sweeps"] = {k: v for k, v in config["sweeps"].items() if k in KEPT_SWEEPS}
    config["figures"]["tradeoff"] = ["linear"]
    for sweep in config["sweeps"].values():
        sweep["sigma"] = (
            sweep["sigma"][:1] + sweep["sigma"][-1:] if len(sweep["sigma"]) > 1 else sweep["sigma"]
        )
        sweep["seeds"] = sweep["seeds"][:1]
        sweep["n_traj"] = min(sweep["n_traj"], MAX_TRAJECTORIES)
    config["figures"]["dpi"] = 60
    return config


def small_run(tmp_path_factory) -> Path:
    """The work directory of the small run (``results/``, ``results/report.html`` inside)."""
    workdir = tmp_path_factory.getbasetemp() / "small-default-run"
    report = workdir / "results" / "report.html"
    if report.is_file():
        return workdir
    copy_workflow(workdir)
    (workdir / "config" / "config.yaml").write_text(yaml.safe_dump(small_config()))
    for args in (["--cores", "2"], ["--report", "results/report.html"]):
        result = subprocess.run(
            [SNAKEMAKE, *args], cwd=workdir, capture_output=True, text=True, timeout=1200,
            env=dict(os.environ),
        )  # fmt: skip
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return workdir
