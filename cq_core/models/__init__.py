"""Built-in toy models (SPEC §2), the :class:`Model` description and the model registry.

``get_model(name, **params)`` builds a built-in model by name, or a user model named by an
importable ``"package.module:function"`` path (the function takes keyword parameters and
returns a :class:`Model`). Nothing is evaluated from strings: the path is only imported.
"""

from __future__ import annotations

import importlib
import inspect
import json
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from .base import Model
from .linear import linear
from .mass_superposition import mass_superposition
from .qubit_lattice import qubit_lattice
from .sqrt_potential import sqrt_potential

__all__ = ["Model", "MODELS", "get_model", "available_models", "params_to_json"]

MODELS: Mapping[str, Callable[..., Model]] = {
    "linear": linear,
    "sqrt_potential": sqrt_potential,
    "mass_superposition": mass_superposition,
    "qubit_lattice": qubit_lattice,
}


def available_models() -> tuple[str, ...]:
    """Names of the built-in models."""
    return tuple(MODELS)


def _builder(name: str) -> Callable[..., Model]:
    if not isinstance(name, str):
        raise ValueError(f"model name must be a string, got {name!r}")
    if name in MODELS:
        return MODELS[name]
    if ":" in name:
        module_name, _, attr = name.partition(":")
        try:
            module = importlib.import_module(module_name)
        except ImportError as err:
            raise ValueError(
                f"model {name!r}: cannot import module {module_name!r}: {err}"
            ) from err
        builder = getattr(module, attr, None)
        if not callable(builder):
            raise ValueError(f"model {name!r}: module {module_name!r} has no function {attr!r}")
        return builder
    raise ValueError(
        f"unknown model {name!r}; valid models: {', '.join(MODELS)} "
        "(or a user model as 'package.module:function')"
    )


def get_model(name: str, **params: Any) -> Model:
    """Build a model by name with keyword parameters (SPEC §2).

    Raises ``ValueError`` naming the valid models for an unknown name, and the valid
    parameters for an unknown parameter name.
    """
    builder = _builder(name)
    signature = inspect.signature(builder)
    accepts_any = any(
        p.kind is inspect.Parameter.VAR_KEYWORD for p in signature.parameters.values()
    )
    valid = [
        p
        for p in signature.parameters
        if signature.parameters[p].kind is not inspect.Parameter.VAR_KEYWORD
    ]
    unknown = sorted(set(params) - set(valid))
    if unknown and not accepts_any:
        raise ValueError(
            f"model {name!r}: unknown parameter(s) {', '.join(unknown)}; valid parameters: "
            f"{', '.join(valid)}"
        )
    model = builder(**params)
    if not isinstance(model, Model):
        raise ValueError(
            f"model {name!r}: the builder returned {type(model).__name__}, not a Model"
        )
    return model


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
