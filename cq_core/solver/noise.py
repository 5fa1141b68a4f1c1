"""Brownian increments keyed by (base seed, seed, trajectory index) (docs/physics.md).

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
from numpy.random.bit_generator import ISeedSequence

__all__ = [
    "BrownianIncrements",
    "sfc64_states",
    "trajectory_generator",
    "trajectory_states",
]


def trajectory_generator(base_seed: int, seed: int, trajectory: int) -> np.random.Generator:
    """The random generator of one trajectory, fixed by (base seed, seed, trajectory index)."""
    return np.random.Generator(
        np.random.SFC64(np.random.SeedSequence(entropy=base_seed, spawn_key=(seed, trajectory)))
    )


# SeedSequence's hash constants (O'Neill's seed_seq alternative, as used by NumPy:
# https://www.pcg-random.org/posts/developing-a-seed_seq-alternative.html).
_INIT_A, _MULT_A = 0x43B0D7E5, 0x931E8875
_INIT_B, _MULT_B = 0x8B51F9DD, 0x58F38DED
_MIX_L, _MIX_R = 0xCA01F9DD, 0x4973F715
_POOL_WORDS = 4
_SFC64_SEED_WORDS = 3
_MASK32 = 0xFFFFFFFF


def _uint32_words(value: int) -> list[int]:
    """A non-negative integer as little-endian 32-bit words (0 is one word)."""
    words = [value & _MASK32]
    value >>= 32
    while value:
        words.append(value & _MASK32)
        value >>= 32
    return words


class _Hasher:
    """The running multiplier of SeedSequence's ``hashmix``, shared by every row."""

    def __init__(self, start: int, multiplier: int) -> None:
        self.constant = start
        self.multiplier = multiplier

    def __call__(self, value: np.ndarray) -> np.ndarray:
        value = value ^ np.uint32(self.constant)
        self.constant = (self.constant * self.multiplier) & _MASK32
        value = value * np.uint32(self.constant)
        return value ^ (value >> np.uint32(16))


def _mix(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    result = np.uint32(_MIX_L) * x - np.uint32(_MIX_R) * y
    return result ^ (result >> np.uint32(16))


def trajectory_states(base_seed: int, seed: int, first: int, n_traj: int) -> np.ndarray:
    """SFC64 seed words of trajectories ``first … first + n_traj − 1``, shape (n_traj, 3) uint64.

    Row i equals ``SeedSequence(entropy=base_seed, spawn_key=(seed, first + i))
    .generate_state(3, np.uint64)`` bit for bit (``tests/test_noise.py`` checks it), computed
    for all rows at once with uint32 array arithmetic: SeedSequence built one trajectory at a
    time cost 13 µs each, a fifth of the time the trajectories then spend drawing their noise.
    """
    run_words = _uint32_words(base_seed)
    run_words += [0] * (_POOL_WORDS - len(run_words))  # padded when a spawn key follows
    fixed = run_words + _uint32_words(seed)
    rows = np.arange(first, first + n_traj, dtype=np.uint64)
    n_index_words = len(_uint32_words(first + max(n_traj - 1, 0)))
    if n_index_words > 1 and first < 2**32:  # rows of unequal length: do it row by row
        return np.stack(
            [
                np.random.SeedSequence(base_seed, spawn_key=(seed, int(i))).generate_state(
                    _SFC64_SEED_WORDS, np.uint64
                )
                for i in rows
            ]
        ).reshape(n_traj, _SFC64_SEED_WORDS)
    with np.errstate(over="ignore"):
        # every row's entropy: the fixed words, then its trajectory index as 32-bit words
        entropy = [np.full(n_traj, word, dtype=np.uint32) for word in fixed]
        for k in range(n_index_words):
            entropy.append(((rows >> np.uint64(32 * k)) & np.uint64(_MASK32)).astype(np.uint32))
        # mix the entropy into the pool (SeedSequence.mix_entropy)
        hashmix = _Hasher(_INIT_A, _MULT_A)
        pool = [hashmix(entropy[i]) for i in range(_POOL_WORDS)]
        for source in range(_POOL_WORDS):
            for target in range(_POOL_WORDS):
                if source != target:
                    pool[target] = _mix(pool[target], hashmix(pool[source]))
        for word in entropy[_POOL_WORDS:]:
            for target in range(_POOL_WORDS):
                pool[target] = _mix(pool[target], hashmix(word))
        # SeedSequence.generate_state: 2 × 3 uint32 words, read as 3 little-endian uint64
        state = _Hasher(_INIT_B, _MULT_B)
        words = [state(pool[i % _POOL_WORDS]) for i in range(2 * _SFC64_SEED_WORDS)]
    low, high = np.stack(words[0::2], axis=1), np.stack(words[1::2], axis=1)
    return low.astype(np.uint64) | (high.astype(np.uint64) << np.uint64(32))


_SFC64_WARM_UP = 12


def sfc64_states(base_seed: int, seed: int, first: int, n_traj: int) -> np.ndarray:
    """The seeded SFC64 states (a, b, c, counter) of trajectories ``first … first + n_traj −
    1``, shape (n_traj, 4) uint64: what ``trajectory_generator(base_seed, seed, i)
    .bit_generator.state["state"]`` holds, bit for bit (SFC64 seeding: the three seed words,
    counter 1, then 12 rounds), for all rows at once. A compiled kernel draws the keyed noise
    from these (``cq_core/solver/fused/run_loop.c``).
    """
    words = trajectory_states(base_seed, seed, first, n_traj)
    a, b, c = (words[:, k].copy() for k in range(_SFC64_SEED_WORDS))
    counter = np.ones(n_traj, dtype=np.uint64)
    for _ in range(_SFC64_WARM_UP):
        out = a + b + counter
        counter += np.uint64(1)
        a = b ^ (b >> np.uint64(11))
        b = c + (c << np.uint64(3))
        c = ((c << np.uint64(24)) | (c >> np.uint64(40))) + out
    return np.stack([a, b, c, counter], axis=1)


class _SeedWords(ISeedSequence):
    """Hands a bit generator seed words computed beforehand (see :func:`trajectory_states`)."""

    def __init__(self, words: np.ndarray) -> None:
        self.words = words

    def generate_state(self, n_words: int, dtype=np.uint32) -> np.ndarray:
        if n_words != len(self.words) or np.dtype(dtype) != self.words.dtype:
            raise ValueError(f"expected a request for {len(self.words)} {self.words.dtype} words")
        return self.words


class BrownianIncrements:
    """Wiener increments ``dW`` for trajectories ``first … first + n_traj − 1``.

    ``draw(n_steps)`` returns the next ``n_steps`` increments, shape ``(n_steps, n_traj, m)``,
    each ``N(0, dt)``. Successive calls continue the same paths, so drawing in chunks of any
    size gives the same numbers as one big draw. Trajectory i's generator is exactly
    :func:`trajectory_generator` ``(base_seed, seed, first + i)``, seeded faster.
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
        states = trajectory_states(base_seed, seed, first_trajectory, n_traj)
        self._generators = [np.random.Generator(np.random.SFC64(_SeedWords(s))) for s in states]

    def draw(self, n_steps: int) -> np.ndarray:
        """The next ``n_steps`` increments, shape ``(n_steps, n_traj, m)``."""
        return self.draw_rows(0, len(self._generators), n_steps).transpose(1, 0, 2)

    def draw_rows(
        self, start: int, stop: int, n_steps: int, out: np.ndarray | None = None
    ) -> np.ndarray:
        """The next ``n_steps`` increments of rows ``start … stop − 1``: ``(rows, n_steps, m)``.

        Each trajectory's generator advances on its own, so drawing a cell's rows in groups
        gives the same numbers as :meth:`draw`, as long as every row is drawn for every chunk
        of steps. C order: a fused kernel reads each row's steps contiguously. ``out``: a
        C-contiguous float64 array of that shape to fill and return instead of a new one
        (a caller drawing group after group reuses one buffer rather than asking the
        allocator for hundreds of KiB each time).
        """
        shape = (stop - start, n_steps, self.n_noises)
        if out is None:
            buffer = np.empty(shape)
        elif out.shape != shape or out.dtype != np.float64 or not out.flags.c_contiguous:
            raise ValueError(
                f"out must be a C-contiguous float64 array of shape {shape}, got "
                f"{out.dtype} {out.shape}"
            )
        else:
            buffer = out
        for row, generator in zip(buffer, self._generators[start:stop], strict=True):
            generator.standard_normal(out=row)
        buffer *= self.scale
        return buffer
