"""The fused kernel compiled from C (``fused_kernel.c`` here), called through ctypes.

``pip install`` builds ``fused_kernel.c`` into ``_fused_kernel<suffix>.so`` beside it (setup.py;
optional: without a C compiler the install still succeeds and :data:`AVAILABLE` is false).
It is a plain shared library, not a Python extension module: loading it costs a process
~0.1 MB, where loading a Numba kernel costs ~130 MB of LLVM. ctypes releases the GIL during
each call, so Dask worker threads run blocks side by side.

:func:`prepare` checks every dtype, shape and memory layout once per run; the C code trusts
them. Each call then passes only addresses, so a call costs a few microseconds and a run can
advance its trajectories in small, cache-sized groups.
"""

from __future__ import annotations

import ctypes
import importlib.machinery
from collections.abc import Callable
from pathlib import Path

import numpy as np

from .codes import LINEAR, MASS_SUPERPOSITION

__all__ = ["AVAILABLE", "LIBRARY_PATH", "prepare"]


def _library_path() -> Path | None:
    """The built library beside this module, for this interpreter's extension suffix."""
    here = Path(__file__).parent
    for suffix in importlib.machinery.EXTENSION_SUFFIXES:
        candidate = here / f"_fused_kernel{suffix}"
        if candidate.is_file():
            return candidate
    return None


LIBRARY_PATH = _library_path()
"""Where the compiled kernel is, or ``None`` if it was not built."""

_PTR, _INT, _DOUBLE = ctypes.c_void_p, ctypes.c_int64, ctypes.c_double


def _load(path: Path | None) -> ctypes.CDLL | None:
    """Open the library and declare its two functions (``None`` if it is missing or broken)."""
    if path is None:
        return None
    try:
        library = ctypes.CDLL(str(path))
    except OSError:  # built for another machine: the other kernels still run
        return None
    library.cq_run_chunk_mass.restype = ctypes.c_int
    library.cq_run_chunk_mass.argtypes = [
        _PTR, _PTR, _PTR,  # params, kernel, kernel_pinv
        _PTR, _PTR, _PTR, _PTR,  # Z, populations, phases, dW
        _INT, _INT, _DOUBLE, _INT,  # N, chunk, dt, first_step
        _PTR, _INT, _PTR, _PTR, _PTR, _PTR,  # saved_steps, T, classical … status_step
    ]  # fmt: skip
    library.cq_run_chunk.restype = ctypes.c_int
    library.cq_run_chunk.argtypes = [
        _INT, _PTR, _PTR, _INT,  # code, params, table, table rows
        _PTR, _PTR, _PTR, _INT,  # kernel, kernel_pinv, coupled, c
        _PTR, _INT, _INT, _PTR, _PTR, _INT,  # Z, N, n, populations, phases, d
        _PTR, _INT, _INT, _DOUBLE, _INT,  # dW, chunk, m, dt, first_step
        _PTR, _INT, _PTR, _PTR, _PTR, _PTR,  # saved_steps, T, classical … status_step
    ]  # fmt: skip
    return library


_LIBRARY = _load(LIBRARY_PATH)
AVAILABLE = _LIBRARY is not None
"""Whether the C kernel was built and loads on this machine."""


def _check(name: str, array: np.ndarray, dtype: type, shape: tuple[int, ...]) -> int:
    """The address of ``array`` after checking what the C code assumes of it."""
    if not isinstance(array, np.ndarray) or array.dtype != dtype:
        raise TypeError(f"{name} must be a {np.dtype(dtype)} array; got {type(array).__name__}")
    if array.shape != shape:
        raise ValueError(f"{name} has shape {array.shape}; the C kernel needs {shape}")
    if not array.flags.c_contiguous:
        raise ValueError(f"{name} must be C-contiguous")
    return array.ctypes.data


def _writable(name: str, array: np.ndarray, dtype: type, shape: tuple[int, ...]) -> int:
    if isinstance(array, np.ndarray) and not array.flags.writeable:
        raise ValueError(f"{name} must be writable: the kernel updates it in place")
    return _check(name, array, dtype, shape)


def prepare(
    code, params, table, kernel, kernel_pinv, coupled, Z, populations, phases, dt,
    saved_steps, classical_out, psi_out, status, status_step,
) -> Callable[[int, int, np.ndarray, int], None]:  # fmt: skip
    """Check a run's arrays once; return ``advance(start, stop, dW, first_step)``.

    Arguments, shapes and equations as :func:`cq_core.solver.fused.numba_kernel.prepare`.
    ``advance`` moves rows ``start … stop − 1`` by ``dW.shape[1]`` exponential steps, in place;
    ``dW`` (stop − start, chunk, m) holds their increments. A wrong dtype, shape or layout is a
    ``TypeError``/``ValueError`` here, before any number is touched.
    """
    if _LIBRARY is None:
        raise RuntimeError("the C kernel is not built: reinstall cq-sweep with a C compiler")
    N, n = Z.shape
    d, m, T = populations.shape[1], kernel.shape[1], saved_steps.shape[0]
    rows = table.shape[0]
    if code == MASS_SUPERPOSITION and (n, d, m, params.shape) != (6, 2, 3, (5,)):
        raise ValueError("mass_superposition: the C kernel needs n = 6, d = 2, m = 3, 5 params")
    if code != MASS_SUPERPOSITION:
        # L has one row per coupled component: σz's diagonal (linear), or one spin per
        # classical field (qubit_lattice, whose H_I reads Z[i] for each row i of the table)
        expected_rows = 1 if code == LINEAR else coupled.shape[0]
        if rows != expected_rows or rows > n or params.shape[0] < 3:
            raise ValueError(
                f"model code {code}: table {table.shape}, coupled {coupled.shape}, params "
                f"{params.shape} do not fit {n} classical components"
            )
        if coupled.ndim != 1 or np.any((coupled < 0) | (coupled >= n)):
            raise ValueError(f"coupled must index the {n} classical components; got {coupled}")
    constants = [
        _check("params", params, np.float64, params.shape),
        _check("table", table, np.float64, (rows, d)),
        _check("kernel", kernel, np.float64, (n, m)),
        _check("kernel_pinv", kernel_pinv, np.float64, (m, n)),
        _check("coupled", coupled, np.int64, coupled.shape),
    ]
    params_at, table_at, kernel_at, pinv_at, coupled_at = constants
    saved_at = _check("saved_steps", saved_steps, np.int64, (T,))
    # (address of row 0, bytes per row) of every array advanced in place
    state = [
        (_writable("Z", Z, np.float64, (N, n)), 8 * n),
        (_writable("populations", populations, np.float64, (N, d)), 8 * d),
        (_writable("phases", phases, np.float64, (N, d)), 8 * d),
        (_writable("classical_out", classical_out, np.float64, (N, T, n)), 8 * T * n),
        (_writable("psi_out", psi_out, np.complex128, (N, T, d)), 16 * T * d),
        (_writable("status", status, np.int8, (N,)), 1),
        (_writable("status_step", status_step, np.int64, (N,)), 8),
    ]
    library, dt = _LIBRARY, float(dt)
    arrays = (params, table, kernel, kernel_pinv, coupled, saved_steps, Z, populations, phases)
    arrays += (classical_out, psi_out, status, status_step)

    def advance(start: int, stop: int, dW: np.ndarray, first_step: int) -> None:
        if not 0 <= start <= stop <= N:
            raise ValueError(f"rows {start}…{stop - 1} are not rows of the {N} trajectories")
        count = stop - start
        chunk = dW.shape[1] if dW.ndim == 3 else -1
        dW_at = _check("dW", dW, np.float64, (count, chunk, m))
        z_at, p_at, th_at, c_at, psi_at, st_at, ss_at = (at + start * size for at, size in state)
        if code == MASS_SUPERPOSITION:
            done = library.cq_run_chunk_mass(
                params_at, kernel_at, pinv_at, z_at, p_at, th_at, dW_at, count, chunk, dt,
                first_step, saved_at, T, c_at, psi_at, st_at, ss_at,
            )  # fmt: skip
        else:
            done = library.cq_run_chunk(
                code, params_at, table_at, rows, kernel_at, pinv_at, coupled_at,
                coupled.shape[0], z_at, count, n, p_at, th_at, d, dW_at, chunk, m, dt,
                first_step, saved_at, T, c_at, psi_at, st_at, ss_at,
            )  # fmt: skip
        if done == -1:
            raise MemoryError("the C kernel could not allocate its scratch arrays")
        if done != 0:
            raise ValueError(f"the C kernel does not cover model code {code}")

    advance.arrays = arrays  # the C code holds their addresses: keep them alive
    return advance
