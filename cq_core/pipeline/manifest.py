"""A cell store's manifest: the hash of every file, bound to the cell the store must hold.

:func:`write_manifest` is called once a store is complete (in its temporary location, just
before it is moved into place). It records in ``<store>/cq_manifest/zarr.json`` (the
metadata of an empty Zarr group, so that Zarr and xarray open the store without a warning
about an unknown object; :func:`xarray.open_zarr` sees no array in it), under its
attributes:

* ``identity``: what the store must be (the cell's config hash, sweep, σ, seed, …), as the
  caller passes it;
* ``files``: for EVERY file of the store (each ``zarr.json`` and every chunk), by relative
  POSIX path, its size in bytes and its SHA-256 keyed by the identity,
  ``SHA-256(K ‖ content)`` with ``K = SHA-256(canonical JSON of identity)``;
* ``digest``: the keyed SHA-256 of the canonical JSON of ``identity`` and ``files``.

The manifest is canonical JSON (sorted keys, relative paths, no times, hosts or absolute
paths), so two runs of the same cell give byte-identical stores, manifest included.
Snakemake's ``.snakemake_timestamp`` (written into the store after the job, read by no
Zarr reader) is the one file neither listed nor reported.

:func:`check_manifest` reads every byte of the store again (streamed, bounded memory) and
lists every problem: no or unreadable manifest, an identity other than the one the caller
expects (from its config and the store's path), a changed, missing or extra file, a file
that is not a regular file. Keying the hashes by the identity binds each recorded hash to
this cell: a chunk moved in from another seed's store, or another store's whole manifest
copied in along with its chunks, does not hash to what this cell's manifest must record.

The key is not secret (it is derived from the identity), so the manifest detects accidental
damage, edits and mix-ups of stores, not a forger who recomputes it with this code. Nothing
here imports or builds a model.
"""

from __future__ import annotations

import hashlib
import json
import math
import numbers
import os
import stat
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "MANIFEST_GROUP",
    "MANIFEST_NAME",
    "MANIFEST_FORMAT",
    "cell_identity",
    "check_manifest",
    "manifest_identity",
    "store_files",
    "write_manifest",
]

MANIFEST_GROUP = "cq_manifest"
"""Name of the manifest's (empty) Zarr group in a store: not an array, for verify to skip."""
MANIFEST_NAME = f"{MANIFEST_GROUP}/zarr.json"
"""Relative path of the manifest inside a store: the metadata of that group."""
IGNORED = frozenset({".snakemake_timestamp"})
"""Relative paths Snakemake writes into a finished store; never listed, never reported."""
MANIFEST_FORMAT = "cq-sweep store manifest 1"
"""Recorded in every manifest; a manifest of another format is reported, not trusted."""
ALGORITHM = "sha256, keyed: SHA-256(SHA-256(identity JSON) || content)"
_BUFFER = 1 << 20  # bytes read at a time: memory stays bounded for any file size


def _canonical_value(key: str, value: Any) -> Any:
    """A JSON scalar of the identity, numbers canonical (``1`` and ``1.0`` are equal).

    NumPy scalars count as numbers; booleans stay booleans.
    """
    if value is None or isinstance(value, (bool, str, np.bool_)):
        return value if not isinstance(value, np.bool_) else bool(value)
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        number = float(value)
        if not math.isfinite(number):
            raise ValueError(f"identity key {key!r}: {number!r} is not a finite number")
        return int(number) if number.is_integer() and abs(number) < 2**53 else number
    raise ValueError(
        f"identity key {key!r}: {type(value).__name__} is not allowed; "
        "allowed values: str, int, float, bool, None"
    )


def manifest_identity(identity: Mapping[str, Any]) -> dict[str, Any]:
    """``identity`` in canonical form: str keys, JSON scalars, integral floats as ints.

    Raises ``ValueError`` naming the key for a value that is not a finite JSON scalar, and for
    an empty identity (a manifest must say which cell it belongs to).
    """
    if not isinstance(identity, Mapping) or not identity:
        raise ValueError(
            "identity must be a non-empty mapping (e.g. cell_hash, sweep, sigma, seed), "
            f"got {type(identity).__name__}"
        )
    canonical = {}
    for key, value in identity.items():
        if not isinstance(key, str):
            raise ValueError(f"identity keys must be strings, got {key!r}")
        canonical[key] = _canonical_value(key, value)
    return dict(sorted(canonical.items()))


def cell_identity(*, cell_hash: str, sigma: float, seed: int) -> dict[str, Any]:
    """The identity of a cell store: what the writer records and verify expects.

    ``cell_hash`` is the cell's ``config_hash`` (it covers the model, its parameters and
    every run setting); ``sigma`` and ``seed`` are the cell's, as the store's path
    ``<results>/<sweep>/cells/sigma=<σ>/seed=<seed>.zarr`` names them. One function for both
    sides, so that they build the same mapping. Two sweeps whose cells have the same hash
    hold the same numbers, so the sweep's name is not part of the identity.
    """
    return manifest_identity({"cell_hash": cell_hash, "sigma": sigma, "seed": seed})


def _dumps(data: Any) -> str:
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def _hasher(identity: Mapping[str, Any]) -> Callable[[], Any]:
    """A factory of SHA-256 objects already fed the identity's key."""
    seeded = hashlib.sha256(hashlib.sha256(_dumps(identity).encode()).digest())
    return seeded.copy


def _file_hash(path: Path, new_hash: Callable[[], Any], buffer: bytearray) -> tuple[int, str]:
    """(size in bytes, keyed hex digest) of one file, read in ``len(buffer)``-byte pieces."""
    digest = new_hash()
    view = memoryview(buffer)
    size = 0
    with open(path, "rb", buffering=0) as handle:
        while count := handle.readinto(buffer):
            digest.update(view[:count])
            size += count
    return size, digest.hexdigest()


def store_files(store: Path) -> tuple[list[str], list[str]]:
    """(regular files, other entries) of ``store`` as sorted relative POSIX paths.

    The manifest itself is left out. Symbolic links (to a file or a folder) and other special
    files are "other": they are never followed.
    """
    files, others = [], []
    for folder, dirs, names in os.walk(store, followlinks=False):
        base = Path(folder)
        for name in dirs:
            if (base / name).is_symlink():
                others.append((base / name).relative_to(store).as_posix())
        for name in names:
            path = base / name
            relative = path.relative_to(store).as_posix()
            if relative == MANIFEST_NAME or relative in IGNORED:
                continue
            mode = os.lstat(path).st_mode
            (files if stat.S_ISREG(mode) else others).append(relative)
    return sorted(files), sorted(others)


def _listing_digest(identity: Mapping[str, Any], files: Mapping[str, Any]) -> str:
    digest = _hasher(identity)()
    digest.update(_dumps({"files": files, "identity": identity}).encode())
    return digest.hexdigest()


def write_manifest(store: Path, *, identity: Mapping[str, Any]) -> Path:
    """Record the keyed SHA-256 of every file of the complete ``store``; return the manifest.

    Parameters
    ----------
    store
        A complete Zarr store folder (its temporary path, before it is moved into place).
    identity
        What the store holds, e.g. ``{"cell_hash": …, "sweep": …, "sigma": …, "seed": …}``:
        str keys, JSON scalar values (the same values :func:`check_manifest` will expect).

    Raises ``ValueError`` for a store that is not a folder, one holding a symbolic link or a
    special file, or an identity that is not a mapping of JSON scalars. An existing manifest
    is replaced. The file is canonical JSON: the same store gives the same bytes.
    """
    store = Path(store)
    if not store.is_dir() or store.is_symlink():
        raise ValueError(f"store {store}: not a folder")
    identity = manifest_identity(identity)
    names, others = store_files(store)
    if others:
        raise ValueError(
            f"store {store}: {others[0]} is not a regular file (symbolic links and special "
            "files are not allowed in a store)"
        )
    new_hash, buffer = _hasher(identity), bytearray(_BUFFER)
    files = {}
    for name in names:
        size, digest = _file_hash(store / name, new_hash, buffer)
        files[name] = {"sha256": digest, "size": size}
    manifest = {
        "algorithm": ALGORITHM,
        "digest": _listing_digest(identity, files),
        "files": files,
        "format": MANIFEST_FORMAT,
        "identity": identity,
    }
    group = {"attributes": {"cq_manifest": manifest}, "node_type": "group", "zarr_format": 3}
    path = store / MANIFEST_NAME
    path.parent.mkdir(exist_ok=True)
    # written in place: the store itself is still temporary and moved into place whole
    path.write_text(json.dumps(group, sort_keys=True, indent=1) + "\n", encoding="ascii")
    return path


def _read_manifest(store: Path) -> tuple[dict[str, Any] | None, str | None]:
    """(manifest, None) or (None, the one-line problem)."""
    path = store / MANIFEST_NAME
    try:
        with path.open(encoding="ascii") as handle:
            group = json.load(handle)
    except FileNotFoundError:
        return None, f"{MANIFEST_NAME}: missing (the store was never completed by the pipeline)"
    except (OSError, UnicodeDecodeError, ValueError) as err:
        return None, f"{MANIFEST_NAME}: unreadable ({type(err).__name__}: {err})"
    attributes = group.get("attributes") if isinstance(group, dict) else None
    manifest = attributes.get("cq_manifest") if isinstance(attributes, dict) else None
    if not isinstance(manifest, dict) or manifest.get("format") != MANIFEST_FORMAT:
        return None, f"{MANIFEST_NAME}: not a manifest of format {MANIFEST_FORMAT!r}"
    files, identity = manifest.get("files"), manifest.get("identity")
    if not isinstance(identity, dict) or not isinstance(files, dict):
        return None, f"{MANIFEST_NAME}: malformed (no identity or files mapping)"
    for name, entry in files.items():
        if (
            not isinstance(entry, dict)
            or not isinstance(entry.get("sha256"), str)
            or not isinstance(entry.get("size"), int)
        ):
            return None, f"{MANIFEST_NAME}: malformed entry for {name!r}"
    return manifest, None


def _short(value: Any, limit: int = 80) -> str:
    """``repr(value)`` cut to ``limit`` characters (a manifest's text is not trusted)."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _identity_problems(recorded: Mapping[str, Any], expected: Mapping[str, Any]) -> list[str]:
    keys = sorted(set(recorded) | set(expected))
    return [
        f"{MANIFEST_NAME}: identity {key[:40]} = {_short(recorded.get(key))} recorded, "
        f"{_short(expected.get(key))} expected (the store belongs to another cell)"
        for key in keys
        if recorded.get(key) != expected.get(key)
    ]


def check_manifest(store: Path, *, identity: Mapping[str, Any] | None = None) -> list[str]:
    """Every problem of ``store`` against its manifest, one line each naming the file.

    Parameters
    ----------
    store
        A cell store folder with a manifest from :func:`write_manifest`.
    identity
        The identity the caller expects for this store (from its configuration and the
        store's path). Every file is then hashed with this identity's key, so a store or
        manifest of another cell fails even if the manifest's identity were edited to match.
        None checks the store against the identity its manifest records (consistency only).

    Reads every byte of every file (in 1 MiB pieces). Returns ``[]`` for a sound store. A
    malformed ``identity`` raises ``ValueError`` naming the key before any file is read.
    """
    expected = None if identity is None else manifest_identity(identity)
    store = Path(store)
    if not store.is_dir() or store.is_symlink():
        return [f"{store}: not a folder"]
    manifest, problem = _read_manifest(store)
    if manifest is None:
        return [problem] if problem else []
    problems: list[str] = []
    try:
        recorded = manifest_identity(manifest["identity"])
    except ValueError as err:
        return [f"{MANIFEST_NAME}: recorded identity unusable ({err})"]
    if expected is not None:
        problems = _identity_problems(recorded, expected)
        if problems:  # its hashes are keyed by another cell: none of them can match
            return problems
    key = expected if expected is not None else recorded
    files = manifest["files"]
    if manifest.get("digest") != _listing_digest(key, files):
        problems.append(f"{MANIFEST_NAME}: its digest does not match its listing (edited)")
    names, others = store_files(store)
    problems += [f"{name}: not a regular file (a link or special file)" for name in others]
    new_hash, buffer = _hasher(key), bytearray(_BUFFER)
    present = set(names)
    for name in sorted(set(files) | present):
        if name not in present:
            problems.append(f"{name}: missing (listed in the manifest)")
        elif name not in files:
            problems.append(f"{name}: extra file (not in the manifest)")
        else:
            try:
                size, digest = _file_hash(store / name, new_hash, buffer)
            except OSError as err:
                problems.append(f"{name}: unreadable ({type(err).__name__}: {err.strerror})")
                continue
            entry = files[name]
            if size != entry["size"] or digest != entry["sha256"]:
                problems.append(
                    f"{name}: content differs from the manifest ({size} bytes, "
                    f"{entry['size']} recorded)"
                )
    return problems
