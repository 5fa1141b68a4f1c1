"""Built-in toy models (docs/physics.md), the :class:`Model` description, models written from
their Hamiltonian (:func:`from_hamiltonian`) and the model registry (:func:`get_model`).

``get_model(name, **params)`` builds a registered model: a built-in, a builder decorated with
:func:`register_model`, or one declared by an installed package in the ``cq_sweep.models``
entry-point group. Nothing named in a string is imported or called unless it was declared.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import numpy as np

from .base import Model
from .hamiltonian import from_hamiltonian
from .registry import (
    ENTRY_POINT_GROUP,
    MODELS,
    available_models,
    get_model,
    is_registered,
    register_model,
    registered_models,
)
from .symbolic import SymbolicModel

__all__ = [
    "ENTRY_POINT_GROUP",
    "MODELS",
    "Model",
    "SymbolicModel",
    "available_models",
    "from_hamiltonian",
    "get_model",
    "is_registered",
    "params_to_json",
    "register_model",
    "registered_models",
]


def _jsonable(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, np.ndarray)):
        arr = np.asarray(value)
        if np.iscomplexobj(arr):
            if np.all(arr.imag == 0):
                return arr.real.tolist()
            return {"real": arr.real.tolist(), "imag": arr.imag.tolist()}
        return arr.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value


def params_to_json(params: Mapping[str, Any]) -> str:
    """The model parameters as a canonical JSON string (sorted keys; arrays as lists)."""
    return json.dumps(_jsonable(params), sort_keys=True)
