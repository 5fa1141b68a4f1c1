"""Brownian increments keyed by (base seed, seed, trajectory index) (SPEC §4).

Every trajectory owns an independent NumPy ``Generator`` (SFC64, the fastest of NumPy's
bit generators here) seeded from
``SeedSequence(entropy=base_seed, spawn_key=(seed, trajectory))``. Its increments are drawn in
time order, so trajectory i's noise path is the same whatever σ, block size, number of Dask
workers, time-chunk size or output settings are used: runs at different σ share their noise
paths (common random numbers), and a block computed alone equals the same slice of a big run,
bit for bit.
"""

from __future__ import annotations

import numpy as np

__all__ = ["BrownianIncrements", "trajectory_generator"]


def trajectory_generator(base_seed: int, seed: int, trajectory: int) -> np.random.Generator:
    """The random generator of one trajectory, fixed by (base seed, seed, trajectory index)."""
    return np.random.Generator(
        np.random.SFC64(np.random.SeedSequence(entropy=base_seed, spawn_key=(seed, trajectory)))
    )


class BrownianIncrements:
    """Wiener increments ``dW`` for trajectories ``first … first + n_traj − 1``.

    ``draw(n_steps)`` returns the next ``n_steps`` increments, shape ``(n_steps, n_traj, m)``,
    each ``N(0, dt)``. Successive calls continue the same paths, so drawing in chunks of any
    size gives the same numbers as one big draw.
    """

    def __init__(
        self,
        *,
        base_seed: int,
        seed: int,
        first_trajectory: int,
        n_traj: int,
        n_noises: int,
        dt: float,
    ) -> None:
        self.n_noises = n_noises
        self.scale = float(np.sqrt(dt))
        self._generators = [
            trajectory_generator(base_seed, seed, first_trajectory + i) for i in range(n_traj)
        ]

    def draw(self, n_steps: int) -> np.ndarray:
        """The next ``n_steps`` increments, shape ``(n_steps, n_traj, m)``."""
        buffer = np.empty((len(self._generators), n_steps, self.n_noises))
        for row, generator in zip(buffer, self._generators, strict=True):
            generator.standard_normal(out=row)
        buffer *= self.scale
        return buffer.transpose(1, 0, 2)
