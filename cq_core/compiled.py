"""The fused kernels: the default integrator of the built-in diagonal models, compiled.

For diagonal operators the exponential step of SPEC §1 acts separately on the moduli and the
phases of the amplitudes; a fused kernel carries populations and phases per trajectory and
runs the whole step, classical and quantum, in one loop with no temporary arrays. Two
builds of the same loop, giving the same bits:

``"c"``
    ``cq_core/fused_kernel.c``, built by ``pip install`` and called through ctypes
    (:mod:`cq_core.c_kernel`). The default where it is built: it adds ~0.1 MB to a process.
``"numba"``
    :mod:`cq_core.numba_kernel`, compiled by Numba on first use and cached on disk. The
    fallback where no C compiler was available; importing it costs a process ~130 MB.

Covered: pure mode, the ``exponential`` method, models with a constant noise kernel whose
:class:`~cq_core.models.base.Model` carries a ``compiled_form`` (``code, params, table``:
``linear`` with ω = 0, ``mass_superposition``, ``qubit_lattice``). Everything else runs on the
NumPy path. Nothing here imports Numba until a run asks for it.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable

__all__ = [
    "BACKENDS",
    "LINEAR",
    "MASS_SUPERPOSITION",
    "QUBIT_LATTICE",
    "available",
    "prepare",
]

LINEAR = 0
"""``compiled_form`` code of ``linear``: params (lam, m, phi); table = σz diagonal.

Every model's params hold the mass at index 1 (used by the free-particle flow)."""
MASS_SUPERPOSITION = 1
"""Code of ``mass_superposition``: params (G·M·m, m, d, eps², phi); table = σz diagonal."""
QUBIT_LATTICE = 2
"""Code of ``qubit_lattice``: params (lam, m, gamma); table = spins (n, d)."""

BACKENDS = ("c", "numba")
"""The fused kernels, in the order ``backend="auto"`` prefers them."""


def available(backend: str) -> bool:
    """Whether a fused kernel can run here: ``"c"`` built and loadable, ``"numba"`` installed.

    Checking for Numba does not import it.
    """
    if backend == "c":
        from . import c_kernel

        return c_kernel.AVAILABLE
    if backend == "numba":
        return importlib.util.find_spec("numba") is not None
    raise ValueError(f"fused kernels are {', '.join(BACKENDS)}; got {backend!r}")


def prepare(backend: str, *arrays) -> Callable[..., None]:
    """A fused kernel bound to a run's arrays: ``advance(start, stop, dW, first_step)``.

    ``arrays``: ``code, params, table, kernel, kernel_pinv, coupled, Z, populations, phases,
    dt, saved_steps, classical_out, psi_out, status, status_step`` (shapes in
    :func:`cq_core.numba_kernel.run_chunk`). ``advance`` moves rows ``start … stop − 1`` by
    ``dW.shape[1]`` exponential steps in place. Imports the kernel on first use.
    """
    if backend == "c":
        from .c_kernel import prepare as bind
    elif backend == "numba":
        from .numba_kernel import prepare as bind
    else:
        raise ValueError(f"fused kernels are {', '.join(BACKENDS)}; got {backend!r}")
    return bind(*arrays)
