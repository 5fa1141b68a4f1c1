"""Input checks and the complete-positivity conditions, run before any work starts (SPEC §1).

Every failure is a ``ValueError`` that names the offending input, its value and what is
allowed. :func:`check_run` returns the normalised settings of a run as a frozen
:class:`RunSettings`.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from numbers import Integral, Real

import numpy as np

from . import compiled
from .models.base import Model

__all__ = [
    "BACKENDS",
    "METHODS",
    "MODES",
    "RunSettings",
    "check_initial_point",
    "check_run",
    "check_noise_covers_backreaction",
    "resolve_backend",
    "resolve_method",
]

METHODS = ("auto", "exponential", "kraus", "euler")
"""Integrators: ``auto`` picks ``exponential`` for diagonal models and ``kraus`` otherwise."""
MODES = ("pure", "density", "mean_field")
BACKENDS = ("auto", "numpy", *compiled.BACKENDS)
"""Kernels: ``auto`` uses a fused kernel (C, else Numba) where one covers the run, else NumPy."""
MEMORY_FRACTION = 0.5
"""A run's stored output may take at most this fraction of the machine's memory."""


@dataclass(frozen=True)
class RunSettings:
    """The checked settings of one run (times in model units)."""

    sigma: float
    n_traj: int
    t_final: float
    dt: float
    n_steps: int
    save_every: int
    method: str
    mode: str
    backend: str
    excess: float
    seed: int
    base_seed: int
    first_trajectory: int

    @property
    def saved_steps(self) -> np.ndarray:
        """Step indices stored: every ``save_every``-th step, always including 0 and the last."""
        steps = np.arange(0, self.n_steps + 1, self.save_every)
        if steps[-1] != self.n_steps:
            steps = np.append(steps, self.n_steps)
        return steps


def _integer(key: str, value, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, Integral):
        raise ValueError(f"{key} must be an integer >= {minimum}, got {value!r}")
    if value < minimum:
        raise ValueError(f"{key} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _real(key: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, Real):
        raise ValueError(f"{key} must be a finite number, got {value!r}")
    x = float(value)
    if not math.isfinite(x):
        raise ValueError(f"{key} must be a finite number, got {value!r}")
    return x


def resolve_method(model: Model, method: str, mode: str) -> str:
    """The integrator a run uses: ``auto`` becomes ``exponential`` or ``kraus`` (SPEC §1)."""
    if method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(METHODS)}; got {method!r}")
    if mode == "mean_field":
        if method != "auto":
            raise ValueError(
                f"method {method!r} does not apply to mode 'mean_field', which integrates the "
                "deterministic semi-classical equations with RK4; use method 'auto'"
            )
        return "rk4"
    if method == "auto":
        return "exponential" if model.diagonal else "kraus"
    if method == "exponential" and not model.diagonal:
        raise ValueError(
            f"method 'exponential' needs a diagonal model; model {model.name!r} has "
            "non-commuting operators: use 'kraus' (or 'auto')"
        )
    return method


def resolve_backend(model: Model, backend: str, method: str, mode: str) -> str:
    """The kernel a run uses: a fused kernel (cq_core.compiled) where one covers it, else numpy.

    The fused kernels cover pure-state runs of the ``exponential`` method for built-in models
    with a constant noise kernel (``linear`` with ω = 0, ``mass_superposition``,
    ``qubit_lattice``). ``"auto"`` prefers the C kernel, then Numba (if installed), then NumPy;
    asking for a fused kernel that does not cover the run, or is not built, is a ``ValueError``.
    """
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {', '.join(BACKENDS)}; got {backend!r}")
    covered = (
        model.compiled_form is not None
        and model.constant_noise
        and mode == "pure"
        and method == "exponential"
    )
    if backend == "auto":  # the first fused kernel available here, in order of preference
        fused = (name for name in compiled.BACKENDS if compiled.available(name))
        return next(fused, "numpy") if covered else "numpy"
    if backend != "numpy" and not covered:
        raise ValueError(
            f"backend {backend!r} covers pure-state runs of the 'exponential' method for the "
            f"built-in models with constant noise; got model {model.name!r}, method "
            f"{method!r}, mode {mode!r}: use backend 'auto'"
        )
    if backend != "numpy" and not compiled.available(backend):
        raise ValueError(
            f"backend {backend!r} is not available here ("
            + (
                "cq-sweep was installed without a C compiler"
                if backend == "c"
                else "numba is not installed"
            )
            + "): use backend 'auto'"
        )
    return backend


def check_initial_point(model: Model, sigma: float) -> None:
    """The model must be defined and finite at its initial point z0."""
    Z = model.z0[None, :]
    if not bool(np.asarray(model.domain(Z))[0]):
        raise ValueError(
            f"model {model.name!r}: the initial point z0 = {model.z0} is outside its domain"
        )
    with np.errstate(all="ignore"):
        parts = {
            "the Hamiltonian flow {Z, H_C}": model.hamiltonian_flow(Z),
            "H_I": model.interaction_hamiltonian(Z),
            "the back-reaction operators L_j": model.backreaction_operators(Z),
            "the noise kernel": sigma * model.noise_kernel(Z),
        }
    for what, value in parts.items():
        if not np.all(np.isfinite(value)):
            raise ValueError(
                f"model {model.name!r}: {what} is not finite at the initial point "
                f"z0 = {model.z0} (e.g. a test mass placed on a point source with eps = 0)"
            )


def check_noise_covers_backreaction(
    model: Model, sigma: float, Z: np.ndarray | None = None
) -> None:
    """SPEC §1 condition ``(1 − D2 D2⁺) D1 = 0`` at the classical point Z (default z0).

    Every direction in which the quantum system pushes the classical one must carry noise:
    ``Σ_j (1 − σσ⁺)_{kj} L_j`` must be a multiple of the identity for every component k.
    """
    Z = model.z0[None, :] if Z is None else np.atleast_2d(Z)
    kernel = sigma * model.noise_kernel(Z)[0]  # (n, m)
    if not np.all(np.isfinite(kernel)):
        raise ValueError(f"model {model.name!r}: the noise kernel is not finite at {Z[0]}")
    n = model.n_classical
    leak = np.eye(n) - kernel @ np.linalg.pinv(kernel)  # projector on the noiseless directions
    ops = np.asarray(model.backreaction_operators(Z))[0]  # (c, d) or (c, d, d)
    residual = np.tensordot(leak[:, list(model.coupled)], ops, axes=(1, 0))  # (n, d[, d])
    if model.diagonal:
        residual = residual - residual.mean(axis=-1, keepdims=True)
    else:
        d = model.dim
        trace = np.trace(residual, axis1=-2, axis2=-1) / d
        residual = residual - trace[:, None, None] * np.eye(d)
    scale = max(1.0, float(np.max(np.abs(ops))))
    bad = np.max(np.abs(residual.reshape(n, -1)), axis=1) > 1e-10 * scale
    if np.any(bad):
        labels = [model.coord_labels[k] for k in np.flatnonzero(bad)]
        raise ValueError(
            f"model {model.name!r}: the noise kernel leaves the back-reaction direction(s) "
            f"{', '.join(labels)} without noise: L_j = {{Z_j, H_I}} pushes these components "
            "but σ has no noise there, which violates complete positivity "
            "((1 − D2 D2⁺) D1 = 0, SPEC §1). Add noise on those components or remove the "
            "coupling."
        )


def _memory_limit() -> int:
    try:
        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") * MEMORY_FRACTION)
    except (ValueError, OSError, AttributeError):  # pragma: no cover - non-POSIX
        return 8 * 2**30


def check_run(
    model: Model,
    *,
    sigma,
    n_traj,
    t_final,
    dt,
    seed,
    base_seed=0,
    first_trajectory=0,
    save_every=1,
    method="auto",
    mode="pure",
    excess=0.0,
    backend="auto",
) -> RunSettings:
    """Check every input of :func:`cq_core.simulate` and return the normalised settings."""
    if not isinstance(model, Model):
        raise ValueError(
            f"model must be a cq_core Model (see get_model), got {type(model).__name__}"
        )
    sigma = _real("sigma", sigma)
    if sigma <= 0:
        raise ValueError(f"sigma must be > 0 (the noise strength), got {sigma!r}")
    n_traj = _integer("n_traj", n_traj, 1)
    seed = _integer("seed", seed, 0)
    base_seed = _integer("base_seed", base_seed, 0)
    first_trajectory = _integer("first_trajectory", first_trajectory, 0)
    t_final = _real("t_final", t_final)
    if t_final <= 0:
        raise ValueError(f"t_final must be > 0, got {t_final!r}")
    dt = _real("dt", dt)
    if dt <= 0 or dt > t_final:
        raise ValueError(f"dt must satisfy 0 < dt <= t_final = {t_final!r}, got {dt!r}")
    n_steps = round(t_final / dt)
    if abs(n_steps * dt - t_final) > 1e-9 * t_final:
        raise ValueError(
            f"t_final = {t_final!r} must be a whole number of steps dt = {dt!r} "
            f"(t_final / dt = {t_final / dt!r})"
        )
    save_every = _integer("save_every", save_every, 1)
    if save_every > n_steps:
        raise ValueError(
            f"save_every must be between 1 and the number of steps ({n_steps}), got {save_every!r}"
        )
    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}; got {mode!r}")
    method = resolve_method(model, method, mode)
    backend = resolve_backend(model, backend, method, mode)
    excess = _real("excess", excess)
    if excess < 0:
        raise ValueError(
            f"excess must be >= 0: excess < 0 decoheres less than the decoherence–diffusion "
            f"trade-off allows (SPEC §1); got {excess!r}"
        )
    if excess > 0 and mode != "density":
        raise ValueError(
            f"excess > 0 needs mode 'density' (pure states saturate the trade-off); got "
            f"excess={excess!r} with mode {mode!r}"
        )
    check_initial_point(model, sigma)
    check_noise_covers_backreaction(model, sigma)
    settings = RunSettings(
        sigma=sigma,
        n_traj=n_traj,
        t_final=t_final,
        dt=dt,
        n_steps=n_steps,
        save_every=save_every,
        method=method,
        mode=mode,
        backend=backend,
        excess=excess,
        seed=seed,
        base_seed=base_seed,
        first_trajectory=first_trajectory,
    )
    d = model.dim
    per_sample = 8 * model.n_classical + 16 * (d * d if mode == "density" else d)
    needed = n_traj * len(settings.saved_steps) * per_sample
    limit = _memory_limit()
    if needed > limit:
        raise ValueError(
            f"the run would store {needed / 2**30:.3g} GiB (n_traj={n_traj}, "
            f"{len(settings.saved_steps)} saved times, d={d}), more than {limit / 2**30:.3g} GiB "
            "allowed in memory: use fewer trajectories per block, a larger save_every, or a "
            "smaller model"
        )
    return settings
