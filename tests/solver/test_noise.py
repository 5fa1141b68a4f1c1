"""Brownian increments keyed by (base seed, seed, trajectory index) (cq_core/solver/noise.py)."""

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


@pytest.mark.parametrize(
    ("base_seed", "seed", "first", "n_traj"),
    [
        (0, 0, 0, 64),
        (7, 3, 1000, 16),
        (2**32, 5, 100, 8),  # a base seed of two 32-bit words
        (2**70 + 5, 2**33 + 1, 12345, 8),  # three- and two-word keys
        (1, 0, 2**40, 4),  # trajectory indices of two words
        (0, 0, 2**32 - 3, 6),  # indices crossing from one word to two
    ],
)
def test_vectorised_seeding_equals_numpy_seed_sequence(base_seed, seed, first, n_traj):
    """The batch seeding reproduces SeedSequence(base_seed, spawn_key=(seed, i)) exactly."""
    from cq_core.solver.noise import trajectory_states

    expected = np.stack(
        [
            np.random.SeedSequence(base_seed, spawn_key=(seed, i)).generate_state(3, np.uint64)
            for i in range(first, first + n_traj)
        ]
    )
    np.testing.assert_array_equal(trajectory_states(base_seed, seed, first, n_traj), expected)


def test_increments_come_from_each_trajectorys_own_generator():
    """Column i is trajectory_generator(base_seed, seed, first + i) scaled by √dt."""
    from cq_core import trajectory_generator

    dt = 0.25
    dW = _draw(5, 4, [3, 9], base_seed=11, seed=2, dt=dt)
    for i in range(4):
        normals = trajectory_generator(11, 2, 5 + i).standard_normal((12, 3))
        np.testing.assert_array_equal(dW[:, i], normals * np.sqrt(dt))


def test_rows_drawn_into_a_reused_buffer_are_the_same_numbers():
    """draw_rows(out=...) fills the caller's buffer with exactly what a fresh array gets."""

    def noise():
        return BrownianIncrements(
            base_seed=0, seed=2, first_trajectory=0, n_traj=6, n_noises=3, dt=0.01
        )

    fresh, reused = noise(), noise()
    buffer = np.full((4, 8, 3), np.nan)
    for chunk in (8, 8):
        expected = np.concatenate([fresh.draw_rows(0, 4, chunk), fresh.draw_rows(4, 6, chunk)])
        first = reused.draw_rows(0, 4, chunk, out=buffer)
        assert first is buffer  # filled in place, not a new array
        got = [first.copy()]
        got.append(reused.draw_rows(4, 6, chunk, out=buffer[:2]).copy())
        np.testing.assert_array_equal(buffer[:2], got[1])
        np.testing.assert_array_equal(np.concatenate(got), expected)
    with pytest.raises(ValueError, match=r"out must be a C-contiguous float64 array"):
        reused.draw_rows(0, 4, 8, out=buffer[:, :4])  # wrong shape
    with pytest.raises(ValueError, match=r"C-contiguous"):
        reused.draw_rows(0, 4, 4, out=np.empty((4, 8, 3))[:, ::2])  # strided


@pytest.mark.parametrize(
    ("base_seed", "seed", "first", "n_traj"), [(0, 0, 0, 64), (7, 3, 2**32 - 3, 6)]
)
def test_sfc64_states_are_the_seeded_generators_states(base_seed, seed, first, n_traj):
    """The states a compiled kernel draws from are those of the trajectories' generators."""
    from cq_core.solver.noise import sfc64_states, trajectory_generator

    expected = np.stack(
        [
            trajectory_generator(base_seed, seed, i).bit_generator.state["state"]["state"]
            for i in range(first, first + n_traj)
        ]
    )
    np.testing.assert_array_equal(sfc64_states(base_seed, seed, first, n_traj), expected)
