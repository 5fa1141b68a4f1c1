"""Helpers of the pipeline tests: a copy of the workflow with a tiny config, and Snakemake runs.

The repository's Snakefile, workflow/, profiles/ and config/schema.yaml are copied into a
temporary directory with the tiny config :data:`TINY`; Snakemake runs there as a real
subprocess. Variants of the config are passed with ``--configfile``
(:func:`config_override`), which Snakemake deep-merges over config/config.yaml.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
SNAKEMAKE = str(Path(sys.executable).with_name("snakemake"))
TINY = {
    "results": "results",
    "base_seed": 0,
    "dask": {"scheduler_address": None, "block_size": 10, "threads": 2},
    "sweeps": {
        "tiny": {
            "model": "linear",
            "params": {},
            "sigma": [1.0, 2.0],
            "seeds": [0],
            "n_traj": 20,
            "t_final": 0.01,
            "dt": 1.0e-3,
            "save_every": 1,
            "method": "auto",
            "mode": "pure",
            "excess": 0.0,
            "analysis": {
                "time_slices": [0.0, 0.01],
                "hist_bins": 8,
                "fit_window": None,
                "figures": [],
            },
        }
    },
}
ROW = re.compile(r"^(\S+)\s+(\d+)$")


def copy_workflow(destination: Path) -> Path:
    destination.mkdir(parents=True)
    shutil.copy2(REPO / "Snakefile", destination)
    ignore = shutil.ignore_patterns("__pycache__", ".snakemake")
    shutil.copytree(REPO / "workflow", destination / "workflow", ignore=ignore)
    if (REPO / "profiles").is_dir():  # a default profile is part of the workflow's behaviour
        shutil.copytree(REPO / "profiles", destination / "profiles", ignore=ignore)
    (destination / "config").mkdir()
    shutil.copy2(REPO / "config" / "schema.yaml", destination / "config")
    (destination / "config" / "config.yaml").write_text(yaml.safe_dump(TINY))
    return destination


def run_snakemake(workdir: Path, *args: str, env: dict | None = None):
    return subprocess.run(
        [SNAKEMAKE, *args],
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, **(env or {})},
    )


def config_override(tmp_path: Path, sweep_changes: dict | None = None, **top: object) -> Path:
    """A --configfile with changes to sweeps.tiny (deep-merged by Snakemake) and top keys."""
    config = dict(top)
    if sweep_changes:
        config["sweeps"] = {"tiny": sweep_changes}
    path = tmp_path / f"override-{len(list(tmp_path.glob('override-*')))}.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def planned_jobs(workdir: Path, configfile: Path | None = None, env=None) -> dict[str, int]:
    """Jobs a dry run would execute, by rule, from Snakemake's first ``Job stats:`` table."""
    args = ["-n", "--quiet", "rules"] + (["--configfile", str(configfile)] if configfile else [])
    result = run_snakemake(workdir, *args, env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    if "Nothing to be done" in result.stdout:
        return {}
    lines = result.stdout.splitlines()
    start = lines.index("Job stats:")
    jobs = {}
    for line in lines[start + 1 :]:
        match = ROW.match(line.strip())
        if match:
            if match.group(1) == "total":
                break
            jobs[match.group(1)] = int(match.group(2))
    return jobs
