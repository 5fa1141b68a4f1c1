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

from .convergence import plot_convergence
from .decoherence import plot_decoherence
from .histograms import plot_sigma_z_histograms
from .phase_space import plot_marginals, plot_phase_space
from .rate_axis import plot_rate_vs_axis
from .registry import SUMMARY_FIGURES, check_figure, summary_figure
from .style import (
    FIGURE_STYLE,
    KET_L,
    KET_PLUS,
    KET_R,
    PNG_DPI,
    SIGMA_Z,
    model_description,
    model_title,
    save_figure,
    sigma_text,
)
from .tradeoff import force_gap_squared, plot_tradeoff
from .trajectories import bloch_vector, plot_mean_field_comparison, plot_trajectories

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
