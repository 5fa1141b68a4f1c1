"""Old import path of the sweep functions, kept for scripts and notebooks.

Opening a sweep's stores (``open_sweep``, ``open_store``, ``sweep_cells``,
``TRAJECTORY_DIMS``, ``SHARED_ATTRS``) is :mod:`cq_core.pipeline.sweep_dataset`; checking a
sweep's configuration (``sweep_cell_specs``, ``check_analysis``, ``RUN_KEYS``) is
:mod:`cq_core.pipeline.sweep_config`; ``sigma_label`` is :mod:`cq_core.pipeline.layout`.
"""

from .pipeline.layout import sigma_label
from .pipeline.sweep_config import RUN_KEYS, check_analysis, sweep_cell_specs
from .pipeline.sweep_dataset import (
    SHARED_ATTRS,
    TRAJECTORY_DIMS,
    open_store,
    open_sweep,
    sweep_cells,
)

__all__ = [
    "RUN_KEYS",
    "SHARED_ATTRS",
    "TRAJECTORY_DIMS",
    "check_analysis",
    "open_store",
    "open_sweep",
    "sigma_label",
    "sweep_cell_specs",
    "sweep_cells",
]
