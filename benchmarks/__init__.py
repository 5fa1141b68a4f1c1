"""The cq-sweep benchmark suite (issue 8). Run it with ``python -m benchmarks [--quick]``.

Not part of the test suite: it measures speed and memory, which depend on the machine. Every
speed is reported next to a yardstick measured in the same process run (the time NumPy takes
to draw the same number of Gaussian numbers), because a ratio survives a noisy machine and an
absolute number of seconds does not.

Importing this package caps the BLAS/OpenMP/Numba thread pools at one thread (unless the
caller already set them), before NumPy is imported, so that "one core" means one core. Dask
worker processes inherit the same environment.
"""

from __future__ import annotations

import os

ONE_THREAD_VARIABLES = (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "NUMEXPR_NUM_THREADS",
    "NUMBA_NUM_THREADS",
)
"""Environment variables set to ``"1"`` (if unset) when the package is imported."""

for _name in ONE_THREAD_VARIABLES:
    os.environ.setdefault(_name, "1")

__all__ = ["ONE_THREAD_VARIABLES"]
