"""End-to-end tests of the Snakemake pipeline (README.md): real Snakemake, Dask and Zarr.

The repository's Snakefile, workflow/ and config/schema.yaml are copied into a temporary
directory with a tiny config/config.yaml; the sweep runs once for real (``--cores 2``), and
the rerun rules are read from Snakemake's own dry-run job table (the first ``Job stats:``
table of ``snakemake -n --quiet rules``). Variants of the config are passed with
``--configfile``, which Snakemake deep-merges over config/config.yaml.
"""

from __future__ import annotations

import re
import shutil
import warnings
from pathlib import Path

import pytest
import xarray as xr
from workflow_helpers import (
    config_override,
    copy_workflow,
    planned_jobs,
    run_snakemake,
)

import cq_core
from cq_core.analysis import SUMMARY_VARIABLES
from cq_core.pipeline.analysis_settings import read_analysis_settings
from cq_core.pipeline.statistics_store import (
    read_statistics,
    statistics_path,
)
from cq_core.pipeline.summary_store import open_summary


@pytest.fixture(scope="module")
def workflow(tmp_path_factory) -> Path:
    """A copy of the workflow with the tiny config, run once for real with --cores 2."""
    workdir = copy_workflow(tmp_path_factory.mktemp("pipeline") / "repo")
    result = run_snakemake(workdir, "--cores", "2")
    assert result.returncode == 0, result.stdout + result.stderr
    return workdir


def test_end_to_end_run_writes_cells_and_summary(workflow):
    sweep = workflow / "results" / "tiny"
    for sigma in ("1.0", "2.0"):
        assert (sweep / "cells" / f"sigma={sigma}" / "seed=0.zarr" / "zarr.json").is_file()
    # both cells, the summary and the figures in the sweep's one job, one process: its log
    text = (sweep / "logs" / "sweep.log").read_text()
    assert "cell 2/2 stored" in text and "trajectory-steps/s" in text, text
    assert re.search(r"step 1/\d \(run-batch\b.*\n(.*\n)*.*step 2/\d \(summarise\b", text), text
    assert not (sweep / "logs" / "batches").exists()  # no batch job of its own
    assert not list(sweep.rglob(".snakemake_timestamp"))
    summary = open_summary(sweep / "summary.zarr")
    assert set(SUMMARY_VARIABLES) <= set(summary.data_vars)
    assert summary.attrs["model"] == "linear" and summary.sizes["sigma"] == 2
    cells = cq_core.open_sweep(sweep)
    assert cells.sizes["trajectory"] == 20 and list(cells["sigma"].values) == [1.0, 2.0]
    assert "stored results/tiny/summary.zarr" in text, text
    assert not list(sweep.rglob("*.tmp*"))


def test_the_cell_jobs_write_the_statistics_the_summary_merges(workflow):
    sweep = workflow / "results" / "tiny"
    settings = read_analysis_settings(sweep)
    assert settings is not None and set(settings) >= {"time_slices", "hist_bins", "fit_window"}
    stores = sorted((sweep / "cells").glob("sigma=*/seed=*.zarr"))
    assert len(stores) == 2 and all(s is not None for s in read_statistics(stores, settings))
    # written by the batch job as it stored each cell (before its manifest), so the summary
    # job merged them and read no trajectory
    (manifest,) = (sweep / "batches").glob("*.json")
    written = [statistics_path(store).stat().st_mtime_ns for store in stores]
    assert max(written) <= manifest.stat().st_mtime_ns


def test_every_store_of_a_run_opens_silently_with_plain_open_zarr(workflow):
    stores = sorted((workflow / "results").rglob("*.zarr"))
    assert len(stores) == 3  # two cells and the summary
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for store in stores:
            xr.open_zarr(store).load()


def test_a_finished_run_is_up_to_date(workflow, tmp_path):
    assert planned_jobs(workflow) == {}
    # execution settings never rerun anything
    changed = config_override(tmp_path, dask={"block_size": 3, "threads": 1, "connect_timeout": 3})
    assert planned_jobs(workflow, changed) == {}


@pytest.mark.parametrize(
    ("change", "new_cells"),
    [({"sigma": [1.0, 2.0, 4.0]}, 1), ({"seeds": [0, 1]}, 2)],
    ids=["add-sigma", "add-seed"],
)
def test_new_sigma_or_seed_runs_only_new_cells_and_aggregates(
    workflow, tmp_path, change, new_cells
):
    jobs = planned_jobs(workflow, config_override(tmp_path, change))
    # the sweep job: its batch step computes the new cells and skips the others
    assert jobs == {"sweep_tiny": 1, "all": 1}
    # run it: the stored cells are kept as they are, only the new ones are computed
    workdir = tmp_path / "repo"
    shutil.copytree(workflow, workdir, symlinks=True)
    stores = sorted((workdir / "results" / "tiny" / "cells").glob("sigma=*/seed=*.zarr"))
    before = {store: (store / "zarr.json").stat().st_mtime_ns for store in stores}
    override = config_override(tmp_path, change)
    result = run_snakemake(workdir, "--cores", "2", "--configfile", str(override))
    assert result.returncode == 0, result.stdout + result.stderr
    assert {store: (store / "zarr.json").stat().st_mtime_ns for store in stores} == before
    after = sorted((workdir / "results" / "tiny" / "cells").glob("sigma=*/seed=*.zarr"))
    assert len(after) == len(stores) + new_cells
    text = (workdir / "results" / "tiny" / "logs" / "sweep.log").read_text()
    assert f"{len(stores)} stored already, {new_cells} to compute" in text, text
    assert planned_jobs(workdir, override) == {}


@pytest.mark.parametrize(
    "analysis",
    [{"hist_bins": 4}, {"time_slices": [0.005]}, {"fit_window": [0.0, 0.005]}],
    ids=["bins", "slices", "fit-window"],
)
def test_an_analysis_change_reruns_only_aggregates(workflow, tmp_path, analysis):
    # the sweep job, whose batch step then finds every cell stored (run for real for a figure
    # setting in tests/test_figures_pipeline.py); no other sweep's job
    jobs = planned_jobs(workflow, config_override(tmp_path, {"analysis": analysis}))
    assert jobs == {"sweep_tiny": 1, "all": 1}


def test_a_fresh_copy_with_copied_results_reruns_nothing(workflow, tmp_path):
    clone = copy_workflow(tmp_path / "clone")  # new file mtimes, no .snakemake metadata
    shutil.copytree(workflow / "results", clone / "results")  # copy2 keeps the mtimes
    assert planned_jobs(clone) == {}


def test_a_numerics_version_change_reruns_cells(workflow, tmp_path):
    package = tmp_path / "site" / "cq_core"
    shutil.copytree(
        Path(cq_core.__file__).parent, package, ignore=shutil.ignore_patterns("__pycache__")
    )
    version = package / "version.py"
    text = version.read_text()
    changed = re.sub(r'NUMERICS_VERSION = "[^"]*"', 'NUMERICS_VERSION = "changed-by-test"', text)
    assert changed != text
    version.write_text(changed)
    jobs = planned_jobs(workflow, env={"PYTHONPATH": str(package.parent)})
    assert jobs == {"sweep_tiny": 1, "all": 1}  # a new manifest: the batch step recomputes


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"sigma": [-1.0]}, r"\['sweeps'\]\['tiny'\]\['sigma'\]\[0\]"),
        ({"n_trajs": 5}, r"n_trajs"),
        ({"model": "nope"}, r"sweeps\.tiny\.model: unknown model 'nope'"),
        ({"params": {"lamda": 2.0}}, r"sweeps\.tiny\.params: .*lamda"),
        ({"dt": 3.0e-3}, r"sweeps\.tiny\.t_final: .*whole number of steps"),
        ({"analysis": {"time_slices": [0.0, 0.5]}}, r"sweeps\.tiny\.analysis\.time_slices\[1\]"),
    ],
    ids=["negative-sigma", "unknown-key", "unknown-model", "unknown-param", "dt", "slice"],
)
def test_an_invalid_config_fails_the_dry_run_naming_the_key(workflow, tmp_path, change, expected):
    result = run_snakemake(workflow, "-n", "--configfile", str(config_override(tmp_path, change)))
    assert result.returncode != 0
    assert re.search(expected, result.stdout + result.stderr), result.stdout + result.stderr
