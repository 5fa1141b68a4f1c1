"""The direct Zarr writes of :mod:`cq_core.cells` store exactly the bytes xarray would.

A cell store is laid out by :func:`cq_core.cells._direct_layout` / ``_create_store`` and its
blocks are written by ``_write_arrays`` (Zarr's own ``setitem`` on the opened arrays) instead
of xarray's ``to_zarr``. Each test builds
the same store both ways and compares every file's bytes. Real simulations, real Zarr.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from cq_core.cells import (
    CellSpec,
    _CellStoreWriter,
    _direct_layout,
    _layout_sample,
    _store_ready,
    _write_arrays,
    _xarray_layout,
    split_blocks,
)

CELLS = {
    # two trajectory chunks, the second one short (an edge chunk padded with the fill value)
    "pure": dict(model="mass_superposition", params={"phi": 1.0}, sigma=0.02, seed=3,
                 n_traj=600, t_final=0.001, dt=1e-4, save_every=2),
    # 301 saved times of 48 bytes: the time axis is split into chunks too (174 + edge)
    "long": dict(model="mass_superposition", params={}, sigma=0.02, seed=1, n_traj=520,
                 t_final=0.03, dt=1e-4, save_every=1, backend="numpy"),
    "density": dict(model="linear", params={}, sigma=0.5, seed=2, n_traj=700, t_final=0.01,
                    dt=1e-3, mode="density", excess=0.1),
    "mean_field": dict(model="qubit_lattice", params={}, sigma=0.5, seed=0, n_traj=3,
                       t_final=0.005, dt=1e-3, mode="mean_field"),
}  # fmt: skip


def store_bytes(path: Path) -> dict[str, bytes]:
    """Every file of a store, by its path inside the store."""
    return {
        str(f.relative_to(path)): f.read_bytes() for f in sorted(path.rglob("*")) if f.is_file()
    }


def xarray_region_write(store: Path, block: xr.Dataset) -> None:
    """The reference: xarray's region write of a block, as cq_core.cells did before."""
    first, count = int(block.trajectory[0]), block.sizes["trajectory"]
    names = [n for n, v in block.data_vars.items() if "trajectory" in v.dims]
    block[names].drop_vars([n for n in block.coords if n != "trajectory"]).drop_encoding().to_zarr(
        store, region={"trajectory": slice(first, first + count)}, consolidated=False, zarr_format=3
    )


def with_awkward_values(block: xr.Dataset) -> xr.Dataset:
    """A block with NaNs (one with a non-canonical payload), a complex NaN and flagged
    trajectories, so that no value is special-cased differently from xarray's write."""
    block = block.copy(deep=True)
    classical = block.classical.values
    classical[0, -1, 0] = np.nan
    classical.view(np.uint64)[-1, 0, -1] = 0xFFF8_0000_0000_0001  # a NaN xarray must keep
    quantum = block["rho" if "rho" in block else "psi"].values
    quantum.reshape(quantum.shape[0], -1)[1, 0] = complex(np.nan, 0.0)
    block.status.values[::7] = 1
    block.status_time.values[::7] = 0.5
    return block


@pytest.mark.parametrize("name", sorted(CELLS))
def test_direct_layout_has_the_bytes_of_xarrays(tmp_path, name):
    spec = CellSpec(**CELLS[name]).resolved()
    sample = _layout_sample(spec)
    assert _direct_layout(_store_ready(sample), spec.n_traj) is not None  # the direct path ran
    direct = _CellStoreWriter(tmp_path / "direct.zarr", sample, spec.n_traj).temporary
    reference = tmp_path / "xarray.zarr"
    _xarray_layout(reference, _store_ready(sample), spec.n_traj)
    assert store_bytes(direct) == store_bytes(reference)
    assert (direct / "zarr.json").is_file() and (direct / "trajectory" / "c" / "0").is_file()


@pytest.mark.parametrize(
    ("name", "block_size"),
    [("pure", 500), ("pure", 170), ("long", 500), ("density", 500), ("density", 250)],
)
def test_direct_block_writes_have_the_bytes_of_xarrays(tmp_path, name, block_size):
    """Blocks covering whole chunks and blocks that share chunks (170, 250) alike."""
    spec = CellSpec(**CELLS[name]).resolved()
    sample = _layout_sample(spec)
    direct = _CellStoreWriter(tmp_path / "direct.zarr", sample, spec.n_traj)
    reference = _CellStoreWriter(tmp_path / "xarray.zarr", sample, spec.n_traj)
    for first, count in reversed(split_blocks(spec.n_traj, block_size)):
        block = with_awkward_values(spec.simulate(first_trajectory=first, n_traj=count))
        names = [n for n, v in block.data_vars.items() if "trajectory" in v.dims]
        assert _write_arrays(direct.temporary, block, names, first, count)  # not xarray's write
        xarray_region_write(reference.temporary, block)
    assert store_bytes(direct.temporary) == store_bytes(reference.temporary)


def test_a_rewritten_block_replaces_its_chunks_as_zarr_does(tmp_path):
    """A block written again (a retried task) with values equal to the fill value everywhere
    leaves no chunk behind, as xarray's write does (Zarr does not store empty chunks)."""
    spec = CellSpec(**CELLS["pure"]).resolved()
    sample = _layout_sample(spec)
    stores = [_CellStoreWriter(tmp_path / f"{i}.zarr", sample, spec.n_traj) for i in (0, 1)]
    block = spec.simulate(first_trajectory=0, n_traj=500)
    names = [n for n, v in block.data_vars.items() if "trajectory" in v.dims]
    empty = block.copy(deep=True)
    for var in ("classical", "status_time"):
        empty[var].values[...] = np.nan
    for var in ("psi", "status"):
        empty[var].values[...] = 0
    for values in (with_awkward_values(block), empty):
        assert _write_arrays(stores[0].temporary, values, names, 0, 500)
        xarray_region_write(stores[1].temporary, values)
    files = store_bytes(stores[0].temporary)
    assert files == store_bytes(stores[1].temporary)
    assert "classical/c/0/0/0" not in files and "status/c/0" not in files


def test_samples_that_need_cf_encoding_are_left_to_xarray(tmp_path):
    """Dates, booleans or CF attributes: laid out and written by xarray, same bytes as ever."""
    n_traj = 4
    ds = xr.Dataset(
        {
            "x": (("trajectory", "time"), np.arange(8.0).reshape(n_traj, 2), {"units": "m"}),
            "flag": (("trajectory",), np.array([True, False, True, True])),
        },
        coords={
            "trajectory": np.arange(n_traj),
            "time": ("time", np.array(["2024-01-01", "2024-01-02"], dtype="datetime64[ns]")),
        },
    )
    assert _direct_layout(_store_ready(ds), n_traj) is None
    assert not _write_arrays(tmp_path, ds, ["flag"], 0, n_traj)  # a bool: xarray encodes it
    plain = ds.drop_vars("flag").assign_coords(time=[0.0, 1.0])
    assert _direct_layout(_store_ready(plain), n_traj) is not None
    for attrs in ({"_FillValue": -1.0}, {"units": "days since 2000-01-01"}, {"scale_factor": 2}):
        odd = plain.assign(x=plain.x.assign_attrs(attrs))
        assert _direct_layout(_store_ready(odd), n_traj) is None, attrs
    writer = _CellStoreWriter(tmp_path / "dates.zarr", ds, n_traj)
    writer.write(ds)
    reference = tmp_path / "reference.zarr"
    _xarray_layout(reference, _store_ready(ds), n_traj)
    xarray_region_write(reference, ds)
    assert store_bytes(writer.temporary) == store_bytes(reference)
    np.testing.assert_array_equal(xr.open_zarr(writer.temporary, consolidated=False).flag, ds.flag)
