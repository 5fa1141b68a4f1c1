"""Shared look of every figure: rcParams, colours, state labels, titles and σ labels.

Titles name the physics (model in words, σ with its unit) and leave the full parameter list
to the report's configuration; :func:`model_description` still gives that list for anyone
who wants it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr
from matplotlib.figure import Figure

from ..models import get_model

PNG_DPI = 150
"""Resolution of the PNG written by :func:`save_figure` (figures are 7–9 in wide)."""

FIGURE_STYLE: Mapping[str, Any] = {
    "font.size": 10.5,
    "axes.titlesize": 10.5,
    "axes.labelsize": 11,
    "xtick.labelsize": 9.5,
    "ytick.labelsize": 9.5,
    "legend.fontsize": 9,
    "legend.framealpha": 0.85,
    "figure.titlesize": 12,
    "lines.linewidth": 1.4,
    "axes.grid": True,
    "grid.alpha": 0.25,
    "savefig.bbox": "tight",
}
"""rcParams every figure is drawn with (sized for an ≈800 px README column)."""

REALISATION_COLOURS = ("tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple")
MEAN_FIELD_STYLE = {"color": "black", "linestyle": "--", "linewidth": 1.6}
KET_L, KET_R, KET_PLUS = r"$|L\rangle$", r"$|R\rangle$", r"$|{+}\rangle$"
SIGMA_Z = r"$\langle\sigma_z\rangle$"
TIME_LABEL = r"time $t$ (model units)"
RATE_LABEL = r"decoherence rate $\Gamma$ (1 / model time)"

MODEL_WORDS = {
    "mass_superposition": "test mass near a source mass in superposition",
    "linear": "linear coupling model",
    "sqrt_potential": "square-root potential model",
    "qubit_lattice": "qubit lattice",
}
"""How titles name the built-in models (others by their own name)."""

AXIS_WORDS: Mapping[str, tuple[str, str]] = {
    "lam": (r"coupling $\lambda$", "model units"),
    "phi": (r"phase $\varphi$", "model units"),
    "omega": (r"qubit drive $\Omega$", "1 / model time"),
    "M": (r"source mass $M$", "model units"),
    "m": (r"test mass $m$", "model units"),
    "d": (r"half-separation $d$ of the source positions", "model length"),
    "G": (r"gravitational constant $G$", "model units"),
    "eps": (r"softening $\varepsilon$", "model length"),
    "gamma": (r"offset $\gamma$", "model units"),
    "q0": (r"initial position $q_0$", "model length"),
    "p0": (r"initial momentum $p_0$", "model units"),
    "r0": (r"initial position $\mathbf{r}_0$", "model length"),
    "psi0": (r"initial state $\psi_0$", ""),
    "n": (r"number of sites $n$", ""),
    "dt": (r"time step $\Delta t$", "model time"),
    "excess": (r"excess decoherence $v$", "dimensionless"),
    "mode": ("state form (pure / density / mean field)", ""),
    "sigma": (r"noise strength $\sigma$", "model units"),
}
"""Axis words and units of the sweep axes (the config name is added in brackets)."""


def save_figure(fig: Figure, stem: str | os.PathLike, *, dpi: int = PNG_DPI) -> list[Path]:
    """Write ``<stem>.png`` (``dpi``, for the README and the report) and ``<stem>.pdf``.

    Creates the parent directory. Returns the two paths written.
    """
    stem = Path(stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    paths = [stem.with_name(stem.name + ".png"), stem.with_name(stem.name + ".pdf")]
    fig.savefig(paths[0], dpi=dpi)
    fig.savefig(paths[1])
    return paths


def model_params(ds: xr.Dataset) -> dict[str, Any]:
    """``attrs["model_params"]`` (JSON) as a dict; complex arrays restored."""
    params = json.loads(ds.attrs.get("model_params", "{}"))
    for key, value in params.items():
        if isinstance(value, dict) and set(value) == {"real", "imag"}:
            params[key] = np.asarray(value["real"]) + 1j * np.asarray(value["imag"])
    return params


def _format_value(value: Any) -> str:
    array = np.asarray(value)
    if np.iscomplexobj(array):
        return "(" + ", ".join(f"{z:.3g}" for z in array.ravel()) + ")"
    if array.ndim == 0:
        return f"{float(array):g}" if array.dtype.kind in "fiu" else str(value)
    return "(" + ", ".join(f"{float(v):g}" for v in array.ravel()) + ")"


def _changed_params(ds: xr.Dataset) -> dict[str, Any]:
    """The parameters that differ from the model's defaults (all of them if unknown), less
    those that are coordinates of ``ds`` (grid axes: their values are shown per panel)."""
    params = {k: v for k, v in model_params(ds).items() if k not in ds.coords}
    try:
        defaults = get_model(ds.attrs["model"]).params
    except Exception:  # a user model that needs arguments, or no model name: show them all
        return params
    changed = {}
    for key, value in params.items():
        default = defaults.get(key)
        same = default is not None and np.shape(default) == np.shape(value)
        if not (same and np.allclose(np.asarray(default), np.asarray(value))):
            changed[key] = value
    return changed


def model_title(ds: xr.Dataset) -> str:
    """The model in words, its non-default parameters and the state form (for titles).

    E.g. ``test mass near a source mass in superposition, pure states`` or
    ``linear coupling model (p0 = 10), density matrices, v = 1``.
    """
    name = ds.attrs.get("model", "model")
    text = MODEL_WORDS.get(name, name)
    changed = _changed_params(ds)
    if changed:
        text += " (" + ", ".join(f"{k} = {_format_value(v)}" for k, v in changed.items()) + ")"
    mode = None if "mode" in ds.coords else ds.attrs.get("mode")
    if mode == "density" and "excess" in ds.coords:
        text += ", density matrices"
    elif mode == "density":
        text += f", density matrices, v = {float(ds.attrs.get('excess', 0.0)):g}"
    elif mode == "pure":
        text += ", pure states"
    return text


def model_description(ds: xr.Dataset, *, width: int = 75) -> str:
    """Every model parameter and the run settings, wrapped at ``width`` characters.

    E.g. ``mass_superposition: G=1, M=10, m=0.01, d=1, …; dt=0.0001, pure``. For captions and
    logs; figure titles use :func:`model_title`.
    """
    params = model_params(ds)
    parts = [f"{key}={_format_value(value)}" for key, value in params.items()]
    run = []
    if "dt" in ds.attrs:
        run.append(f"dt={float(ds.attrs['dt']):g}")
    if ds.attrs.get("mode"):
        run.append(str(ds.attrs["mode"]))
    pieces = [f"{ds.attrs.get('model', 'model')}: "] + [f"{part}, " for part in parts]
    if run:
        pieces[-1] = pieces[-1].removesuffix(", ") + "; "
        pieces += [f"{part}, " for part in run]
    pieces[-1] = pieces[-1].removesuffix(", ").removesuffix("; ")
    lines = [""]
    for piece in pieces:
        if lines[-1] and len(lines[-1] + piece.rstrip()) > width:
            lines[-1] = lines[-1].rstrip()
            lines.append("")
        lines[-1] += piece
    return "\n".join(line.rstrip() for line in lines)


def sigma_symbol(ds: xr.Dataset) -> str:
    """``\\sigma``, or ``\\gamma`` for models whose noise parameter is called γ."""
    return r"\gamma" if ds.attrs.get("sigma_name") == "gamma" else r"\sigma"


def mass_unit(ds: xr.Dataset) -> float | None:
    """The test mass m of ``mass_superposition`` (σ is quoted in multiples of it), else None."""
    if ds.attrs.get("model") != "mass_superposition":
        return None
    mass = float(model_params(ds).get("m", 0.0))
    return mass if mass > 0 else None


def sigma_text(ds: xr.Dataset, sigma: float) -> str:
    """``σ = 2.5m`` for ``mass_superposition`` (σ in multiples of the test mass m, as the
    seed report quotes it), ``σ = 0.8`` otherwise (``γ`` for ``sqrt_potential``); mathtext."""
    mass = mass_unit(ds)
    if mass is not None:
        return rf"${sigma_symbol(ds)} = {float(sigma) / mass:.3g}\,m$"
    return rf"${sigma_symbol(ds)} = {float(sigma):g}$"


def sigma_label(ds: xr.Dataset) -> str:
    """Axis label of the noise strength, with its unit."""
    if mass_unit(ds) is not None:
        return rf"noise strength ${sigma_symbol(ds)}$ (multiples of the test mass $m$)"
    return rf"noise strength ${sigma_symbol(ds)}$ (model units)"


def axis_text(axis: str) -> str:
    """An axis in words with its config name: ``coupling $\\lambda$ (lam)``."""
    words = AXIS_WORDS.get(axis, (axis, ""))[0]
    return words if words == axis else f"{words} ({axis})"


def axis_label(axis: str, ds: xr.Dataset | None = None) -> str:
    """Axis label of a sweep axis with its unit: ``coupling $\\lambda$ (lam; model units)``.

    ``sigma`` gets :func:`sigma_label` (multiples of the test mass where it has one).
    """
    if axis == "sigma" and ds is not None:
        return sigma_label(ds)
    words, unit = AXIS_WORDS.get(axis, (axis, ""))
    if words == axis:
        return f"{axis} ({unit})" if unit else axis
    return f"{words} ({axis}; {unit})" if unit else f"{words} ({axis})"
