"""Tests of :mod:`cq_core.pipeline.manifest` and :mod:`cq_core.pipeline.identity`.

Real Zarr stores written by ``cq_core.cells.write_cell`` into ``tmp_path`` (no mocks); each
tampering case of a store (metadata and chunks) must be reported, naming the file.
"""

from __future__ import annotations

import json
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from cq_core.cells import CellSpec, read_cell_attrs, write_cell
from cq_core.pipeline.identity import cell_differences, recorded_cell
from cq_core.pipeline.manifest import (
    MANIFEST_NAME,
    _listing_digest,
    cell_identity,
    check_manifest,
    manifest_identity,
    write_manifest,
)

# sqrt_potential from q0 = 0.5, p0 = −1 heads for the wall q = 0: some trajectories leave the
# domain and are flagged, so status/status_time chunks exist (two trajectory chunks of 500)
CELL = dict(
    model="sqrt_potential",
    params={"q0": 0.5},
    sigma=0.5,
    base_seed=7,
    n_traj=600,
    t_final=0.6,
    dt=5e-3,
    save_every=10,
)


def cell_spec(seed: int) -> CellSpec:
    return CellSpec(seed=seed, **CELL).resolved()


def identity(spec: CellSpec) -> dict:
    return cell_identity(cell_hash=spec.config_hash, sigma=spec.sigma, seed=spec.seed)


def make_store(path: Path, seed: int) -> Path:
    """A complete cell store with its manifest, as the pipeline leaves it."""
    spec = cell_spec(seed)
    ds = spec.simulate()
    ds.attrs.update(cell_spec=spec.to_json(), cell_hash=spec.config_hash)
    write_cell(ds, path)  # writes the manifest before the store is moved into place
    return path


@pytest.fixture(scope="module")
def pristine(tmp_path_factory) -> dict[int, Path]:
    root = tmp_path_factory.mktemp("manifest")
    return {seed: make_store(root / f"seed={seed}.zarr", seed) for seed in (1, 2)}


@pytest.fixture
def store(pristine, tmp_path) -> Path:
    """A fresh copy of seed 1's store, free to tamper with."""
    return Path(shutil.copytree(pristine[1], tmp_path / "seed=1.zarr"))


def expected(seed: int) -> dict:
    return identity(cell_spec(seed))


def edit_json(path: Path, change) -> None:
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data, indent=2))


def test_untampered_store_passes(store):
    assert check_manifest(store, identity=expected(1)) == []
    assert check_manifest(store) == []


def test_manifest_covers_every_file(store):
    listed = json.loads((store / MANIFEST_NAME).read_text())["attributes"]["cq_manifest"]
    on_disk = {p.relative_to(store).as_posix() for p in store.rglob("*") if p.is_file()} - {
        MANIFEST_NAME
    }
    assert set(listed["files"]) == on_disk
    assert "zarr.json" in on_disk and "status/zarr.json" in on_disk
    assert any(name.startswith("classical/c/") for name in on_disk)


def test_manifest_is_byte_identical_for_two_runs(pristine, tmp_path):
    again = make_store(tmp_path / "seed=1.zarr", 1)
    assert (again / MANIFEST_NAME).read_bytes() == (pristine[1] / MANIFEST_NAME).read_bytes()
    text = (again / MANIFEST_NAME).read_text()
    assert str(tmp_path) not in text  # relative paths only


def test_store_opens_without_warnings_with_manifest(store):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ds = xr.open_zarr(store, consolidated=False)
        assert "cq_manifest" not in ds.variables
        assert ds["classical"].shape[0] == CELL["n_traj"]
        assert np.isfinite(ds["classical"].values).all()  # every chunk decodes


def test_scale_factor_added_to_array_metadata_is_caught(store):
    edit_json(store / "classical/zarr.json", lambda d: d["attributes"].update(scale_factor=2.0))
    problems = check_manifest(store, identity=expected(1))
    assert len(problems) == 1
    assert problems[0].startswith("classical/zarr.json: content differs from the manifest")


def test_model_params_edited_in_root_metadata_is_caught(store):
    attrs = read_cell_attrs(store)
    assert '"q0":0.5' in attrs["cell_spec"]

    def edit(data):
        cell = json.loads(data["attributes"]["cell_spec"])
        cell["params"]["q0"] = 2.0
        data["attributes"]["cell_spec"] = json.dumps(cell)

    edit_json(store / "zarr.json", edit)
    problems = check_manifest(store, identity=expected(1))
    assert len(problems) == 1 and problems[0].startswith("zarr.json: content differs")


def test_flipped_chunk_byte_is_caught(store):
    chunk = sorted(p for p in (store / "classical" / "c").rglob("*") if p.is_file())[0]
    data = bytearray(chunk.read_bytes())
    data[len(data) // 2] ^= 0x01
    chunk.write_bytes(bytes(data))
    problems = check_manifest(store, identity=expected(1))
    assert problems == [
        f"{chunk.relative_to(store).as_posix()}: content differs from the manifest "
        f"({len(data)} bytes, {len(data)} recorded)"
    ]


def test_deleted_status_chunk_pair_is_caught(store):
    status = sorted(p for p in (store / "status").rglob("*") if p.is_file() and "c" in p.parts)
    status_time = sorted(
        p for p in (store / "status_time").rglob("*") if p.is_file() and "c" in p.parts
    )
    assert status and status_time, "the cell must store status chunks for this case"
    flagged = int((xr.open_zarr(store, consolidated=False).status[:500] != 0).sum())
    assert flagged > 0
    for path in (status[0], status_time[0]):
        path.unlink()
    # the danger: xarray reads the missing chunks as fill values, i.e. every trajectory "ok"
    assert int((xr.open_zarr(store, consolidated=False).status[:500] != 0).sum()) == 0
    problems = check_manifest(store, identity=expected(1))
    assert problems == sorted(
        f"{p.relative_to(store).as_posix()}: missing (listed in the manifest)"
        for p in (status[0], status_time[0])
    )


def test_extra_file_is_caught(store):
    (store / "classical" / "c" / "extra").write_bytes(b"\0")
    (store / "notes.txt").write_text("hello")
    assert check_manifest(store, identity=expected(1)) == [
        "classical/c/extra: extra file (not in the manifest)",
        "notes.txt: extra file (not in the manifest)",
    ]


def test_snakemake_timestamp_is_ignored(store):
    (store / ".snakemake_timestamp").touch()
    assert check_manifest(store, identity=expected(1)) == []


def test_absent_store_and_long_identity_values_are_reported_in_one_line(store, tmp_path):
    assert check_manifest(tmp_path / "absent.zarr") == [f"{tmp_path / 'absent.zarr'}: not a folder"]
    edit_json(
        store / MANIFEST_NAME,
        lambda d: d["attributes"]["cq_manifest"]["identity"].update(sweep="x" * 10_000),
    )
    (problem,) = check_manifest(store, identity=expected(1))
    assert problem.startswith(f"{MANIFEST_NAME}: identity sweep = 'xxx") and len(problem) < 300


def test_missing_manifest_is_caught(store):
    (store / MANIFEST_NAME).unlink()
    problems = check_manifest(store, identity=expected(1))
    assert len(problems) == 1 and problems[0].startswith(f"{MANIFEST_NAME}: missing")


def test_edited_manifest_is_caught(store):
    def edit(data):
        files = data["attributes"]["cq_manifest"]["files"]
        files["zarr.json"]["sha256"] = "0" * 64

    edit_json(store / MANIFEST_NAME, edit)
    problems = check_manifest(store, identity=expected(1))
    assert problems[0] == f"{MANIFEST_NAME}: its digest does not match its listing (edited)"
    assert "zarr.json: content differs from the manifest" in problems[1]


def chunk_files(store: Path) -> list[str]:
    return sorted(
        p.relative_to(store).as_posix()
        for p in store.rglob("*")
        if p.is_file() and "c" in p.relative_to(store).parts[1:2]
    )


def test_chunks_swapped_between_two_seeds_are_caught(pristine, store):
    other = pristine[2]
    moved = [name for name in chunk_files(other) if name.startswith("classical/")]
    assert moved
    for name in moved:
        shutil.copyfile(other / name, store / name)
    problems = check_manifest(store, identity=expected(1))
    assert [p.split(":")[0] for p in problems] == moved
    assert all("content differs from the manifest" in p for p in problems)


def test_whole_manifest_swapped_with_chunks_is_caught(pristine, store):
    """Seed 2's chunks AND its manifest copied into seed 1's store: the identity says so."""
    other = pristine[2]
    for name in chunk_files(other):
        shutil.copyfile(other / name, store / name)
    shutil.copyfile(other / MANIFEST_NAME, store / MANIFEST_NAME)
    problems = check_manifest(store, identity=expected(1))
    assert problems and all(p.startswith(f"{MANIFEST_NAME}: identity") for p in problems)
    assert any("seed = 2 recorded, 1 expected" in p for p in problems)
    # editing the manifest's identity to the expected one does not help: hashes are keyed
    edit_json(
        store / MANIFEST_NAME,
        lambda d: d["attributes"]["cq_manifest"].update(identity=expected(1)),
    )
    problems = check_manifest(store, identity=expected(1))
    assert problems[0] == f"{MANIFEST_NAME}: its digest does not match its listing (edited)"
    assert "zarr.json: content differs from the manifest" in "\n".join(problems)


def test_store_of_another_cell_is_caught(store):
    other = identity(cell_spec(2))
    problems = check_manifest(store, identity=other)
    assert f"{MANIFEST_NAME}: identity seed = 1 recorded, 2 expected" in "\n".join(problems)
    assert all(p.endswith("(the store belongs to another cell)") for p in problems), problems


def test_the_cell_writer_seals_every_store_it_completes(store):
    # write_cell (and so run_cell_to_store and the batch jobs, which share its writer)
    # leaves a manifest that the store's own recorded identity checks clean
    attrs = read_cell_attrs(store)
    spec = CellSpec.from_json(attrs["cell_spec"])
    assert check_manifest(store, identity=identity(spec)) == []
    assert (store / MANIFEST_NAME).is_file()


def test_identity_canonical_numbers_and_refusals(store):
    loose = dict(expected(1), seed=1.0)  # 1.0 and 1 are the same seed
    assert check_manifest(store, identity=loose) == []
    numpy_scalars = dict(expected(1), seed=np.int64(1), sigma=np.float64(0.5))
    assert check_manifest(store, identity=numpy_scalars) == []
    with pytest.raises(ValueError, match="identity key 'seed'.*ndarray"):
        check_manifest(store, identity=dict(expected(1), seed=np.array([1, 2])))
    with pytest.raises(ValueError, match="identity key 'sigma'"):
        check_manifest(store, identity=dict(expected(1), sigma=float("nan")))
    with pytest.raises(ValueError, match="identity key 'seed'.*list"):
        write_manifest(store, identity={"seed": [1]})
    with pytest.raises(ValueError, match="non-empty mapping"):
        write_manifest(store, identity={})


def test_symlink_in_store_is_refused_and_reported(store, tmp_path):
    outside = tmp_path / "outside"
    outside.write_bytes(b"x")
    (store / "link").symlink_to(outside)
    with pytest.raises(ValueError, match="link is not a regular file"):
        write_manifest(store, identity=expected(1))
    assert check_manifest(store, identity=expected(1)) == [
        "link: not a regular file (a link or special file)"
    ]


# ------------------------------------------------------------------ recorded cell (identity)


def test_recorded_cell_is_read_without_building_the_model(store):
    spec = cell_spec(1)
    recorded = recorded_cell(read_cell_attrs(store))
    assert recorded.model == "sqrt_potential"
    assert recorded.params == {"q0": 0.5}
    assert recorded.cell_hash == spec.config_hash
    assert cell_differences(recorded, spec.to_dict()) == []
    other = cell_spec(2).to_dict()
    assert cell_differences(recorded, other) == ["seed 1 (stored) vs 2 (config)"]


def test_recorded_cell_refuses_an_unregistered_model_without_running_it(store, tmp_path):
    marker = tmp_path / "ran"
    attrs = read_cell_attrs(store)
    cell = json.loads(attrs["cell_spec"])
    cell.update(model="os:system", params={"command": f"touch {marker}"})
    attrs["cell_spec"] = json.dumps(cell)
    with pytest.raises(ValueError, match="not registered; registered models: .*linear"):
        recorded_cell(attrs)
    assert not marker.exists()


def test_recorded_cell_refuses_an_edited_cell(store):
    attrs = read_cell_attrs(store)
    cell = json.loads(attrs["cell_spec"])
    cell["params"]["q0"] = 2.0
    attrs["cell_spec"] = json.dumps(cell, sort_keys=True, separators=(",", ":"))
    with pytest.raises(ValueError, match="cell_hash .* is not the hash of the recorded"):
        recorded_cell(attrs)
    with pytest.raises(ValueError, match="records no cell_spec"):
        recorded_cell({"cell_hash": "x", "numerics_version": "1"})


def test_hashes_are_keyed_by_the_identity(pristine, tmp_path):
    """Seed 2's whole store at seed 1's path, its manifest's identity and digest rewritten."""
    store = Path(shutil.copytree(pristine[2], tmp_path / "seed=1.zarr"))

    def forge(data):
        manifest = data["attributes"]["cq_manifest"]
        manifest["identity"] = manifest_identity(expected(1))
        manifest["digest"] = _listing_digest(manifest["identity"], manifest["files"])

    edit_json(store / MANIFEST_NAME, forge)
    problems = check_manifest(store, identity=expected(1))
    listed = sorted(p.relative_to(store).as_posix() for p in store.rglob("*") if p.is_file())
    listed.remove(MANIFEST_NAME)
    assert [p.split(":")[0] for p in problems] == listed
