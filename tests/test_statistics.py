"""Summaries merged from per-cell statistics (cq_core/analysis/statistics.py, summaries.py and
cq_core/pipeline/statistics_store.py).

The summary merged from per-cell statistics must equal the one computed directly from the
trajectories (tests/summary_reference.py, the former implementation) to rounding: same
variables, dims, coordinates and attrs, values within rtol 1e-12 (atol 1e-14 for values that
are sums of O(1) terms cancelling to ~0). Real runs with several σ and seeds: ``linear`` pure,
density (with excess decoherence) and mean-field, and ``sqrt_potential`` with trajectories
leaving its domain (flagged), stored as real cells and read back lazily.
"""

from __future__ import annotations

import json
import os
import shutil

import numpy as np
import pytest
import xarray as xr
from summary_reference import summarise as reference_summarise

import cq_core
from cq_core.analysis import (
    cell_statistics,
    settings_hash,
    summarise,
    summary_from_statistics,
)
from cq_core.cells import CellSpec, run_cell, write_cell
from cq_core.pipeline import statistics_store
from cq_core.pipeline.statistics_store import (
    read_statistics,
    statistics_path,
    summarise_stores,
    write_cell_statistics,
)

SETTINGS = {"time_slices": [0.0, 0.021, 0.05], "hist_bins": 9, "fit_window": [0.01, 0.05]}
RUNS = {
    "linear": dict(model="linear", params={}, t_final=0.05, dt=1e-3, save_every=2),
    "density": dict(
        model="linear", params={}, t_final=0.05, dt=1e-3, save_every=2, mode="density", excess=0.5
    ),
    "mean_field": dict(model="linear", params={}, t_final=0.05, dt=1e-3, mode="mean_field"),
    # q0 = 1, p0 = −1 heads for the wall at q = 0: some trajectories leave the domain
    "flagged": dict(model="sqrt_potential", params={}, t_final=2.0, dt=2e-3, save_every=25),
}
FLAGGED_SETTINGS = {"time_slices": [0.0, 1.0, 2.0], "hist_bins": 6, "fit_window": None}


def close(actual: xr.Dataset, expected: xr.Dataset) -> None:
    """Same variables, dims, coordinates and attrs; values equal to rounding."""
    assert list(actual.data_vars) == list(expected.data_vars)
    for name, var in expected.variables.items():
        assert actual[name].dims == var.dims, name
        assert actual[name].dtype == var.dtype, name
    xr.testing.assert_allclose(actual, expected, rtol=1e-12, atol=1e-14)
    assert actual.attrs == expected.attrs


def store_sweep(root, run, sigmas, seeds, n_traj):
    """Simulate and store the cells of a sweep; returns their store paths."""
    paths = []
    for sigma in sigmas:
        for seed in seeds:
            path = root / "cells" / f"sigma={sigma!r}" / f"seed={seed}.zarr"
            spec = CellSpec(sigma=sigma, seed=seed, n_traj=n_traj, **run)
            write_cell(spec.simulate(), path)
            paths.append(path)
    return paths


@pytest.fixture(scope="module")
def sweeps(tmp_path_factory):
    """Each run of RUNS stored as a 2-σ × 3-seed sweep (2 × 2 for the flagged one)."""
    root = tmp_path_factory.mktemp("statistics")
    stored = {}
    for name, run in RUNS.items():
        if name == "flagged":
            paths = store_sweep(root / name, run, (0.4, 0.6), (0, 1), 40)
        else:
            paths = store_sweep(root / name, run, (1.0, 2.0), (0, 1, 5), 23)
        stored[name] = paths
    return stored


def settings_of(name):
    return FLAGGED_SETTINGS if name == "flagged" else SETTINGS


def as_keywords(settings):
    return {
        "time_slices": settings["time_slices"],
        "bins": settings["hist_bins"],
        "fit_window": settings["fit_window"],
    }


@pytest.mark.slow
@pytest.mark.parametrize("name", list(RUNS))
def test_the_merged_summary_equals_the_one_from_trajectories(sweeps, name, tmp_path):
    paths = sweeps[name]
    settings = settings_of(name)
    sweep = cq_core.open_sweep(paths[0].parents[2], cells=paths)
    assert sweep["status"].chunks is not None  # read lazily, block by block
    expected = reference_summarise(sweep, **as_keywords(settings)).compute()
    if name == "flagged":
        flagged = expected["n_flagged"].values
        assert np.all(flagged > 0) and np.all(flagged < expected["n_trajectories"].values)
    if name == "mean_field":
        assert float(expected["gamma_theory"].max()) == 0.0
    # the analysis path (summarise = merge of cell_statistics) and the stored-statistics path
    close(summarise(sweep, **as_keywords(settings)), expected)
    copied = [tmp_path / p.relative_to(paths[0].parents[2]) for p in paths]
    for source, target in zip(paths, copied, strict=True):
        shutil.copytree(source, target)
    from_stores = summarise_stores(copied, settings, workers=1)  # computes and writes them
    assert all(statistics_path(p).is_file() for p in copied)
    from_stores.attrs["sweep"] = expected.attrs["sweep"]  # the copy's directory name
    close(from_stores, expected)
    assert all(s is not None for s in read_statistics(copied, settings))
    again = summarise_stores(copied, settings, workers=1)  # now read from the files
    again.attrs["sweep"] = expected.attrs["sweep"]
    close(again, expected)


def test_pooled_over_seeds_not_averaged_per_seed(sweeps):
    """The SEs pool every trajectory of a σ (one sample of 3 × 23), as the reference does."""
    paths = sweeps["linear"]
    sweep = cq_core.open_sweep(paths[0].parents[2], cells=paths).load()
    summary = summarise(sweep, **as_keywords(SETTINGS))
    values = (
        2 * abs(sweep["psi"].isel(level=0)) * abs(sweep["psi"].isel(level=1))
    ).values  # (sigma, seed, trajectory, time)
    pooled = values.reshape(2, -1, values.shape[-1])
    initial = pooled[:, :, :1].mean(axis=1)  # 2|rho_ab(0)|, (sigma, 1)
    se = pooled.std(axis=1, ddof=1) / np.sqrt(pooled.shape[1]) / initial
    np.testing.assert_allclose(summary["coherence_se"], se, rtol=1e-10, atol=1e-15)


def test_statistics_size_is_independent_of_the_trajectories_and_blocks():
    model = cq_core.get_model("linear")
    run = dict(sigma=1.0, t_final=0.05, dt=1e-3, seed=3, save_every=5)  # 11 times, 10 fit times
    small = cq_core.simulate(model, n_traj=40, **run)
    large = cq_core.simulate(model, n_traj=400, **run)
    settings = {"time_slices": [0.0, 0.05], "hist_bins": 12, "fit_window": None}
    assert cell_statistics(small, settings).nbytes == cell_statistics(large, settings).nbytes
    whole = cell_statistics(large, settings)
    in_blocks = cell_statistics(large, settings, block_size=7)  # 58 merges of blocks
    for name in ("n_kept", "hist_count", "hist_n", "born_positive"):
        np.testing.assert_array_equal(in_blocks[name], whole[name])
    factor = whole["coherence_factor"].values
    blocked = in_blocks["coherence_factor"].values
    np.testing.assert_allclose(blocked.T @ blocked, factor.T @ factor, rtol=1e-10, atol=1e-18)
    xr.testing.assert_allclose(
        summary_from_statistics([in_blocks], settings),
        summary_from_statistics([whole], settings),
        rtol=1e-12,
        atol=1e-14,
    )


@pytest.mark.slow
def test_changed_settings_and_tampered_files_are_recomputed(sweeps, tmp_path, monkeypatch):
    paths = []
    for source in sweeps["linear"]:
        target = tmp_path / source.relative_to(sweeps["linear"][0].parents[2])
        shutil.copytree(source, target)
        paths.append(target)
    monkeypatch.setattr(statistics_store, "INLINE_CELLS", 0)  # even 6 cells go to workers
    summarise_stores(paths, SETTINGS, workers=2)  # in two processes; writes every file
    monkeypatch.undo()
    files = [statistics_path(p) for p in paths]
    stamps = [os.stat(f).st_mtime_ns for f in files]
    summarise_stores(paths, SETTINGS, workers=2)
    assert [os.stat(f).st_mtime_ns for f in files] == stamps  # read, not recomputed

    # a changed analysis setting finds no statistics and recomputes them (and writes them)
    changed = {**SETTINGS, "hist_bins": 4}
    assert read_statistics(paths, changed) == [None] * len(paths)
    expected = reference_summarise(
        cq_core.open_sweep(paths[0].parents[2], cells=paths), **as_keywords(changed)
    ).compute()
    close(summarise_stores(paths, changed, workers=2), expected)
    assert all(s is not None for s in read_statistics(paths, changed))

    # missing, edited, another cell's and unreadable files are recomputed, never trusted
    files[0].unlink()
    edited = bytearray(files[1].read_bytes())
    edited[-1] ^= 1  # one bit of the last array's bytes
    files[1].write_bytes(bytes(edited))
    shutil.copyfile(files[3], files[2])
    files[4].write_bytes(b"not an archive")
    found = read_statistics(paths, changed)
    assert [s is None for s in found] == [True, True, True, False, True, False]
    close(summarise_stores(paths, changed, workers=1), expected)
    assert all(s is not None for s in read_statistics(paths, changed))


def test_bad_settings_and_grids_are_refused():
    ds = cq_core.simulate(
        cq_core.get_model("linear"), sigma=1.0, n_traj=5, t_final=0.01, dt=1e-3, seed=0
    )
    good = {"time_slices": [0.0], "hist_bins": 3, "fit_window": None}
    with pytest.raises(ValueError, match="unknown analysis setting.*figures.*valid keys"):
        cell_statistics(ds, {**good, "figures": []})
    with pytest.raises(ValueError, match="hist_bins"):
        cell_statistics(ds, {**good, "hist_bins": 0})
    with pytest.raises(ValueError, match="fit_window"):
        cell_statistics(ds, {**good, "fit_window": [0.01, 0.0]})
    with pytest.raises(ValueError, match="outside the stored times"):
        cell_statistics(ds, {**good, "time_slices": [0.5]})
    stats = cell_statistics(ds, good)
    with pytest.raises(ValueError, match="analysis settings"):
        summary_from_statistics([stats], {**good, "hist_bins": 4})
    other = cell_statistics(ds.assign_coords(sigma=2.0, seed=1), good)
    with pytest.raises(ValueError, match="missing sigma=1.0 seed=1"):
        summary_from_statistics([stats, other], good)
    with pytest.raises(ValueError, match="twice"):
        summary_from_statistics([stats, stats], good)
    with pytest.raises(ValueError, match="settings_hash"):
        write_cell_statistics("unused.zarr", stats, settings_hash(good)[::-1])


def test_stale_cells_and_bad_workers_are_refused(sweeps):
    paths = sweeps["mean_field"]
    with pytest.raises(ValueError, match="workers must be an integer >= 1"):
        summarise_stores(paths, SETTINGS, workers=0)
    with pytest.raises(ValueError, match=f"numerics version '{cq_core.NUMERICS_VERSION}', not '0'"):
        summarise_stores(paths, SETTINGS, workers=1, numerics_version="0")


def test_a_tampered_cell_store_is_never_summarised(tmp_path):
    # cells stored as the pipeline stores them (run_cell records the cell: the writer seals it)
    run = dict(RUNS["linear"], n_traj=12, sigma=1.0)
    paths = []
    for seed in (0, 1):
        path = tmp_path / "sweep" / "cells" / "sigma=1.0" / f"seed={seed}.zarr"
        write_cell(run_cell(CellSpec(seed=seed, **run).resolved()), path)
        paths.append(path)
    summarise_stores(paths, SETTINGS, workers=1)  # sound: summarised, statistics written
    metadata = paths[1] / "classical" / "zarr.json"
    meta = json.loads(metadata.read_text())
    meta.setdefault("attributes", {})["scale_factor"] = 2.0  # xarray would double every value
    metadata.write_text(json.dumps(meta))
    changed = {**SETTINGS, "hist_bins": 4}  # new settings: the trajectories must be read
    with pytest.raises(ValueError, match="does not match its manifest") as caught:
        summarise_stores(paths, changed, workers=1)
    assert str(paths[1]) in str(caught.value)
    assert "classical/zarr.json: content differs from the manifest" in str(caught.value)
    assert read_statistics(paths, changed)[1] is None  # nothing was written for it


def test_the_fit_uses_at_most_100_evenly_spaced_times_as_the_reference_does():
    """300 saved times: the Γ fit takes 100 of them (first and last kept), the same as the
    independent reference; fitting every time gives a different Γ, so the test tells."""
    from cq_core.analysis.statistics import MAX_FIT_TIMES, fit_times

    times = np.arange(301) * 1e-3
    mask = fit_times(times, None)
    chosen = np.flatnonzero(mask)
    assert MAX_FIT_TIMES == 100 and chosen.size == 100
    assert chosen[0] == 1 and chosen[-1] == 300  # t > 0, first and last kept
    assert np.ptp(np.diff(chosen)) <= 1  # evenly spaced by index
    ds = cq_core.simulate(
        cq_core.get_model("linear"), sigma=1.0, n_traj=200, t_final=0.3, dt=1e-3, seed=4
    )
    ds = ds.expand_dims(sigma=[1.0], seed=[0])
    expected = reference_summarise(ds, time_slices=[0.0, 0.3], bins=4).compute()
    got = summarise(ds, time_slices=[0.0, 0.3], bins=4)
    np.testing.assert_allclose(got["gamma_fit"], expected["gamma_fit"], rtol=1e-10)
    np.testing.assert_allclose(got["gamma_fit_se"], expected["gamma_fit_se"], rtol=1e-8)
