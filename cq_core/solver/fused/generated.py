"""The generated kernel bound to a run: one compiled step loop for every model.

:func:`covers` says whether it runs a given model and settings; :func:`prepare` builds (or
loads from the cache, :mod:`.build`) the model's kernel, checks a run's arrays once and
returns ``advance(start, stop, dW, first_step)`` for one group of
trajectories. The state arrays it advances in place: ``Z`` (N, n); ``state`` (N, 2d) float64 —
populations then phases — for a pure diagonal run, (N, 2d²) — moduli then phases of ρ — for a
diagonal density run, ψ (N, d) complex for a pure Kraus or mean-field run, ρ (N, d, d)
complex for a Kraus density run.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ...models import Model
from .build import compiler, load_kernel

__all__ = ["covers", "draws_keyed_noise", "initial_state", "load", "prepare", "uses_tables"]

MAX_LEVELS = 16
"""Full (non-diagonal) operators are covered up to d = 16 (stack arrays of d² entries)."""
TABLE_MIN_LEVELS = 32
"""Diagonal models with more levels run the table kernel (:mod:`.codegen_tables`: a few
functions of Z times constant level tables, active levels only), in pure mode only."""


def uses_tables(model: Model, mode: str) -> bool:
    """Whether a run takes the table kernel: a pure run of a diagonal model with more than
    :data:`TABLE_MIN_LEVELS` levels."""
    return model.diagonal and mode == "pure" and model.dim > TABLE_MIN_LEVELS


def covers(model: Model, method: str, mode: str, needs_compiler: bool = True) -> bool:
    """Whether the generated kernel runs this model, method and mode (with ``needs_compiler``,
    also: a C compiler is found): pure and density runs of the ``exponential`` method (diagonal
    models; density up to d = :data:`TABLE_MIN_LEVELS`) or ``kraus`` (full, d ≤
    :data:`MAX_LEVELS`), and mean-field runs."""
    if model.symbolic is None or mode not in ("pure", "density", "mean_field"):
        return False
    if mode == "mean_field":
        fits = model.dim <= (TABLE_MIN_LEVELS if model.diagonal else MAX_LEVELS)
    elif model.diagonal:  # density at large d: d² entries per trajectory, on the NumPy path
        fits = method == "exponential" and (mode == "pure" or model.dim <= TABLE_MIN_LEVELS)
    else:
        fits = method == "kraus" and model.dim <= MAX_LEVELS
    return fits and (not needs_compiler or compiler() is not None)


def load(model: Model, mode: str):
    """The model's compiled kernel for ``mode``, built (or read from the cache) now.

    Raises ``RuntimeError`` if it cannot be built here (no compiler, a compiler error).
    """
    return load_kernel(
        model,
        diagonal=model.diagonal,
        density=mode == "density",
        mean_field=mode == "mean_field",
        tables=uses_tables(model, mode),
    )


def draws_keyed_noise(model: Model, mode: str) -> bool:
    """Whether the model's kernel for ``mode`` draws the keyed noise itself (``rng`` of
    :func:`prepare`): where NumPy ships ``libnpyrandom.a`` to link, not in mean-field mode."""
    return mode != "mean_field" and load(model, mode).keyed_noise


def initial_state(model: Model, mode: str, n_traj: int) -> np.ndarray:
    """The kernel's state for ψ0 (layouts in the module docstring)."""
    psi = np.broadcast_to(model.psi0, (n_traj, model.dim))
    if mode == "mean_field":
        return psi.copy()
    if mode == "density":
        rho = psi[:, :, None] * psi.conj()[:, None, :]
        if model.diagonal:  # moduli, then phases
            flat = rho.reshape(n_traj, -1)
            return np.ascontiguousarray(np.concatenate([np.abs(flat), np.angle(flat)], axis=1))
        return np.ascontiguousarray(rho)
    if model.diagonal:
        return np.ascontiguousarray(np.concatenate([np.abs(psi) ** 2, np.angle(psi)], axis=1))
    return psi.copy()


def _address(name: str, array: np.ndarray, dtype, shape: tuple[int, ...]) -> int:
    if array.dtype != dtype or array.shape != shape or not array.flags.c_contiguous:
        raise ValueError(
            f"{name} must be a C-contiguous {np.dtype(dtype)} array of shape {shape}; got "
            f"{array.dtype} {array.shape}"
        )
    return array.ctypes.data


def prepare(
    model: Model,
    mode: str,
    sigma: float,
    excess: float,
    dt: float,
    saved_steps: np.ndarray,
    Z: np.ndarray,
    state: np.ndarray,
    classical_out: np.ndarray,
    quantum_out: np.ndarray,
    status: np.ndarray,
    status_step: np.ndarray,
    rng: np.ndarray | None = None,
) -> Callable[..., None]:
    """Bind a run's arrays to the model's kernel; ``advance`` moves rows in place.

    ``advance(start, stop, dW, first_step, chunk=None)`` runs ``dW.shape[1]`` steps on the
    increments ``dW`` (rows, steps, m) or, with ``dW=None``, ``chunk`` steps on the keyed noise
    the kernel draws itself from ``rng`` (N, 4) uint64, the SFC64 states of
    :func:`cq_core.solver.noise.sfc64_states`, advanced in place (needs
    :func:`draws_keyed_noise`).
    """
    run = load(model, mode)
    N, n = Z.shape
    d, m, T = model.dim, model.n_noises, saved_steps.shape[0]
    q_shape = quantum_out.shape[2:]
    saved_at = _address("saved_steps", saved_steps, np.int64, (T,))
    rows = [
        (_address("Z", Z, np.float64, (N, n)), 8 * n),
        (_address("state", state, state.dtype, state.shape), state[0].nbytes if N else 0),
        (_address("classical_out", classical_out, np.float64, (N, T, n)), 8 * T * n),
        (
            _address("quantum_out", quantum_out, np.complex128, (N, T, *q_shape)),
            16 * T * d ** len(q_shape),
        ),
        (_address("status", status, np.int8, (N,)), 1),
        (_address("status_step", status_step, np.int64, (N,)), 8),
    ]
    keep = (saved_steps, Z, state, classical_out, quantum_out, status, status_step, rng)
    rng_at = None
    if rng is not None:
        if not run.keyed_noise:
            raise ValueError(f"model {model.name!r}: this kernel cannot draw the keyed noise")
        rng_at = _address("rng", rng, np.uint64, (N, 4))
    noise_scale = float(np.sqrt(dt))

    def advance(
        start: int, stop: int, dW: np.ndarray | None, first_step: int, chunk: int | None = None
    ) -> None:
        if not 0 <= start <= stop <= N:
            raise ValueError(f"rows {start}…{stop - 1} are not rows of the {N} trajectories")
        z_at, q_at, c_at, o_at, st_at, ss_at = (at + start * size for at, size in rows)
        if dW is None:
            if rng_at is None or chunk is None:
                raise ValueError("advance without dW needs rng (prepare) and chunk")
            dW_at, draw_at = None, rng_at + 32 * start
        else:
            chunk = dW.shape[1] if dW.ndim == 3 else -1
            dW_at, draw_at = _address("dW", dW, np.float64, (stop - start, chunk, m)), None
        failed = run(stop - start, chunk, dt, sigma, excess, first_step, saved_at, T, z_at,
                     q_at, dW_at, c_at, o_at, st_at, ss_at, draw_at, noise_scale)  # fmt: skip
        if failed:
            raise MemoryError(f"model {model.name!r}: the kernel's scratch memory ran out")

    advance.arrays = keep  # the C code holds their addresses: keep them alive
    return advance
