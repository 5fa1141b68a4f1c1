"""Cluster submission on a real one-node SLURM (issue 6; tests/slurm_cluster.py, SLURM.md).

A module fixture stands up SLURM from Debian's packages on 127.0.0.1 and stops every daemon
it started by pid afterwards. Without the packages or root the tests skip with the reason;
with ``CQ_REQUIRE_SLURM=1`` (set by ``.ci/run``) they fail instead, so CI never skips them.

- a plain ``sbatch`` job (with an ``srun`` step) runs and completes, and a second cluster
  stops every daemon it started;
- ``workflow/profiles/slurm`` names existing rules, asks for squeue status checks and gives
  cells more than summaries; Snakemake accepts it in a dry run (no SLURM needed);
- a small sweep through that profile (snakemake-executor-plugin-slurm) writes cell and
  summary stores bit-identical to a local ``snakemake --cores 2`` run of the same config;
- a 1 000-cell sweep goes out in at most 50 SLURM jobs (its cells in batches);
- a cell whose Dask workers are SLURM jobs of dask-jobqueue's ``SLURMCluster`` is
  bit-identical to a local run with another block size.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from slurm_cluster import OneNodeSlurm, is_running, slurm_unavailable_reason
from workflow_helpers import TINY, copy_workflow

REPO = Path(__file__).resolve().parents[1]
PROFILE = REPO / "workflow" / "profiles" / "slurm"


def require_slurm() -> None:
    """Skip when no SLURM can be stood up here, or fail when CQ_REQUIRE_SLURM=1 (CI)."""
    reason = slurm_unavailable_reason()
    if reason:
        if os.environ.get("CQ_REQUIRE_SLURM") == "1":
            pytest.fail(f"CQ_REQUIRE_SLURM=1 but no SLURM can be stood up: {reason}")
        pytest.skip(reason)


@pytest.fixture(scope="module")
def slurm():
    """A running one-node SLURM with ``SLURM_CONF`` exported; torn down after the module."""
    require_slurm()
    cluster = OneNodeSlurm()
    cluster.start()
    try:
        with pytest.MonkeyPatch.context() as patch:
            # sbatch/squeue/scancel called by Snakemake's plugin and dask-jobqueue, and the
            # jobs themselves (sbatch --export=ALL), find this cluster through SLURM_CONF,
            # and through the client wrappers first on PATH where SLURM_CONF was dropped.
            patch.setenv("SLURM_CONF", str(cluster.conf))
            patch.setenv("PATH", cluster.env["PATH"])
            yield cluster
    finally:
        cluster.stop()


def assert_stores_identical(store: Path, reference: Path) -> None:
    """Same files with the same bytes (Snakemake's timestamp aside), and identical Datasets."""
    import xarray as xr

    def files(root: Path) -> dict[str, bytes]:
        return {
            str(path.relative_to(root)): path.read_bytes()
            for path in sorted(root.rglob("*"))
            if path.is_file() and path.name != ".snakemake_timestamp"
        }

    found, expected = files(store), files(reference)
    assert sorted(found) == sorted(expected), f"{store} and {reference} hold different files"
    differing = [name for name in expected if found[name] != expected[name]]
    assert not differing, f"bytes differ in {differing[:5]} of {store}"
    with (
        xr.open_zarr(store, consolidated=False) as got,
        xr.open_zarr(reference, consolidated=False) as want,
    ):
        assert got.load().identical(want.load())


def test_batch_job_with_a_step_completes(slurm, tmp_path):
    output = tmp_path / "job-%j.out"
    job_id = slurm.sbatch(
        "--output",
        str(output),
        "--wrap",
        "srun -n1 echo step-ran-on-$(hostname -s)",
        job_name="echo",
    )
    assert slurm.wait_for_jobs([job_id], timeout=30) == {job_id: "COMPLETED"}
    text = (tmp_path / f"job-{job_id}.out").read_text()
    assert f"step-ran-on-{slurm.node}" in text


def test_a_second_cluster_stops_every_daemon_it_started():
    """Start and stop a cluster of its own: afterwards none of its daemons runs."""
    require_slurm()
    second = OneNodeSlurm()
    second.start()
    try:
        started = second.daemon_pids
        assert {"slurmctld", "slurmd"} <= set(started)
        assert all(is_running(pid, name) for name, pid in started.items())
    finally:
        second.stop()
    up, down = second.startup_seconds, second.shutdown_seconds
    print(f"second cluster: up in {up:.2f} s, down in {down:.2f} s")
    assert not any(is_running(pid, name) for name, pid in started.items()), started
    assert second.daemon_pids == {} and not second.root.exists()


def start_snakemake(workdir: Path, *args: str) -> subprocess.Popen:
    """Start ``snakemake *args`` in ``workdir``; finish it with :func:`finish_snakemake`."""
    return subprocess.Popen(
        [sys.executable, "-m", "snakemake", *args],
        cwd=workdir,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish_snakemake(process: subprocess.Popen, timeout: float = 120) -> None:
    """Wait for a started snakemake and assert that it succeeded."""
    try:
        _, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.terminate()  # Snakemake cancels its SLURM jobs on SIGTERM
        try:
            _, stderr = process.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            _, stderr = process.communicate()
        pytest.fail(f"snakemake did not finish within {timeout:.0f} s:\n{stderr[-4000:]}")
    assert process.returncode == 0, f"{' '.join(process.args)} failed:\n{stderr[-4000:]}"


@pytest.fixture(scope="module")
def local_sweep(tmp_path_factory) -> Path:
    """The pipeline tests' workflow copy and tiny config, run locally with --cores 2."""
    workdir = copy_workflow(tmp_path_factory.mktemp("local-sweep") / "workflow")
    finish_snakemake(start_snakemake(workdir, "--cores", "2"))
    return workdir


def assert_sweeps_identical(workdir: Path, reference: Path) -> None:
    """Every cell store and summary store of ``workdir`` equals that of ``reference``."""
    (name, sweep), *others = TINY["sweeps"].items()
    n_cells = len(sweep["sigma"]) * len(sweep["seeds"])
    assert not others and n_cells >= 2
    results = reference / TINY["results"] / name
    cells = sorted(results.glob("cells/sigma=*/seed=*.zarr"))
    assert len(cells) == n_cells
    for store in [*cells, results / "summary.zarr"]:
        assert_stores_identical(workdir / store.relative_to(reference), store)


# --- cells on dask-jobqueue workers ---------------------------------------------------------


@pytest.mark.filterwarnings("ignore:Object at .snakemake_timestamp:UserWarning")
def test_cells_on_dask_jobqueue_workers_are_bit_identical(slurm, local_sweep, tmp_path):
    """Dask workers as SLURM jobs (dask-jobqueue) give the same stores as local runs.

    One cell through ``run_cell(..., scheduler_address=...)`` with another block size, then
    the tiny sweep with the config's ``dask.scheduler_address`` pointing at those workers.
    """
    from dask_jobqueue import SLURMCluster
    from distributed import Client

    from cq_core.cells import CellSpec, run_cell, write_cell

    spec = CellSpec(
        model="mass_superposition",
        params={},
        sigma=0.02,
        seed=3,
        n_traj=48,
        t_final=0.01,
        dt=1e-3,
        save_every=2,
    )
    local = write_cell(run_cell(spec, block_size=48, threads=1), tmp_path / "local.zarr")

    job_name = f"{slurm.prefix}-dask"
    began = time.monotonic()
    cluster = SLURMCluster(
        cores=1,
        memory="1GB",
        processes=1,
        walltime="00:05:00",
        queue=slurm.partition,
        account=None,
        job_name=job_name,
        python=sys.executable,
        interface="lo",  # scheduler and workers on 127.0.0.1 only
        scheduler_options={"dashboard_address": "127.0.0.1:0"},
        worker_extra_args=["--no-dashboard"],
        local_directory=str(tmp_path / "dask-worker-space"),
        log_directory=str(tmp_path / "dask-logs"),
    )
    try:
        cluster.scale(2)
        with Client(cluster) as client:
            client.wait_for_workers(2, timeout=60)
        ready = time.monotonic() - began
        worker_jobs = [state for name, state in slurm.jobs().values() if name == job_name]
        assert worker_jobs == ["RUNNING", "RUNNING"], slurm.jobs()
        remote = write_cell(
            run_cell(spec, block_size=12, scheduler_address=cluster.scheduler_address),
            tmp_path / "remote.zarr",
        )
        # the same through the pipeline: the config names the scheduler (README)
        via_config = copy_workflow(tmp_path / "via-config")
        dask_config = tmp_path / "dask.yaml"
        address = cluster.scheduler_address
        dask_config.write_text(
            yaml.safe_dump(
                {
                    "dask": {"scheduler_address": address},
                    "batch": {"dask_min_trajectory_steps": 1},  # tiny cells on Dask too
                }
            )
        )
        began = time.monotonic()
        finish_snakemake(
            start_snakemake(via_config, "--cores", "2", "--configfile", str(dask_config))
        )
        sweep_seconds = time.monotonic() - began
    finally:
        cluster.close()
        slurm.cancel_jobs()
    print(f"dask-jobqueue: 2 workers up in {ready:.1f} s; tiny sweep on them {sweep_seconds:.1f} s")
    assert_stores_identical(remote, local)
    assert_sweeps_identical(via_config, local_sweep)
    log = next((via_config / TINY["results"]).glob("*/logs/sweep.log")).read_text()
    assert address in log  # the cell really ran on the SLURM workers


# --- a sweep through the Snakemake profile -------------------------------------------------


def profile_overrides(slurm) -> list[str]:
    """Command-line options that point the profile at the test cluster and poll fast.

    The plugin polls ``init`` seconds after a job finished, then waits 10 s longer after each
    poll that found none finished: with 2 s, polls fall 2, 14 and 36 s after a submission,
    which suits the 8-11 s jobs here (the profile's 40 s suits real clusters).

    A command-line option replaces a whole top-level key of the profile, so default-resources
    and set-resources are restated from the profile: with the test partition added, and
    memory capped at half the node's so that two jobs fit side by side on a small machine.
    """
    profile = yaml.safe_load((PROFILE / "config.yaml").read_text())
    defaults = {**profile["default-resources"], "slurm_partition": slurm.partition}
    per_rule = [
        f"{rule}:{name}={min(value, slurm.real_memory_mb // 2) if name == 'mem_mb' else value}"
        for rule, resources in profile["set-resources"].items()
        for name, value in resources.items()
    ]
    return [
        "--default-resources",
        *(f"{name}={value}" for name, value in defaults.items()),
        "--set-resources",
        *per_rule,
        "--slurm-jobname-prefix",
        slurm.prefix,
        "--slurm-init-seconds-before-status-checks",
        "2",
        "--seconds-between-status-checks",
        "1",
    ]


def test_profile_asks_for_squeue_status_and_per_rule_resources():
    profile = yaml.safe_load((PROFILE / "config.yaml").read_text())
    assert profile["executor"] == "slurm"
    assert profile["slurm-status-command"] == "squeue"
    assert "cpus_per_task" not in profile["default-resources"]
    threads, resources = profile["set-threads"], profile["set-resources"]
    assert threads["simulate_batch"] >= 1 and resources["simulate_batch"]["mem_mb"] >= 2000
    rules = "".join(path.read_text() for path in (REPO / "workflow" / "rules").glob("*.smk"))
    for rule in [*threads, *resources]:
        assert f"rule {rule}:" in rules, f"the profile names a rule that does not exist: {rule}"


def test_profile_dry_run_needs_no_slurm(tmp_path):
    """Snakemake accepts every key of the profile and plans the sweep (no SLURM involved)."""
    workdir = copy_workflow(tmp_path / "workflow")
    result = subprocess.run(
        [sys.executable, "-m", "snakemake", "--profile", str(PROFILE), "-n", "--quiet", "rules"],
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=120,
        env={key: value for key, value in os.environ.items() if key != "SLURM_CONF"},
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    # the tiny sweep's cells fit one batch: its sweep job runs it (no batch job of its own)
    assert re.search(r"^sweep_tiny\s+1$", result.stdout, re.MULTILINE), result.stdout
    assert "simulate_batch" not in result.stdout


@pytest.mark.filterwarnings("ignore:Object at .snakemake_timestamp:UserWarning")
def test_sweep_through_the_slurm_profile_matches_a_local_run(slurm, local_sweep, tmp_path):
    on_slurm = copy_workflow(tmp_path / "slurm")
    began = time.monotonic()
    process = start_snakemake(
        on_slurm,
        "--profile",
        str(PROFILE),
        *profile_overrides(slurm),
        # one CPU per job, so that two jobs run at once on a 2-CPU node
        "--set-threads",
        "simulate_batch=1",
        "sweep_tiny=1",
    )
    try:
        finish_snakemake(process)
    finally:
        slurm.cancel_jobs()
    print(f"tiny sweep through the SLURM profile: {time.monotonic() - began:.1f} s")

    # the plugin names every job of a run <prefix>_<run id>: one, the sweep's (its batch of
    # cells, then its summary)
    states = [state for job, state in slurm.jobs().values() if job.startswith(slurm.prefix + "_")]
    assert states == ["COMPLETED"], slurm.jobs()
    assert_sweeps_identical(on_slurm, local_sweep)


# --- a 1 000-cell sweep in few SLURM jobs ----------------------------------------------------

THOUSAND = {
    **TINY,
    "sweeps": {
        "tiny": {
            **TINY["sweeps"]["tiny"],
            "sigma": [round(0.5 + 0.05 * i, 3) for i in range(40)],
            "seeds": list(range(25)),
            "n_traj": 2,
            "t_final": 0.005,
            "analysis": {**TINY["sweeps"]["tiny"]["analysis"], "time_slices": [0.0, 0.005]},
        }
    },
}
"""1 000 tiny cells (``linear``, 2 trajectories x 5 steps)."""
MAX_JOBS_PER_1000_CELLS = 50


def thousand_workflow(destination: Path) -> Path:
    workdir = copy_workflow(destination)
    (workdir / "config" / "config.yaml").write_text(yaml.safe_dump(THOUSAND))
    return workdir


def test_a_thousand_cells_plan_few_slurm_jobs(tmp_path):
    """The profile's dry run (no SLURM needed): the cells go out in batches."""
    workdir = thousand_workflow(tmp_path / "workflow")
    result = subprocess.run(
        [sys.executable, "-m", "snakemake", "--profile", str(PROFILE), "-n", "--quiet", "rules"],
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=300,
        env={key: value for key, value in os.environ.items() if key != "SLURM_CONF"},
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    batches = int(re.search(r"^simulate_batch\s+(\d+)$", result.stdout, re.MULTILINE).group(1))
    assert 2 <= batches <= MAX_JOBS_PER_1000_CELLS, result.stdout


@pytest.mark.slow
def test_a_thousand_cells_go_out_in_at_most_50_slurm_jobs(slurm, tmp_path):
    """The cells of a 1 000-cell sweep through the profile: every cell stored, <= 50 jobs."""
    workdir = thousand_workflow(tmp_path / "slurm")
    # 250 cells per job (4 jobs) rather than the default 32 (32 jobs, planned by the dry run
    # above): the same batching on the real cluster, at a third of the test's time (a
    # 2-core node runs two jobs at a time, and each job starts a Snakemake of its own)
    (workdir / "config" / "batch.yaml").write_text(
        yaml.safe_dump({"batch": {"cells_per_job": 250}})
    )
    earlier = set(slurm.jobs())  # jobs of earlier tests squeue may still list
    began = time.monotonic()
    process = start_snakemake(
        workdir,
        "--profile",
        str(PROFILE),
        *profile_overrides(slurm),
        "--set-threads",
        "simulate_batch=1",
        "--until",
        "simulate_batch",  # the cells; the summary of 1 000 cells is not SLURM's business
        "--configfile",
        str(workdir / "config" / "batch.yaml"),
    )
    try:
        finish_snakemake(process, timeout=900)
    finally:
        slurm.cancel_jobs()
    print(f"1 000 tiny cells through the SLURM profile: {time.monotonic() - began:.1f} s")
    jobs = [
        state
        for job_id, (job, state) in slurm.jobs().items()
        if job_id not in earlier and job.startswith(slurm.prefix + "_")
    ]
    assert jobs and set(jobs) == {"COMPLETED"}, slurm.jobs()
    assert len(jobs) == 4 <= MAX_JOBS_PER_1000_CELLS, len(jobs)
    stores = list((workdir / "results" / "tiny" / "cells").glob("sigma=*/seed=*.zarr"))
    assert len(stores) == 1000


# --- a cell job cancelled mid-run ------------------------------------------------------------

CANCEL_SWEEP = {
    **TINY,
    "dask": {"scheduler_address": None, "block_size": 200, "threads": 1, "processes": False},
    "sweeps": {
        "tiny": {
            **TINY["sweeps"]["tiny"],
            "model": "mass_superposition",
            "sigma": [0.01, 0.02],
            "seeds": [0],
            "n_traj": 1600,
            "t_final": 0.03,
            "dt": 1.0e-4,
            "save_every": 10,
            "backend": "numpy",
            "analysis": {**TINY["sweeps"]["tiny"]["analysis"], "time_slices": [0.0, 0.03]},
        }
    },
}
"""Two cells of eight blocks each: a cell job computes for a few seconds, long enough to be
cancelled while it computes (between its first log line and its last block)."""
CANCEL_BLOCKS = 8


def cancel_workflow(destination: Path) -> Path:
    """A copy of the workflow whose config/config.yaml is CANCEL_SWEEP."""
    workdir = copy_workflow(destination)
    (workdir / "config" / "config.yaml").write_text(yaml.safe_dump(CANCEL_SWEEP))
    return workdir


def cancel_cells(workdir: Path) -> dict[str, Path]:
    """Store path of each cell of CANCEL_SWEEP, by σ label."""
    sweep = CANCEL_SWEEP["sweeps"]["tiny"]
    return {
        repr(float(sigma)): workdir
        / "results"
        / "tiny"
        / "cells"
        / f"sigma={sigma!r}"
        / "seed=0.zarr"
        for sigma in sweep["sigma"]
    }


def computing_cell(workdir: Path) -> str | None:
    """The cell (σ label) the batch job computes now: its first cell is stored, this one not.

    Both cells are in one batch job, which stores them one after the other.
    """
    stores = cancel_cells(workdir)
    waiting = [label for label, path in stores.items() if not path.exists()]
    return waiting[0] if len(waiting) == 1 else None


def cell_job(slurm, label: str) -> str | None:
    """Id of this test's running SLURM batch job (the one job of both cells).

    The plugin puts the rule and its wildcards in the job's comment (squeue's %k).
    """
    result = slurm.run(["squeue", "-h", "--states=RUNNING", "-o", "%i|%j|%k"])
    for line in result.stdout.splitlines():
        job_id, name, comment = line.split("|", 2)
        if name.startswith(slurm.prefix) and "sweep_tiny" in comment:
            return job_id
    return None


@pytest.fixture(scope="module")
def local_cancel_sweep(tmp_path_factory) -> Path:
    """CANCEL_SWEEP run locally with --cores 2, uninterrupted: the reference stores."""
    workdir = cancel_workflow(tmp_path_factory.mktemp("local-cancel") / "workflow")
    finish_snakemake(start_snakemake(workdir, "--cores", "2"), timeout=300)
    return workdir


@pytest.mark.filterwarnings("ignore:Object at .snakemake_timestamp:UserWarning")
def test_a_cancelled_cell_job_is_reported_and_only_it_is_rerun(slurm, local_cancel_sweep, tmp_path):
    """scancel the batch job while it computes its second cell: the sweep fails naming it,
    leaves no store at that cell's final path, and a rerun through the same profile computes
    that cell alone; every store then equals an uninterrupted local run's."""
    from cq_core.verify import verify_store

    workdir = cancel_workflow(tmp_path / "slurm")
    options = ["--profile", str(PROFILE), *profile_overrides(slurm)]
    options += ["--set-threads", "simulate_batch=1", "sweep_tiny=1"]
    began = time.monotonic()
    process = start_snakemake(workdir, *options)
    try:
        deadline = time.monotonic() + 180
        while (label := computing_cell(workdir)) is None:
            assert process.poll() is None, process.communicate()[1][-4000:]
            assert time.monotonic() < deadline, "no cell job started computing"
            time.sleep(0.05)
        job_id = cell_job(slurm, label)
        assert job_id is not None, slurm.jobs()
        slurm.run(["scancel", job_id])
        _, stderr = process.communicate(timeout=240)
    finally:
        if process.poll() is None:
            process.terminate()  # Snakemake cancels its SLURM jobs on SIGTERM
            process.communicate(timeout=60)
        slurm.cancel_jobs()
    failed_after = time.monotonic() - began
    assert process.returncode != 0, stderr[-4000:]
    assert "sweep_tiny" in stderr and job_id in stderr, stderr[-4000:]
    assert "CANCELLED" in stderr, stderr[-4000:]

    stores = cancel_cells(workdir)
    assert not stores[label].exists()  # nothing half-written at the cancelled cell's path
    finished = {other: path for other, path in stores.items() if other != label}
    assert all(path.is_dir() and verify_store(path) == [] for path in finished.values())
    assert not (workdir / "results" / "tiny" / "summary.zarr").exists()
    before = {other: (p.stat().st_mtime_ns, sorted(p.rglob("*"))) for other, p in finished.items()}

    began = time.monotonic()
    # --quiet rules in place of the default profile's list: with Snakemake's job table
    process = start_snakemake(workdir, *options, "--quiet", "rules")
    try:
        _, stderr = process.communicate(timeout=240)
    finally:
        if process.poll() is None:
            process.terminate()
            process.communicate(timeout=60)
        slurm.cancel_jobs()
    assert process.returncode == 0, stderr[-4000:]
    print(f"cancelled run: {failed_after:.1f} s; rerun: {time.monotonic() - began:.1f} s")
    table = stderr[stderr.index("Job stats:") :]
    assert re.search(r"^sweep_tiny\s+1$", table, re.MULTILINE), table
    log = (workdir / "results" / "tiny" / "logs" / "sweep.log").read_text()
    assert "1 stored already, 1 to compute" in log, log  # that cell alone
    after = {other: (p.stat().st_mtime_ns, sorted(p.rglob("*"))) for other, p in finished.items()}
    assert after == before  # the other cell's store was kept as it was
    reference = local_cancel_sweep / "results" / "tiny"
    for store in [*cancel_cells(local_cancel_sweep).values(), reference / "summary.zarr"]:
        assert_stores_identical(workdir / store.relative_to(local_cancel_sweep), store)
    assert not list((workdir / "results").rglob("*.tmp*"))
