"""The (q, p) finite-volume grid of the CQ master-equation solver (docs/physics.md,
"The master equation on phase space").

A grid is a pair of edge arrays; cells are the rectangles between them and ϱ is stored as its
cell average (a density per unit q·p area). The automatic grid covers the spread of a small
pilot ensemble of trajectories with a margin and stops at the model's domain edge.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..models import Model

__all__ = ["PhaseSpaceGrid", "phase_space_grid"]

PILOT_TRAJECTORIES = 200
"""Trajectories of the pilot run that sizes the automatic grid."""
PILOT_STEPS = 400
"""Time steps of the pilot run."""
GRID_MARGIN = 0.25
"""Margin added on each side of the pilot's range, as a fraction of that range."""


@dataclass(frozen=True)
class PhaseSpaceGrid:
    """Cell edges of a uniform (q, p) grid: ``q_edges`` (Nq + 1,), ``p_edges`` (Np + 1,)."""

    q_edges: np.ndarray
    p_edges: np.ndarray

    def __post_init__(self) -> None:
        for key in ("q_edges", "p_edges"):
            edges = np.asarray(getattr(self, key), dtype=float)
            steps = np.diff(edges)
            if edges.ndim != 1 or len(edges) < 5 or not np.all(np.isfinite(edges)):
                raise ValueError(f"{key} must be a finite 1-d array of at least 5 edges")
            if np.any(steps <= 0) or not np.allclose(steps, steps[0], rtol=1e-9, atol=0):
                raise ValueError(f"{key} must be increasing and uniformly spaced")
            object.__setattr__(self, key, edges)

    @property
    def q(self) -> np.ndarray:
        """Cell centres in q, shape (Nq,)."""
        return 0.5 * (self.q_edges[1:] + self.q_edges[:-1])

    @property
    def p(self) -> np.ndarray:
        """Cell centres in p, shape (Np,)."""
        return 0.5 * (self.p_edges[1:] + self.p_edges[:-1])

    @property
    def dq(self) -> float:
        return float(self.q_edges[1] - self.q_edges[0])

    @property
    def dp(self) -> float:
        return float(self.p_edges[1] - self.p_edges[0])

    @property
    def shape(self) -> tuple[int, int]:
        return len(self.q_edges) - 1, len(self.p_edges) - 1

    def coarsened(self) -> PhaseSpaceGrid:
        """The grid with every second edge (half the cells per side; even counts only): the
        reference grid for an estimate of the discretisation error."""
        if any(n % 2 for n in self.shape):
            raise ValueError(f"coarsened needs an even number of cells per side, got {self.shape}")
        return PhaseSpaceGrid(self.q_edges[::2], self.p_edges[::2])


def _points(q: np.ndarray, p: np.ndarray) -> np.ndarray:
    """All (q, p) pairs of two 1-d arrays, q-major: shape (len(q)·len(p), 2)."""
    Q, P = np.meshgrid(q, p, indexing="ij")
    return np.stack([Q.ravel(), P.ravel()], axis=1)


def _domain_edge(model: Model, lo: float, hi: float, p: float) -> tuple[float, float]:
    """Shrink [lo, hi] in q to the part of the model's domain (at momentum p) around z0[0]."""
    q0 = float(model.z0[0])

    def inside(q: float) -> bool:
        return bool(model.domain(np.array([[q, p]]))[0])

    edges = []
    for outer in (lo, hi):
        if inside(outer):
            edges.append(outer)
            continue
        a, b = q0, outer  # a inside, b outside: bisect to the edge
        for _ in range(60):
            mid = 0.5 * (a + b)
            a, b = (mid, b) if inside(mid) else (a, mid)
        edges.append(b)
    return edges[0], edges[1]


def phase_space_grid(
    model: Model,
    *,
    sigma: float,
    t_final: float,
    shape: tuple[int, int] = (128, 128),
    excess: float = 0.0,
) -> PhaseSpaceGrid:
    """The automatic grid: the range a pilot ensemble explores up to ``t_final``, plus margin.

    ``PILOT_TRAJECTORIES`` pure-state trajectories (``excess`` > 0: density mode) are run
    with ``PILOT_STEPS`` steps; the grid covers their (q, p) range widened by
    ``GRID_MARGIN`` of the range on each side (what leaves it is counted in ``escaped``),
    and is clipped to the model's domain in q (the domain edge becomes a grid edge, an
    outflow boundary).
    ``shape`` = (Nq, Np) cells.
    """
    from ..simulate import simulate  # the solver package sits beside the trajectory code

    mode = "density" if excess > 0 else "pure"
    pilot = simulate(
        model,
        sigma=sigma,
        n_traj=PILOT_TRAJECTORIES,
        t_final=t_final,
        dt=t_final / PILOT_STEPS,
        seed=0,
        base_seed=12345,
        mode=mode,
        excess=excess,
    )
    z = pilot["classical"].values  # (N, T, 2)
    ranges = []
    for j in (0, 1):
        lo, hi = float(np.min(z[..., j])), float(np.max(z[..., j]))
        margin = GRID_MARGIN * (hi - lo) + 1e-3 * max(1.0, abs(lo), abs(hi))
        ranges.append((lo - margin, hi + margin))
    q_lo, q_hi = _domain_edge(model, *ranges[0], p=float(model.z0[1]))
    return PhaseSpaceGrid(
        q_edges=np.linspace(q_lo, q_hi, shape[0] + 1),
        p_edges=np.linspace(*ranges[1], shape[1] + 1),
    )
