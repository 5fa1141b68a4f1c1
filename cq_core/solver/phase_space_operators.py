"""The pieces of the CQ master equation on a (q, p) grid, evaluated once per solve
(docs/physics.md, "The master equation on phase space").

``∂ϱ/∂t = −∂_q(½{V_q, ϱ}) − ∂_p(½{V_p, ϱ}) + ∂_p²(D(q) ϱ) + 𝓛_z ϱ`` with the matrix
velocities ``V_j = {Z_j, H_C}·1 + L_j``, the diffusion ``D = ½ Σ_i σ_pi²`` and the local
Lindbladian ``𝓛_z ϱ = −i[H_I, ϱ] + (1+v) Σ_i (K_i ϱ K_i − ½{K_i², ϱ})``. This module turns
a :class:`~cq_core.Model` into those arrays: face velocities split into their positive and
negative parts (for upwinding), the diffusion per q column, and the propagator of the local
part over a time step.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..models import Model
from .operators import measurement_operators
from .phase_space_grid import PhaseSpaceGrid, _points

__all__ = ["FaceVelocity", "GridOperators", "grid_operators"]


@dataclass(frozen=True)
class FaceVelocity:
    """``½{V, ·}`` split for upwinding at every face: ``plus`` takes the state left of the
    face, ``minus`` the state right of it. Diagonal models: (..., d, d) real weights
    ``½(v_a + v_b)`` of element (a, b). Full models: (..., d, d) Hermitian V± themselves."""

    plus: np.ndarray
    minus: np.ndarray
    max_speed: float


def _face_velocity(model: Model, Z: np.ndarray, j: int, shape: tuple[int, int], sign: float):
    """V_j = {Z_j, H_C} + L_j at the face points Z, reshaped to ``shape`` + (d, d)."""
    d = model.dim
    flow = np.asarray(model.hamiltonian_flow(Z), dtype=float)[:, j]
    coupled = list(model.coupled)
    if model.diagonal:
        v = np.repeat(flow[:, None], d, axis=1)
        if j in coupled:
            L = np.broadcast_to(
                np.asarray(model.backreaction_operators(Z)), (len(Z), len(coupled), d)
            )
            v = v + sign * L[:, coupled.index(j)]
        v = v.reshape(*shape, d)
        vp, vm = np.maximum(v, 0.0), np.minimum(v, 0.0)
        plus = 0.5 * (vp[..., :, None] + vp[..., None, :])
        minus = 0.5 * (vm[..., :, None] + vm[..., None, :])
        return FaceVelocity(plus, minus, float(np.max(np.abs(v))))
    V = flow[:, None, None] * np.eye(d)
    if j in coupled:
        L = np.broadcast_to(
            np.asarray(model.backreaction_operators(Z)), (len(Z), len(coupled), d, d)
        )
        V = V + sign * L[:, coupled.index(j)]
    w, U = np.linalg.eigh(V)
    Uh = np.conj(np.swapaxes(U, -1, -2))
    plus = (U * np.maximum(w, 0.0)[:, None, :]) @ Uh
    minus = (U * np.minimum(w, 0.0)[:, None, :]) @ Uh
    return FaceVelocity(
        plus.reshape(*shape, d, d), minus.reshape(*shape, d, d), float(np.max(np.abs(w)))
    )


@dataclass(frozen=True)
class GridOperators:
    """Everything the time loop needs, for one model, σ, v and grid.

    ``q_faces`` velocities at the (Nq+1, Np) q-faces, ``p_faces`` at the (Nq, Np+1) p-faces;
    ``diffusion`` D(q) per q column (Nq,); ``inside`` (Nq, Np) cells in the domain;
    ``hamiltonian`` H_I and ``measurement`` K at the cell centres (zero outside the domain).
    """

    q_faces: FaceVelocity
    p_faces: FaceVelocity
    diffusion: np.ndarray
    inside: np.ndarray
    hamiltonian: np.ndarray
    measurement: np.ndarray
    decoherence: float


def _check_noise_on_p_only(kernel: np.ndarray, shape: tuple[int, int], name: str) -> np.ndarray:
    """D(q) = ½ Σ_i σ_pi²; refuse noise on q or noise that varies with p."""
    if np.any(kernel[:, 0, :] != 0.0):
        raise ValueError(
            f"model {name!r}: solve_master_equation supports noise on p only; the noise "
            "kernel has a q row"
        )
    D = 0.5 * np.sum(kernel[:, 1, :] ** 2, axis=-1).reshape(shape)
    if not np.allclose(D, D[:, :1], rtol=1e-12, atol=0.0):
        raise ValueError(
            f"model {name!r}: solve_master_equation supports noise that depends on q only; "
            "this noise kernel varies with p"
        )
    return D[:, 0]


def grid_operators(
    model: Model,
    sigma: float,
    grid: PhaseSpaceGrid,
    *,
    excess: float = 0.0,
    backreaction_sign: float = 1.0,
    decoherence_factor: float = 1.0,
) -> GridOperators:
    """Evaluate the model's vectorised callables on ``grid`` (cell centres and faces).

    ``backreaction_sign`` and ``decoherence_factor`` exist only so that tests can build a
    deliberately wrong equation and watch the comparison with trajectories fail.
    """
    nq, np_ = grid.shape
    centres = _points(grid.q, grid.p)
    inside = np.asarray(model.domain(centres), dtype=bool).reshape(nq, np_)
    Zin = centres[inside.ravel()]
    kernel = np.zeros((len(centres), 2, model.n_noises))
    kernel[inside.ravel()] = sigma * model.noise_kernel(Zin)
    diffusion = _check_noise_on_p_only(kernel, (nq, np_), model.name)
    d = model.dim
    tail = (d,) if model.diagonal else (d, d)
    H = np.zeros((len(centres), *tail), dtype=float if model.diagonal else complex)
    K = np.zeros((len(centres), model.n_noises, *tail), dtype=H.dtype)
    H[inside.ravel()] = np.asarray(model.interaction_hamiltonian(Zin))
    if len(Zin):  # the same K = ½σ⁺L as the trajectory solver (leading 1 when constant)
        K[inside.ravel()] = measurement_operators(model, sigma, Zin)
    # face points outside the domain (a domain edge that is a grid edge): the nearest centre
    q_face_pts = _points(grid.q_edges, grid.p)
    bad = ~np.asarray(model.domain(q_face_pts), dtype=bool)
    q_face_pts[bad, 0] = np.clip(q_face_pts[bad, 0], grid.q[0], grid.q[-1])
    q_faces = _face_velocity(model, q_face_pts, 0, (nq + 1, np_), backreaction_sign)
    p_face_pts = _points(grid.q, grid.p_edges)
    bad = ~np.asarray(model.domain(p_face_pts), dtype=bool)
    p_face_pts[bad, 0] = float(model.z0[0])  # columns outside the domain are masked anyway
    p_faces = _face_velocity(model, p_face_pts, 1, (nq, np_ + 1), backreaction_sign)
    return GridOperators(
        q_faces=q_faces,
        p_faces=p_faces,
        diffusion=diffusion,
        inside=inside,
        hamiltonian=H.reshape(nq, np_, *tail),
        measurement=K.reshape(nq, np_, model.n_noises, *tail),
        decoherence=(1.0 + excess) * decoherence_factor,
    )


def local_propagator(ops: GridOperators, dt: float, diagonal: bool) -> np.ndarray:
    """``exp(𝓛_z dt)`` of the local part at every cell (a CP map, exact for frozen z).

    Diagonal models: element-wise factors (Nq, Np, d, d),
    ``exp(dt·(−i(h_a − h_b) − ½(1+v) Σ_i (k_ia − k_ib)²))``. Full models: the superoperator
    (Nq, Np, d², d²) acting on the row-major vec(ϱ).
    """
    H, K, g = ops.hamiltonian, ops.measurement, ops.decoherence
    if diagonal:
        dh = H[..., :, None] - H[..., None, :]
        dk2 = np.sum((K[..., :, None] - K[..., None, :]) ** 2, axis=-3)
        return np.exp(dt * (-1j * dh - 0.5 * g * dk2))
    d = H.shape[-1]
    eye = np.eye(d)
    # vec(A X B) = (A ⊗ Bᵀ) vec(X) for row-major vec
    gen = -1j * (np.einsum("...ab,cd->...acbd", H, eye) - np.einsum("ab,...dc->...acbd", eye, H))
    for i in range(K.shape[-3]):
        k = K[..., i, :, :]
        k2 = k @ k
        gen = gen + g * (
            np.einsum("...ab,...dc->...acbd", k, k)
            - 0.5 * np.einsum("...ab,cd->...acbd", k2, eye)
            - 0.5 * np.einsum("ab,...dc->...acbd", eye, k2)
        )
    gen = gen.reshape(*H.shape[:-2], d * d, d * d)
    return _batched_expm(dt * gen)


def _batched_expm(A: np.ndarray, order: int = 12) -> np.ndarray:
    """exp(A) for a stack of small matrices: scaling and squaring with a Taylor polynomial
    (‖A/2ˢ‖₁ ≤ 1/4, so the truncation error is below 1e-16 of the result)."""
    norm = float(np.max(np.sum(np.abs(A), axis=-2))) if A.size else 0.0
    s = max(0, int(np.ceil(np.log2(norm / 0.25)))) if norm > 0 else 0
    A = A / 2.0**s
    eye = np.broadcast_to(np.eye(A.shape[-1], dtype=A.dtype), A.shape)
    result = eye.copy()
    for k in range(order, 0, -1):  # Horner: I + A/1 (I + A/2 (I + ...))
        result = eye + (A @ result) / k
    for _ in range(s):
        result = result @ result
    return result
