"""cq_core: hybrid classical–quantum stochastic dynamics (arXiv:2208.11722).

Public API::

    get_model(name, **params) -> Model      # the four built-in models, or "module:function"
    simulate(model, *, sigma, n_traj, t_final, dt, seed, ...) -> xarray.Dataset
    Model                                    # describe a model of your own (docs/models.md)

See SPEC §1–2 and ``docs/physics.md`` for the equations each function implements.
"""

from .integrators import QUANTUM_STEPS
from .models import MODELS, Model, available_models, get_model, params_to_json
from .noise import BrownianIncrements, trajectory_generator
from .simulate import STATUS_CODES, Trajectories, integrate, simulate, to_dataset
from .solver.master_equation import solve_master_equation
from .sweep import open_sweep
from .validity import METHODS, MODES, RunSettings, check_noise_covers_backreaction, check_run
from .version import NUMERICS_VERSION, __version__

__all__ = [
    "BrownianIncrements",
    "METHODS",
    "MODELS",
    "MODES",
    "Model",
    "NUMERICS_VERSION",
    "QUANTUM_STEPS",
    "RunSettings",
    "STATUS_CODES",
    "Trajectories",
    "__version__",
    "available_models",
    "check_noise_covers_backreaction",
    "check_run",
    "get_model",
    "integrate",
    "open_sweep",
    "params_to_json",
    "simulate",
    "solve_master_equation",
    "to_dataset",
    "trajectory_generator",
]
