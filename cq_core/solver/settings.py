"""Run settings and input checks, run before any work starts: one :class:`RunSettings`, one
place for the defaults (:data:`DEFAULTS`).

Every failure is a ``ValueError`` that names the offending input, its value and what is
allowed. :func:`check_run` returns the normalised settings of a run as a frozen
:class:`RunSettings`.
"""

from __future__ import annotations

import math
import os
import warnings
from dataclasses import dataclass
from numbers import Integral, Real
from types import MappingProxyType

import numpy as np

from ..models.base import Model
from .fused import GENERATED, build, generated
from .positivity import check_initial_point, check_noise_covers_backreaction
from .schemes import SCHEMES

__all__ = [
    "BACKENDS",
    "METHODS",
    "MODES",
    "RunSettings",
    "DEFAULTS",
    "check_run",
    "resolve_backend",
    "resolve_method",
]

METHODS = ("auto", *SCHEMES)
"""Integrators: ``auto`` picks ``exponential`` for diagonal models and ``kraus`` otherwise;
the others are the schemes of :data:`cq_core.solver.schemes.SCHEMES`."""
MODES = ("pure", "density", "mean_field")
BACKENDS = ("auto", GENERATED, "numpy")
"""Kernels: ``auto`` uses the kernel generated from the model's SymPy description where it
covers the run (:mod:`cq_core.solver.fused`), else NumPy; ``numpy`` is the readable reference."""
RETIRED_BACKENDS = ("c", "numba")
"""The hand-written fused kernels' names, refused with a pointer to ``generated``."""
MEMORY_FRACTION = 0.5
"""A run's estimated peak memory (:func:`memory_estimate`) may take at most this fraction of
the machine's memory."""
MAX_STEPS = 2**40
"""The most time steps a run may take (~10¹²: days of CPU time for one trajectory)."""
NOISE_CHUNK_STEPS = 256
"""Time steps of noise drawn at once (bounds memory; does not change any number)."""
FUSED_GROUP_TRAJECTORIES = 64
"""Trajectories a fused kernel advances per call: their noise for a chunk (64 × 256 steps ×
3 noises × 8 bytes = 384 KiB) stays in cache between being drawn and being read."""
WORKING_COPIES = {"exponential": 3, "kraus": 14, "euler": 14, "rk4": 8}
"""Temporaries of the NumPy path per scheme, in copies of the trajectories' quantum state (the
Kraus density step holds M, A, A², ΣK², ρ and their products at once)."""
SMALL_TEMPORARIES = 10
"""Per-trajectory temporaries of the NumPy path of the size of Z, σ, ⟨L⟩ and K (drift, noise,
pseudo-inverses). Both constants are measured in tests/solver/test_memory.py."""
DEFAULTS = MappingProxyType(
    {
        "base_seed": 0,
        "first_trajectory": 0,
        "save_every": 1,
        "method": "auto",
        "mode": "pure",
        "excess": 0.0,
        "backend": "auto",
    }
)
"""The one place for the defaults of a run's optional settings (:func:`check_run`,
:func:`cq_core.simulate` and the pipeline's cells read them from here)."""


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
    def n_saved(self) -> int:
        """How many time points are stored (computed without building :attr:`saved_steps`)."""
        return self.n_steps // self.save_every + 1 + (self.n_steps % self.save_every != 0)

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
    """The integrator a run uses: ``auto`` becomes ``exponential`` or ``kraus``."""
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
    if SCHEMES[method].needs_diagonal and not model.diagonal:
        raise ValueError(
            f"method {method!r} needs a diagonal model; model {model.name!r} has "
            "non-commuting operators: use 'kraus' (or 'auto')"
        )
    return method


def _builds(model: Model, mode: str) -> bool:
    """Whether the model's generated kernel builds here; if not, warn and say False."""
    try:
        generated.load(model, mode)
    except RuntimeError as err:
        warnings.warn(
            f"model {model.name!r}: the generated kernel could not be built ({err}); running "
            "on the NumPy path",
            RuntimeWarning,
            stacklevel=3,
        )
        return False
    return True


def resolve_backend(model: Model, backend: str, method: str, mode: str) -> str:
    """The kernel a run uses: the generated kernel where it covers the run, else numpy.

    The generated kernel (:mod:`cq_core.solver.fused.generated`) covers every model with a
    SymPy description (the built-ins and ``from_hamiltonian`` models) in pure, density and
    mean-field mode, the ``exponential`` method for diagonal models and ``kraus`` otherwise.
    ``"auto"`` builds it here (once, cached on disk); where it cannot be built — no C compiler,
    a compiler error — a warning says so and the run takes the NumPy path. Asking for
    ``"generated"`` where it does not cover the run, or cannot be built, is a ``ValueError``.
    """
    if backend in RETIRED_BACKENDS:
        raise ValueError(
            f"backend {backend!r} was retired: the kernel generated from the model "
            f"(backend 'generated', which 'auto' picks) replaces the hand-written C and Numba "
            f"kernels; backend must be one of {', '.join(BACKENDS)}"
        )
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {', '.join(BACKENDS)}; got {backend!r}")
    if backend == "numpy":
        return backend
    covered = generated.covers(model, method, mode, needs_compiler=False)
    if backend == "auto":
        if covered and build.compiler() is None:
            warnings.warn(
                f"model {model.name!r}: no C compiler found (set $CC) for the generated "
                "kernel; running on the NumPy path",
                RuntimeWarning,
                stacklevel=3,
            )
            return "numpy"
        return GENERATED if covered and _builds(model, mode) else "numpy"
    if not covered or build.compiler() is None:
        raise ValueError(
            f"backend 'generated' covers models with a symbolic description (from_hamiltonian)"
            f" in pure, density or mean-field mode, method 'exponential' for diagonal models "
            f"(density only up to d = {generated.TABLE_MIN_LEVELS}) and 'kraus' "
            f"(d <= {generated.MAX_LEVELS}) otherwise, where a C compiler is installed; got "
            f"model {model.name!r} (d = {model.dim}), method {method!r}, mode {mode!r}: use "
            "backend 'auto'"
        )
    try:
        generated.load(model, mode)  # built (once, cached) before any work starts
    except RuntimeError as err:
        raise ValueError(f"backend 'generated' cannot build model {model.name!r}: {err}") from err
    return backend


def _memory_limit() -> int:
    try:
        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") * MEMORY_FRACTION)
    except (ValueError, OSError, AttributeError):  # pragma: no cover - non-POSIX
        return 8 * 2**30


def memory_estimate(model: Model, settings: RunSettings) -> int:
    """Peak bytes a run allocates: its stored output, one chunk of noise and the working state.

    O(1) in time and memory: arithmetic on the settings only. Shapes: output
    (N, T, n) float64 and (N, T, d) or (N, T, d, d) complex128; noise (chunk, N, m) float64.
    """
    N, n, d, m = settings.n_traj, model.n_classical, model.dim, model.n_noises
    state = 16 * (d * d if settings.mode == "density" else d)  # bytes per trajectory
    output = settings.n_saved * (8 * n + state)
    chunk = min(NOISE_CHUNK_STEPS, settings.n_steps)
    if settings.backend == GENERATED:  # noise by groups; state in place
        group = 8 * m * chunk * min(N, FUSED_GROUP_TRAJECTORIES)
        return N * (output + 2 * (state + 8 * n)) + group
    copies = WORKING_COPIES.get(settings.method, max(WORKING_COPIES.values()))
    small = SMALL_TEMPORARIES * 8 * (n + n * m + m * d + d)
    return N * (output + 8 * m * chunk + copies * state + small)


def check_run(
    model: Model,
    *,
    sigma,
    n_traj,
    t_final,
    dt,
    seed,
    **options,
) -> RunSettings:
    """Check every input of :func:`cq_core.simulate` and return the normalised settings.

    ``options``: any of :data:`DEFAULTS` (base_seed, first_trajectory, save_every, method,
    mode, excess, backend); the others take their default from there.
    """
    unknown = sorted(set(options) - set(DEFAULTS))
    if unknown:
        raise ValueError(
            f"unknown run setting(s) {', '.join(unknown)}; allowed: sigma, n_traj, t_final, "
            f"dt, seed, {', '.join(DEFAULTS)}"
        )
    options = {**DEFAULTS, **options}
    base_seed, first_trajectory = options["base_seed"], options["first_trajectory"]
    save_every, method, mode = options["save_every"], options["method"], options["mode"]
    excess, backend = options["excess"], options["backend"]
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
    if t_final / dt > MAX_STEPS:
        raise ValueError(
            f"dt = {dt!r} with t_final = {t_final!r} makes {t_final / dt:.3g} steps, more than "
            f"the {MAX_STEPS:.3g} a run may take: use a larger dt or a smaller t_final"
        )
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
            f"trade-off allows (docs/physics.md); got {excess!r}"
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
    needed = memory_estimate(model, settings)
    limit = _memory_limit()
    if needed > limit:
        raise ValueError(
            f"n_traj={n_traj}: the run would store {needed / 2**30:.3g} GiB at its peak "
            f"({settings.n_saved} saved times, d={model.dim}, mode {mode!r}), more than "
            f"{limit / 2**30:.3g} GiB allowed in memory: use fewer trajectories per block "
            "(n_traj), a larger save_every, or a smaller model"
        )
    return settings
