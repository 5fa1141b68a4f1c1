"""Analysis of stored or simulated runs: observables, summaries and Born statistics.

Takes and returns xarray objects (docs/physics.md, "Observables" and "Decoherence rate").
The public names are re-exported here; each lives in the module that says its job.
"""

from .summaries import (
    SUMMARY_VARIABLES,
    as_sweep,
    basis_pair,
    born_statistics,
    coherence_curve,
    fit_decoherence_rate,
    flagged_count,
    open_summary,
    pair_coherence,
    sigma_z,
    sigma_z_histogram,
    sigma_z_moments,
    summarise,
    theory_rate,
    trajectory_mean,
    write_summary,
)

__all__ = [
    "SUMMARY_VARIABLES",
    "as_sweep",
    "basis_pair",
    "born_statistics",
    "coherence_curve",
    "fit_decoherence_rate",
    "flagged_count",
    "open_summary",
    "pair_coherence",
    "sigma_z",
    "sigma_z_histogram",
    "sigma_z_moments",
    "summarise",
    "theory_rate",
    "trajectory_mean",
    "write_summary",
]
