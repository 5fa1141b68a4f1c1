"""Observed weak order of a sweep with a ``dt`` axis (docs/physics.md, "Observed convergence
orders").

A weak error is the error of an expectation: here of the mean conditional coherence
C(t) and of E⟨σz⟩_t at one fixed time, each measured against the sweep's finest step, ``e(dt) =
X(dt) − X(dt_min)``. A scheme of weak order p has ``X(dt) ≈ X₀ + A·dt^p``, so ``|e(dt)| =
A·(dt^p − dt_min^p)``: the order is fitted to exactly that law (the plain slope of ``log|e|``
against ``log dt`` is biased low when dt_min is not much smaller than the other steps), by
weighted least squares of ``log|e|`` with weights ``|e| / se(e)`` as in the table of
docs/physics.md; ``log A`` is profiled out and p found by a bounded scalar search in (0.05, 6);
its SE is ``sqrt(2 / χ²''(p))`` of the profiled χ² (scaled by the residual variance when no SEs
are given). ``se(e) = sqrt(se(X(dt))² + se(X(dt_min))²)`` treats the step sizes as independent
estimates: different steps draw different Brownian increments, so this is their Monte-Carlo
error; the reference's error is shared by every point, which the order's SE (the fit's unscaled
one) does not model. When an error is within its SE of zero it carries little weight; the order
means something only where several errors stand clear of their SE.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import xarray as xr
from scipy.optimize import minimize_scalar

__all__ = ["SE_NAMES", "fit_weak_order", "weak_order"]

ORDER_BOUNDS = (0.05, 6.0)
"""Range searched for the weak order."""

SE_NAMES = {
    "coherence": "coherence_se",
    "sigma_z_mean": "sigma_z_se",
    "gamma_fit": "gamma_fit_se",
}
"""The standard error of each summary variable a weak order may be taken of."""


def _values_at(
    data: xr.Dataset | xr.DataArray,
    se: xr.DataArray | None,
    variables: Sequence[str],
    time: float | None,
) -> tuple[xr.DataArray, xr.DataArray | None]:
    """The values (observable, …) and their SEs at the chosen time."""
    if isinstance(data, xr.Dataset):
        missing = [v for v in variables if v not in data or SE_NAMES.get(v) not in data]
        if missing:
            raise ValueError(
                f"variables must name summary variables with a standard error "
                f"({', '.join(SE_NAMES)}), got {missing!r} for this summary"
            )
        values = xr.concat([data[v] for v in variables], dim="observable", coords="minimal")
        se = xr.concat([data[SE_NAMES[v]] for v in variables], dim="observable", coords="minimal")
        values = values.assign_coords(observable=list(variables))
        se = se.assign_coords(observable=list(variables))
    else:
        values = data
    if "time" in values.dims:
        stored = values["time"].values
        t = float(stored[-1]) if time is None else float(time)
        if not stored.min() - 1e-12 <= t <= stored.max() + 1e-12:
            raise ValueError(
                f"time must lie within the stored times [{stored.min():g}, {stored.max():g}], "
                f"got {t!r}"
            )
        values = values.sel(time=t, method="nearest")
        se = None if se is None else se.sel(time=t, method="nearest")
    return values, se


def fit_weak_order(
    steps: np.ndarray, error: np.ndarray, error_se: np.ndarray | None, reference: float
) -> tuple[float, float, float]:
    """``(p, se(p), A)`` of ``|e| = A·(dt^p − dt_ref^p)`` (NaN when it cannot be fitted).

    ``steps`` (> reference), ``error`` = X(dt) − X(dt_ref) and its SE (None: equal weights,
    at least three points; with SEs at least two). Weighted least squares in ``log|e|`` with
    weights ``|e| / se``; ``log A`` profiled out, p by a bounded search over
    :data:`ORDER_BOUNDS`, ``se(p) = sqrt(2 / χ²''(p))``.
    """
    steps, error = np.asarray(steps, float), np.abs(np.asarray(error, float))
    good = np.isfinite(error) & (error > 0) & (steps > reference)
    if error_se is not None:
        error_se = np.asarray(error_se, float)
        good &= np.isfinite(error_se) & (error_se > 0)
    n = int(good.sum())
    if n < (2 if error_se is not None else 3):
        return np.nan, np.nan, np.nan
    x, y = steps[good], np.log(error[good])
    w2 = (error[good] / error_se[good]) ** 2 if error_se is not None else np.ones(n)

    def profile(p: float) -> tuple[float, float]:
        shape = np.log(x**p - reference**p)
        log_a = np.sum(w2 * (y - shape)) / np.sum(w2)
        return float(np.sum(w2 * (y - shape - log_a) ** 2)), log_a

    best = minimize_scalar(
        lambda p: profile(p)[0], bounds=ORDER_BOUNDS, method="bounded",
        options={"xatol": 1e-8},
    )  # fmt: skip
    p = float(best.x)
    h = 1e-3
    curvature = (profile(p + h)[0] - 2.0 * profile(p)[0] + profile(p - h)[0]) / h**2
    scale = 1.0 if error_se is not None else profile(p)[0] / (n - 2) if n > 2 else np.nan
    se = float(np.sqrt(2.0 * scale / curvature)) if curvature > 0 else np.nan
    return p, se, float(np.exp(profile(p)[1]))


def weak_order(
    data: xr.Dataset | xr.DataArray,
    *,
    axis: str = "dt",
    se: xr.DataArray | None = None,
    time: float | None = None,
    variables: Sequence[str] = ("coherence", "sigma_z_mean"),
) -> xr.Dataset:
    """The observed weak order of expectations against the step size, with its SE.

    Parameters
    ----------
    data
        A summary with a ``dt`` axis (``coherence``, ``sigma_z_mean`` and their SEs, dims
        (dt, …, sigma, time)), or a DataArray of expectations with an ``axis`` dimension.
    axis
        The step-size dimension (values > 0; at least three of them).
    se
        Standard errors of a DataArray ``data`` (same dims); None: the points are weighted
        equally and the order's SE comes from the residuals (at least four step sizes).
        Ignored for a summary (its SEs are used).
    time
        The fixed time (model units) of a ``time`` dimension: the nearest stored time;
        default the last. ``ValueError`` outside the stored times.
    variables
        For a summary: the variables (each with its SE in :data:`SE_NAMES`).

    Returns
    -------
    xarray.Dataset
        ``error`` = X(dt) − X(dt_min) and ``error_se`` (axis without its finest value, …;
        ``observable`` first for a summary), ``order`` and ``order_se`` (weak order p of
        ``|e| = A (dt^p − dt_min^p)`` and its SE, :func:`fit_weak_order`; NaN when fewer than
        two usable errors), ``amplitude`` A. ``attrs``: ``axis``, ``reference`` (dt_min),
        ``time`` (the stored time used).
    """
    values, se = _values_at(data, se, variables, time)
    if axis not in values.dims:
        raise ValueError(f"axis must be a dimension of the data {values.dims}, got {axis!r}")
    steps = values[axis].values
    if steps.dtype.kind not in "fiu" or np.any(steps <= 0) or steps.size < 3:
        raise ValueError(
            f"axis {axis!r} must hold at least three step sizes > 0, got {steps.tolist()!r}"
        )
    if np.unique(steps).size != steps.size:
        raise ValueError(f"axis {axis!r} holds a step size twice: {steps.tolist()!r}")
    finest = values[axis].values.argmin()
    reference = values.isel({axis: finest}, drop=True)
    coarser = [i for i in range(steps.size) if i != finest]
    error = values.isel({axis: coarser}) - reference
    if se is not None:
        error_se = np.sqrt(se.isel({axis: coarser}) ** 2 + se.isel({axis: finest}, drop=True) ** 2)
    else:
        error_se = xr.full_like(error, np.nan, dtype=float)
    others = [d for d in error.dims if d != axis]
    error, error_se = error.transpose(axis, *others), error_se.transpose(axis, *others)
    x = error[axis].values
    flat_e = np.abs(error.values.reshape(x.size, -1))
    flat_se = error_se.values.reshape(x.size, -1)
    n_series = flat_e.shape[1]
    order, order_se, amplitude = (np.full(n_series, np.nan) for _ in range(3))
    for k in range(n_series):
        order[k], order_se[k], amplitude[k] = fit_weak_order(
            x, flat_e[:, k], None if se is None else flat_se[:, k], float(steps[finest])
        )
    shape = tuple(error.sizes[d] for d in others)
    result = xr.Dataset(
        {
            "error": error,
            "error_se": error_se,
            "order": (others, order.reshape(shape)),
            "order_se": (others, order_se.reshape(shape)),
            "amplitude": (others, amplitude.reshape(shape)),
        }
    )
    result["error"].attrs["long_name"] = f"weak error: value at {axis} minus value at the finest"
    result["error_se"].attrs["long_name"] = "standard error of the weak error"
    result["order"].attrs["long_name"] = f"observed weak order: slope of log|error| vs log {axis}"
    result["order_se"].attrs["long_name"] = "standard error of the observed weak order"
    used_time = values["time"].values if "time" in values.coords else np.nan
    result.attrs = {
        "axis": axis,
        "reference": float(steps[finest]),
        "time": float(used_time) if np.ndim(used_time) == 0 else np.nan,
        "equation": "|X(dt) - X(dt_min)| = A (dt^p - dt_min^p), weights |error| / se(error)",
    }
    return result
