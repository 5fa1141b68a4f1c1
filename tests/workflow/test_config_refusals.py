"""The config is data, and every value the jobs would refuse is refused by the dry run.

Two layers, as the Snakefile runs them right after ``configfile:``:

* :func:`cq_core.pipeline.config_file.load_config_file` reads each config file strictly
  (duplicate keys, aliases, YTE, Python tags, over-long integers);
* :func:`cq_core.pipeline.config_values.check_config_values` checks the merged values (the
  schema with bounded echoes, true integers, finite numbers, limits, cell sizes in O(1)).

The many small cases call these functions directly (each with the tiny test config, changed
by one key, merged as ``--configfile`` merges it). The end-to-end cases run a real
``snakemake -n`` on a copy of the workflow and check its exit code, that the message names the
key, that nothing was written and that the parse stayed small in memory (its peak RSS).
"""

from __future__ import annotations

import copy
import json
import math
import subprocess
import sys
import tracemalloc
from pathlib import Path
from typing import Any

import pytest
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/: the shared helpers
from workflow_helpers import SNAKEMAKE, TINY, copy_workflow  # noqa: E402

from cq_core.pipeline.config_file import load_config_file  # noqa: E402
from cq_core.pipeline.config_values import (  # noqa: E402
    MAX_SAVED_TIMES,
    MAX_SEED,
    MAX_SHOWN,
    check_config_values,
    shown,
)

REPO = Path(__file__).resolve().parents[2]
SCHEMA = REPO / "config" / "schema.yaml"
LONGEST_MESSAGE = 6 * MAX_SHOWN + 200
"""No refusal is longer than this, whatever the size of the value it refuses."""
SMALL_RSS_KB = 600_000
"""Peak RSS of a refused dry run (a normal parse takes ~150 MB; the unchecked cases: GBs)."""


def merged(change: dict[str, Any]) -> dict[str, Any]:
    """TINY with ``change`` deep-merged, as Snakemake merges a ``--configfile``."""
    from snakemake.utils import update_config

    config = copy.deepcopy(TINY)
    update_config(config, copy.deepcopy(change))
    return config


def tiny(**change: Any) -> dict[str, Any]:
    return {"sweeps": {"tiny": change}}


def refusal(config: dict[str, Any]) -> str:
    with pytest.raises(ValueError) as caught:
        check_config_values(config, SCHEMA)
    message = str(caught.value)
    assert message.startswith("invalid config: "), message
    assert len(message) <= LONGEST_MESSAGE, message
    return message


# ----------------------------------------------------------------------- values: passes


@pytest.mark.parametrize(
    "change",
    [
        {},
        {"base_seed": MAX_SEED},
        tiny(seeds=[0, MAX_SEED]),
        tiny(analysis={"hist_bins": 10_000}),
        tiny(params={"lam": 2, "psi0": [1.0, 0.0]}),
        tiny(params={"psi0": {"real": [1.0, 0.0], "imag": [0.0, 0.0]}}),
        {"dask": {"scheduler_address": "tcp://10.0.0.5:8786"}},
        {"dask": {"scheduler_address": "tls://node-1.cluster.example:8786"}},
        {"dask": {"scheduler_address": "tcp://[::1]:8786", "connect_timeout": 0.5}},
        {"results": "out/my results"},
        {"sweeps": {"a" * 64: copy.deepcopy(TINY["sweeps"]["tiny"])}},
    ],
    ids=lambda change: json.dumps(change)[:40],
)
def test_valid_values_pass(change):
    check_config_values(merged(change), SCHEMA)


def test_the_default_config_is_strict_data_and_passes():
    config = load_config_file(REPO / "config" / "config.yaml")
    check_config_values(config, SCHEMA)


# --------------------------------------------------------------------- values: refusals
# (change, key named, value or rule the message must contain)
REFUSED = [
    # integers are integers: the jobs' command lines take 1000, not 1000.0
    ({"dask": {"block_size": 1000.0}}, "dask.block_size", "write 1000, not 1000.0"),
    ({"dask": {"threads": 2.0}}, "dask.threads", "must be an integer"),
    ({"figures": {"dpi": 150.0}}, "figures.dpi", "write 150, not 150.0"),
    ({"figures": {"realisations": 2.0}}, "figures.realisations", "must be an integer"),
    ({"base_seed": 0.0}, "base_seed", "must be an integer"),
    (tiny(n_traj=20.0), "sweeps.tiny.n_traj", "must be an integer"),
    (tiny(save_every=1.0), "sweeps.tiny.save_every", "must be an integer"),
    (tiny(seeds=[0, 3.0]), "sweeps.tiny.seeds[1]", "write 3, not 3.0"),
    (tiny(analysis={"hist_bins": 8.0}), "sweeps.tiny.analysis.hist_bins", "must be an integer"),
    # limits
    (tiny(seeds=[1.0e300]), "sweeps.tiny.seeds[0]", "maximum of 9223372036854775807"),
    (tiny(seeds=[MAX_SEED + 1]), "sweeps.tiny.seeds[0]", "maximum of 9223372036854775807"),
    ({"base_seed": MAX_SEED + 1}, "base_seed", "maximum of 9223372036854775807"),
    (tiny(analysis={"hist_bins": 10**12}), "sweeps.tiny.analysis.hist_bins", "maximum of 10000"),
    ({"figures": {"realisations": 10**6}}, "figures.realisations", "maximum of 1000"),
    ({"dask": {"block_size": 10**12}}, "dask.block_size", "maximum of 10000000"),
    # timeouts: finite and positive
    ({"dask": {"connect_timeout": math.nan}}, "dask.connect_timeout", "finite number, got nan"),
    ({"dask": {"connect_timeout": math.inf}}, "dask.connect_timeout", "maximum of 86400"),
    ({"dask": {"worker_timeout": 0}}, "dask.worker_timeout", "less than or equal to the minimum"),
    # addresses: parsed, never contacted
    ({"dask": {"scheduler_address": "tcp//x:1"}}, "dask.scheduler_address", "'tcp//x:1'"),
    ({"dask": {"scheduler_address": "tcp://x"}}, "dask.scheduler_address", "port 1-65535"),
    ({"dask": {"scheduler_address": "tcp://x:0"}}, "dask.scheduler_address", "port 1-65535"),
    ({"dask": {"scheduler_address": "tcp://x:65536"}}, "dask.scheduler_address", "65536"),
    ({"dask": {"scheduler_address": "http://x:80"}}, "dask.scheduler_address", "tcp, tls"),
    ({"dask": {"scheduler_address": "tcp://x:1\n"}}, "dask.scheduler_address", r"'tcp://x:1\n'"),
    ({"dask": {"scheduler_address": "tcp://x:1/y"}}, "dask.scheduler_address", "port 1-65535"),
    ({"dask": {"scheduler_address": "tcp://-x:1"}}, "dask.scheduler_address", "<host>"),
    # strings are not numbers
    (tiny(params={"G": "10"}), "sweeps.tiny.params.G", "got '10' (str)"),
    (tiny(params={"M": True}), "sweeps.tiny.params.M", "got True (bool)"),
    (tiny(params={"psi0": [1.0, "0"]}), "sweeps.tiny.params.psi0", "a number"),
    (tiny(params={"lam": math.nan}), "sweeps.tiny.params.lam", "finite number, got nan"),
    (tiny(sigma=[1.0, math.nan]), "sweeps.tiny.sigma[1]", "finite number, got nan"),
    (tiny(t_final=math.inf), "sweeps.tiny.t_final", "finite number, got inf"),
    # anchored names and plain paths
    ({"sweeps": {"tiny\n": TINY["sweeps"]["tiny"]}}, "sweeps (a name in it)", r"'tiny\n'"),
    ({"sweeps": {"a" * 65: TINY["sweeps"]["tiny"]}}, "sweeps (a name in it)", "1 to 64"),
    ({"sweeps": {"a" * 300: TINY["sweeps"]["tiny"]}}, "sweeps (a name in it)", "characters)"),
    ({"figures": {"tradeoff": ["tiny\n"]}}, "figures.tradeoff[0]", "a sweep name"),
    (tiny(analysis={"mean_field": "m" * 5000}), "sweeps.tiny.analysis.mean_field",
     "(5002 characters)"),
    (tiny(params={"lam\n": 1.0}), "sweeps.tiny.params (a name in it)", "identifier"),
    ({"results": "r{x}"}, "results", "no braces"),
    ({"results": "-r"}, "results", "no leading `-`"),
    ({"results": "r\n"}, "results", "control characters"),
    # sizes, from the config values alone
    (tiny(t_final=3.0e4, dt=1.0e-4, save_every=1), "sweeps.tiny.save_every", "at least 301"),
    (tiny(t_final=1.0e14, dt=1.0e-4), "sweeps.tiny.t_final", "1e+18 steps"),
    (tiny(t_final=1.0, dt=1.0e-300), "sweeps.tiny.t_final", "steps per trajectory"),
    (tiny(n_traj=10**15, t_final=0.01, dt=1.0e-3), "sweeps.tiny.n_traj", "GiB allowed"),
    (tiny(sigma=[1.0 + i for i in range(101)], seeds=list(range(100))), "sweeps.tiny.sigma",
     "10100 cells"),
    # unbounded values are never echoed whole
    (tiny(method="x" * 5000), "sweeps.tiny.method", "(5002 characters)"),
    (tiny(model="x" * 5000), "sweeps.tiny.model", "(5002 characters)"),
    ({"x" * 5000: 1}, "(top level)", "fails the schema's 'additionalProperties' check"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("change", "key", "says"), REFUSED, ids=[f"{i}-{case[1]}" for i, case in enumerate(REFUSED)]
)
def test_a_value_the_jobs_refuse_is_refused_naming_the_key(change, key, says):
    message = refusal(merged(change))
    assert message.startswith(f"invalid config: {key}: "), message
    assert says in message, message


def test_the_size_check_allocates_nothing():
    # 10^18 steps of 10^15 trajectories: refused with a few kB of Python objects
    config = merged(tiny(t_final=1.0e14, dt=1.0e-4, n_traj=10**15))
    check_config_values(merged({}), SCHEMA)  # imports done outside the measurement
    tracemalloc.start()
    try:
        refusal(config)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 2**20, peak  # the schema's own objects; no array of steps
    # the largest accepted number of saved times is still cheap to enumerate downstream
    assert MAX_SAVED_TIMES * 8 <= 8 * 2**20


# -------------------------------------------------------------------------------- files


def write(tmp_path: Path, text: str, name: str = "config.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def alias_bomb(depth: int = 9) -> str:
    """The "billion laughs" in YAML: ``9**depth`` strings when expanded, under an unknown key."""
    lines = ["  a0: &a0 [x, x, x, x, x, x, x, x, x]"]
    for i in range(1, depth + 1):
        lines.append(f"  a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]")
    return "unknown:\n" + "\n".join(lines) + "\n"


FILE_REFUSALS = [
    ("sweeps:\n  tiny: {n_traj: 5}\n  tiny: {n_traj: 7}\n", "line 3: duplicate key 'tiny'"),
    ("base_seed: 1\nresults: r\nbase_seed: 2\n", "line 3: duplicate key 'base_seed'"),
    ('{"base_seed": 1, "base_seed": 2}', "duplicate key 'base_seed' in a JSON object"),
    (alias_bomb(), "line 3: a YAML alias of the value anchored on line 2: aliases are not"),
    ("a: &x {n_traj: 5}\nsweeps:\n  tiny:\n    <<: *x\n", "aliases are not allowed"),
    ("__use_yte__: true\nbase_seed: ?1 + 1\n", "__use_yte__: YTE templates evaluate Python"),
    ("base_seed: !!python/name:os.system\n", "not plain YAML data"),
    ("base_seed: !!python/object/apply:os.getcwd []\n", "not plain YAML data"),
    ("base_seed: " + "9" * 5000 + "\n", "line 1: an integer of 5000 digits"),
    ('{"base_seed": ' + "9" * 5000 + "}", "an integer of 5000 digits"),
    ("base_seed: " + "1" * 41 + "\n", "an integer of 41 digits"),
    ("- a\n- b\n", "a mapping of keys at its top level"),
    ("a: " + "[" * 17 + "]" * 17 + "\n", "nested more than 16 levels deep"),
    ("a: " + "[" * 10**5 + "]" * 10**5 + "\n", "not plain YAML data: 'exceeded maximum nesting"),
    ('{"a": ' + "[" * 10**5 + "]" * 10**5 + "}", "nested more than 16 levels deep"),
    ("results: r\n# " + "x" * (1 << 20) + "\n", "a config file has at most 1048576"),
]


@pytest.mark.parametrize(
    ("text", "says"), FILE_REFUSALS, ids=[says[:30] for _, says in FILE_REFUSALS]
)
def test_a_config_file_that_is_not_plain_data_is_refused(tmp_path, text, says):
    path = write(tmp_path, text)
    tracemalloc.start()
    try:
        with pytest.raises(ValueError) as caught:
            load_config_file(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    message = str(caught.value)
    # the file's path, echoed like any value: in full, or cut with its length when long
    assert message.startswith(f"invalid config file {shown(str(path))}"), message
    assert says in message, message
    assert len(message) <= LONGEST_MESSAGE, message
    assert peak < 16 * 2**20, peak  # the file itself; nothing expanded


def test_a_strict_file_reads_as_snakemake_reads_it(tmp_path):
    from snakemake.common.configfile import load_configfile

    for name, text in (
        ("a.yaml", yaml.safe_dump(TINY)),
        ("b.json", json.dumps(TINY)),
        ("c.yaml", "base_seed: 3\nsweeps: {x: {sigma: [1.0e-3, 2.0], dt: .nan}}\n"),
    ):
        path = write(tmp_path, text, name)
        strict, loose = load_config_file(path), load_configfile(str(path))
        assert json.dumps(strict, sort_keys=True) == json.dumps(loose, sort_keys=True)


# ----------------------------------------------------------------------- real dry runs


@pytest.fixture(scope="module")
def workflow(tmp_path_factory) -> Path:
    """A copy of the workflow with the tiny config (dry runs only)."""
    return copy_workflow(tmp_path_factory.mktemp("config_refusals") / "repo")


RSS_LAUNCHER = """
import os, subprocess, sys
process = subprocess.Popen(sys.argv[2:])
_, status, usage = os.wait4(process.pid, 0)
with open(sys.argv[1], "w") as sink:
    sink.write(str(usage.ru_maxrss))
sys.exit(os.waitstatus_to_exitcode(status))
"""
"""Runs a command and records its peak RSS (kB). ``ru_maxrss`` of a child includes the
high-water mark of the process that forked it (Linux carries it across exec); started from
this small launcher rather than from the test process (hundreds of MB late in the suite),
the figure is Snakemake's own."""


def dry_run(workdir: Path, *args: str) -> tuple[int, str, int]:
    """``snakemake -n --quiet rules --cores 1 …`` in ``workdir``: exit code, output, peak RSS (kB).

    ``--quiet rules`` (in place of the default profile's list) keeps Snakemake's job table."""
    out, rss = workdir / ".dry-run.out", workdir / ".dry-run.rss"
    command = [SNAKEMAKE, "-n", "--quiet", "rules", "--cores", "1", *args]  # with the job table
    with open(out, "w") as sink:
        code = subprocess.run(
            [sys.executable, "-c", RSS_LAUNCHER, str(rss), *command],
            cwd=workdir,
            stdout=sink,
            stderr=sink,
        ).returncode
    text, peak = out.read_text(), int(rss.read_text())
    out.unlink()
    rss.unlink()
    return code, text, peak


def assert_refused(workdir: Path, code: int, output: str, rss: int, *says: str) -> None:
    assert code != 0, output
    assert "Job stats:" not in output, output  # no job was planned
    for text in says:
        assert text in output, output
    assert not (workdir / "results").exists()  # no side effect
    assert rss < SMALL_RSS_KB, rss


DRY_RUN_REFUSALS = [  # one per kind of check (each costs a Snakemake start-up)
    ("dask: {block_size: 1000.0}\n", "invalid config: dask.block_size: must be an integer"),
    ("sweeps: {tiny: {seeds: [1.0e+300]}}\n", "invalid config: sweeps.tiny.seeds[0]: "),
    ("dask: {scheduler_address: 'tcp//x:1'}\n", "invalid config: dask.scheduler_address: "),
    (
        "sweeps: {tiny: {t_final: 3.0e+4, dt: 1.0e-4, save_every: 1}}\n",
        "invalid config: sweeps.tiny.save_every: ",
    ),
    ("sweeps:\n  tiny: {n_traj: 5}\n  tiny: {n_traj: 7}\n", "line 3: duplicate key 'tiny'"),
    (alias_bomb(), "aliases are not allowed"),
]


def test_the_dry_run_plans_a_valid_config_with_the_same_keys(workflow, tmp_path):
    # the control of the refusals below: integers written as integers pass
    override = write(tmp_path, "dask: {block_size: 1000}\nsweeps: {tiny: {seeds: [3]}}\n")
    code, output, rss = dry_run(workflow, "--configfile", str(override))
    assert code == 0, output
    assert "Job stats:" in output and "sweep_tiny" in output
    assert rss < SMALL_RSS_KB, rss


@pytest.mark.parametrize(
    ("text", "says"), DRY_RUN_REFUSALS, ids=[says[16:50] for _, says in DRY_RUN_REFUSALS]
)
def test_the_dry_run_refuses_before_any_work(workflow, tmp_path, text, says):
    override = write(tmp_path, text)
    code, output, rss = dry_run(workflow, "--configfile", str(override))
    assert_refused(workflow, code, output, rss, says)


def test_yte_in_the_workflow_config_is_refused_before_it_runs(tmp_path):
    workdir = copy_workflow(tmp_path / "repo")
    marker = tmp_path / "yte-ran"
    config = workdir / "config" / "config.yaml"
    expression = f"?__import__('pathlib').Path({str(marker)!r}).touch() or 0"
    text = config.read_text().replace("base_seed: 0", f"base_seed: {expression}")
    config.write_text("__use_yte__: true\n" + text)
    code, output, rss = dry_run(workdir)
    assert_refused(workdir, code, output, rss, "__use_yte__: YTE templates evaluate Python")
    assert not marker.exists()  # strict_config_file ran before Snakemake read the file


def test_yte_in_a_configfile_option_runs_before_the_workflow_can_refuse_it(workflow, tmp_path):
    # Snakemake reads --configfile files (with YTE) before the Snakefile runs: the expression
    # has run when the workflow refuses the file. config/README.md says so.
    marker = tmp_path / "yte-ran"
    override = write(
        tmp_path,
        f"__use_yte__: true\nbase_seed: ?__import__('pathlib').Path({str(marker)!r}).touch() "
        "or 0\n",
    )
    code, output, rss = dry_run(workflow, "--configfile", str(override))
    assert_refused(workflow, code, output, rss, "__use_yte__: YTE templates evaluate Python")
    assert marker.exists()


def test_a_huge_integer_in_a_configfile_option_stops_snakemake_itself(workflow, tmp_path):
    # Snakemake parses --configfile files before the Snakefile: Python's own limit stops it
    # there (config/README.md says so); nothing is planned or written
    override = write(tmp_path, "base_seed: " + "7" * 5000 + "\n")
    code, output, rss = dry_run(workflow, "--configfile", str(override))
    assert_refused(workflow, code, output, rss, "Exceeds the limit (4300 digits)")


def test_a_huge_integer_in_the_workflow_config_is_refused_cleanly(tmp_path):
    workdir = copy_workflow(tmp_path / "repo")
    config = workdir / "config" / "config.yaml"
    config.write_text(config.read_text().replace("base_seed: 0", "base_seed: " + "7" * 5000))
    code, output, rss = dry_run(workdir)
    assert_refused(workdir, code, output, rss, "line ", "an integer of 5000 digits")
    assert "7" * 100 not in output
