"""Analysis of stored or simulated runs: observables, summaries and Born statistics.

Takes and returns xarray objects (docs/physics.md, "Observables" and "Decoherence rate");
never opens a store. The public names are re-exported here; each lives in the module that
says its job.
"""

from .convergence import weak_order
from .observables import TRAJECTORY_DIMS, as_sweep, basis_pair, pair_coherence, sigma_z
from .statistics import (
    ANALYSIS_KEYS,
    analysis_settings,
    cell_statistics,
    settings_hash,
)
from .summaries import SUMMARY_VARIABLES, summarise, summary_from_statistics, trajectory_mean
from .sweeps import stack_statistics, sweep_statistics
from .theory import theory_rate
from .views import (
    born_statistics,
    coherence_curve,
    fit_decoherence_rate,
    flagged_count,
    sigma_z_histogram,
    sigma_z_moments,
)

__all__ = [
    "ANALYSIS_KEYS",
    "SUMMARY_VARIABLES",
    "TRAJECTORY_DIMS",
    "analysis_settings",
    "as_sweep",
    "basis_pair",
    "born_statistics",
    "cell_statistics",
    "coherence_curve",
    "fit_decoherence_rate",
    "flagged_count",
    "pair_coherence",
    "settings_hash",
    "sigma_z",
    "sigma_z_histogram",
    "sigma_z_moments",
    "stack_statistics",
    "summarise",
    "summary_from_statistics",
    "sweep_statistics",
    "theory_rate",
    "trajectory_mean",
    "weak_order",
]
