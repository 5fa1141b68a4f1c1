"""The solvers: trajectories of the CQ stochastic equations and, beside them, the CQ master
equation on phase space (docs/physics.md). Modules move in here layer by layer."""

from .master_equation import PhaseSpaceGrid, phase_space_grid, solve_master_equation

__all__ = ["PhaseSpaceGrid", "phase_space_grid", "solve_master_equation"]
