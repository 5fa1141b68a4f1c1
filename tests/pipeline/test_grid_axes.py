"""Sweep grid axes (issue 19): config refusals, cells, paths, hashes, stores and open_sweep."""

from __future__ import annotations

import re

import numpy as np
import pytest

import cq_core
from cq_core.pipeline import layout
from cq_core.pipeline.cell_spec import CellSpec
from cq_core.pipeline.cell_store import write_cell
from cq_core.pipeline.cell_to_store import run_cell_to_store
from cq_core.pipeline.config_values import check_config_values
from cq_core.pipeline.sweep_config import sweep_cell_specs
from cq_core.pipeline.sweep_dataset import open_store, sweep_cells

BASE = {
    "model": "linear",
    "params": {},
    "sigma": [1.0, 2.0],
    "seeds": [0, 1],
    "n_traj": 6,
    "t_final": 0.01,
    "dt": 1.0e-3,
    "backend": "numpy",
}


def _sweep(**changes):
    return {**BASE, **changes}


# ------------------------------------------------------------------------- config refusals


@pytest.mark.parametrize(
    ("changes", "key", "says"),
    [
        ({"grid": {"lamb": [1.0]}}, "grid.lamb", r"unknown axis 'lamb'.*dt, excess, mode.*lam"),
        ({"grid": {"lam": [1.0, 2.0, 1]}}, r"grid.lam\[2\]", "duplicate of sweeps.s.grid.lam"),
        ({"grid": {"lam": []}}, "grid.lam", "non-empty list"),
        ({"params": {"lam": 2.0}, "grid": {"lam": [1.0]}}, "grid.lam", "also set in .*params"),
        ({"grid": {"dt": [1.0e-3]}}, "grid.dt", "also set as sweeps.s.dt"),
        ({"grid": {"sigma": [1.0]}}, "grid.sigma", "sigma and seeds are the axes"),
        ({"grid": {"m": [1.0, -1.0]}}, r"grid.m\[1\]", "m"),
        ({"grid": {"excess": [0.0, -1.0]}, "mode": "density"}, r"grid.excess\[1\]", "excess"),
        ({"grid": {"mode": ["pure", "bogus"]}}, r"grid.mode\[1\]", "mode"),
        ({"grid": {"mode": ["pure", "../x"]}}, r"grid.mode\[1\]", "cannot name a directory"),
        ({"grid": {"lam": [1.0, [1.0]]}}, "grid.lam", "mix of vectors and scalars"),
    ],
)
def test_a_bad_axis_is_refused_naming_its_key(changes, key, says):
    sweep = _sweep(**changes)
    if "dt" in sweep.get("grid", {}) and key != "grid.dt":
        sweep.pop("dt")
    with pytest.raises(ValueError, match=rf"sweeps\.s\.{key}: .*{says}"):
        sweep_cell_specs("s", sweep)


def test_a_dt_that_does_not_divide_the_largest_is_refused():
    sweep = _sweep(grid={"dt": [1.0e-3, 4.0e-4]})
    del sweep["dt"]
    with pytest.raises(ValueError, match=r"sweeps\.s\.grid\.dt\[1\]: .*does not divide"):
        sweep_cell_specs("s", sweep)


def test_the_schema_refuses_an_empty_axis_and_counts_grid_cells():
    config = {"sweeps": {"s": _sweep(grid={"lam": []})}}
    with pytest.raises(ValueError, match=r"sweeps\.s\.grid\.lam"):
        check_config_values(config, "config/schema.yaml")
    config = {"sweeps": {"s": _sweep(grid={"lam": [float(i + 1) for i in range(3000)]})}}
    with pytest.raises(ValueError, match=r"sweeps\.s\.grid: 12000 cells"):
        check_config_values(config, "config/schema.yaml")


# ------------------------------------------------------------------------ cells and paths

# the hashes of these cells as computed before grid axes existed (commit 3e45cfa)
OLD_HASHES = {
    ("0.5", 0): "10c5aa56508cfbbae9badd95066a8274d0be8b35d97d852133e24fcf6404cd12",
    ("0.5", 3): "fcc17443145205e6acc5eedf714864edc3ed997062968696ae69e406edf46df5",
    ("1.0", 0): "24cab79d2a041b03258a655cf5041cc24398fee6a8af58adc4fc0c73d9b16766",
    ("1.0", 3): "14a59066257a2af6d6353f5b4fb94a8d1ebe277c4d550e69c55524e6e53e1a87",
}


def test_a_sweep_without_grid_keeps_its_paths_and_hashes(tmp_path, monkeypatch):
    # OLD_HASHES were computed before grid axes existed, at numerics version 2: the same cell
    # at the same version must hash the same (a numerics bump changes every hash by design)
    from cq_core.pipeline import cell_spec

    monkeypatch.setattr(cell_spec, "NUMERICS_VERSION", "2")
    sweep = dict(
        model="linear",
        params={"p0": 1.0},
        sigma=[0.5, 1.0],
        seeds=[0, 3],
        n_traj=8,
        t_final=0.02,
        dt=1.0e-3,
        save_every=2,
        backend="numpy",
    )
    cells = sweep_cell_specs("s", sweep, base_seed=7)
    assert {key: spec.config_hash for key, spec in cells.items()} == OLD_HASHES
    assert "grid" not in cells[("0.5", 0)].to_json()
    assert layout.cell_store(tmp_path, "s", "0.5", 3) == tmp_path / "s/cells/sigma=0.5/seed=3.zarr"


def test_grid_cells_are_named_by_every_axis_in_config_order(tmp_path):
    sweep = _sweep(grid={"lam": [0.5, 1], "mode": ["pure", "density"]})  # an int stays one
    cells = sweep_cell_specs("s", sweep)
    assert len(cells) == 2 * 2 * 2 * 2
    spec = cells[("lam=1/mode=density/sigma=2.0", 1)]
    assert (spec.params["lam"], spec.mode, spec.sigma, spec.seed) == (1, "density", 2.0, 1)
    assert cells[("lam=0.5/mode=pure/sigma=1.0", 0)].params["lam"] == 0.5
    assert layout.cell_store(tmp_path, "s", spec.point_label, 1) == (
        tmp_path / "s/cells/lam=1/mode=density/sigma=2.0/seed=1.zarr"
    )
    assert CellSpec.from_json(spec.to_json()) == spec
    assert len({s.config_hash for s in cells.values()}) == len(cells)


def test_adding_an_axis_value_adds_only_new_cells():
    before = sweep_cell_specs("s", _sweep(grid={"lam": [0.5, 1.0], "phi": [0.0]}))
    after = sweep_cell_specs("s", _sweep(grid={"lam": [0.5, 2.0, 1.0], "phi": [0.0, 5.0]}))
    hashes = {key: spec.config_hash for key, spec in after.items()}
    assert all(hashes[key] == spec.config_hash for key, spec in before.items())
    assert len(after) == len(before) * 3


def test_a_vector_axis_is_named_by_its_index():
    sweep = dict(
        model="mass_superposition",
        params={},
        sigma=[0.02],
        seeds=[0],
        n_traj=2,
        t_final=0.002,
        dt=1.0e-3,
        grid={"r0": [[0.0, -0.5, 0.0], [0.0, 0.5, 0.0]]},
    )
    cells = sweep_cell_specs("s", sweep)
    assert list(cells) == [("r0=0/sigma=0.02", 0), ("r0=1/sigma=0.02", 0)]
    assert cells[("r0=1/sigma=0.02", 0)].params["r0"] == [0.0, 0.5, 0.0]


def test_a_dt_axis_stores_the_same_times_at_every_dt():
    sweep = _sweep(grid={"dt": [1.0e-3, 5.0e-4, 2.5e-4]}, save_every=2)
    del sweep["dt"]
    cells = sweep_cell_specs("s", sweep)
    steps = {spec.dt: spec.save_every for spec in cells.values()}
    assert steps == {1.0e-3: 2, 5.0e-4: 4, 2.5e-4: 8}


# ------------------------------------------------------------------ stores and open_sweep


def _run(root, name, sweep):
    cells = sweep_cell_specs(name, sweep)
    for (label, seed), spec in cells.items():
        write_cell(spec.simulate(), layout.cell_store(root, name, label, seed))
    return cells


def test_every_axis_shares_the_noise_of_a_seed(tmp_path):
    # phi only rotates the phase of the linear model's qubit: with the same Brownian
    # increments, the classical paths at every phi agree to rounding (independent noise
    # would move p by ~sigma sqrt(dt) = 0.03 per step)
    cells = _run(tmp_path, "s", _sweep(grid={"phi": [0.0, 3.0]}, n_traj=4))
    ds = cq_core.open_sweep(tmp_path / "s").compute()
    classical = ds["classical"].sel(sigma=1.0)
    np.testing.assert_allclose(classical.sel(phi=0.0), classical.sel(phi=3.0), rtol=0, atol=1e-14)
    assert not np.array_equal(classical.sel(seed=0), classical.sel(seed=1))
    ratio = ds["psi"].sel(level="L") / ds["psi"].sel(level="R")
    phase = ratio.copy(data=np.angle(ratio))
    assert np.abs(phase.sel(phi=3.0) - phase.sel(phi=0.0)).max() > 0.01
    assert len(cells) == 8


def test_open_sweep_gives_every_axis_a_labelled_dimension(tmp_path):
    sweep = _sweep(grid={"lam": [1.0, 0.5], "dt": [1.0e-3, 5.0e-4]}, save_every=2)
    del sweep["dt"]
    cells = _run(tmp_path, "s", sweep)
    ds = cq_core.open_sweep(tmp_path / "s")
    assert ds["psi"].dims == ("lam", "dt", "sigma", "seed", "trajectory", "time", "level")
    np.testing.assert_array_equal(ds["lam"], [0.5, 1.0])
    np.testing.assert_array_equal(ds["dt"], [5.0e-4, 1.0e-3])
    np.testing.assert_allclose(ds["time"], [0.0, 0.002, 0.004, 0.006, 0.008, 0.01])
    assert ds.attrs["n_cells"] == len(cells) == 16
    assert "lam" not in ds.attrs["model_params"]
    store = tmp_path / "s/cells/lam=0.5/dt=0.0005/sigma=2.0/seed=1.zarr"
    one = open_store(store)
    assert (float(one["lam"]), float(one["dt"])) == (0.5, 5.0e-4)
    np.testing.assert_array_equal(
        ds["psi"].sel(lam=0.5, dt=5.0e-4, sigma=2.0, seed=1), one["psi"].values
    )
    assert len(sweep_cells(tmp_path / "s")) == 16
    store_path = store.parent / "seed=0.zarr"
    import shutil

    shutil.rmtree(store_path)
    with pytest.raises(ValueError, match=r"do not fill the grid: missing lam=.*sigma|missing"):
        cq_core.open_sweep(tmp_path / "s")


def test_a_vector_axis_opens_with_its_values(tmp_path):
    sweep = dict(
        model="mass_superposition",
        params={},
        sigma=[0.02],
        seeds=[0],
        n_traj=3,
        t_final=0.003,
        dt=1.0e-3,
        grid={"r0": [[0.0, -0.5, 0.0], [0.0, 0.5, 0.0]], "phi": [0.0, 5.0]},
    )
    for (label, seed), spec in sweep_cell_specs("v", sweep).items():
        run_cell_to_store(spec, layout.cell_store(tmp_path, "v", label, seed))
    ds = cq_core.open_sweep(tmp_path / "v")
    assert ds["psi"].dims[:3] == ("r0_index", "phi", "sigma")
    np.testing.assert_array_equal(ds["r0"], [[0.0, -0.5, 0.0], [0.0, 0.5, 0.0]])
    y0 = ds["classical"].sel(coord="y").isel(time=0, trajectory=0, sigma=0, seed=0, phi=0)
    np.testing.assert_array_equal(y0, [-0.5, 0.5])


def test_a_cell_of_another_grid_is_refused(tmp_path):
    _run(tmp_path, "s", _sweep(grid={"lam": [1.0]}, seeds=[0], sigma=[1.0]))
    other = sweep_cell_specs("s", _sweep(grid={"phi": [1.0]}, seeds=[0], sigma=[1.0]))
    for (label, seed), spec in other.items():
        write_cell(spec.simulate(), layout.cell_store(tmp_path, "s", label, seed))
    with pytest.raises(ValueError, match=re.escape("different grid axes")):
        cq_core.open_sweep(tmp_path / "s")


def test_grid_points_that_differ_in_what_no_axis_changes_are_refused(tmp_path):
    # one point written with another dt: dt is no axis here, so the points are two sweeps
    _run(tmp_path, "s", _sweep(grid={"lam": [1.0]}, seeds=[0], sigma=[1.0]))
    _run(tmp_path, "s", _sweep(grid={"lam": [0.5]}, seeds=[0], sigma=[1.0], dt=5.0e-4))
    with pytest.raises(ValueError, match=r"differ in 'dt' .*which no grid axis changes"):
        cq_core.open_sweep(tmp_path / "s")


def test_verify_finds_grid_stores_and_names_a_misplaced_one(tmp_path):
    from cq_core.pipeline.verify import verify_results

    sweep = _sweep(grid={"lam": [0.5, 1.0]}, seeds=[0], sigma=[1.0])
    for (label, seed), spec in sweep_cell_specs("s", sweep).items():
        run_cell_to_store(spec, layout.cell_store(tmp_path, "s", label, seed))
    config = {"base_seed": 0, "sweeps": {"s": sweep}}
    report = verify_results(tmp_path, config)
    assert len(report) == 2 and all(problems == [] for problems in report.values())
    cells = tmp_path / "s" / "cells"
    (cells / "lam=0.5/sigma=1.0/seed=0.zarr").rename(cells / "lam=0.5/sigma=1.0/seed=9.zarr")
    (cells / "lam=1.0/sigma=1.0/seed=0.zarr").rename(cells / "lam=0.5/sigma=1.0/seed=0.zarr")
    report = verify_results(tmp_path, config)
    misplaced = report[cells / "lam=0.5/sigma=1.0/seed=0.zarr"]
    assert any("path names another" in p for p in misplaced)
    assert any("path names another" in p for p in report[cells / "lam=0.5/sigma=1.0/seed=9.zarr"])
