"""The model registry: a config or a store names a model, and only declared builders are called.

A model name resolves to a builder (a function taking keyword parameters and returning a
:class:`Model`) in one of three ways, and in no other:

1. the four built-in models (``"linear"``, ``"sqrt_potential"``, ``"mass_superposition"``,
   ``"qubit_lattice"``);
2. a builder decorated with :func:`register_model` in code this process has already imported
   (a script, a notebook, a package imported by the caller);
3. an entry point in the group ``cq_sweep.models`` of an installed distribution (as xarray
   finds its backends), loaded lazily: only the entry point asked for is imported.

The old form ``"package.module:function"`` is accepted only as another name for a builder
already declared in one of these ways (a decorated function, or an entry point with that
value). A name is never imported or called because a string says so: ``"os:system"`` and
``"this:s"`` are refused without importing anything. Loading a declared entry point imports
its module, which runs that module's top-level code: the code of a package you installed.
"""

from __future__ import annotations

import importlib.metadata
import inspect
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from .base import Model
from .linear import linear
from .mass_superposition import mass_superposition
from .qubit_lattice import qubit_lattice
from .sqrt_potential import sqrt_potential

__all__ = [
    "ENTRY_POINT_GROUP",
    "MODELS",
    "available_models",
    "get_model",
    "is_registered",
    "register_model",
    "registered_models",
]

ENTRY_POINT_GROUP = "cq_sweep.models"
"""The entry-point group through which installed packages declare their model builders."""

MODELS: Mapping[str, Callable[..., Model]] = {
    "linear": linear,
    "sqrt_potential": sqrt_potential,
    "mass_superposition": mass_superposition,
    "qubit_lattice": qubit_lattice,
}

_DECORATED: dict[str, Callable[..., Model]] = {}

Builder = TypeVar("Builder", bound=Callable[..., Model])


def _path(function: Callable) -> str:
    return f"{function.__module__}:{function.__qualname__}"


def register_model(name: str) -> Callable[[Builder], Builder]:
    """Declare a model builder under ``name``, so that ``get_model(name, **params)`` and a
    pipeline config (``model: name``) can use it.

    Use as a decorator::

        @cq_core.register_model("my_model")
        def my_model(*, lam=1.0): ...

    The builder takes keyword parameters and returns a :class:`Model` (for example from
    :func:`cq_core.from_hamiltonian`). It is also reachable as ``"module:function"``.
    Raises ``ValueError`` for a name that is empty, contains ``:`` or whitespace, is a
    built-in model, or is already taken by another function.
    """
    if not isinstance(name, str) or not name or ":" in name or name != "".join(name.split()):
        raise ValueError(
            f"register_model: the name must be a non-empty string without ':' or whitespace, "
            f"got {name!r}"
        )
    if name in MODELS:
        raise ValueError(f"register_model: {name!r} is a built-in model and cannot be replaced")

    def decorate(builder: Builder) -> Builder:
        if not callable(builder):
            raise ValueError(f"register_model({name!r}) decorates a function, got {builder!r}")
        old = _DECORATED.get(name)
        if old is not None and _path(old) != _path(builder):  # a module reload re-registers
            raise ValueError(
                f"register_model: {name!r} is already registered for {_path(old)}, "
                f"not {_path(builder)}"
            )
        _DECORATED[name] = builder
        return builder

    return decorate


def _entry_points() -> importlib.metadata.EntryPoints:
    return importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)


def registered_models() -> tuple[str, ...]:
    """Every name ``get_model`` accepts: built-ins, decorated builders, then entry points
    (read from the installed metadata; nothing is imported)."""
    names = list(MODELS) + sorted(_DECORATED)
    names += sorted({ep.name for ep in _entry_points()} - set(names))
    return tuple(names)


def available_models() -> tuple[str, ...]:
    """Names of the built-in models."""
    return tuple(MODELS)


def _find(name: str, load: bool) -> Callable[..., Model] | bool | None:
    """The builder for ``name`` (or True when ``load`` is False), None when undeclared."""
    if name in MODELS:
        return MODELS[name] if load else True
    if name in _DECORATED:
        return _DECORATED[name] if load else True
    if ":" in name:
        for builder in _DECORATED.values():
            if _path(builder) == name:
                return builder if load else True
    for ep in _entry_points():
        if ep.name == name or ep.value.replace(" ", "") == name:
            return _load(ep) if load else True
    return None


def _load(ep: importlib.metadata.EntryPoint) -> Callable[..., Model]:
    try:
        builder = ep.load()
    except Exception as err:  # the declaring package is broken: say which one
        raise ValueError(
            f"model {ep.name!r}: cannot load the entry point {ep.value!r} of group "
            f"{ENTRY_POINT_GROUP!r}: {type(err).__name__}: {err}"
        ) from err
    if not callable(builder):
        raise ValueError(f"model {ep.name!r}: the entry point {ep.value!r} is not a function")
    return builder


def is_registered(name: Any) -> bool:
    """True when ``name`` names a declared model builder (nothing is imported or called)."""
    return isinstance(name, str) and _find(name, load=False) is not None


def _unknown(name: Any) -> ValueError:
    return ValueError(
        f"unknown model {name!r}; valid models: {', '.join(registered_models())} "
        f"(declare your own with @cq_core.register_model or the {ENTRY_POINT_GROUP!r} "
        "entry-point group; see docs/models.md)"
    )


def get_model(name: str, **params: Any) -> Model:
    """Build the registered model ``name`` with keyword parameters.

    Raises ``ValueError`` listing the registered models for an unknown or undeclared name
    (before importing or calling anything), and the valid parameters for an unknown
    parameter name.
    """
    builder = _find(name, load=True) if isinstance(name, str) else None
    if builder is None:
        raise _unknown(name)
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
