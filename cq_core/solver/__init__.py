"""The solvers: trajectories of the CQ stochastic equations and, beside them, the CQ master
equation on phase space (docs/physics.md). Modules move in here layer by layer."""
