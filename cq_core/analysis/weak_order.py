"""Observed weak order of convergence in dt, from a summary with a ``dt`` axis.

docs/physics.md, "Integrators": a scheme of weak order p has ``E[X_h(t)] − E[X(t)] = c h^p +
o(h^p)`` for a smooth functional X at a fixed time t. A sweep with a ``dt`` grid axis stores
every dt at the same times, so the summary holds ``E[X_h(t)]`` for each step h. Against the
finest step h₀ (the reference), the observed error is

    e(h) = E[X_h(t)] − E[X_h₀(t)] = c (h^p − h₀^p)

and :func:`weak_order` fits (c, p) to it by weighted least squares (c in closed form for each p,
p by a fine search of the profile χ²(p)). Standard error of e(h): ``sqrt(se_h² + se_h₀²)``
from the summary's per-dt standard errors. The estimates at different dt are independent:
the keyed noise draws the same normal numbers in the same order at every dt, but as
increments of steps of different length they make different Brownian paths, so (unlike a
parameter axis) a dt axis has no common random numbers to pair.
The order's standard error is
half the width of ``{p : χ²(p) ≤ χ²_min + 1}``; when that interval reaches an end of the
searched orders (:data:`ORDERS`), e.g. errors all within their noise (a martingale such as
E⟨σz⟩ of an exact scheme), the order is not resolved and is NaN. At least three dt values
are needed (two errors for two unknowns); otherwise the order is NaN.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import xarray as xr

__all__ = ["ORDERS", "WEAK_ORDER_VARIABLES", "weak_order"]

WEAK_ORDER_VARIABLES = {"coherence": "coherence_se", "sigma_z_mean": "sigma_z_se"}
"""The summary variables whose weak order is measured, and their standard errors."""
ORDERS = np.linspace(0.05, 4.0, 3951)
"""The orders p searched (step 0.001)."""


def _fit(h: np.ndarray, error: np.ndarray, se: np.ndarray, reference: float) -> tuple[float, float]:
    """``(p, se_p)`` of ``error = c (h^p − h₀^p)`` over the coarser steps ``h``, h₀ =
    ``reference``."""
    usable = np.isfinite(error) & np.isfinite(se) & (se > 0)
    if usable.sum() < 2:
        return np.nan, np.nan
    h, error, weight = h[usable], error[usable], 1.0 / se[usable] ** 2
    x = h[None, :] ** ORDERS[:, None] - reference ** ORDERS[:, None]  # (orders, h)
    with np.errstate(invalid="ignore", divide="ignore"):
        c = (weight * x * error).sum(axis=1) / (weight * x * x).sum(axis=1)
        chi2 = (weight * (error - c[:, None] * x) ** 2).sum(axis=1)
    if not np.isfinite(chi2).any():
        return np.nan, np.nan
    best = int(np.nanargmin(chi2))
    inside = ORDERS[chi2 <= chi2[best] + 1.0]
    if inside.min() <= ORDERS[0] or inside.max() >= ORDERS[-1]:
        return np.nan, np.nan  # the errors do not resolve an order (e.g. all within noise)
    return float(ORDERS[best]), float((inside.max() - inside.min()) / 2.0)


def weak_order(
    summary: xr.Dataset,
    *,
    time: float | None = None,
    variables: Sequence[str] | Mapping[str, str] = tuple(WEAK_ORDER_VARIABLES),
) -> xr.Dataset:
    """The observed weak order in dt of ``coherence`` C(t) and ``sigma_z_mean`` E⟨σz⟩.

    Parameters
    ----------
    summary
        A sweep summary with a ``dt`` dimension (:func:`cq_core.analysis.summarise` of a
        sweep with a ``dt`` grid axis), every dt on the same times.
    time
        The time t of the functional (model units; nearest stored time). Default: the last.
    variables
        Keys of :data:`WEAK_ORDER_VARIABLES`, or a mapping of any variable of ``summary``
        (a mean over trajectories) to the variable holding its standard error.

    Returns
    -------
    xarray.Dataset
        For each variable X: ``X_weak_error`` and ``X_weak_error_se`` (dt, …): ``E[X_h(t)] −
        E[X_h₀(t)]`` (0 at the finest dt h₀) and its standard error;
        ``X_weak_order`` and ``X_weak_order_se`` (…): the fitted order p. ``…`` are the
        summary's other dims but time (other grid axes, ``sigma``). Coordinate ``time``: the
        time used; attr ``reference_dt``: h₀.
    """
    if "dt" not in summary.dims:
        raise ValueError("weak_order needs a summary with a dt dimension (a dt grid axis)")
    if not isinstance(variables, Mapping):
        unknown = [v for v in variables if v not in WEAK_ORDER_VARIABLES]
        if unknown:
            raise ValueError(
                f"unknown variable(s) {', '.join(unknown)}; valid: "
                f"{', '.join(WEAK_ORDER_VARIABLES)} (or give a mapping to standard errors)"
            )
        variables = {v: WEAK_ORDER_VARIABLES[v] for v in variables}
    missing = [v for pair in variables.items() for v in pair if v not in summary]
    if missing:
        raise ValueError(f"the summary holds no {', '.join(missing)}")
    t = float(summary["time"][-1]) if time is None else float(time)
    at = summary.sel(time=t, method="nearest")
    h = at["dt"].values.astype(float)
    finest = int(np.argmin(h))
    out = xr.Dataset(coords={"time": at["time"]})
    for name in variables:
        values, se = at[name], at[variables[name]]
        error = values - values.isel(dt=finest)
        error_se = np.sqrt(se**2 + se.isel(dt=finest) ** 2)
        error_se = error_se.where(error["dt"] != error["dt"][finest], 0.0)
        error, error_se = error.transpose("dt", ...), error_se.transpose("dt", ...)
        rest = error.isel(dt=0, drop=True)
        orders = np.full(rest.shape, np.nan)
        order_se = np.full(rest.shape, np.nan)
        coarse = np.arange(h.size) != finest
        e, s = error.values, error_se.values
        for index in np.ndindex(rest.shape):
            pick = (slice(None), *index)
            orders[index], order_se[index] = _fit(
                h[coarse], e[pick][coarse], s[pick][coarse], h[finest]
            )
        out[f"{name}_weak_error"] = error.drop_vars("time", errors="ignore")
        out[f"{name}_weak_error_se"] = error_se.drop_vars("time", errors="ignore")
        out[f"{name}_weak_order"] = (rest.dims, orders)
        out[f"{name}_weak_order_se"] = (rest.dims, order_se)
        out[f"{name}_weak_order"].attrs.update(
            long_name=f"observed weak order in dt of {name}", units="1"
        )
        out[f"{name}_weak_error"].attrs.update(
            long_name=f"{name} at dt minus {name} at the finest dt", units="1"
        )
    out = out.assign_coords({k: v for k, v in at.coords.items() if k in out.dims})
    out.attrs.update(
        reference_dt=float(h[finest]),
        equation="e(h) = c (h^p - h0^p)",
    )
    return out
