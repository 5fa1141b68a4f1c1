"""The CQ master equation on phase space for one classical degree of freedom (docs/physics.md,
"The master equation on phase space").

``ϱ(q, p, t) = E[δ(z − Z_t) ρ_t]``, a d×d matrix-valued density (d ≤ 4), obeys::

    ∂ϱ/∂t = −i[H_I, ϱ] − ∂_q(½{V_q, ϱ}) − ∂_p(½{V_p, ϱ}) + ∂_p²(D(q) ϱ)
            + (1+v) Σ_i (K_i ϱ K_i − ½{K_i², ϱ})

with ``V_j = {Z_j, H_C}·1 + L_j``, ``D = ½ Σ_i σ_pi²`` and ``K_i = ½ Σ_j (σ⁺)_ij L_j``.
Scheme (Strang splitting, second order in time; diffusion outermost so that the half steps
of consecutive steps merge): the local part is applied as its exact
propagator (a CP map); the diffusion in p exactly, in the cosine basis that diagonalises the
zero-flux discrete Laplacian (a positive map conserving mass); the advection as conservative
finite volumes, MUSCL with monotonised-central limited slopes of every matrix element and a
matrix upwind flux ``½{V⁺, ϱ_left} + ½{V⁻, ϱ_right}``, stepped with SSP-RK2 at a CFL number ≤ 0.5.
Every grid edge is an outflow boundary for the advection (the domain edge of a model such as
``sqrt_potential`` is one); what flows out, and what lies in cells outside the model's domain,
is accumulated in ``escaped``, so trace(∫ϱ) + trace(escaped) = 1 to rounding.
"""

from __future__ import annotations

import math

import numpy as np
import scipy.fft
import xarray as xr

from ..models import Model, params_to_json
from ..validity import check_noise_covers_backreaction
from ..version import __version__
from .phase_space_grid import PhaseSpaceGrid, phase_space_grid
from .phase_space_operators import FaceVelocity, GridOperators, grid_operators, local_propagator

__all__ = [
    "MAX_LEVELS",
    "PhaseSpaceGrid",
    "check_master_equation_model",
    "phase_space_grid",
    "solve_master_equation",
]

MAX_LEVELS = 4


def _diagonal_velocities(face: FaceVelocity, diagonal: bool) -> FaceVelocity | None:
    """The element weights ``½(v_a + v_b)`` of a face velocity that is diagonal (always for
    diagonal models; for full models when every V± is diagonal, as for ``linear`` with
    omega ≠ 0, whose H_I alone is not), else None."""
    if diagonal:
        return face
    out = []
    for V in (face.plus, face.minus):
        v = np.real(np.einsum("...aa->...a", V))
        if not np.allclose(V, v[..., :, None] * np.eye(V.shape[-1]), rtol=0, atol=1e-14):
            return None
        out.append(0.5 * (v[..., :, None] + v[..., None, :]))
    return FaceVelocity(out[0], out[1], face.max_speed)


def _real_weights(face: FaceVelocity, axis: int) -> tuple[np.ndarray, np.ndarray]:
    """The element weights (faces, other, d, d) repeated for the real and imaginary parts of
    the complex128 view, shape (faces, other, 2d²), laid out as the compiled kernel reads them."""
    shape = face.plus.shape[:2]
    weights = [np.repeat(w, 2, axis=-1).reshape(*shape, -1) for w in (face.plus, face.minus)]
    if axis == 0:  # q faces: the face axis goes second, as the kernel reads rows
        weights = [w.transpose(1, 0, 2) for w in weights]
    return tuple(np.ascontiguousarray(w) for w in weights)


def _advect(rho: np.ndarray, ops: GridOperators, grid: PhaseSpaceGrid, dt: float, weights):
    """One SSP-RK2 (Heun) step of the advection; returns (ϱ, mass that left (d, d)).

    ``weights``: the diagonal models' real weights of both axes, or None (full models)."""
    # imported here: the compiled loop needs Numba, which ``import cq_core`` should not load
    from .phase_space_advection import advection_diagonal, advection_full

    d = rho.shape[-1]

    def rate(x):
        if weights is None:
            div_q, out_q = advection_full(x, ops.q_faces.plus, ops.q_faces.minus, 0, grid.dq)
            div_p, out_p = advection_full(x, ops.p_faces.plus, ops.p_faces.minus, 1, grid.dp)
        else:
            flat = x.view(np.float64).reshape(*x.shape[:2], -1)
            div_q, out_q = advection_diagonal(flat, *weights[0], 0, grid.dq)
            div_p, out_p = advection_diagonal(flat, *weights[1], 1, grid.dp)
            div_q = div_q.view(complex).reshape(x.shape)
            div_p = div_p.view(complex).reshape(x.shape)
            out_q = out_q.view(complex).reshape(-1, d, d)
            out_p = out_p.view(complex).reshape(-1, d, d)
        out = out_q.sum(axis=0) * grid.dp + out_p.sum(axis=0) * grid.dq
        return div_q + div_p, out

    k1, out1 = rate(rho)
    stage = rho + dt * k1
    k2, out2 = rate(stage)
    return 0.5 * (rho + stage + dt * k2), 0.5 * dt * (out1 + out2)


def _diffusion_factors(ops: GridOperators, grid: PhaseSpaceGrid, dt: float) -> np.ndarray:
    """``exp(dt D(q) λ_k)`` (Nq, Np): λ_k the eigenvalues of the zero-flux Laplacian in p."""
    n = grid.shape[1]
    lam = -4.0 / grid.dp**2 * np.sin(np.pi * np.arange(n) / (2 * n)) ** 2
    return np.exp(dt * ops.diffusion[:, None] * lam[None, :])


def _diffuse(rho: np.ndarray, factors: np.ndarray) -> np.ndarray:
    """Apply ``exp(dt D(q) ∂_p²)`` (the factors of :func:`_diffusion_factors`) to every real
    component of ϱ (a real transform of the complex128 view)."""
    flat = rho.view(np.float64).reshape(*rho.shape[:2], -1)
    modes = scipy.fft.dct(flat, type=2, norm="ortho", axis=1)
    modes *= factors[:, :, None]
    out = scipy.fft.idct(modes, type=2, norm="ortho", axis=1, overwrite_x=True)
    return out.view(complex).reshape(rho.shape)


def _apply_local(rho: np.ndarray, prop: np.ndarray, diagonal: bool) -> np.ndarray:
    if diagonal:
        return rho * prop
    shape = rho.shape
    flat = rho.reshape(*shape[:2], -1, 1)
    return np.matmul(prop, flat).reshape(shape)


def _initial_density(model: Model, grid: PhaseSpaceGrid) -> np.ndarray:
    """ψ0ψ0† δ(z − z0) spread over the four nearest cells (cloud in cell: mean kept)."""
    nq, np_ = grid.shape
    weights = np.zeros((nq, np_))
    axes = []
    for value, centres, h in ((model.z0[0], grid.q, grid.dq), (model.z0[1], grid.p, grid.dp)):
        x = np.clip((value - centres[0]) / h, 0.0, len(centres) - 1.0)
        i = min(int(np.floor(x)), len(centres) - 2)
        axes.append(((i, 1.0 - (x - i)), (i + 1, x - i)))
    for i, wi in axes[0]:
        for j, wj in axes[1]:
            weights[i, j] += wi * wj
    psi = model.psi0
    return weights[:, :, None, None] / (grid.dq * grid.dp) * np.outer(psi, psi.conj())


def check_master_equation_model(model: Model, sigma: float) -> None:
    """Refuse (``ValueError``) a model :func:`solve_master_equation` cannot take at ``sigma``:
    more than one classical degree of freedom, more than :data:`MAX_LEVELS` levels, noise
    on q or noise that varies with p, or noise that does not cover the back-reaction."""
    if model.n_classical != 2:
        raise ValueError(
            f"model {model.name!r}: solve_master_equation needs one classical degree of "
            f"freedom (coord_labels (q, p)), got {model.coord_labels}"
        )
    if model.dim > MAX_LEVELS:
        raise ValueError(
            f"model {model.name!r}: solve_master_equation supports d ≤ {MAX_LEVELS} levels, "
            f"got d = {model.dim}"
        )
    check_noise_covers_backreaction(model, sigma)
    # noise on p only, independent of p: checked at z0 here, on the whole grid later
    z = np.stack([model.z0, model.z0 + np.array([0.0, 1.0])])
    kernel = model.noise_kernel(z)
    if np.any(kernel[:, 0, :] != 0.0) or not np.allclose(kernel[0], kernel[1]):
        raise ValueError(
            f"model {model.name!r}: solve_master_equation supports noise on p only, "
            "depending on q at most (noise_shape rows: q must be zero, p must not vary with p)"
        )


def _check(model: Model, sigma, t_final, n_times, excess, cfl, grid, shape) -> None:
    if model.n_classical != 2 or model.dim > MAX_LEVELS:
        check_master_equation_model(model, sigma)
    for key, value in (("sigma", sigma), ("t_final", t_final)):
        if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
            raise ValueError(f"{key} must be a finite number > 0, got {value!r}")
    if not (isinstance(excess, (int, float)) and math.isfinite(excess) and excess >= 0):
        raise ValueError(f"excess must be a finite number ≥ 0, got {excess!r}")
    if not (isinstance(n_times, int) and n_times >= 2):
        raise ValueError(f"n_times must be an integer ≥ 2, got {n_times!r}")
    if not (isinstance(cfl, (int, float)) and 0 < cfl <= 0.5):
        raise ValueError(f"cfl must be in (0, 0.5], got {cfl!r}")
    if not (
        isinstance(shape, tuple)
        and len(shape) == 2
        and all(isinstance(n, int) and n >= 8 for n in shape)
    ):
        raise ValueError(f"shape must be a tuple (Nq, Np) of integers ≥ 8, got {shape!r}")
    if grid is not None and not isinstance(grid, PhaseSpaceGrid):
        raise ValueError(f"grid must be a PhaseSpaceGrid or None, got {type(grid).__name__}")
    check_master_equation_model(model, sigma)


def solve_master_equation(
    model: Model,
    *,
    sigma: float,
    t_final: float,
    n_times: int = 11,
    excess: float = 0.0,
    grid: PhaseSpaceGrid | None = None,
    shape: tuple[int, int] = (128, 128),
    cfl: float = 0.4,
    _backreaction_sign: float = 1.0,
    _decoherence_factor: float = 1.0,
) -> xr.Dataset:
    """Solve the CQ master equation for ``ϱ(q, p, t) = E[δ(z − Z_t) ρ_t]`` (docs/physics.md,
    "The master equation on phase space") from ``ϱ(z, 0) = δ(z − z0) ψ0ψ0†``.

    Parameters
    ----------
    model
        One classical degree of freedom (q, p), d ≤ 4 levels, noise on p only, depending on q
        at most (``linear``, ``sqrt_potential`` and user models of that shape).
    sigma, excess
        Noise strength (as in :func:`cq_core.simulate`) and excess decoherence v ≥ 0.
    t_final, n_times
        ϱ is returned at ``n_times`` equally spaced times from 0 to ``t_final``.
    grid, shape
        The (q, p) grid; by default :func:`phase_space_grid` with ``shape`` = (Nq, Np) cells.
    cfl
        CFL number of the advection step (≤ 0.5 keeps the limited scheme positive).

    Returns
    -------
    xarray.Dataset
        ``rho`` (time, q, p, ket, bra) complex: the cell averages of ϱ (density per unit
        q·p area); ``escaped`` (time, ket, bra): ∫ of what has left the grid or the domain;
        coordinates ``q_edge``, ``p_edge``; attrs with the model, σ, v, the step and scheme.
    """
    _check(model, sigma, t_final, n_times, excess, cfl, grid, shape)
    sigma, t_final, excess = float(sigma), float(t_final), float(excess)
    if grid is None:
        grid = phase_space_grid(model, sigma=sigma, t_final=t_final, shape=shape, excess=excess)
    ops = grid_operators(
        model,
        sigma,
        grid,
        excess=excess,
        backreaction_sign=_backreaction_sign,
        decoherence_factor=_decoherence_factor,
    )
    diag = model.diagonal
    faces = [_diagonal_velocities(f, diag) for f in (ops.q_faces, ops.p_faces)]
    weights = None
    if faces[0] is not None and faces[1] is not None:
        weights = (_real_weights(faces[0], 0), _real_weights(faces[1], 1))
    speed = ops.q_faces.max_speed / grid.dq + ops.p_faces.max_speed / grid.dp
    interval = t_final / (n_times - 1)
    steps = max(1, math.ceil(interval * speed / cfl))
    dt = interval / steps
    local_half = local_propagator(ops, 0.5 * dt, diag)
    diffuse_half = _diffusion_factors(ops, grid, 0.5 * dt)
    diffuse_full = diffuse_half**2
    rho = _initial_density(model, grid)
    escaped = np.zeros((model.dim, model.dim), dtype=complex)
    area = grid.dq * grid.dp
    outside = ~ops.inside
    saved, saved_escaped = [rho.copy()], [escaped.copy()]
    # Strang: D/2 (Q/2 A Q/2) D/2 per step; the D/2 of consecutive steps merge into one D
    for _ in range(n_times - 1):
        rho = _diffuse(rho, diffuse_half)
        for step in range(steps):
            rho = _apply_local(rho, local_half, diag)
            rho, out = _advect(rho, ops, grid, dt, weights)
            escaped += out
            rho = _apply_local(rho, local_half, diag)
            rho = _diffuse(rho, diffuse_half if step == steps - 1 else diffuse_full)
            if outside.any():
                escaped += rho[outside].sum(axis=0) * area
                rho[outside] = 0.0
        saved.append(rho.copy())
        saved_escaped.append(escaped.copy())
    return _to_dataset(model, grid, saved, saved_escaped, sigma, excess, t_final, dt, cfl)


def _to_dataset(model, grid, saved, saved_escaped, sigma, excess, t_final, dt, cfl):
    levels = np.array(model.level_labels, dtype=object)
    times = np.linspace(0.0, t_final, len(saved))
    return xr.Dataset(
        {
            "rho": (
                ("time", "q", "p", "ket", "bra"),
                np.stack(saved),
                {"long_name": "macroscopic state ϱ(q, p, t) = E[δ(z − Z_t) ρ_t], cell averages"},
            ),
            "escaped": (
                ("time", "ket", "bra"),
                np.stack(saved_escaped),
                {"long_name": "∫ϱ that left the grid or the model's domain"},
            ),
        },
        coords={
            "time": ("time", times, {"units": "model units"}),
            "q": ("q", grid.q, {"long_name": "cell centre in q"}),
            "p": ("p", grid.p, {"long_name": "cell centre in p"}),
            "q_edge": ("q_edge", grid.q_edges),
            "p_edge": ("p_edge", grid.p_edges),
            "ket": levels,
            "bra": levels,
            "sigma": ((), sigma, {"long_name": f"noise strength ({model.sigma_name})"}),
        },
        attrs={
            "model": model.name,
            "model_params": params_to_json(model.params),
            "sigma_name": model.sigma_name,
            "basis_pair": list(model.basis_pair),
            "excess": excess,
            "t_final": t_final,
            "dt": dt,
            "cfl": cfl,
            "scheme": "Strang: exact local CP step, exact p-diffusion (DCT), MUSCL-MC "
            "matrix-upwind advection with SSP-RK2",
            "cq_core_version": __version__,
            "equations": "docs/physics.md, The master equation on phase space",
        },
    )
