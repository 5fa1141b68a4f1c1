"""Figures of a sweep: the seed report's pictures and the sweep's curves (matplotlib).

Every function takes xarray Datasets — a sweep summary (``summary.zarr``, see
:func:`cq_core.analysis.summarise`), a cell from :func:`cq_core.simulate`, or a sweep from
:func:`cq_core.open_sweep` — and returns a :class:`matplotlib.figure.Figure`; figures draw
what the summaries hold and never recompute them. Nothing here touches files except
:func:`save_figure`. Figures use the object API (no pyplot state), so any backend works.

* :func:`plot_trajectories` — seed Fig. 1 (:mod:`.trajectories`).
* :func:`plot_mean_field_comparison` — realisations beside the mean-field path.
* :func:`plot_sigma_z_histograms` — seed Fig. 2 (:mod:`.histograms`).
* :func:`plot_decoherence` — C(t) and Γ(σ), one row per value of a grid axis
  (:mod:`.decoherence`).
* :func:`plot_rate_vs_axis` — Γ against any sweep axis with the power-law slope
  (:mod:`.rate_axis`).
* :func:`plot_convergence` — weak error of C(t) and E⟨σz⟩ against dt, with the observed
  weak order (:mod:`.convergence`).
* :func:`plot_tradeoff` — the trade-off, measured and universal (:mod:`.tradeoff`).
* :func:`plot_phase_space`, :func:`plot_marginals` — the master-equation solution beside
  the trajectories (:mod:`.phase_space`).

:func:`summary_figure` draws a summary figure by its config name (:data:`SUMMARY_FIGURES`);
:func:`check_figure` says before any job whether a figure can draw a sweep's axes.
"""

import importlib
from typing import Any

_EXPORTS = {
    "plot_convergence": "convergence",
    "plot_decoherence": "decoherence",
    "plot_sigma_z_histograms": "histograms",
    "plot_marginals": "phase_space",
    "plot_phase_space": "phase_space",
    "plot_rate_vs_axis": "rate_axis",
    "SUMMARY_FIGURES": "registry",
    "summary_figure": "registry",
    "check_figure": "limits",
    "FIGURE_STYLE": "style",
    "KET_L": "style",
    "KET_PLUS": "style",
    "KET_R": "style",
    "PNG_DPI": "style",
    "SIGMA_Z": "style",
    "model_description": "style",
    "model_title": "style",
    "save_figure": "style",
    "sigma_text": "style",
    "force_gap_squared": "tradeoff",
    "plot_tradeoff": "tradeoff",
    "bloch_vector": "trajectories",
    "plot_mean_field_comparison": "trajectories",
    "plot_trajectories": "trajectories",
}
"""Public name → the module defining it. Imported on first use (PEP 562), so that
``cq_core.plots.limits`` (what the workflow checks while it parses the config) does not
import matplotlib."""

__all__ = [
    "FIGURE_STYLE",
    "KET_L",
    "KET_PLUS",
    "KET_R",
    "PNG_DPI",
    "SIGMA_Z",
    "SUMMARY_FIGURES",
    "bloch_vector",
    "check_figure",
    "force_gap_squared",
    "model_description",
    "model_title",
    "plot_convergence",
    "plot_decoherence",
    "plot_marginals",
    "plot_mean_field_comparison",
    "plot_phase_space",
    "plot_rate_vs_axis",
    "plot_sigma_z_histograms",
    "plot_tradeoff",
    "plot_trajectories",
    "save_figure",
    "sigma_text",
    "summary_figure",
]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        value = getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])
