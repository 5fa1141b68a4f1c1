"""The phase_space figure (cq_core/pipeline/phase_space_figure.py, workflow/rules/figures.smk):
the master equation beside a sweep's stored trajectories, through real Snakemake.

A tiny ``linear`` sweep (two σ, two seeds of 20 trajectories, ten steps) asks for the figure
at its second σ on a 16 × 16 grid; Snakemake runs it once in a temporary copy of the
workflow. The figure must come from the stored cells of that σ, every seed pooled; a
phase_space setting reruns only the figure; a bad ``analysis.phase_space`` or a model the
solver cannot take fails the dry run naming the key. The checks of the block itself are
called directly (fast); two refusals go through ``snakemake -n`` to prove the wiring.
"""

from __future__ import annotations

import copy
import re
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/: the shared helpers
from workflow_helpers import (  # noqa: E402
    TINY,
    config_override,
    copy_workflow,
    planned_jobs,
    run_snakemake,
)

import cq_core  # noqa: E402
from cq_core.analysis.phase_space import bin_ensemble  # noqa: E402
from cq_core.pipeline.phase_space_figure import (  # noqa: E402
    PhaseSpaceSettings,
    check_phase_space,
    phase_space_figures,
    pooled_ensemble,
    solver_times,
)

FIGURE_KEY = "sweeps.tiny.analysis.figures[0]"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _sweep(**change: Any) -> dict[str, Any]:
    """sweeps.tiny of TINY with two seeds and the phase_space figure at σ = 2 (16 × 16)."""
    sweep = copy.deepcopy(TINY["sweeps"]["tiny"])
    sweep["seeds"] = [0, 1]
    sweep["analysis"]["figures"] = ["phase_space"]
    sweep["analysis"]["phase_space"] = {"sigma": 2.0, "grid": [16, 16], "times": None}
    for key, value in change.items():
        if key == "phase_space":
            sweep["analysis"]["phase_space"] = value
        else:
            sweep[key] = value
    return sweep


@pytest.fixture(scope="module")
def workflow(tmp_path_factory) -> Path:
    """A copy of the workflow whose only sweep asks for the phase_space figure, run once."""
    workdir = copy_workflow(tmp_path_factory.mktemp("phase_space") / "repo")
    config = copy.deepcopy(TINY)
    config["sweeps"]["tiny"] = _sweep()
    config["figures"] = {"tradeoff": [], "realisations": 2, "dpi": 40}
    (workdir / "config" / "config.yaml").write_text(yaml.safe_dump(config))
    result = run_snakemake(workdir, "--cores", "2")
    assert result.returncode == 0, result.stdout + result.stderr
    return workdir


def test_the_run_writes_both_pngs_from_the_cells(workflow):
    figures = workflow / "results" / "tiny" / "figures"
    for name in ("phase_space", "phase_space_marginals"):
        assert (figures / f"{name}.png").read_bytes()[:8] == PNG_MAGIC, name
    assert sorted(p.name for p in figures.iterdir()) == [
        "phase_space.png",
        "phase_space_marginals.png",
    ]
    log = (workflow / "results" / "tiny" / "logs" / "sweep.log").read_text()
    assert "phase_space_marginals.png" in log and "(figure phase_space) done" in log


def test_the_figure_pools_every_seed_of_its_sigma(workflow):
    sweep = cq_core.open_sweep(workflow / "results" / "tiny")
    model = cq_core.get_model("linear")
    settings = PhaseSpaceSettings(sigma=2.0, grid=(16, 16), times=(0.01,))
    panels, marginals = phase_space_figures(sweep, model, settings)
    images = [ax for ax in panels.get_axes() if ax.get_images()]
    assert len(images) == 3 * 2  # ϱ_LL, ϱ_RR, |ϱ_LR| × (master equation, trajectories)
    assert images[1].get_title() == "t = 0.01\ntrajectories (N = 40)"  # 2 seeds × 20
    assert "\\sigma = 2" in panels.get_suptitle()
    # the estimate panel is the σ = 2 ensemble binned onto the solution's grid
    solution = cq_core.solve_master_equation(
        model, sigma=2.0, t_final=0.01, n_times=2, shape=(16, 16)
    )
    ensemble = pooled_ensemble(sweep, 2.0, solution["time"].values)
    assert ensemble.sizes["trajectory"] == 40
    estimate = bin_ensemble(ensemble, solution)["rho"].isel(time=1, ket=0, bra=0).values
    np.testing.assert_allclose(images[1].get_images()[0].get_array(), np.abs(estimate).T)
    first_seed = sweep.sel(sigma=2.0, seed=0)["classical"].isel(time=-1).values
    np.testing.assert_array_equal(ensemble["classical"].isel(time=-1).values[:20], first_seed)
    # marginals: q and p rows, one column per time after 0
    assert [ax.get_xlabel() for ax in marginals.get_axes()] == [
        "position $q$ (model units)",
        "momentum $p$ (model units)",
    ]


def test_a_phase_space_setting_reruns_only_the_sweep_job(workflow, tmp_path):
    # which draws again and stores no cell (tests/test_figures_pipeline.py runs that case)
    override = config_override(tmp_path, {"analysis": {"phase_space": {"grid": [16, 24]}}})
    jobs = planned_jobs(workflow, override)
    assert set(jobs) - {"all"} == {"sweep_tiny"}


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        (
            {"sweeps": {"tiny": {"model": "mass_superposition"}}},
            r"sweeps\.tiny\.analysis\.figures\[0\]: the phase_space figure cannot solve this "
            r"sweep's model: model 'mass_superposition': solve_master_equation needs one "
            r"classical degree of freedom",
        ),
        (
            {"sweeps": {"tiny": {"analysis": {"phase_space": {"grid": [4, 16]}}}}},
            r"\['analysis'\]\['phase_space'\]\['grid'\]",
        ),
        (
            {"sweeps": {"tiny": {"analysis": {"phase_space": {"sigma": 0.7}}}}},
            r"sweeps\.tiny\.analysis\.phase_space\.sigma: 0\.7 is not one of the sweep's sigma",
        ),
    ],
    ids=["model", "grid-schema", "sigma"],
)
def test_a_bad_phase_space_config_fails_the_dry_run_naming_the_key(
    workflow, tmp_path, override, expected
):
    path = tmp_path / "override.yaml"
    path.write_text(yaml.safe_dump(override))
    result = run_snakemake(workflow, "-n", "--configfile", str(path))
    assert result.returncode != 0
    assert re.search(expected, result.stdout + result.stderr), result.stdout + result.stderr


def test_defaults_fill_the_settings():
    sweep = _sweep(phase_space={})
    sweep["analysis"]["time_slices"] = [0.0, 0.005, 0.01]
    settings = check_phase_space("tiny", sweep, cq_core.get_model("linear"), FIGURE_KEY)
    assert settings == PhaseSpaceSettings(sigma=1.0, grid=(64, 64), times=(0.005, 0.01))
    assert settings.to_params() == {"sigma": 1.0, "grid": [64, 64], "times": [0.005, 0.01]}


@pytest.mark.parametrize(
    ("change", "key", "says"),
    [
        ({"phase_space": {"sigma": 1.5}}, "analysis.phase_space.sigma", "not one of"),
        ({"phase_space": {"sigma": True}}, "analysis.phase_space.sigma", "must be a number"),
        ({"phase_space": {"grid": [4, 16]}}, "analysis.phase_space.grid", "from 8 to 512"),
        ({"phase_space": {"grid": [16.0, 16]}}, "analysis.phase_space.grid", "two integers"),
        ({"phase_space": {"grid": [16]}}, "analysis.phase_space.grid", "[Nq, Np]"),
        ({"phase_space": {"times": [0.0105]}}, "analysis.phase_space.times[0]", "stored time"),
        ({"phase_space": {"times": [0.02]}}, "analysis.phase_space.times[0]", "t_final = 0.01"),
        ({"phase_space": {"times": [0.0]}}, "analysis.phase_space.times[0]", "(0, t_final"),
        ({"phase_space": {"times": [0.01, 0.005]}}, "analysis.phase_space.times", "increase"),
        ({"phase_space": {"times": []}}, "analysis.phase_space.times", "non-empty"),
        ({"phase_space": {"colour": 1}}, "analysis.phase_space.colour", "unknown key"),
        (
            {"phase_space": {"times": [0.001 * k for k in range(1, 8)]}},
            "analysis.phase_space.times",
            "at most 6",
        ),
        ({"mode": "mean_field"}, FIGURE_KEY, "needs stochastic trajectories"),
    ],
)
def test_a_bad_setting_is_refused_naming_the_key(change, key, says):
    sweep = _sweep(**change)
    with pytest.raises(ValueError) as caught:
        check_phase_space("tiny", sweep, cq_core.get_model("linear"), FIGURE_KEY)
    message = str(caught.value)
    prefix = key if key.startswith("sweeps.") else f"sweeps.tiny.{key}"
    assert message.startswith(f"invalid config: {prefix}: "), message
    assert says in message, message


def test_too_many_default_times_name_the_time_slices():
    sweep = _sweep(phase_space={})
    sweep["analysis"]["time_slices"] = [0.001 * k for k in range(11)]
    with pytest.raises(ValueError, match=r"phase_space\.times \(default: the sweep's analysis"):
        check_phase_space("tiny", sweep, cq_core.get_model("linear"), FIGURE_KEY)


def test_a_model_with_more_levels_than_the_solver_takes_is_refused():
    model = _five_level_model()
    with pytest.raises(ValueError, match=r"^invalid config: sweeps\.tiny\.analysis\.figures\[0\]"):
        check_phase_space("tiny", _sweep(), model, FIGURE_KEY)


def _five_level_model() -> cq_core.Model:
    """A (q, p) model with d = 5 (the solver takes d ≤ 4)."""
    levels = np.arange(5.0)
    return cq_core.Model(
        name="five_levels",
        params={},
        coord_labels=("q", "p"),
        level_labels=tuple("abcde"),
        z0=np.zeros(2),
        psi0=np.ones(5) / np.sqrt(5.0),
        hamiltonian_flow=lambda Z: np.stack([Z[:, 1], np.zeros(len(Z))], axis=1),
        interaction_hamiltonian=lambda Z: Z[:, 0, None] * levels,
        backreaction_operators=lambda Z: (-levels)[None, None],
        noise_shape=np.array([[0.0], [1.0]]),
        diagonal=True,
        coupled=(1,),
    )


@pytest.mark.parametrize(
    ("times", "expected"),
    [((0.2,), (2, 0.2)), ((0.05, 0.1, 0.2), (5, 0.2)), ((0.03, 0.09), (4, 0.09))],
)
def test_the_solve_holds_every_time_on_an_equal_grid(times, expected):
    assert solver_times(times) == expected


def test_the_figure_command_reports_missing_cells(tmp_path):
    from cq_core.cli import main as cli_main

    missing = tmp_path / "results" / "s" / "cells" / "sigma=1.0" / "seed=0.zarr"
    arguments = ["figure", "phase_space", "--cells", str(missing), "--sigma", "1.0"]
    arguments += ["--grid", "16", "16", "--times", "0.01", "--output", str(tmp_path / "a.png")]
    status = cli_main([*arguments, "--marginals-output", str(tmp_path / "b.png")])
    assert status == 2
    assert not (tmp_path / "a.png").exists()
