"""The solvers: trajectories of the CQ stochastic equations and, beside them, the CQ master
equation on phase space (docs/physics.md). The master equation's names load on first use
(it imports SciPy's FFT, which a trajectory job never needs)."""

__all__ = ["PhaseSpaceGrid", "phase_space_grid", "solve_master_equation"]


def __getattr__(name: str):
    if name in __all__:
        from . import master_equation

        return getattr(master_equation, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
