"""Power-law fits of a summary: Γ against σ or any grid axis, with the slope's standard error.

docs/physics.md, "The decoherence rate Γ (theory line)": for ``linear`` ``Γ = (1+v)·2λ²/σ²``,
so ``log Γ`` is a line in ``log σ`` (slope −2) and in ``log λ`` (slope 2). The fit is weighted
least squares of ``log y = s log x + c`` with weights ``y / se(y)`` (``1 / se(log y)`` to first
order); the slope's standard error is the unscaled one, i.e. it takes the SEs as known. The
figures draw these fits; they never fit themselves.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from .grid_axes import grid_axes

__all__ = ["is_log_axis", "power_law_fit", "rate_power_law"]


def power_law_fit(
    x: np.ndarray, y: np.ndarray, y_se: np.ndarray | None = None, *, min_points: int = 3
) -> tuple[float, float, float] | None:
    """Weighted least squares of ``log y = s log x + c``: ``(s, se(s), c)`` or None.

    Uses the points with ``x > 0``, finite ``y > 0`` and (if given) finite ``y_se > 0``;
    None when fewer than ``min_points`` remain. With ``y_se`` the weights are ``y / y_se``
    and ``se(s)`` is the unscaled standard error (the SEs taken as known, so two points
    suffice); without it the points are weighted equally and ``se(s)`` comes from the
    residuals (at least three points).
    """
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    good = np.isfinite(x) & (x > 0) & np.isfinite(y) & (y > 0)
    if y_se is not None:
        y_se = np.asarray(y_se, dtype=float)
        good &= np.isfinite(y_se) & (y_se > 0)
    if good.sum() < max(min_points, 2 if y_se is not None else 3):
        return None
    if y_se is None:
        coefficients, covariance = np.polyfit(np.log(x[good]), np.log(y[good]), 1, cov=True)
    else:
        weights = y[good] / y_se[good]  # 1 / se(log y)
        coefficients, covariance = np.polyfit(
            np.log(x[good]), np.log(y[good]), 1, w=weights, cov="unscaled"
        )
    return float(coefficients[0]), float(np.sqrt(covariance[0, 0])), float(coefficients[1])


def is_log_axis(values: np.ndarray) -> bool:
    """Whether an axis is drawn (and fitted) on a log scale: numbers, all > 0, spanning a
    factor ≥ 2 (``lam``, ``M``, ``dt``, ``sigma``); otherwise linear (``phi`` with 0 or
    negative values, ``mode``, a vector axis)."""
    values = np.asarray(values)
    if values.dtype.kind not in "fiu" or values.ndim != 1 or values.size < 2:
        return False
    return bool(np.all(values > 0) and values.max() >= 2.0 * values.min())


def rate_power_law(summary: xr.Dataset, axis: str) -> xr.Dataset:
    """Γ ∝ axis^s per series: the fitted slope of ``gamma_fit`` and of ``gamma_theory``.

    Parameters
    ----------
    summary
        A summary with ``gamma_fit``, ``gamma_fit_se`` and ``gamma_theory`` (axis, …).
    axis
        A dimension of ``gamma_fit``: ``sigma`` or a grid axis (``lam``, ``M``, ``dt``, …).

    Returns
    -------
    xarray.Dataset
        Over the other dimensions of ``gamma_fit`` (e.g. ``sigma``): ``slope``, ``slope_se``
        (weighted fit, at least two points with an SE), ``intercept`` (``log Γ`` at axis = 1),
        ``theory_slope`` (the same fit of ``gamma_theory``, NaN without a theory) and
        ``theory_intercept``. All NaN when the axis is not a log axis
        (:func:`is_log_axis`). ``attrs``: ``axis``, ``log_axis``, ``equation``.
    """
    axes = ("sigma", *grid_axes(summary))
    if axis not in summary["gamma_fit"].dims:
        raise ValueError(f"axis must be one of the summary's axes {', '.join(axes)}, got {axis!r}")
    x = summary[axis].values
    log_axis = is_log_axis(x)
    gamma = summary["gamma_fit"].transpose(axis, ...)
    others = [d for d in gamma.dims if d != axis]
    stacked = {
        name: summary[name].transpose(axis, *others).values.reshape(x.size, -1)
        for name in ("gamma_fit", "gamma_fit_se", "gamma_theory")
    }
    n_series = stacked["gamma_fit"].shape[1]
    out = {name: np.full(n_series, np.nan) for name in ("slope", "slope_se", "intercept")}
    out.update(theory_slope=np.full(n_series, np.nan), theory_intercept=np.full(n_series, np.nan))
    for k in range(n_series if log_axis else 0):
        fit = power_law_fit(
            x, stacked["gamma_fit"][:, k], stacked["gamma_fit_se"][:, k], min_points=2
        )
        if fit is not None:
            out["slope"][k], out["slope_se"][k], out["intercept"][k] = fit
        theory = stacked["gamma_theory"][:, k]
        good = np.isfinite(theory) & (theory > 0)
        if good.sum() >= 2:
            slope, intercept = np.polyfit(np.log(x[good]), np.log(theory[good]), 1)
            out["theory_slope"][k], out["theory_intercept"][k] = slope, intercept
    shape = tuple(summary.sizes[d] for d in others)
    coords = {d: summary[d].values for d in others}
    result = xr.Dataset(
        {name: (others, values.reshape(shape)) for name, values in out.items()}, coords=coords
    )
    result["slope"].attrs["long_name"] = f"fitted slope of log gamma_fit against log {axis}"
    result["slope_se"].attrs["long_name"] = "standard error of the slope (SEs taken as known)"
    result["theory_slope"].attrs["long_name"] = f"slope of log gamma_theory against log {axis}"
    result.attrs = {
        "axis": axis,
        "log_axis": int(log_axis),
        "equation": "log gamma = slope * log axis + intercept, weights gamma / se(gamma)",
    }
    return result
