"""Helpers shared by the built-in models: initial-state parsing and a few constants."""

from __future__ import annotations

import numpy as np

PLUS = np.array([1.0, 1.0], dtype=complex) / np.sqrt(2.0)
SIGMA_Z = np.array([1.0, -1.0])
"""Diagonal of σz in the one-qubit basis (level 0 = |L⟩, level 1 = |R⟩)."""


def state_vector(name: str, psi0, default: np.ndarray) -> np.ndarray:
    """``psi0`` as a complex vector (the model checks its length and norm), or the default."""
    if psi0 is None:
        return default.copy()
    try:
        return np.asarray(psi0, dtype=complex)
    except (TypeError, ValueError) as err:
        raise ValueError(f"model {name!r}: psi0 must be a vector of numbers, got {psi0!r}") from err


def real_vector(name: str, key: str, value, length: int) -> np.ndarray:
    """A real parameter vector of the given length (a scalar is broadcast)."""
    try:
        arr = np.asarray(value, dtype=float)
    except (TypeError, ValueError) as err:
        raise ValueError(f"model {name!r}: {key} must be numbers, got {value!r}") from err
    if arr.ndim == 0:
        arr = np.full(length, float(arr))
    if arr.shape != (length,):
        raise ValueError(f"model {name!r}: {key} must have length {length}, got {value!r}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"model {name!r}: {key} must be finite, got {value!r}")
    return arr


def positive(name: str, key: str, value) -> float:
    """A strictly positive finite float parameter."""
    x = finite(name, key, value)
    if x <= 0:
        raise ValueError(f"model {name!r}: {key} must be > 0, got {value!r}")
    return x


def finite(name: str, key: str, value) -> float:
    """A finite float parameter."""
    try:
        x = float(value)
    except (TypeError, ValueError) as err:
        raise ValueError(f"model {name!r}: {key} must be a number, got {value!r}") from err
    if not np.isfinite(x):
        raise ValueError(f"model {name!r}: {key} must be finite, got {value!r}")
    return x
