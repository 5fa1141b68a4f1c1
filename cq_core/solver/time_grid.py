"""Saved times on the decimal grid of the time step, so that ``sel(time=0.1)`` selects.

``step * dt`` in binary floating point drifts off the decimal a person types
(``1000 * 1e-4 == 0.09999999999999999``). Here a time step given as a decimal ``dt = m·10⁻ᵈ``
(its shortest ``repr``) makes step ``k`` the time ``k·m / 10ᵈ``, computed as one correctly
rounded division of exact integers: the float nearest the decimal value, the same float
Python gives for the literal ``0.1``.
"""

from __future__ import annotations

from decimal import Decimal

import numpy as np
from numpy.typing import ArrayLike


def _decimal_step(dt: float) -> tuple[int, int]:
    """``(m, d)`` with ``dt == m / 10**d`` as a decimal (from the shortest repr of ``dt``)."""
    sign, digits, exponent = Decimal(repr(float(dt))).as_tuple()
    if sign or not isinstance(exponent, int):
        raise ValueError(f"dt must be a positive finite number, got {dt!r}")
    mantissa = int("".join(map(str, digits)))
    if exponent >= 0:
        return mantissa * 10**exponent, 0
    return mantissa, -exponent


def step_times(steps: ArrayLike, dt: float) -> np.ndarray:
    """Times (model units) of integer ``steps`` of size ``dt``, on the decimal grid of ``dt``.

    ``steps``: integers, any shape; returns float64 of the same shape with
    ``t_k = k·m / 10ᵈ`` for ``dt = m·10⁻ᵈ``. Exact while ``k·m < 2⁵³``; beyond that (never
    for a real run) it falls back to ``k * dt``.
    """
    k = np.asarray(steps, dtype=np.int64)
    mantissa, decimals = _decimal_step(dt)
    if decimals > 22 or np.any(np.abs(k) * mantissa >= 2**53):
        return k * float(dt)
    return (k * mantissa).astype(np.float64) / float(10**decimals)
