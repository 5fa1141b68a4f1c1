"""cq_core: hybrid classical–quantum stochastic dynamics (arXiv:2208.11722).

Public API::

    get_model(name, **params) -> Model      # a registered model (built-in, decorated, entry point)
    from_hamiltonian(...) -> Model           # a model from H_C, H_I and the noise (SymPy)
    register_model(name)                     # decorator: declare a builder so configs can name it
    sx, sy, sz, on_site, kron, identity      # SymPy operators for H_I (SymPy loaded on use)
    simulate(model, *, sigma, n_traj, t_final, dt, seed, ...) -> xarray.Dataset
    Model                                    # describe a model of your own (docs/models.md)

See ``docs/physics.md`` for the equations each function implements.
"""

# the old module path cq_core.simulate (a shim) first: importing a submodule binds its name
# here, and the function simulate bound below must win
from . import simulate as _simulate_module  # noqa: F401
from .models import (
    MODELS,
    Model,
    available_models,
    from_hamiltonian,
    get_model,
    is_registered,
    params_to_json,
    register_model,
    registered_models,
)
from .models.pauli import identity, kron, on_site
from .pipeline.sweep_dataset import open_sweep
from .solver.integrate import STATUS_CODES, Trajectories, integrate
from .solver.noise import BrownianIncrements, trajectory_generator
from .solver.operators import measurement_operators
from .solver.positivity import check_noise_covers_backreaction
from .solver.schemes import QUANTUM_STEPS, SCHEMES
from .solver.settings import METHODS, MODES, RunSettings, check_run
from .solver.simulate import simulate, to_dataset
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
    "SCHEMES",
    "STATUS_CODES",
    "Trajectories",
    "__version__",
    "available_models",
    "check_noise_covers_backreaction",
    "check_run",
    "from_hamiltonian",
    "get_model",
    "identity",
    "is_registered",
    "kron",
    "on_site",
    "register_model",
    "registered_models",
    "sx",
    "sy",
    "sz",
    "integrate",
    "measurement_operators",
    "open_sweep",
    "params_to_json",
    "simulate",
    "solve_master_equation",
    "to_dataset",
    "trajectory_generator",
]


def __getattr__(name: str):
    """``cq_core.sx``, ``sy``, ``sz``: the Pauli matrices, built (importing SymPy) on first use;
    ``cq_core.solve_master_equation``, imported on first use."""
    if name in ("sx", "sy", "sz"):
        from .models.pauli import pauli

        return pauli(name)
    if name == "solve_master_equation":  # SciPy's FFT loads only for the master equation
        from .solver.master_equation import solve_master_equation

        return solve_master_equation
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
