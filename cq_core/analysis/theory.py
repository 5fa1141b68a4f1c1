"""The theoretical decoherence rate of a model at its initial classical point.

docs/physics.md, "Decoherence rate": for diagonal models with constant coupling
``Γ = (1+v) Σ_i (K_i[a] − K_i[b])² / 2`` with ``K = ½ σ⁺ L`` at the initial classical point z0.
For ``linear`` this is ``(1+v)·2λ²/σ²``; for ``mass_superposition`` it is the local rate at r0,
``|Δf|²/(8σ²)``, |Δf| ≈ 0.143. The trade-off bound ``Γ·D2 ≥ |Δf|²/16`` (docs/physics.md,
"Trade-off") needs the force gap |Δf|² of :func:`force_gap_squared`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import numpy as np
import xarray as xr

from ..models import get_model
from .grid_axes import point_attrs
from .observables import basis_pair

__all__ = ["force_gap_squared", "theory_rate"]


def _decode_params(params: Mapping[str, Any]) -> dict[str, Any]:
    """Model parameters from their stored JSON form: ``{"real", "imag"}`` pairs become arrays."""

    def decode(value: Any) -> Any:
        if isinstance(value, Mapping) and set(value) == {"real", "imag"}:
            return np.asarray(value["real"]) + 1j * np.asarray(value["imag"])
        return value

    return {key: decode(value) for key, value in params.items()}


def _theory_at(model, sigma: float, excess: float, pair: tuple[int, int]) -> float:
    z0 = model.z0[None, :]
    kernel = sigma * model.noise_kernel(z0)[0]  # (n, m)
    pinv = np.linalg.pinv(kernel)[:, list(model.coupled)]  # (m, c)
    operators = np.asarray(model.backreaction_operators(z0))[0]  # (c, d)
    measurement = 0.5 * pinv @ operators  # (m, d): K_i = ½ Σ_j σ⁺_ij L_j
    a, b = pair
    return float((1.0 + excess) * np.sum((measurement[:, a] - measurement[:, b]) ** 2) / 2.0)


def theory_rate(ds: xr.Dataset) -> xr.DataArray:
    """``gamma_theory`` (dim sigma): ``Γ = (1+v) Σ_i (K_i[a] − K_i[b])² / 2`` at z0.

    Needs only the ``sigma`` coordinate and the attrs of ``ds`` (model, model_params, mode,
    excess, basis_pair). Exact for diagonal models with constant coupling (``linear`` with
    omega = 0: ``(1+v)·2λ²/σ²``); the local rate at the initial point for position-dependent
    coupling (``mass_superposition``: ``|Δf|²/(8σ²)`` at r0). NaN for non-diagonal models (no
    exponential law), 0 for ``mode = "mean_field"`` of a diagonal model (no decoherence).
    Units: 1 / model time.
    """
    sigmas = np.atleast_1d(ds["sigma"].values).astype(float)
    note = "(1+v) sum_i (K_i[a]-K_i[b])^2 / 2 with K = sigma^+ L / 2 at z0 (docs/physics.md)"
    try:
        model = get_model(
            ds.attrs["model"], **_decode_params(json.loads(ds.attrs.get("model_params", "{}")))
        )
    except (KeyError, ValueError, TypeError, ImportError) as err:
        model, note = None, f"no theory: the model could not be rebuilt ({err})"
    if model is None or not model.diagonal:
        if model is not None:
            note = "no theory: the model's operators do not commute (docs/physics.md)"
        rates = np.full(sigmas.shape, np.nan)
    elif ds.attrs.get("mode") == "mean_field":
        rates, note = np.zeros(sigmas.shape), "mean-field dynamics: no decoherence"
    else:
        excess = float(ds.attrs.get("excess", 0.0))
        rates = np.array([_theory_at(model, s, excess, basis_pair(ds)) for s in sigmas])
    return xr.DataArray(
        rates,
        dims="sigma",
        coords={"sigma": sigmas},
        attrs={
            "long_name": "theoretical decoherence rate",
            "units": "1 / model time",
            "equation": note,
        },
    )


def force_gap_squared(ds: xr.Dataset) -> float:
    """``|Δf|² = Σ_j (L_j[a] − L_j[b])²`` at the initial classical point z0.

    The squared difference of the back-reaction (force) eigenvalues of the basis pair, summed
    over the coupled components: ``linear``: 16λ²; ``mass_superposition``: ≈ 0.0204 at r0.
    The trade-off bound is ``Γ·D2 ≥ |Δf|²/16``. Rebuilds the model from ``attrs``; at one
    grid point (``summary.sel(lam=0.5)``) the point's axis value replaces the stored one
    (:func:`cq_core.analysis.grid_axes.point_attrs`).
    """
    attrs = point_attrs(ds)
    params = _decode_params(json.loads(attrs.get("model_params", "{}")))
    model = get_model(attrs["model"], **params)
    a, b = (int(i) for i in attrs.get("basis_pair", (0, 1)))
    operators = np.asarray(model.backreaction_operators(model.z0[None, :]))[0]
    if not model.diagonal:  # (c, d, d): the diagonal entries of the pair
        operators = np.real(np.diagonal(operators, axis1=-2, axis2=-1))
    return float(np.sum((operators[:, a] - operators[:, b]) ** 2))
