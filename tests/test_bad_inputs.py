"""Bad input (issue 9): every invalid configuration stops the run before any job starts.

A table of invalid changes to the tiny sweep of ``test_pipeline`` (its ``sweeps.tiny``). Each
must fail with one message naming the key, the bad value and what is allowed.

* Every case runs through the checks the Snakefile runs while it is parsed, in the same
  order: Snakemake's ``validate`` against ``config/schema.yaml``, then
  ``cq_core.sweep.sweep_cell_specs`` and ``check_analysis`` for every sweep (what
  ``check_sweeps`` in ``workflow/rules/common.smk`` does). The change is deep-merged with
  Snakemake's own ``update_config``, as ``--configfile`` merges it.
* A representative subset (:data:`DRY_RUN_CASES`) also runs through a real ``snakemake -n``
  of a copy of the workflow, which must fail without a job table.

An unreachable Dask scheduler cannot be known before a cell job tries it: a real run with a
short ``connect_timeout`` must fail the cell job with a clear message within a bounded time.
"""

from __future__ import annotations

import copy
import re
import socket
import time
from pathlib import Path
from typing import Any, NamedTuple

import pytest
import yaml
from workflow_helpers import TINY, config_override, copy_workflow, run_snakemake

from cq_core.sweep import check_analysis, sweep_cell_specs

SCHEMA = Path(__file__).resolve().parents[1] / "config" / "schema.yaml"
USER_MODULE = "leaky_models"
USER_MODEL_SOURCE = '''"""A user model whose noise misses a back-reaction direction (for a test)."""

import numpy as np

from cq_core import Model

SIGMA_Z = np.array([1.0, -1.0])


def leaky(lam: float = 1.0) -> Model:
    """A qubit coupled to q (force on p) but with noise on q only: violates docs/physics.md."""
    return Model(
        name="leaky",
        params={"lam": lam},
        coord_labels=("q", "p"),
        level_labels=("L", "R"),
        z0=np.zeros(2),
        psi0=np.array([1.0, 1.0]) / np.sqrt(2.0),
        hamiltonian_flow=lambda Z: np.stack([Z[:, 1], np.zeros(len(Z))], axis=1),
        interaction_hamiltonian=lambda Z: (lam * Z[:, 0])[:, None] * SIGMA_Z,
        backreaction_operators=lambda Z: np.broadcast_to(-lam * SIGMA_Z, (1, 1, 2)),
        noise_shape=np.array([[1.0], [0.0]]),
        coupled=(1,),
    )
'''


def schema_key(*path: str | int) -> str:
    """Regex of the key as Snakemake's validate names it: ``On instance['sweeps']['tiny']…``."""
    parts = "".join(rf"\[{p}\]" if isinstance(p, int) else rf"\['{p}'\]" for p in path)
    return r"On instance\['sweeps'\]\['tiny'\]" + parts


class Case(NamedTuple):
    """An invalid change of ``sweeps.tiny`` and what its one error message must say."""

    id: str
    change: dict[str, Any]
    key: str
    value: str
    allowed: str


CASES = [
    Case("unknown-model", {"model": "nope"}, r"sweeps\.tiny\.model", r"'nope'",
         r"valid models: linear, sqrt_potential, mass_superposition, qubit_lattice"),
    Case("unknown-model-parameter", {"params": {"lamda": 2.0}}, r"sweeps\.tiny\.params",
         r"lamda", r"valid parameters: m, lam, phi, omega"),
    Case("sigma-zero", {"sigma": [1.0, 0.0]}, schema_key("sigma", 1), r"0\.0 is less",
         r"less than or equal to the minimum of 0"),
    Case("sigma-negative", {"sigma": [-1.0]}, schema_key("sigma", 0), r"-1\.0",
         r"less than or equal to the minimum of 0"),
    Case("sigma-nan", {"sigma": [float("nan")]}, r"sweeps\.tiny\.sigma\[0\]", r"got nan",
         r"must be a finite number"),
    Case("sigma-string", {"sigma": ["big"]}, schema_key("sigma", 0), r"'big'",
         r"is not of type 'number'"),
    Case("sigma-empty", {"sigma": []}, schema_key("sigma"), r"\[\]", r"should be non-empty"),
    Case("sigma-duplicate", {"sigma": [1.0, 2.0, 1.0]}, schema_key("sigma"),
         r"\[1\.0, 2\.0, 1\.0\]", r"has non-unique elements"),
    Case("seed-duplicate", {"seeds": [0, 3, 3]}, schema_key("seeds"), r"\[0, 3, 3\]",
         r"has non-unique elements"),
    Case("seed-negative", {"seeds": [-1]}, schema_key("seeds", 0), r"-1 is less",
         r"less than the minimum of 0"),
    Case("seed-non-integer", {"seeds": [1.5]}, schema_key("seeds", 0), r"1\.5",
         r"is not of type 'integer'"),
    Case("n_traj-zero", {"n_traj": 0}, schema_key("n_traj"), r"0 is less",
         r"less than the minimum of 1"),
    Case("dt-zero", {"dt": 0.0}, schema_key("dt"), r"0\.0 is less",
         r"less than or equal to the minimum of 0"),
    Case("dt-above-t_final", {"dt": 0.02}, r"sweeps\.tiny\.dt", r"got 0\.02",
         r"0 < dt <= t_final = 0\.01"),
    Case("t_final-negative", {"t_final": -0.01}, schema_key("t_final"), r"-0\.01",
         r"less than or equal to the minimum of 0"),
    Case("save_every-zero", {"save_every": 0}, schema_key("save_every"), r"0 is less",
         r"less than the minimum of 1"),
    Case("save_every-above-steps", {"save_every": 11}, r"sweeps\.tiny\.save_every",
         r"got 11", r"between 1 and the number of steps \(10\)"),
    Case("method-unknown", {"method": "rk5"}, schema_key("method"), r"'rk5'",
         r"is not one of \['auto', 'exponential', 'kraus', 'euler'\]"),
    Case("mode-unknown", {"mode": "quantum"}, schema_key("mode"), r"'quantum'",
         r"is not one of \['pure', 'density', 'mean_field'\]"),
    Case("excess-negative", {"excess": -0.5}, schema_key("excess"), r"-0\.5",
         r"less than the minimum of 0"),
    Case("excess-with-pure", {"excess": 1.0}, r"sweeps\.tiny\.excess",
         r"excess=1\.0 with mode 'pure'", r"excess > 0 needs mode 'density'"),
    Case("psi0-wrong-length", {"params": {"psi0": [1.0, 0.0, 0.0]}}, r"sweeps\.tiny\.params",
         r"psi0 .*got shape \(3,\)", r"must have length 2"),
    Case("psi0-zero-norm", {"params": {"psi0": [0.0, 0.0]}}, r"sweeps\.tiny\.params",
         r"psi0 .*got norm 0\.0", r"must be a non-zero finite vector"),
    Case("noise-misses-backreaction", {"model": f"{USER_MODULE}:leaky"},
         r"sweeps\.tiny\.(params|model)", r"direction\(s\) p without noise",
         r"Add noise on those components"),
    Case("qubit-lattice-too-large", {"model": "qubit_lattice", "params": {"n": 30}},
         r"sweeps\.tiny\.params", r"n = 30 sites needs .*\(16 GiB\)", r"at most n = 20"),
    Case("cell-too-large-for-memory",
         {"model": "mass_superposition", "n_traj": 10**9, "dt": 1.0e-4},
         r"sweeps\.tiny\.n_traj", r"n_traj=1000000000",
         r"would store [0-9.e+]+ GiB .*more than [0-9.]+ GiB allowed"),
    Case("hist_bins-zero", {"analysis": {"hist_bins": 0}}, schema_key("analysis", "hist_bins"),
         r"0 is less", r"less than the minimum of 1"),
    Case("time-slice-after-t_final", {"analysis": {"time_slices": [0.0, 0.5]}},
         r"sweeps\.tiny\.analysis\.time_slices\[1\]", r"0\.5", r"not a time in \[0, 0\.01\]"),
    Case("time-slice-negative", {"analysis": {"time_slices": [-0.001]}},
         schema_key("analysis", "time_slices", 0), r"-0\.001", r"less than the minimum of 0"),
]  # fmt: skip
DRY_RUN_CASES = [
    "unknown-model",
    "sigma-nan",
    "sigma-string",
    "seed-duplicate",
    "excess-with-pure",
    "noise-misses-backreaction",
    "qubit-lattice-too-large",
    "time-slice-after-t_final",
]
"""Cases also run through a real ``snakemake -n`` (each costs a Snakemake start-up)."""


@pytest.fixture(scope="module")
def user_models(tmp_path_factory) -> Path:
    """A directory holding the user model module, declared as a model by an installed
    distribution's ``cq_sweep.models`` entry point (for sys.path and PYTHONPATH)."""
    directory = tmp_path_factory.mktemp("user_models")
    (directory / f"{USER_MODULE}.py").write_text(USER_MODEL_SOURCE, encoding="utf-8")
    info = directory / f"{USER_MODULE}-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {USER_MODULE}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(f"[cq_sweep.models]\nleaky = {USER_MODULE}:leaky\n")
    return directory


@pytest.fixture(scope="module")
def tiny_workflow(tmp_path_factory) -> Path:
    """A copy of the workflow with the tiny config (only dry runs and a failing run use it)."""
    return copy_workflow(tmp_path_factory.mktemp("bad_inputs") / "repo")


def check_config(config: dict[str, Any]) -> None:
    """The Snakefile's checks, in its order: the schema, then every sweep against cq_core.

    (Snakemake's ``validate`` looks up a global named ``workflow`` in its caller's module:
    this module has none, so it validates as it does outside a Snakefile.)
    """
    from snakemake.utils import validate

    validate(config, str(SCHEMA))
    for name, sweep in config["sweeps"].items():
        sweep_cell_specs(name, sweep, base_seed=config["base_seed"])
        check_analysis(name, sweep)


def changed_config(change: dict[str, Any]) -> dict[str, Any]:
    """TINY with ``change`` deep-merged into sweeps.tiny, as ``--configfile`` merges it."""
    from snakemake.utils import update_config

    config = copy.deepcopy(TINY)
    update_config(config, {"sweeps": {"tiny": copy.deepcopy(change)}})
    return config


def assert_names_key_value_allowed(case: Case, message: str) -> None:
    for what in ("key", "value", "allowed"):
        pattern = getattr(case, what)
        assert re.search(pattern, message), f"{case.id}: no {what} /{pattern}/ in:\n{message}"


def test_the_table_covers_the_issue():
    assert len(CASES) >= 20
    assert len({case.id for case in CASES}) == len(CASES)
    assert set(DRY_RUN_CASES) <= {case.id for case in CASES} and len(DRY_RUN_CASES) >= 6


def test_the_valid_tiny_config_passes():
    check_config(changed_config({}))


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_a_bad_config_is_rejected_by_the_snakefile_checks(case, user_models, monkeypatch):
    monkeypatch.syspath_prepend(str(user_models))
    with pytest.raises(Exception) as caught:  # ValueError, or the schema's WorkflowError
        check_config(changed_config(case.change))
    assert caught.type.__name__ in ("ValueError", "WorkflowError")
    assert_names_key_value_allowed(case, str(caught.value))


@pytest.mark.parametrize("case_id", DRY_RUN_CASES)
def test_a_bad_config_fails_the_dry_run(case_id, tiny_workflow, user_models, tmp_path):
    case = next(case for case in CASES if case.id == case_id)
    override = config_override(tmp_path, case.change)
    result = run_snakemake(
        tiny_workflow,
        *("-n", "--quiet", "rules", "--configfile", str(override)),  # rules: with the job table
        env={"PYTHONPATH": str(user_models)},
    )
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert "Job stats:" not in output  # no job was even planned
    assert_names_key_value_allowed(case, output)


# ----------------------------------------------------------------- unreachable scheduler


def _unused_port() -> int:
    """A port on 127.0.0.1 that nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_an_unreachable_scheduler_fails_the_cell_job_clearly_and_soon(tiny_workflow, tmp_path):
    address = f"tcp://127.0.0.1:{_unused_port()}"
    override = tmp_path / "unreachable.yaml"
    override.write_text(
        yaml.safe_dump(
            {
                "dask": {"scheduler_address": address, "connect_timeout": 2},
                "batch": {"dask_min_trajectory_steps": 1},  # every cell on the scheduler
            }
        )
    )
    dry = run_snakemake(tiny_workflow, "-n", "--quiet", "rules", "--configfile", str(override))
    assert dry.returncode == 0, dry.stdout + dry.stderr  # nothing to know before a job runs

    start = time.monotonic()
    result = run_snakemake(tiny_workflow, "--cores", "2", "--configfile", str(override))
    elapsed = time.monotonic() - start
    assert result.returncode != 0
    assert elapsed < 120, f"took {elapsed:.0f} s"
    assert "sweep_tiny" in result.stderr  # the sweep's job, which runs its one batch
    logs = [tiny_workflow / "results" / "tiny" / "logs" / "sweep.log"]
    for log in logs:
        text = log.read_text()
        assert f"could not reach the Dask scheduler at '{address}' within 2 s" in text, text
        assert "dask.scheduler_address" in text  # what to do about it
    assert not list((tiny_workflow / "results" / "tiny").rglob("seed=*.zarr"))
