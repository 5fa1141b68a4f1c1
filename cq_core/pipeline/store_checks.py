"""Check one cell store: every chunk present, readable and consistent with its metadata.

A cell store (written by :func:`cq_core.pipeline.cell_to_store.run_cell_to_store` or
:func:`~cq_core.pipeline.cell_store.write_cell`) records its full cell
(``cell_spec``), the hash of that cell and the numerics version (``cell_hash``), the numerics
version and the package version in its root attributes. :func:`verify_store` checks one
store against all of that:

* the root metadata is readable and records ``cell_spec``, ``cell_hash``,
  ``numerics_version`` and ``cq_core_version``; the recorded hash is the hash of the recorded
  cell, its model is a registered name (read as data: verify never imports or builds what a
  store names), and the numerics version is the installed one;
* **every file of the store** (each ``zarr.json`` and every chunk) has the content recorded
  in the store's manifest (:mod:`cq_core.pipeline.manifest`, written when the store was
  completed, its hashes keyed by the cell): an edited attribute, an added ``scale_factor``,
  a deleted chunk that would read as its fill value, or a valid chunk moved in from another
  store are all caught;
* given the configuration's cell for the store's path (``verify_results`` with a config),
  every array that cell must hold exists, with the dimensions and shape it implies
  (trajectories, saved times, phase-space components, levels), and the Dataset attributes
  agree with the recorded cell;
* **every chunk of every array is read and decoded** (a truncated or corrupt chunk fails to
  decode; the stores' Zstandard compressor keeps a checksum of each chunk, so a chunk with
  even one changed byte fails too, ``Restored data doesn't match checksum``, instead of
  decoding to other numbers), and its values are checked: coordinates equal the values the
  recorded cell implies, ``classical`` and the quantum state are finite, ψ has norm 1
  (ρ trace 1; only ``> 0`` for the non-renormalising ``euler`` method), ``status`` holds
  known codes and agrees with ``status_time``.

Zarr does not write a chunk whose values all equal the array's fill value (``status`` of a
block with no flagged trajectory, ``seed = 0``), so an absent chunk file is only a problem when
the fill value it reads as is not what the cell must hold. That holds for every chunk of
``classical`` and of the quantum state (fill NaN or 0: never a valid state) and for the
coordinates; for ``status``/``status_time`` the two are checked against each other.

:func:`stale_reason` is the cheap check (root metadata only) that a store holds the cell the
configuration asks for; the workflow calls it while parsing. The results tree and the
``verify`` command are :mod:`cq_core.pipeline.verify`.
"""

from __future__ import annotations

import itertools
import json
import math
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ..solver.time_grid import step_times
from ..version import NUMERICS_VERSION
from .cell_spec import CellSpec
from .identity import recorded_cell, recorded_cell_hash
from .manifest import MANIFEST_GROUP, cell_identity, check_manifest

__all__ = ["REQUIRED_ATTRS", "recorded_hash", "stale_reason", "verify_store"]

REQUIRED_ATTRS = ("cell_spec", "cell_hash", "numerics_version", "cq_core_version")
"""Root attributes every cell store must record."""
NORM_TOLERANCE = 1e-6
"""Largest accepted deviation of ‖ψ‖ (or tr ρ) from 1 for the renormalising integrators."""
STATUS_CODES = (0, 1, 2)
"""Valid ``status`` codes (``cq_core.STATUS_CODES``: ok, left_domain, non_finite)."""
ATTRS_FROM_SPEC = ("model", "dt", "t_final", "save_every", "mode", "excess", "base_seed", "backend")
"""Dataset attributes that must equal the recorded cell's settings of the same name."""

Layout = dict[str, tuple[tuple[str, ...], tuple[int, ...]]]


# --------------------------------------------------------------------------------- hashes


def recorded_hash(cell: Mapping[str, Any], numerics_version: str) -> str:
    """The hash a store of ``cell`` computed at ``numerics_version`` must record.

    The formula of :attr:`cq_core.pipeline.cell_spec.CellSpec.config_hash`, but for any
    numerics version, so that a store from another numerics version is still checked against
    its own cell.
    """
    return recorded_cell_hash(CellSpec.from_dict(cell).to_dict(), numerics_version)


def _read_attrs(store: Path) -> dict[str, Any]:
    """Root attributes from ``zarr.json`` (``ValueError`` if missing or unreadable)."""
    metadata = store / "zarr.json"
    try:
        with metadata.open(encoding="utf-8") as handle:
            root = json.load(handle)
    except FileNotFoundError:
        raise ValueError("not a Zarr store: no zarr.json") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ValueError(f"zarr.json is unreadable ({type(err).__name__}: {err})") from None
    if not isinstance(root, dict) or root.get("node_type") != "group":
        raise ValueError("zarr.json does not describe a Zarr group")
    attrs = root.get("attributes", {})
    return dict(attrs) if isinstance(attrs, dict) else {}


def stale_reason(store: str | os.PathLike, spec: CellSpec) -> str | None:
    """Why the store at ``store`` does not hold ``spec`` computed by this cq_core, or None.

    Reads only the root metadata (fast enough to run for every cell while the workflow is
    parsed). None also when there is no store at all (nothing stale to recompute there).
    ``spec`` must be resolved (``backend`` not ``"auto"``), as the pipeline's cells are.
    """
    store = Path(store)
    if not store.exists():
        return None
    try:
        attrs = _read_attrs(store)
    except ValueError as err:
        return str(err)
    if attrs.get("cell_hash") == spec.config_hash:
        return None
    try:
        recorded = CellSpec.from_json(attrs["cell_spec"]).to_dict()
    except (KeyError, TypeError, ValueError):
        return "the store records no readable cell_spec"
    wanted = spec.to_dict()
    changed = [
        f"{key} {recorded.get(key)!r} (stored) vs {wanted[key]!r} (config)"
        for key in wanted
        if recorded.get(key) != wanted[key]
    ]
    numerics = attrs.get("numerics_version")
    if numerics != NUMERICS_VERSION:
        changed.append(f"numerics version {numerics!r} (stored) vs {NUMERICS_VERSION!r}")
    if not changed:
        changed.append(f"cell_hash {str(attrs.get('cell_hash'))[:12]}… is not the cell's hash")
    return "stale: the store holds another cell than the config asks for: " + ", ".join(changed)


# ------------------------------------------------------------------------ one cell store


def _expected_layout(spec: CellSpec) -> tuple[Layout, dict[str, Any], str]:
    """Arrays (dims, shape), coordinate values and resolved method implied by ``spec``."""
    settings = spec.check()
    model = spec.build_model()
    n_traj, n_time = settings.n_traj, len(settings.saved_steps)
    n, d = model.n_classical, model.dim
    layout: Layout = {
        "trajectory": (("trajectory",), (n_traj,)),
        "time": (("time",), (n_time,)),
        "coord": (("coord",), (n,)),
        "sigma": ((), ()),
        "seed": ((), ()),
        "classical": (("trajectory", "time", "coord"), (n_traj, n_time, n)),
        "status": (("trajectory",), (n_traj,)),
        "status_time": (("trajectory",), (n_traj,)),
    }
    levels = list(model.level_labels)
    values: dict[str, Any] = {
        "trajectory": np.arange(n_traj, dtype=np.int64),
        "time": step_times(settings.saved_steps, settings.dt),
        "coord": list(model.coord_labels),
        "sigma": np.float64(settings.sigma),
        "seed": np.int64(settings.seed),
    }
    if settings.mode == "density":
        layout["ket"] = (("ket",), (d,))
        layout["bra"] = (("bra",), (d,))
        layout["rho"] = (("trajectory", "time", "ket", "bra"), (n_traj, n_time, d, d))
        values["ket"] = values["bra"] = levels
    else:
        layout["level"] = (("level",), (d,))
        layout["psi"] = (("trajectory", "time", "level"), (n_traj, n_time, d))
        values["level"] = levels
    return layout, values, settings.method


def _blocks(array: Any) -> Iterator[tuple[tuple[int, ...], tuple[slice, ...], str]]:
    """``(chunk coordinates, selection, chunk key)`` of every chunk of a regular-grid array."""
    chunk_shape = tuple(array.metadata.chunk_grid.chunk_shape)
    counts = [math.ceil(size / chunk) for size, chunk in zip(array.shape, chunk_shape, strict=True)]
    for coords in itertools.product(*(range(count) for count in counts)):
        selection = tuple(
            slice(c * chunk, min((c + 1) * chunk, size))
            for c, chunk, size in zip(coords, chunk_shape, array.shape, strict=True)
        )
        yield coords, selection, array.metadata.encode_chunk_key(coords)


def _values_problem(
    name: str, block: np.ndarray, expected: Any, method: str | None, t_final: float | None
) -> str | None:
    """What is wrong with the values of one chunk of array ``name`` (None if nothing)."""
    if expected is not None:
        if block.dtype.kind in "OTU" or isinstance(expected, list):
            ok = [str(x) for x in np.ravel(block).tolist()] == [str(x) for x in expected]
        else:
            ok = np.array_equal(block, expected)
        return None if ok else "values differ from the ones the recorded cell implies"
    with np.errstate(all="ignore"):
        if name == "classical":
            return None if np.all(np.isfinite(block)) else "non-finite classical values"
        if name in ("psi", "rho"):
            if not np.all(np.isfinite(block)):
                return f"non-finite {name} values"
            if name == "psi":
                size = np.sqrt(np.sum(block.real**2 + block.imag**2, axis=-1))
                what = "norm"
            else:
                size = np.trace(block, axis1=-2, axis2=-1).real
                what = "trace"
            if np.any(size <= 0):
                return f"{name} with {what} 0"
            if method != "euler" and np.any(np.abs(size - 1.0) > NORM_TOLERANCE):
                worst = float(np.max(np.abs(size - 1.0)))
                return f"{name} {what} differs from 1 by {worst:.3g}"
            return None
        if name == "status":
            return None if np.all(np.isin(block, STATUS_CODES)) else "unknown status codes"
        if name == "status_time" and t_final is not None:
            flagged = block[~np.isnan(block)]
            inside = np.all((flagged >= 0) & (flagged <= t_final * (1 + 1e-12)))
            return None if inside else f"status_time outside [0, {t_final!r}]"
    return None


class _StoreCheck:
    """The checks of :func:`verify_store` on one store (collects problems, never raises).

    ``trusted`` is the cell the configuration asks for at this store's path, if known: only
    that cell's model is ever built (by its registered builder, as the pipeline builds it),
    to check shapes and coordinates. The store's own text names a model but is never used to
    build one.
    """

    def __init__(self, store: Path, trusted: CellSpec | None = None):
        self.store = store
        self.trusted = trusted
        self.problems: list[str] = []
        self.spec: CellSpec | None = None
        self.status: dict[str, np.ndarray] = {}
        self.missing: dict[str, set[int]] = {"status": set(), "status_time": set()}
        self.keys: dict[str, dict[int, str]] = {"status": {}, "status_time": {}}
        self.status_chunk = 1

    def run(self) -> list[str]:
        try:
            attrs = _read_attrs(self.store)
        except ValueError as err:
            return [str(err)]
        self.check_attrs(attrs)
        self.check_manifest(attrs)
        layout: Layout = {}
        values: dict[str, Any] = {}
        method = attrs.get("method")
        if self.trusted is not None and self.trusted.config_hash == attrs.get("cell_hash"):
            try:
                layout, values, method = _expected_layout(self.trusted)
            except Exception as err:  # e.g. a user model whose package is not installed here
                self.problems.append(
                    f"the configuration's cell cannot be built here ({type(err).__name__}: "
                    f"{err}); shapes and coordinates were not checked against it"
                )
        t_final = self.spec.t_final if self.spec is not None else None
        names = sorted(
            {
                p.name
                for p in self.store.iterdir()
                if (p / "zarr.json").is_file() and p.name != MANIFEST_GROUP
            }
            | set(layout)
        )
        sizes: dict[str, tuple[int, str]] = {}
        for name in names:
            self.check_array(name, layout.get(name), values.get(name), method, t_final, sizes)
        if self.spec is not None and not any(n in names for n in ("psi", "rho")):
            self.problems.append("no quantum state array (psi or rho)")
        self.check_status()
        return self.problems

    def check_attrs(self, attrs: Mapping[str, Any]) -> None:
        missing = [key for key in REQUIRED_ATTRS if key not in attrs]
        if missing:
            self.problems.append(f"the root metadata records no {', '.join(missing)}")
            return
        numerics = attrs.get("numerics_version")
        if numerics != NUMERICS_VERSION:
            self.problems.append(
                f"computed with numerics version {numerics!r}, but cq_core is at "
                f"{NUMERICS_VERSION!r}: recompute it"
            )
        try:  # read as data: the model must be a registered name; nothing is built
            recorded_cell(attrs)
            self.spec = CellSpec.from_json(attrs["cell_spec"])
        except (TypeError, ValueError) as err:
            self.problems.append(str(err))
            return
        for key in ATTRS_FROM_SPEC:
            if key in attrs and attrs[key] != getattr(self.spec, key):
                self.problems.append(
                    f"attribute {key} = {attrs[key]!r} disagrees with the recorded cell_spec "
                    f"({getattr(self.spec, key)!r})"
                )

    def check_manifest(self, attrs: Mapping[str, Any]) -> None:
        """Every byte of the store (metadata included) against the manifest written when the
        store was completed, its hashes keyed by this cell (a chunk or a whole manifest from
        another store does not match)."""
        identity = None
        if self.spec is not None:
            identity = cell_identity(
                cell_hash=attrs["cell_hash"], sigma=self.spec.sigma, seed=self.spec.seed
            )
        self.problems.extend(check_manifest(self.store, identity=identity))

    def check_array(
        self,
        name: str,
        expected_layout: tuple[tuple[str, ...], tuple[int, ...]] | None,
        expected_values: Any,
        method: str | None,
        t_final: float | None,
        sizes: dict[str, tuple[int, str]],
    ) -> None:
        import zarr

        where = self.store / name
        if not (where / "zarr.json").is_file():
            self.problems.append(f"array {name} is missing")
            return
        try:
            array = zarr.open_array(str(where), mode="r")
            dims = tuple(array.metadata.dimension_names or ())
        except Exception as err:
            self.problems.append(f"array {name}: unreadable metadata ({type(err).__name__}: {err})")
            return
        if expected_layout is not None and (dims, array.shape) != expected_layout:
            self.problems.append(
                f"array {name} has dims {dims} and shape {array.shape}; the recorded cell "
                f"implies {expected_layout[0]} and {expected_layout[1]}"
            )
            return
        for dim, size in zip(dims, array.shape, strict=False):
            if dim in sizes and sizes[dim][0] != size:
                self.problems.append(
                    f"dimension {dim} is {size} long in {name} but {sizes[dim][0]} in "
                    f"{sizes[dim][1]}"
                )
                return
            sizes.setdefault(dim, (size, name))
        if name in self.missing:
            self.status[name] = np.full(array.shape, array.fill_value, dtype=array.dtype)
            self.status_chunk = int(array.metadata.chunk_grid.chunk_shape[0])
        for index, (coords, selection, key) in enumerate(_blocks(array)):
            present = (where / key).is_file()
            try:
                block = np.asarray(array.get_block_selection(coords))
            except Exception as err:
                self.problems.append(
                    f"chunk {name}/{key} cannot be read ({type(err).__name__}: {err})"
                )
                continue
            if name in self.status:
                self.status[name][selection] = block
                self.keys[name][index] = key
                if not present:
                    self.missing[name].add(index)
            expected = None
            if expected_values is not None:  # coordinates: 0-d, or 1-d and chunked
                expected = expected_values[selection[0]] if selection else expected_values
            what = _values_problem(name, block, expected, method, t_final)
            if what is not None:
                self.problems.append(
                    f"chunk {name}/{key} is missing"
                    if not present
                    else f"chunk {name}/{key}: {what}"
                )

    def check_status(self) -> None:
        """``status == 0`` exactly where ``status_time`` is NaN (finds absent status chunks)."""
        status, times = self.status.get("status"), self.status.get("status_time")
        if status is None or times is None or status.shape != times.shape:
            return
        disagree = np.flatnonzero((status == 0) != np.isnan(times))
        if not len(disagree):
            return
        chunks = sorted({int(i) // self.status_chunk for i in disagree})
        for chunk in chunks:
            absent = [n for n in ("status", "status_time") if chunk in self.missing[n]]
            if absent:
                self.problems.extend(f"chunk {n}/{self.keys[n][chunk]} is missing" for n in absent)
            else:
                key = self.keys["status"].get(chunk, chunk)
                self.problems.append(f"status and status_time disagree in chunk {key}")


def verify_store(path: str | os.PathLike, cell: CellSpec | None = None) -> list[str]:
    """Problems found in one cell store (an empty list: the store is sound).

    Reads every byte: every file against the store's manifest (metadata included), and every
    chunk of every array decoded and its values checked; see the module docstring. ``cell``:
    the cell the configuration asks for at this path (then shapes and coordinate values are
    checked against the cell that cell's model implies). Never raises for a damaged store:
    each problem is one line of text naming the file, array or chunk (``chunk psi/c/1/0/0
    cannot be read (RuntimeError: Zstd decompression error …)``, ``psi/zarr.json: content
    differs from the manifest …``, ``computed with numerics version '0' …``).
    """
    store = Path(path)
    if not store.is_dir():
        return ["no such store" if not store.exists() else "not a directory"]
    return _StoreCheck(store, cell).run()
