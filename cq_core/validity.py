"""Old import path of the run checks, kept for the pipeline: see :mod:`cq_core.solver`."""

from .solver.positivity import (  # noqa: F401
    check_initial_point,
    check_noise_covers_backreaction,
)
from .solver.settings import (  # noqa: F401
    BACKENDS,
    METHODS,
    MODES,
    RunSettings,
    check_run,
    resolve_backend,
    resolve_method,
)
