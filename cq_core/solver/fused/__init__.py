"""The fused kernels: the default integrator of the built-in diagonal models, compiled.

For diagonal operators the exponential step (docs/physics.md) acts separately on the moduli and the
phases of the amplitudes; a fused kernel carries populations and phases per trajectory and
runs the whole step, classical and quantum, in one loop with no temporary arrays. Two
builds of the same loop, giving the same bits:

``"c"``
    ``fused_kernel.c`` here, built by ``pip install`` and called through ctypes
    (:mod:`.c_kernel`). The default where it is built: it adds ~0.1 MB to a process.
``"numba"``
    :mod:`.numba_kernel`, compiled by Numba on first use and cached on disk. The
    fallback where no C compiler was available; importing it costs a process ~130 MB.

Covered: pure mode, the ``exponential`` method, models with a constant noise kernel whose
:class:`~cq_core.models.base.Model` carries a ``compiled_form`` (``name, params, table``:
``linear`` with ω = 0, ``mass_superposition``, ``qubit_lattice``). Everything else runs on the
NumPy path. Nothing here imports Numba until a run asks for it.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable

from .codes import CODES

__all__ = ["BACKENDS", "GENERATED", "available", "prepare"]

GENERATED = "generated"
"""The kernel generated from a model's SymPy description (:mod:`.generated`): every model
that has one, pure and density modes, diagonal (exponential) and full (Kraus) operators."""

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

    ``arrays``: ``name, params, table, kernel, kernel_pinv, coupled, Z, populations, phases,
    dt, saved_steps, classical_out, psi_out, status, status_step`` (shapes in
    :func:`.numba_kernel.run_chunk`; ``name`` is
    ``compiled_form[0]``). ``advance`` moves rows ``start … stop − 1`` by
    ``dW.shape[1]`` exponential steps in place. Imports the kernel on first use.
    """
    if backend == "c":
        from .c_kernel import prepare as bind
    elif backend == "numba":
        from .numba_kernel import prepare as bind
    else:
        raise ValueError(f"fused kernels are {', '.join(BACKENDS)}; got {backend!r}")
    name, *rest = arrays
    if name not in CODES:
        raise ValueError(
            f"no fused kernel for model {name!r}; fused kernels cover {', '.join(CODES)}"
        )
    return bind(CODES[name], *rest)
