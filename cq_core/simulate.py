"""Old import path of the solver, kept for the pipeline: see :mod:`cq_core.solver`."""

from .solver.integrate import (  # noqa: F401
    NOISE_CHUNK_STEPS,
    STATUS_CODES,
    Trajectories,
    _initial_state,
    _start,
    integrate,
)
from .solver.simulate import simulate, to_dataset  # noqa: F401
