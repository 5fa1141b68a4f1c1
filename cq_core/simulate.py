"""The time loop: classical and quantum parts stepped together, vectorised over trajectories.

Implements the Itô SDEs of SPEC §1 (ħ = 1)::

    dZ_j = {Z_j, H_C} dt + ⟨L_j⟩ dt + Σ_i σ_ji dW_i
    quantum part: one of the integrators of ``cq_core.integrators`` driven by the same dW

and returns an ``xarray.Dataset``. The classical part is an Euler–Maruyama step evaluated at
the start of the step (strong order 1 for additive noise). ``mode="mean_field"`` integrates
the deterministic semi-classical equations ``dZ = ({Z, H_C} + ⟨L⟩) dt``, ``dψ = −iH_I ψ dt``
with classical RK4.

A trajectory whose new state leaves the model's domain, or stops being finite, is frozen at
its last good state and flagged in ``status`` (with ``status_time``); it is never dropped and
never silently NaN.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import xarray as xr

from . import compiled
from .integrators import QUANTUM_STEPS
from .models import Model, params_to_json
from .noise import BrownianIncrements
from .solver.time_grid import step_times
from .validity import RunSettings, check_run
from .version import NUMERICS_VERSION, __version__

__all__ = ["simulate", "integrate", "Trajectories", "STATUS_CODES", "NOISE_CHUNK_STEPS"]

STATUS_CODES = {"ok": 0, "left_domain": 1, "non_finite": 2}
"""Per-trajectory status flags (CF ``flag_values`` / ``flag_meanings`` in the Dataset)."""
NOISE_CHUNK_STEPS = 256
"""Time steps of noise drawn at once (bounds memory; does not change any number)."""
FUSED_GROUP_TRAJECTORIES = 64
"""Trajectories a fused kernel advances per call: their noise for a chunk (64 × 256 steps ×
3 noises × 8 bytes = 384 KiB) stays in cache between being drawn and being read."""


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


class _Operators:
    """Model operators evaluated at Z for one step (the shared part of every integrator)."""

    def __init__(self, model: Model, sigma: float):
        self.model = model
        self.sigma = sigma
        self.coupled = list(model.coupled)
        if model.constant_noise:
            self.kernel = sigma * model.noise_shape  # (n, m)
            self.kernel_pinv = np.linalg.pinv(self.kernel)  # (m, n)

    def evaluate(self, Z: np.ndarray, state: np.ndarray, mode: str):
        """Return (classical drift (N, n), H, K, ⟨K⟩ (N, m), noise kernel)."""
        model = self.model
        H = model.interaction_hamiltonian(Z)
        L = np.asarray(model.backreaction_operators(Z))  # (N|1, c, d[, d])
        mean_L = _expectation(L, state, mode, model.diagonal)  # (N, c)
        drift = np.array(model.hamiltonian_flow(Z), dtype=float)  # a copy: added to below
        drift[:, self.coupled] += mean_L
        if model.constant_noise:
            kernel, pinv = self.kernel, self.kernel_pinv[:, self.coupled]  # (n, m), (m, c)
            K = 0.5 * np.tensordot(pinv, L, axes=(1, 1))  # (m, N|1, d[, d])
            K = np.moveaxis(K, 0, 1)
            mean_K = 0.5 * mean_L @ pinv.T
        else:
            kernel = self.sigma * model.noise_kernel(Z)  # (N, n, m)
            pinv = np.linalg.pinv(kernel)[:, :, self.coupled]  # (N, m, c)
            flat = L.reshape(L.shape[0], L.shape[1], -1)
            K = 0.5 * (pinv @ flat).reshape(len(Z), pinv.shape[1], *L.shape[2:])
            mean_K = 0.5 * (pinv @ mean_L[:, :, None])[:, :, 0]
        return drift, H, K, mean_K, kernel


def _expectation(ops: np.ndarray, state: np.ndarray, mode: str, diagonal: bool) -> np.ndarray:
    """``⟨O_j⟩`` for operators (N|1, c, d[, d]) in states ψ (N, d) or ρ (N, d, d): (N, c)."""
    if mode == "density":
        if diagonal:
            populations = np.einsum("nii->ni", state).real
            return (ops @ populations[:, :, None])[..., 0]
        return np.einsum(
            "ncab,nba->nc", np.broadcast_to(ops, (len(state), *ops.shape[1:])), state
        ).real
    if diagonal:
        populations = (state.real**2 + state.imag**2)[:, :, None]  # (N, d, 1)
        return (ops @ populations)[..., 0]
    ops_psi = (ops @ state[:, None, :, None])[..., 0]  # (N, c, d)
    return np.einsum("nd,ncd->nc", state.conj(), ops_psi).real


def _noise_term(kernel: np.ndarray, dW: np.ndarray) -> np.ndarray:
    """``σ dW``: kernel (n, m) or (N, n, m), dW (N, m) → (N, n)."""
    if kernel.ndim == 2:
        return dW @ kernel.T
    return (kernel @ dW[:, :, None])[:, :, 0]


def _initial_state(model: Model, mode: str, n_traj: int) -> np.ndarray:
    psi = np.broadcast_to(model.psi0, (n_traj, model.dim))
    if mode == "density":
        return psi[:, :, None] * psi.conj()[:, None, :]
    return psi.copy()


def _mean_field_rhs(ops: _Operators, Z, psi):
    model = ops.model
    H = model.interaction_hamiltonian(Z)
    L = np.asarray(model.backreaction_operators(Z))
    drift = np.array(model.hamiltonian_flow(Z), dtype=float)
    drift[:, ops.coupled] += _expectation(L, psi, "pure", model.diagonal)
    dpsi = -1j * (H * psi if model.diagonal else (H @ psi[:, :, None])[:, :, 0])
    return drift, dpsi


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
    keyed = None  # the engine's own noise, which a fused kernel draws group by group
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
    if s.backend in compiled.BACKENDS:
        return _integrate_compiled(
            model, s, keyed.draw_rows if keyed else None, increments, progress
        )
    ops = _Operators(model, s.sigma)
    quantum_step = None if mean_field else QUANTUM_STEPS[(s.method, s.mode)]
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
                    Z_new = Z + drift * dt + _noise_term(kernel, dW)
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


def _integrate_compiled(
    model: Model, s: RunSettings, draw_rows, increments, progress
) -> Trajectories:
    """:func:`integrate` through a fused kernel of :mod:`cq_core.compiled` (same noise).

    Each chunk of steps runs in groups of :data:`FUSED_GROUP_TRAJECTORIES` trajectories. With
    the engine's keyed noise (``draw_rows``, :meth:`BrownianIncrements.draw_rows`) a group's
    noise is drawn just before the kernel reads it, while it is still in cache (a whole
    chunk's, 12 MB for 2000 trajectories, is not); increments given by the caller are drawn
    for every row at once. Groups never change a number: every trajectory has its own
    generator.
    """
    code, params, table = model.compiled_form
    kernel = s.sigma * model.noise_shape
    psi = _initial_state(model, "pure", s.n_traj)
    Z, classical_out, psi_out, status, status_step = _start(model, s, psi)
    advance = compiled.prepare(
        s.backend, code, params, table, kernel, np.linalg.pinv(kernel),
        np.asarray(model.coupled, dtype=np.int64), Z, np.abs(psi) ** 2, np.angle(psi), s.dt,
        s.saved_steps, classical_out, psi_out, status, status_step,
    )  # fmt: skip
    N, step = s.n_traj, 0
    # one buffer for every group's keyed noise, reused (a fresh 384 KiB array per group is
    # an mmap and page faults each time where malloc keeps no such block, as in Dask workers)
    group_noise = (
        np.empty(FUSED_GROUP_TRAJECTORIES * NOISE_CHUNK_STEPS * model.n_noises)
        if draw_rows is not None
        else None
    )
    while step < s.n_steps:
        chunk = min(NOISE_CHUNK_STEPS, s.n_steps - step)
        given = None  # increments from the caller come for every row at once
        if draw_rows is None:
            given = np.ascontiguousarray(increments(chunk).transpose(1, 0, 2))  # (N, chunk, m)
        for start in range(0, N, FUSED_GROUP_TRAJECTORIES):
            stop = min(N, start + FUSED_GROUP_TRAJECTORIES)
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
    return Trajectories(classical_out, psi_out, status, status_step)


def _rk4_step(ops: _Operators, Z, psi, dt):
    """Classical RK4 for the mean-field ODE; ψ renormalised after the step."""
    k1 = _mean_field_rhs(ops, Z, psi)
    k2 = _mean_field_rhs(ops, Z + 0.5 * dt * k1[0], psi + 0.5 * dt * k1[1])
    k3 = _mean_field_rhs(ops, Z + 0.5 * dt * k2[0], psi + 0.5 * dt * k2[1])
    k4 = _mean_field_rhs(ops, Z + dt * k3[0], psi + dt * k3[1])
    Z = Z + dt / 6.0 * (k1[0] + 2 * k2[0] + 2 * k3[0] + k4[0])
    psi = psi + dt / 6.0 * (k1[1] + 2 * k2[1] + 2 * k3[1] + k4[1])
    return Z, psi / np.linalg.norm(psi, axis=1, keepdims=True)


def to_dataset(model: Model, settings: RunSettings, result: Trajectories) -> xr.Dataset:
    """Label the raw arrays of :func:`integrate` as the Dataset described in :func:`simulate`."""
    s = settings
    times = step_times(s.saved_steps, s.dt)
    trajectory = np.arange(s.first_trajectory, s.first_trajectory + s.n_traj, dtype=np.int64)
    levels = np.array(model.level_labels, dtype=object)
    status_time = np.where(result.status_step >= 0, step_times(result.status_step, s.dt), np.nan)
    data_vars = {
        "classical": (
            ("trajectory", "time", "coord"),
            result.classical,
            {"long_name": "classical phase-space point Z", "units": "model units"},
        ),
        "status": (
            ("trajectory",),
            result.status,
            {
                "long_name": "trajectory status",
                "flag_values": list(STATUS_CODES.values()),
                "flag_meanings": " ".join(STATUS_CODES),
            },
        ),
        "status_time": (
            ("trajectory",),
            status_time,
            {"long_name": "time at which the trajectory was flagged and frozen (NaN: never)"},
        ),
    }
    if s.mode == "density":
        data_vars["rho"] = (
            ("trajectory", "time", "ket", "bra"),
            result.quantum,
            {"long_name": "conditional density matrix ρ"},
        )
        level_coords = {"ket": levels, "bra": levels}
    else:
        data_vars["psi"] = (
            ("trajectory", "time", "level"),
            result.quantum,
            {"long_name": "conditional state vector ψ"},
        )
        level_coords = {"level": levels}
    coords = {
        "trajectory": trajectory,
        "time": ("time", times, {"units": "model units"}),
        "coord": np.array(model.coord_labels, dtype=object),
        **level_coords,
        "sigma": ((), s.sigma, {"long_name": f"noise strength ({model.sigma_name})"}),
        "seed": ((), np.int64(s.seed)),
    }
    attrs = {
        "model": model.name,
        "model_params": params_to_json(model.params),
        "sigma_name": model.sigma_name,
        "basis_pair": list(model.basis_pair),
        "dt": s.dt,
        "t_final": s.t_final,
        "n_steps": s.n_steps,
        "save_every": s.save_every,
        "method": s.method,
        "mode": s.mode,
        "backend": s.backend,
        "excess": s.excess,
        "base_seed": s.base_seed,
        "cq_core_version": __version__,
        "numerics_version": NUMERICS_VERSION,
        "equations": "arXiv:2208.11722; cq-sweep SPEC §1",
    }
    return xr.Dataset(data_vars, coords=coords, attrs=attrs)


def simulate(
    model: Model,
    *,
    sigma: float,
    n_traj: int,
    t_final: float,
    dt: float,
    seed: int,
    base_seed: int = 0,
    first_trajectory: int = 0,
    save_every: int = 1,
    method: str = "auto",
    mode: str = "pure",
    excess: float = 0.0,
    backend: str = "auto",
    progress: Callable[[int, int], None] | None = None,
) -> xr.Dataset:
    """Simulate ``n_traj`` classical–quantum trajectories of ``model`` (SPEC §1).

    Parameters
    ----------
    model
        From :func:`cq_core.get_model` or a user-built :class:`cq_core.Model`.
    sigma
        Noise strength (> 0): the noise kernel is ``sigma * model.noise_shape``.
    n_traj, first_trajectory
        Trajectories ``first_trajectory … first_trajectory + n_traj − 1`` are run. Their Brownian
        increments are fixed by (base_seed, seed, trajectory index) and do not depend on
        sigma, so a block run alone equals the same slice of one big run, bit for bit.
    t_final, dt
        Final time and step (model units); t_final must be a whole number of steps.
    save_every
        Store every ``save_every``-th step (0 and t_final are always stored).
    method
        ``"auto"`` (default: ``"exponential"`` for diagonal models, ``"kraus"`` otherwise),
        ``"exponential"``, ``"kraus"`` or ``"euler"`` (see :mod:`cq_core.integrators`).
    mode
        ``"pure"`` (ψ, trade-off saturated), ``"density"`` (ρ, allows ``excess > 0``) or
        ``"mean_field"`` (the deterministic semi-classical path, RK4).
    excess
        Decoherence above the minimum, ``v ≥ 0`` (density mode only).
    backend
        ``"auto"`` uses a fused kernel of :mod:`cq_core.compiled` where one covers the run
        (the C one if built, else Numba's; same equations and noise, equal to the NumPy path
        to rounding), ``"numpy"`` the vectorised NumPy kernel; ``"c"`` and ``"numba"`` insist
        on that fused kernel.
    progress
        Optional callback ``progress(step, n_steps)``.

    Returns
    -------
    xarray.Dataset
        ``classical`` (trajectory, time, coord); ``psi`` (trajectory, time, level) complex128,
        or ``rho`` (trajectory, time, ket, bra) in density mode; ``status`` (trajectory) with
        CF flags ok / left_domain / non_finite and ``status_time``; scalar coordinates
        ``sigma`` and ``seed``; attrs with the model, its parameters (JSON), dt, method, mode,
        excess and the package and numerics versions.

    Raises
    ------
    ValueError
        For any invalid input, before any work starts (see :mod:`cq_core.validity`).
    """
    settings = check_run(
        model,
        sigma=sigma,
        n_traj=n_traj,
        t_final=t_final,
        dt=dt,
        seed=seed,
        base_seed=base_seed,
        first_trajectory=first_trajectory,
        save_every=save_every,
        method=method,
        mode=mode,
        excess=excess,
        backend=backend,
    )
    return to_dataset(model, settings, integrate(model, settings, progress=progress))
