"""The cell a store records, read as data: its model is named, never imported or built.

A cell store's root ``zarr.json`` records ``cell_spec`` (canonical JSON of the resolved
cell: model name, params, σ, seed, …), ``cell_hash`` (SHA-256 of that cell with the
numerics version) and ``numerics_version``. :func:`recorded_cell` reads them into a
:class:`RecordedCell` and checks that the model is a registered name, without importing
any module the store names and without calling any builder: a copied results folder cannot
run code through verify. :func:`cell_differences` compares the recorded cell with the cell
the configuration asks for at that path, key by key.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["RecordedCell", "cell_differences", "recorded_cell", "recorded_cell_hash"]

REQUIRED_ATTRS = ("cell_spec", "cell_hash", "numerics_version")


@dataclass(frozen=True)
class RecordedCell:
    """A store's recorded cell, as plain data.

    Attributes
    ----------
    model
        The registered model name (a key of :func:`cq_core.models.available_models`).
    params
        The model's parameters as recorded (JSON data: complex arrays as
        ``{"real": …, "imag": …}``).
    cell
        Every key of the recorded cell (``model``, ``params``, ``sigma``, ``seed``, …).
    cell_hash, numerics_version
        As recorded; :func:`recorded_cell` has checked that the hash is the cell's.
    """

    model: str
    params: Mapping[str, Any]
    cell: Mapping[str, Any]
    cell_hash: str
    numerics_version: str


def recorded_cell_hash(cell: Mapping[str, Any], numerics_version: str) -> str:
    """SHA-256 (hex) of ``{"cell": cell, "numerics_version": …}`` as canonical JSON.

    The formula of ``CellSpec.config_hash``; ``cell`` is the parsed ``cell_spec`` (already
    canonical, since a store records ``CellSpec.to_json()``).
    """
    payload = json.dumps(
        {"cell": dict(cell), "numerics_version": numerics_version},
        sort_keys=True,
        separators=(",", ":"),
    )
    return hashlib.sha256(payload.encode()).hexdigest()


def _registered_models() -> tuple[str, ...]:
    from ..models import available_models  # the registry: names only, nothing is built

    return tuple(available_models())


def recorded_cell(attrs: Mapping[str, Any]) -> RecordedCell:
    """The cell recorded in a store's root attributes, without building its model.

    Parameters
    ----------
    attrs
        The root attributes of a cell store (``cq_core.cells.read_cell_attrs(path)``).

    Raises ``ValueError`` (one line, for verify to print) when an attribute of
    ``REQUIRED_ATTRS`` is missing, ``cell_spec`` is not a JSON object with a string ``model``
    and a mapping ``params``, the model is not a registered name (the message lists the
    registered ones), or ``cell_hash`` is not the hash of the recorded cell.
    """
    missing = [key for key in REQUIRED_ATTRS if key not in attrs]
    if missing:
        raise ValueError(f"the store records no {', '.join(missing)}")
    text, cell_hash, numerics = attrs["cell_spec"], attrs["cell_hash"], attrs["numerics_version"]
    if not isinstance(text, str) or not isinstance(cell_hash, str):
        raise ValueError("cell_spec and cell_hash must be strings")
    if not isinstance(numerics, str):
        raise ValueError("numerics_version must be a string")
    try:
        cell = json.loads(text)
    except ValueError as err:
        raise ValueError(f"the recorded cell_spec is not JSON ({err})") from None
    if not isinstance(cell, dict):
        raise ValueError("the recorded cell_spec is not a JSON object")
    model, params = cell.get("model"), cell.get("params")
    if not isinstance(model, str):
        raise ValueError("the recorded cell_spec has no model name")
    if not isinstance(params, dict):
        raise ValueError("the recorded cell_spec has no params mapping")
    registered = _registered_models()
    if model not in registered:
        shown = model if len(model) <= 80 else model[:77] + "..."
        raise ValueError(
            f"the store names model {shown!r}, which is not registered; "
            f"registered models: {', '.join(registered)}"
        )
    if recorded_cell_hash(cell, numerics) != cell_hash:
        raise ValueError(
            f"cell_hash {cell_hash[:12]}… is not the hash of the recorded cell_spec "
            "(the metadata was edited)"
        )
    return RecordedCell(
        model=model, params=params, cell=cell, cell_hash=cell_hash, numerics_version=numerics
    )


def cell_differences(recorded: RecordedCell, expected: Mapping[str, Any]) -> list[str]:
    """One line per key where the recorded cell differs from ``expected``; ``[]`` if equal.

    ``expected`` is the configuration's resolved cell as a dict (``CellSpec.to_dict()``),
    canonical like the recorded one (params JSON-round-tripped, numbers coerced).
    """
    keys = sorted(set(recorded.cell) | set(expected))
    return [
        f"{key} {recorded.cell.get(key)!r} (stored) vs {expected.get(key)!r} (config)"
        for key in keys
        if recorded.cell.get(key) != expected.get(key)
    ]
