"""Finite-volume advection of a matrix-valued density on the (q, p) grid (docs/physics.md,
"The master equation on phase space").

Computes ``−∂_x(½{V, ϱ})`` along one axis with MUSCL reconstruction (monotonised-central
limited slopes of every real component) and the upwind flux ``½{V⁺, ϱ_left} + ½{V⁻, ϱ_right}``.
Every grid edge is an outflow boundary (nothing flows in from outside the grid).

Diagonal models (V diagonal: element (a, b) moves with the velocity ``½(v_a + v_b)``) use a
compiled loop over the real components; full models the same formulas in NumPy matrix form.
"""

from __future__ import annotations

import numba
import numpy as np

__all__ = ["advection_diagonal", "advection_full", "limited_slopes"]


@numba.njit(cache=True)
def _mc(back: float, fwd: float) -> float:
    if back * fwd <= 0.0:
        return 0.0
    slope = min(2.0 * abs(back), 2.0 * abs(fwd), 0.5 * abs(back + fwd))
    return slope if back > 0.0 else -slope


@numba.njit(cache=True)
def _muscl_rows(x, wplus, wminus, h, div, boundary):
    """Along axis 1 of x (B, N, C): div (B, N, C) and the outflow through the two end faces
    (B, C). wplus/wminus (B, N + 1, C) weigh the state left/right of each face."""
    B, N, C = x.shape
    half = np.zeros((N, C))
    for b in range(B):
        for i in range(1, N - 1):
            for c in range(C):
                half[i, c] = 0.5 * _mc(x[b, i, c] - x[b, i - 1, c], x[b, i + 1, c] - x[b, i, c])
        for c in range(C):
            boundary[b, c] = -wminus[b, 0, c] * (x[b, 0, c] - half[0, c])
            div[b, 0, c] = -boundary[b, c]
        for i in range(1, N):
            for c in range(C):
                f = wplus[b, i, c] * (x[b, i - 1, c] + half[i - 1, c])
                f += wminus[b, i, c] * (x[b, i, c] - half[i, c])
                div[b, i - 1, c] = -(f - div[b, i - 1, c]) / h
                div[b, i, c] = f
        for c in range(C):
            f = wplus[b, N, c] * (x[b, N - 1, c] + half[N - 1, c])
            div[b, N - 1, c] = -(f - div[b, N - 1, c]) / h
            boundary[b, c] += f


def advection_diagonal(x: np.ndarray, wplus: np.ndarray, wminus: np.ndarray, axis: int, h: float):
    """x (Nq, Np, C) real components; weights (faces along ``axis``, other, C), contiguous
    with the face axis second (``axis`` = 0: shape (Np, Nq + 1, C)).

    Returns (div (Nq, Np, C), outflow per unit length of the other axis (other, C))."""
    if axis == 0:
        x = np.ascontiguousarray(x.transpose(1, 0, 2))
    div = np.empty_like(x)
    boundary = np.empty((x.shape[0], x.shape[2]))
    _muscl_rows(x, wplus, wminus, h, div, boundary)
    if axis == 0:
        div = div.transpose(1, 0, 2)
    return div, boundary


def limited_slopes(x: np.ndarray, axis: int) -> np.ndarray:
    """Half the monotonised-central limited slope of the real and imaginary parts of x along
    ``axis`` (``minmod(2Δ₋, 2Δ₊, (Δ₋ + Δ₊)/2) / 2``; zero at extrema and in the edge cells)."""

    def limited(a: np.ndarray) -> np.ndarray:
        diff = np.diff(a, axis=axis)
        n = a.shape[axis]
        back = np.take(diff, range(0, n - 2), axis=axis)
        fwd = np.take(diff, range(1, n - 1), axis=axis)
        smallest = np.minimum(np.minimum(2 * abs(back), 2 * abs(fwd)), 0.5 * abs(back + fwd))
        inner = np.where(back * fwd > 0, np.sign(back) * smallest, 0.0)
        pad = [(0, 0)] * a.ndim
        pad[axis] = (1, 1)
        return np.pad(inner, pad)

    return 0.5 * (limited(x.real) + 1j * limited(x.imag))


def advection_full(rho: np.ndarray, vplus: np.ndarray, vminus: np.ndarray, axis: int, h: float):
    """Full d×d velocities: rho (Nq, Np, d, d) complex, V± (faces along ``axis``, other, d, d).

    Returns (div like rho, outflow per unit length of the other axis (other, d, d))."""
    s = limited_slopes(rho, axis)
    zero = np.zeros_like(np.take(rho, [0], axis=axis))
    left = np.concatenate([zero, rho + s], axis=axis)  # state left of faces 0..N
    right = np.concatenate([rho - s, zero], axis=axis)  # state right of faces 0..N
    flux = 0.5 * (vplus @ left + left @ vplus + vminus @ right + right @ vminus)
    n = rho.shape[axis]
    first, last = np.take(flux, 0, axis=axis), np.take(flux, n, axis=axis)
    return -np.diff(flux, axis=axis) / h, last - first
