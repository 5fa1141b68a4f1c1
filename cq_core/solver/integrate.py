"""The time loop: classical and quantum parts stepped together, vectorised over trajectories.

Implements the Itô SDEs of docs/physics.md, "Equations → code" (ħ = 1)::

    dZ_j = {Z_j, H_C} dt + ⟨L_j⟩ dt + Σ_i σ_ji dW_i
    quantum part: a scheme of ``cq_core.solver.schemes`` driven by the same dW

and returns the raw arrays (:class:`Trajectories`; :mod:`.simulate` labels them). The
classical part is an Euler–Maruyama step evaluated at the start of the step (strong order 1
for additive noise). ``mode="mean_field"`` integrates the deterministic semi-classical
equations ``dZ = ({Z, H_C} + ⟨L⟩) dt``, ``dψ = −iH_I ψ dt`` with classical RK4.

A trajectory whose new state leaves the model's domain, or stops being finite, is frozen at
its last good state and flagged in ``status`` (with ``status_time``); it is never dropped and
never silently NaN.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ..models.base import Model
from .fused import GENERATED, generated
from .noise import BrownianIncrements, sfc64_states
from .operators import StepOperators, noise_term
from .schemes import SCHEMES
from .settings import FUSED_GROUP_TRAJECTORIES, NOISE_CHUNK_STEPS, RunSettings

__all__ = ["integrate", "Trajectories", "STATUS_CODES", "NOISE_CHUNK_STEPS"]

STATUS_CODES = {"ok": 0, "left_domain": 1, "non_finite": 2}
"""Per-trajectory status flags (CF ``flag_values`` / ``flag_meanings`` in the Dataset)."""


@dataclass(frozen=True)
class Trajectories:
    """Raw output of :func:`integrate` (plain arrays; :func:`simulate` labels them).

    ``classical`` (N, T, n); ``quantum`` (N, T, d) for ψ or (N, T, d, d) for ρ;
    ``status`` (N,) int8 codes of ``STATUS_CODES``; ``status_step`` (N,) the step at which a
    trajectory was flagged (−1 if never).
    """

    classical: np.ndarray
    quantum: np.ndarray
    status: np.ndarray
    status_step: np.ndarray


def _initial_state(model: Model, mode: str, n_traj: int) -> np.ndarray:
    psi = np.broadcast_to(model.psi0, (n_traj, model.dim))
    if mode == "density":
        return psi[:, :, None] * psi.conj()[:, None, :]
    return psi.copy()


def _freeze(new, old, active):
    """Keep frozen trajectories (``~active``) at their last good value."""
    if active.all():
        return new
    shape = (len(active),) + (1,) * (new.ndim - 1)
    return np.where(active.reshape(shape), new, old)


def _start(model: Model, s: RunSettings, state: np.ndarray):
    """Initial Z (N, n), and output arrays with step 0 stored: classical, quantum, status."""
    N = s.n_traj
    Z = np.repeat(model.z0[None, :], N, axis=0)
    saved = s.saved_steps
    classical_out = np.empty((N, len(saved), model.n_classical))
    quantum_out = np.empty((N, len(saved), *state.shape[1:]), dtype=complex)
    classical_out[:, 0], quantum_out[:, 0] = Z, state
    status = np.zeros(N, dtype=np.int8)
    status_step = np.full(N, -1, dtype=np.int64)
    return Z, classical_out, quantum_out, status, status_step


def integrate(
    model: Model,
    settings: RunSettings,
    increments: Callable[[int], np.ndarray] | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> Trajectories:
    """Integrate ``settings.n_traj`` trajectories of ``model`` (inputs already checked).

    ``increments(n_steps)`` must return the next ``n_steps`` Wiener increments, shape
    ``(n_steps, N, m)``, each N(0, dt); by default they come from :class:`BrownianIncrements`
    keyed by (base_seed, seed, trajectory index). Tests pass their own increments to run
    two step sizes on the same Brownian path. ``progress(step, n_steps)`` is called after each
    noise chunk.
    """
    s = settings
    N, dt = s.n_traj, s.dt
    mean_field = s.mode == "mean_field"
    if (
        s.backend == GENERATED
        and increments is None
        and not mean_field
        and generated.draws_keyed_noise(model, s.mode)
    ):  # the kernel draws the keyed noise itself, from the trajectories' generator states
        rng = sfc64_states(s.base_seed, s.seed, s.first_trajectory, N)
        return _integrate_compiled(model, s, None, None, progress, rng=rng)
    keyed = None  # the engine's own noise, which the kernel reads group by group
    if increments is None and not mean_field:
        keyed = BrownianIncrements(
            base_seed=s.base_seed,
            seed=s.seed,
            first_trajectory=s.first_trajectory,
            n_traj=N,
            n_noises=model.n_noises,
            dt=dt,
        )
        increments = keyed.draw
    if s.backend == GENERATED:
        return _integrate_compiled(
            model, s, keyed.draw_rows if keyed else None, increments, progress
        )
    ops = StepOperators(model, s.sigma)
    quantum_step = None if mean_field else SCHEMES[s.method].step(s.mode)
    state = _initial_state(model, s.mode, N)
    Z, classical_out, quantum_out, status, status_step = _start(model, s, state)
    saved = s.saved_steps
    next_save = 1
    active = np.ones(N, dtype=bool)

    step = 0
    with np.errstate(all="ignore"):  # non-finite values are detected and flagged below
        while step < s.n_steps:
            chunk = min(NOISE_CHUNK_STEPS, s.n_steps - step)
            dW_chunk = None if mean_field else increments(chunk)
            for k in range(chunk):
                if mean_field:
                    Z_new, state_new = _rk4_step(ops, Z, state, dt)
                else:
                    dW = dW_chunk[k]
                    drift, H, K, mean_K, kernel = ops.evaluate(Z, state, s.mode)
                    Z_new = Z + drift * dt + noise_term(kernel, dW)
                    state_new = quantum_step(state, H, K, mean_K, dW, dt, s.excess)
                step += 1
                # flag trajectories that left the domain or stopped being finite
                left = active & ~model.domain(Z_new)
                finite = np.isfinite(Z_new).all(axis=1) & np.isfinite(state_new.reshape(N, -1)).all(
                    axis=1
                )
                broken = active & ~left & ~finite
                if left.any() or broken.any():
                    status[left] = STATUS_CODES["left_domain"]
                    status[broken] = STATUS_CODES["non_finite"]
                    status_step[left | broken] = step
                    active &= ~(left | broken)
                Z = _freeze(Z_new, Z, active)
                state = _freeze(state_new, state, active)
                if next_save < len(saved) and step == saved[next_save]:
                    classical_out[:, next_save], quantum_out[:, next_save] = Z, state
                    next_save += 1
            if progress is not None:
                progress(step, s.n_steps)
    return Trajectories(classical_out, quantum_out, status, status_step)


FUSED_NOISE_BYTES = 512 * 2**10
"""The keyed noise a fused kernel's group of trajectories reads per call, drawn just before:
it stays in the 1 MiB L2 cache of this kind of machine."""


def keyed_chunk_steps(n_noises: int) -> int:
    """Steps of keyed noise drawn per trajectory at once on the compiled path.

    Each trajectory's generator is one NumPy call per chunk (about 1.5 µs of overhead, as much
    as drawing 100 Gaussians): with one or two Wiener processes, :data:`NOISE_CHUNK_STEPS`
    steps would make that overhead a third of the noise's cost, so the chunk grows until a
    group's noise fills :data:`FUSED_NOISE_BYTES`. Chunks never change a number.
    """
    fits = FUSED_NOISE_BYTES // (8 * n_noises * FUSED_GROUP_TRAJECTORIES)
    return max(NOISE_CHUNK_STEPS, fits)


def _integrate_compiled(
    model: Model, s: RunSettings, draw_rows, increments, progress, rng=None
) -> Trajectories:
    """:func:`integrate` through the generated kernel of :mod:`cq_core.solver.fused` (same noise).

    Each chunk of steps runs in groups of :data:`FUSED_GROUP_TRAJECTORIES` trajectories. With
    the engine's keyed noise (``draw_rows``, :meth:`BrownianIncrements.draw_rows`) a group's
    noise is drawn just before the kernel reads it, while it is still in cache (a whole
    chunk's, 12 MB for 2000 trajectories, is not); increments given by the caller are drawn
    for every row at once. Groups never change a number: every trajectory has its own
    generator. With ``rng`` (the generators' SFC64 states) the generated kernel draws the
    same keyed noise itself.
    """
    state = generated.initial_state(model, s.mode, s.n_traj)
    Z, classical_out, quantum_out, status, status_step = _start(
        model, s, _initial_state(model, s.mode, s.n_traj)
    )
    advance = generated.prepare(
        model, s.mode, s.sigma, s.excess, s.dt, s.saved_steps, Z, state,
        classical_out, quantum_out, status, status_step, rng,
    )  # fmt: skip
    N, step = s.n_traj, 0
    chunk_steps = NOISE_CHUNK_STEPS
    group_noise = None
    if rng is not None or draw_rows is not None:
        chunk_steps = keyed_chunk_steps(model.n_noises)
    if rng is None and draw_rows is not None:
        # one buffer for every group's keyed noise, reused (a fresh array of hundreds of KiB
        # per group is an mmap and page faults each time where malloc keeps no such block,
        # as in Dask workers)
        group_noise = np.empty(FUSED_GROUP_TRAJECTORIES * chunk_steps * model.n_noises)
    while step < s.n_steps:
        chunk = min(chunk_steps, s.n_steps - step)
        given = None  # increments from the caller come for every row at once
        if s.mode == "mean_field":  # deterministic: the kernel reads no noise
            given = np.zeros((N, chunk, model.n_noises))
        elif draw_rows is None and rng is None:
            given = np.ascontiguousarray(increments(chunk).transpose(1, 0, 2))  # (N, chunk, m)
        for start in range(0, N, FUSED_GROUP_TRAJECTORIES):
            stop = min(N, start + FUSED_GROUP_TRAJECTORIES)
            if rng is not None:  # drawn in the kernel
                advance(start, stop, None, step, chunk)
                continue
            if given is None:
                shape = (stop - start, chunk, model.n_noises)
                dW = group_noise[: np.prod(shape)].reshape(shape)
                draw_rows(start, stop, chunk, out=dW)
            else:
                dW = given[start:stop]
            advance(start, stop, dW, step)
        step += chunk
        if progress is not None:
            progress(step, s.n_steps)
    return Trajectories(classical_out, quantum_out, status, status_step)


def _rk4_step(ops: StepOperators, Z, psi, dt):
    """Classical RK4 for the mean-field ODE; ψ renormalised after the step."""
    k1 = ops.mean_field(Z, psi)
    k2 = ops.mean_field(Z + 0.5 * dt * k1[0], psi + 0.5 * dt * k1[1])
    k3 = ops.mean_field(Z + 0.5 * dt * k2[0], psi + 0.5 * dt * k2[1])
    k4 = ops.mean_field(Z + dt * k3[0], psi + dt * k3[1])
    Z = Z + dt / 6.0 * (k1[0] + 2 * k2[0] + 2 * k3[0] + k4[0])
    psi = psi + dt / 6.0 * (k1[1] + 2 * k2[1] + 2 * k3[1] + k4[1])
    return Z, psi / np.linalg.norm(psi, axis=1, keepdims=True)
