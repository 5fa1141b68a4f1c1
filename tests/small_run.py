"""One small real run of the default workflow, shared by the docs-example and report tests.

``config/config.yaml`` cut to the sweeps the documents read and one of each figure kind
(histograms, linear, trajectories and their mean-field twin), each with at most two σ, one
seed and a few trajectories (same models and times), run once per test session by real Snakemake
in a temporary copy of the workflow (:func:`workflow_helpers.copy_workflow`), and its
report made with ``snakemake --report``. Built on first use; later users in the same session
reuse the directory. Under pytest-xdist the workers share it: the run lies in the folder
common to every worker's temporary directory, and a file lock lets the first worker make it
while the others wait and then reuse it.
"""

from __future__ import annotations

import copy
import fcntl
import os
import shutil
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
    base = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):  # base is <run's folder>/<worker id>
        base = base.parent
    workdir = base / "small-default-run"
    with (base / "small-default-run.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file is closed
        if not (workdir / "results" / "report.html").is_file():
            _run(workdir)
    return workdir


def _run(workdir: Path) -> None:
    """Run the small config and make its report in a fresh copy of the workflow."""
    if workdir.exists():  # left by a run that failed half-way
        shutil.rmtree(workdir)
    copy_workflow(workdir)
    (workdir / "config" / "config.yaml").write_text(yaml.safe_dump(small_config()))
    for args in (["--cores", "2"], ["--report", "results/report.html"]):
        result = subprocess.run(
            [SNAKEMAKE, *args], cwd=workdir, capture_output=True, text=True, timeout=1200,
            env=dict(os.environ),
        )  # fmt: skip
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
