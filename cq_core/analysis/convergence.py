"""Observed weak order of a sweep with a ``dt`` axis (docs/physics.md, "Observed convergence
orders").

A weak error is the error of an expectation: here of the mean conditional coherence C(t) and of
E⟨σz⟩_t at one fixed time, each measured against the sweep's finest step,
``e(dt) = X(dt) − X(dt_min)``. A scheme of weak order p has ``X(dt) = X₀ + c·dt^p + o(dt^p)``,
so ``e(dt) = c·(dt^p − dt_min^p)``: the order is fitted to exactly that law (the plain slope
of ``log|e|`` against ``log dt`` is biased low when dt_min is not much smaller than the other
steps), signed errors, weights ``1 / se(e)²`` (:func:`fit_weak_order`).
``se(e) = sqrt(se(X(dt))² + se(X(dt_min))²)``: the estimates at different dt are independent
(the keyed noise draws the same normal numbers at every dt, but as increments of steps of
different length they make different Brownian paths, so a dt axis has no common random
numbers to pair). The reference's error is shared by every point, which the order's SE does
not model.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import xarray as xr

__all__ = ["SE_NAMES", "fit_weak_order", "weak_order"]

ORDER_GRID = np.linspace(0.05, 6.0, 5951)
"""The weak orders searched (step 0.001; the best refined between its neighbours)."""

SE_NAMES = {
    "coherence": "coherence_se",
    "sigma_z_mean": "sigma_z_se",
    "gamma_fit": "gamma_fit_se",
}
"""The standard error of each summary variable a weak order may be taken of."""


def _values_at(
    data: xr.Dataset | xr.DataArray,
    se: xr.DataArray | None,
    variables: Sequence[str] | Mapping[str, str],
    time: float | None,
) -> tuple[xr.DataArray, xr.DataArray | None]:
    """The values (observable, …) and their SEs at the chosen time."""
    if isinstance(data, xr.Dataset):
        names = dict(variables) if isinstance(variables, Mapping) else SE_NAMES
        variables = list(variables)
        missing = [v for v in variables if v not in data or names.get(v) not in data]
        if missing:
            raise ValueError(
                f"variables must name summary variables with a standard error "
                f"({', '.join(SE_NAMES)}), got {missing!r} for this summary"
            )
        values = xr.concat([data[v] for v in variables], dim="observable", coords="minimal")
        se = xr.concat([data[names[v]] for v in variables], dim="observable", coords="minimal")
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
    """``(p, se(p), c)`` of ``e = c·(dt^p − dt_ref^p)``; NaN when no order is resolved.

    ``steps`` (> reference), ``error`` = X(dt) − X(dt_ref) (signed) and its SE (None: equal
    weights, at least three points; with SEs at least two). Weighted least squares with
    weights ``1 / se²``: c in closed form for each p, p at the minimum of the profile χ²(p)
    over :data:`ORDER_GRID` refined by a bounded search; ``se(p)`` is half the width of
    ``{p : χ²(p) ≤ χ²_min + s²}`` (s² = 1 with SEs, else the residual variance). When that
    interval reaches an end of the searched orders (errors all within their noise, e.g. the
    martingale E⟨σz⟩ of an exact scheme) the order is not resolved: NaN.
    """
    steps, error = np.asarray(steps, float), np.asarray(error, float)
    good = np.isfinite(error) & (steps > reference)
    if error_se is not None:
        error_se = np.asarray(error_se, float)
        good &= np.isfinite(error_se) & (error_se > 0)
    n = int(good.sum())
    if n < (2 if error_se is not None else 3):
        return np.nan, np.nan, np.nan
    h, e = steps[good], error[good]
    weight = 1.0 / error_se[good] ** 2 if error_se is not None else np.ones(n)

    def profile(orders: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        x = h[None, :] ** orders[:, None] - reference ** orders[:, None]  # (order, step)
        c = (weight * x * e).sum(axis=1) / (weight * x * x).sum(axis=1)
        return (weight * (e - c[:, None] * x) ** 2).sum(axis=1), c

    chi2, _ = profile(ORDER_GRID)
    k = int(np.argmin(chi2))
    bounds = (ORDER_GRID[max(k - 1, 0)], ORDER_GRID[min(k + 1, ORDER_GRID.size - 1)])
    from scipy.optimize import minimize_scalar  # only when a dt axis is fitted

    best = minimize_scalar(
        lambda p: float(profile(np.array([p]))[0][0]), bounds=bounds, method="bounded",
        options={"xatol": 1e-10},
    )  # fmt: skip
    p = float(best.x)
    chi2_min, c = (float(v[0]) for v in profile(np.array([p])))
    scale = 1.0 if error_se is not None else chi2_min / (n - 2) if n > 2 else np.nan
    if not np.isfinite(scale):
        return np.nan, np.nan, np.nan
    inside = ORDER_GRID[chi2 <= chi2_min + scale]
    if inside.size == 0:  # exact data: χ² = 0 at the order only
        return p, 0.0, c
    if inside.min() <= ORDER_GRID[0] or inside.max() >= ORDER_GRID[-1]:
        return np.nan, np.nan, np.nan
    return p, float(max(inside.max() - inside.min(), ORDER_GRID[1] - ORDER_GRID[0]) / 2), c


def weak_order(
    data: xr.Dataset | xr.DataArray,
    *,
    axis: str = "dt",
    se: xr.DataArray | None = None,
    time: float | None = None,
    variables: Sequence[str] | Mapping[str, str] = ("coherence", "sigma_z_mean"),
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
        For a summary: the variables (each with its SE in :data:`SE_NAMES`), or a mapping
        of any mean in the summary to the variable holding its SE (``{"q_mean": "q_se"}``).

    Returns
    -------
    xarray.Dataset
        ``error`` = X(dt) − X(dt_min) and ``error_se`` (axis without its finest value, …;
        ``observable`` first for a summary), ``order`` and ``order_se`` (weak order p of
        ``e = c (dt^p − dt_min^p)`` and its SE, :func:`fit_weak_order`; NaN when fewer than
        two usable errors or when the errors resolve no order), ``amplitude`` c (signed).
        ``attrs``: ``axis``, ``reference`` (dt_min), ``time`` (the stored time used).
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
    flat_e = error.values.reshape(x.size, -1)
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
        "equation": "X(dt) - X(dt_min) = c (dt^p - dt_min^p), weights 1 / se(error)^2",
    }
    return result
