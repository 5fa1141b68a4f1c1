"""Brownian increments keyed by (base seed, seed, trajectory index) (cq_core/noise.py, SPEC §4)."""

from __future__ import annotations

import numpy as np
import pytest

from cq_core import BrownianIncrements


def _draw(first, n_traj, chunks, base_seed=0, seed=0, dt=0.01, m=3):
    noise = BrownianIncrements(
        base_seed=base_seed, seed=seed, first_trajectory=first, n_traj=n_traj, n_noises=m, dt=dt
    )
    return np.concatenate([noise.draw(c) for c in chunks], axis=0)


def test_chunking_in_time_does_not_change_the_path():
    whole = _draw(0, 5, [40])
    pieces = _draw(0, 5, [1, 7, 32])
    np.testing.assert_array_equal(whole, pieces)
    assert whole.shape == (40, 5, 3)


def test_a_block_equals_the_same_slice_of_a_big_draw():
    big = _draw(0, 10, [20])
    block = _draw(4, 3, [20])
    np.testing.assert_array_equal(block, big[:, 4:7])


def test_keys_give_different_paths():
    base = _draw(0, 2, [50])
    assert not np.array_equal(base, _draw(0, 2, [50], seed=1))
    assert not np.array_equal(base, _draw(0, 2, [50], base_seed=1))
    assert not np.array_equal(base[:, 0], base[:, 1])


def test_increments_scale_with_sqrt_dt_only():
    """The same standard normals at every dt: runs at any σ or dt share their noise."""
    np.testing.assert_allclose(_draw(0, 3, [30], dt=0.04), 2.0 * _draw(0, 3, [30], dt=0.01))


def test_increments_are_standard_brownian():
    """Mean 0, variance dt, uncorrelated across components, steps and trajectories."""
    dt = 0.01
    dW = _draw(0, 400, [250], dt=dt).reshape(-1, 3)  # 100 000 samples per component
    n = len(dW)
    assert np.all(np.abs(dW.mean(axis=0)) < 5 * np.sqrt(dt / n))
    # the variance of a sample variance of normals is 2σ⁴/(n−1)
    assert np.all(np.abs(dW.var(axis=0) - dt) < 5 * dt * np.sqrt(2 / n))
    corr = np.corrcoef(dW.T)
    off_diagonal = corr[~np.eye(3, dtype=bool)]
    assert np.all(np.abs(off_diagonal) < 5 / np.sqrt(n))


@pytest.mark.parametrize("n_noises", [1, 4])
def test_shape(n_noises):
    assert _draw(2, 3, [5], m=n_noises).shape == (5, 3, n_noises)
