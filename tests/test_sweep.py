"""Tests of :mod:`cq_core.sweep`: opening stored cells as one Dataset, checking sweep configs."""

from __future__ import annotations

import re
import shutil

import numpy as np
import pytest

import cq_core
from cq_core.cells import CellSpec, write_cell
from cq_core.sweep import check_analysis, sigma_label, sweep_cell_specs, sweep_cells

BASE = {"model": "linear", "params": {}, "n_traj": 6, "t_final": 0.01, "dt": 1e-3}


def _write(root, sigma, seed, **changes):
    spec = CellSpec(sigma=sigma, seed=seed, **{**BASE, **changes})
    path = root / "cells" / f"sigma={sigma_label(sigma)}" / f"seed={seed}.zarr"
    write_cell(spec.simulate(), path)
    return spec, path


@pytest.fixture
def sweep_root(tmp_path):
    root = tmp_path / "demo"
    for sigma in (2.0, 0.5):
        for seed in (4, 1):
            _write(root, sigma, seed)
    return root


def test_open_sweep_is_a_lazy_labelled_grid(sweep_root):
    (sweep_root / "cells" / "sigma=0.5" / "seed=9.zarr.tmp").mkdir()  # half-written: ignored
    ds = cq_core.open_sweep(sweep_root)
    assert ds["psi"].dims == ("sigma", "seed", "trajectory", "time", "level")
    assert ds["status"].dims == ("sigma", "seed", "trajectory")
    np.testing.assert_array_equal(ds["sigma"], [0.5, 2.0])
    np.testing.assert_array_equal(ds["seed"], [1, 4])
    assert ds["psi"].chunks is not None  # dask-backed: nothing read yet
    assert ds.attrs["sweep"] == "demo" and ds.attrs["n_cells"] == 4
    assert "cell_hash" not in ds.attrs and ds.attrs["model"] == "linear"
    direct = cq_core.simulate(
        cq_core.get_model("linear"), sigma=2.0, seed=4, n_traj=6, t_final=0.01, dt=1e-3
    )
    np.testing.assert_array_equal(ds["psi"].sel(sigma=2.0, seed=4).values, direct["psi"].values)
    assert len(sweep_cells(sweep_root)) == 4


def test_open_sweep_selected_cells_and_errors(sweep_root, tmp_path):
    chosen = [p for p in sweep_cells(sweep_root) if "sigma=0.5" in str(p)]
    assert cq_core.open_sweep(sweep_root, cells=chosen).sizes["sigma"] == 1
    with pytest.raises(ValueError, match="numerics version"):
        cq_core.open_sweep(sweep_root, numerics_version="not-" + cq_core.NUMERICS_VERSION)
    shutil.rmtree(sweep_root / "cells" / "sigma=2.0" / "seed=1.zarr")
    with pytest.raises(ValueError, match="missing sigma=2.0 seed=1"):
        cq_core.open_sweep(sweep_root)
    _write(sweep_root, 2.0, 1, dt=5e-4)
    with pytest.raises(ValueError, match="differ in 'dt'"):
        cq_core.open_sweep(sweep_root)
    with pytest.raises(FileNotFoundError):
        cq_core.open_sweep(tmp_path / "nothing")


SWEEP = {
    **BASE,
    "sigma": [0.5, 1.0],
    "seeds": [0, 3],
    "save_every": 1,
    "method": "auto",
    "mode": "pure",
    "excess": 0.0,
    "analysis": {"time_slices": [0.0, 0.01], "hist_bins": 8, "fit_window": None},
}


def test_sweep_cell_specs_builds_the_grid():
    cells = sweep_cell_specs("demo", SWEEP, base_seed=2)
    assert sorted(cells) == [("0.5", 0), ("0.5", 3), ("1.0", 0), ("1.0", 3)]
    assert cells[("1.0", 3)] == CellSpec(sigma=1.0, seed=3, base_seed=2, **BASE).resolved()
    assert cells[("1.0", 3)].backend in ("numpy", "generated")  # "auto" fixed at parse time
    numpy_cells = sweep_cell_specs("demo", {**SWEEP, "backend": "numpy"})
    assert {spec.backend for spec in numpy_cells.values()} == {"numpy"}
    assert check_analysis("demo", SWEEP) == {
        "time_slices": [0.0, 0.01],
        "hist_bins": 8,
        "fit_window": None,
    }


@pytest.mark.parametrize(
    ("change", "key"),
    [
        ({"model": "nope"}, "sweeps.demo.model"),
        ({"params": {"lamda": 1.0}}, "sweeps.demo.params"),
        ({"params": {"m": -1.0}}, "sweeps.demo.params"),
        ({"sigma": [0.5, -1.0]}, "sweeps.demo.sigma[1]"),
        ({"sigma": [0.5, 1.0, 0.50]}, "sweeps.demo.sigma[2]"),
        ({"seeds": [0, 3, 0]}, "sweeps.demo.seeds[2]"),
        ({"dt": 3e-3}, "sweeps.demo.t_final"),
        ({"mode": "pure", "excess": 0.5}, "sweeps.demo.excess"),
        ({"method": "exponential", "params": {"omega": 1.0}}, "sweeps.demo.method"),
        ({"n_traj": 0}, "sweeps.demo.n_traj"),
        ({"backend": "numba", "mode": "density"}, "sweeps.demo.backend"),
    ],
)
def test_sweep_errors_name_the_key(change, key):
    with pytest.raises(ValueError, match=re.escape(f"invalid config: {key}:")):
        sweep_cell_specs("demo", {**SWEEP, **change})


@pytest.mark.parametrize(
    ("analysis", "key"),
    [
        ({"time_slices": [0.0, 0.02]}, "analysis.time_slices[1]"),
        ({"hist_bins": 0}, "analysis.hist_bins"),
        ({"fit_window": [0.005, 0.001]}, "analysis.fit_window"),
        ({"fit_window": [0.0, 1.0]}, "analysis.fit_window"),
    ],
)
def test_analysis_errors_name_the_key(analysis, key):
    with pytest.raises(ValueError, match=re.escape(f"invalid config: sweeps.demo.{key}:")):
        check_analysis("demo", {**SWEEP, "analysis": analysis})


@pytest.mark.parametrize("mode", ["pure", "density"])
def test_open_sweep_from_metadata_equals_combining_the_opened_cells(tmp_path, monkeypatch, mode):
    from cq_core.cells import run_cell
    from cq_core.pipeline import store_encoding
    from cq_core.sweep import open_store

    monkeypatch.setattr(store_encoding, "STORE_TRAJECTORY_CHUNK", 4)  # 10 trajectories: 3 chunks
    root = tmp_path / "recorded"
    for sigma in (2.0, 0.5, 1.0):
        for seed in (4, 1):
            spec = CellSpec(sigma=sigma, seed=seed, **{**BASE, "n_traj": 10, "mode": mode})
            path = root / "cells" / f"sigma={sigma_label(sigma)}" / f"seed={seed}.zarr"
            cell = run_cell(spec.resolved())
            if sigma == 1.0 and seed == 4:
                cell["status"][3] = 1  # one flagged trajectory: a status chunk is stored
                cell["status_time"][3] = 0.005
            write_cell(cell, path)
    ds = cq_core.open_sweep(root)
    state = "psi" if mode == "pure" else "rho"
    assert ds[state].data.name.startswith("cells-")  # built from the metadata alone
    assert ds[state].chunks[2] == (4, 4, 2)
    # the reference: every cell opened by xarray and combined on the (sigma, seed) grid
    nested = [
        [open_store(root / "cells" / f"sigma={sigma_label(s)}" / f"seed={k}.zarr") for k in (1, 4)]
        for s in (0.5, 1.0, 2.0)
    ]
    reference = __import__("xarray").combine_nested(
        nested, concat_dim=["sigma", "seed"], combine_attrs="drop_conflicts"
    )
    reference = reference.transpose("sigma", "seed", "trajectory", ...)
    for key in ("cell_spec", "cell_hash"):
        reference.attrs.pop(key, None)
    reference.attrs.update(sweep="recorded", n_cells=6)
    __import__("xarray").testing.assert_identical(ds.compute(), reference.compute())
    assert int(ds["status"].sel(sigma=1.0, seed=4)[3]) == 1
