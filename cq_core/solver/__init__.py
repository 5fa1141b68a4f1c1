"""The solvers: trajectories of the CQ stochastic equations and, beside them, the CQ master
equation on phase space (docs/physics.md). ``solve_master_equation`` loads on first use (it
imports SciPy's FFT, which a trajectory job never needs)."""

from .phase_space_grid import PhaseSpaceGrid, phase_space_grid

__all__ = ["PhaseSpaceGrid", "phase_space_grid", "solve_master_equation"]


def __getattr__(name: str):
    if name == "solve_master_equation":
        from .master_equation import solve_master_equation

        return solve_master_equation
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
