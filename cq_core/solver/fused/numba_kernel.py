"""The fused kernel of :mod:`cq_core.solver.fused`, compiled by Numba.

The same equations as the NumPy path (``cq_core.solver.integrate.integrate`` with the
element-wise ``exponential`` step of ``cq_core.solver.schemes``, docs/physics.md), written as
one loop over trajectories and time steps so that no temporary arrays are allocated. It
consumes exactly the same Brownian increments (``cq_core.solver.noise``) and agrees with the
NumPy path to rounding; the C version (``fused_kernel.c`` here) does the same operations in
the same order and gives the same bits (``tests/solver/test_compiled.py``).

Imported only when a run asks for ``backend="numba"``: importing Numba and loading a kernel
costs a process ~130 MB of LLVM. Compiled functions are cached on disk (``cache=True``), so
only the first call on a machine pays the compilation.
"""

from __future__ import annotations

import numba
import numpy as np

from .codes import LINEAR, MASS_SUPERPOSITION, QUBIT_LATTICE

__all__ = ["prepare", "run_chunk"]


def _njit(function=None, *, inline="never"):
    """``numba.njit`` with an on-disk cache and NumPy float semantics (x/0 = inf, no raise)."""
    if function is None:
        return lambda f: _njit(f, inline=inline)
    return numba.njit(cache=True, nogil=True, inline=inline, error_model="numpy")(function)


@_njit(inline="always")
def _interaction(code, params, table, Z, H, L, active, n_active):
    """Fill H (d,) = diag H_I(Z) on the levels ``active[:n_active]`` (mass_superposition: all)
    and L (c, d) = the coupled back-reaction operators at Z."""
    d = H.shape[0]
    if code == LINEAR:
        lam, phi = params[0], params[2]
        h = 2.0 * lam * Z[0] + phi
        for a in range(d):
            L[0, a] = -2.0 * lam * table[0, a]
        for u in range(n_active):
            a = active[u]
            H[a] = h * table[0, a]
    elif code == MASS_SUPERPOSITION:
        gmm, d_src, eps2, phi = params[0], params[2], params[3], params[4]
        for a in range(2):
            x_src = -d_src if a == 0 else d_src
            sx, sy, sz = Z[0] - x_src, Z[1], Z[2]
            inv_r = 1.0 / np.sqrt(sx * sx + sy * sy + sz * sz + eps2)
            H[a] = -gmm * inv_r + phi * table[0, a]
            f = -gmm * inv_r * inv_r * inv_r  # F = −GMm (r − r_X) / |r − r_X|³
            L[0, a] = f * sx
            L[1, a] = f * sy
            L[2, a] = f * sz
    else:  # QUBIT_LATTICE
        lam, gamma = params[0], params[2]
        n = table.shape[0]
        for u in range(n_active):
            a = active[u]
            h = 0.0
            for i in range(n):
                h += (Z[i] + gamma) * table[i, a]
            H[a] = lam * h


@_njit
def _lattice_forces(params, table, L):
    """L_{π_i} = −λ σz^(i): constant, filled once."""
    lam = params[0]
    for i in range(table.shape[0]):
        for a in range(table.shape[1]):
            L[i, a] = -lam * table[i, a]


@_njit(inline="always")
def _measurement_operators(kernel_pinv, coupled, L, K, KK):
    """K_i = ½ Σ_j σ⁺_ij L_j (m, d) and KK_a = Σ_i K_ia² (d,)."""
    m, d = K.shape
    for a in range(d):
        KK[a] = 0.0
    for i in range(m):
        for a in range(d):
            acc = 0.0
            for j in range(coupled.shape[0]):
                acc += kernel_pinv[i, coupled[j]] * L[j, a]
            K[i, a] = 0.5 * acc
            KK[a] += K[i, a] * K[i, a]


@_njit
def _run_chunk_mass(
    params, kernel, kernel_pinv, Z, populations, phases, dW, dt, first_step, saved_steps,
    classical_out, psi_out, status, status_step,
):  # fmt: skip
    """``run_chunk`` written out for ``mass_superposition`` (d = 2, three noises).

    Straight-line code with scalar locals: the same arithmetic as the generic loop, without
    loops of length 2 and 3 whose branches cost more than the physics.
    """
    gmm, mass, d_src, eps2, phi = params[0], params[1], params[2], params[3], params[4]
    s_x, s_y, s_z = kernel[3, 0], kernel[4, 1], kernel[5, 2]
    k_x, k_y, k_z = 0.5 * kernel_pinv[0, 3], 0.5 * kernel_pinv[1, 4], 0.5 * kernel_pinv[2, 5]
    first_slot = np.searchsorted(saved_steps, first_step + 1)
    for t in range(Z.shape[0]):
        slot = first_slot
        x, y, z, px, py, pz = Z[t, 0], Z[t, 1], Z[t, 2], Z[t, 3], Z[t, 4], Z[t, 5]
        p_l, p_r = populations[t, 0], populations[t, 1]
        theta_l, theta_r = phases[t, 0], phases[t, 1]
        for k in range(dW.shape[1]):
            step = first_step + k + 1
            if status[t] == 0:
                dw_x, dw_y, dw_z = dW[t, k, 0], dW[t, k, 1], dW[t, k, 2]
                # forces F_X = −GMm (r − r_X)/|r − r_X|³ and potentials of the two branches
                sx_l, sx_r = x + d_src, x - d_src
                yz2 = y * y + z * z + eps2
                inv_l = 1.0 / np.sqrt(sx_l * sx_l + yz2)
                inv_r = 1.0 / np.sqrt(sx_r * sx_r + yz2)
                h_l = -gmm * inv_l + phi
                h_r = -gmm * inv_r - phi
                f_l = -gmm * inv_l * inv_l * inv_l
                f_r = -gmm * inv_r * inv_r * inv_r
                fx_l, fy_l, fz_l = f_l * sx_l, f_l * y, f_l * z
                fx_r, fy_r, fz_r = f_r * sx_r, f_r * y, f_r * z
                mean_fx = fx_l * p_l + fx_r * p_r
                mean_fy = fy_l * p_l + fy_r * p_r
                mean_fz = fz_l * p_l + fz_r * p_r
                # classical Euler–Maruyama step: q̇ = p/m, ṗ = ⟨F⟩ + σ dW
                x_new = x + px / mass * dt
                y_new = y + py / mass * dt
                z_new = z + pz / mass * dt
                px_new = px + mean_fx * dt + s_x * dw_x
                py_new = py + mean_fy * dt + s_y * dw_y
                pz_new = pz + mean_fz * dt + s_z * dw_z
                # K_i = ½ σ⁺ F_i; record dY_i = dW_i + 2⟨K_i⟩ dt; populations
                dy_x = dw_x + 2.0 * dt * k_x * mean_fx
                dy_y = dw_y + 2.0 * dt * k_y * mean_fy
                dy_z = dw_z + 2.0 * dt * k_z * mean_fz
                kx_l, ky_l, kz_l = k_x * fx_l, k_y * fy_l, k_z * fz_l
                kx_r, ky_r, kz_r = k_x * fx_r, k_y * fy_r, k_z * fz_r
                a_l = kx_l * dy_x + ky_l * dy_y + kz_l * dy_z
                a_l -= dt * (kx_l * kx_l + ky_l * ky_l + kz_l * kz_l)
                a_r = kx_r * dy_x + ky_r * dy_y + kz_r * dy_z
                a_r -= dt * (kx_r * kx_r + ky_r * ky_r + kz_r * kz_r)
                # the smaller branch decays by exp(−2|a_l − a_r|) relative to the larger.
                # Written as selects, not an if: the sign of a_l − a_r is a coin flip for a
                # balanced superposition, and the mispredicted branch cost more than the exp.
                # Same bits as the branch; a NaN makes w_r NaN, so it is still flagged.
                decay = np.exp(-2.0 * abs(a_l - a_r))
                left_smaller = a_l < a_r
                w_l = p_l * decay if left_smaller else p_l
                w_r = p_r if left_smaller else p_r * decay
                total = w_l + w_r
                finite = (
                    np.isfinite(x_new)
                    and np.isfinite(y_new)
                    and np.isfinite(z_new)
                    and np.isfinite(px_new)
                    and np.isfinite(py_new)
                    and np.isfinite(pz_new)
                    and np.isfinite(total)
                    and total > 0.0
                )
                if finite:
                    x, y, z, px, py, pz = x_new, y_new, z_new, px_new, py_new, pz_new
                    p_l, p_r = w_l / total, w_r / total
                    theta_l -= dt * h_l
                    theta_r -= dt * h_r
                else:
                    status[t] = 2
                    status_step[t] = step
            if slot < saved_steps.shape[0] and saved_steps[slot] == step:
                classical_out[t, slot, 0] = x
                classical_out[t, slot, 1] = y
                classical_out[t, slot, 2] = z
                classical_out[t, slot, 3] = px
                classical_out[t, slot, 4] = py
                classical_out[t, slot, 5] = pz
                a_l, a_r = np.sqrt(p_l), np.sqrt(p_r)
                psi_out[t, slot, 0] = complex(a_l * np.cos(theta_l), a_l * np.sin(theta_l))
                psi_out[t, slot, 1] = complex(a_r * np.cos(theta_r), a_r * np.sin(theta_r))
                slot += 1
        Z[t, 0], Z[t, 1], Z[t, 2], Z[t, 3], Z[t, 4], Z[t, 5] = x, y, z, px, py, pz
        populations[t, 0], populations[t, 1] = p_l, p_r
        phases[t, 0], phases[t, 1] = theta_l, theta_r


@_njit
def run_chunk(
    code,
    params,
    table,
    kernel,
    kernel_pinv,
    coupled,
    Z,
    populations,
    phases,
    dW,
    dt,
    first_step,
    saved_steps,
    classical_out,
    psi_out,
    status,
    status_step,
):
    """Advance every trajectory by ``dW.shape[1]`` exponential steps (docs/physics.md).

    For diagonal operators the exponential step ``ψ ← normalise(exp(−iH dt − ΣK² dt + ΣK dY)ψ)``
    acts separately on the moduli and the phases of the amplitudes, so the state is carried as
    populations ``p_a = |ψ_a|²`` and phases ``θ_a = arg ψ_a``::

        p_a ← p_a exp(2 Σ_i (K_ia dY_i − K_ia² dt)) / Σ_b (…),   θ_a ← θ_a − H_a dt

    which needs no trigonometry per step; ``ψ_a = √p_a e^{iθ_a}`` is formed only when stored.
    A level with ``p_a = 0`` keeps ``p_a = 0`` (the update multiplies), so each trajectory's
    loops run over its levels with ``p_a ≠ 0`` only (for the lattice's GHZ state, 2 of 2ⁿ).

    Shapes: Z (N, n), populations and phases (N, d), dW (N, chunk, m), kernel (n, m) = σ·shape,
    kernel_pinv (m, n) = σ⁺, coupled (c,) component indices, saved_steps (T,) step indices,
    classical_out (N, T, n), psi_out (N, T, d), status (N,) int8, status_step (N,) int64.
    Updated in place; a frozen trajectory (status ≠ 0) keeps its state and fills its
    remaining save slots with it.
    """
    if code == MASS_SUPERPOSITION:
        _run_chunk_mass(
            params, kernel, kernel_pinv, Z, populations, phases, dW, dt, first_step,
            saved_steps, classical_out, psi_out, status, status_step,
        )  # fmt: skip
        return
    N, n = Z.shape
    d = populations.shape[1]
    chunk, m = dW.shape[1], dW.shape[2]
    c = coupled.shape[0]
    H = np.empty(d)
    L = np.empty((c, d))
    K = np.empty((m, d))
    KK = np.empty(d)
    constant_ops = code != MASS_SUPERPOSITION
    active = np.arange(d)  # levels with p_a ≠ 0 (a zero population stays zero)
    if constant_ops:  # L (and so K) do not depend on Z
        if code == QUBIT_LATTICE:
            _lattice_forces(params, table, L)
        else:
            _interaction(code, params, table, Z[0], H, L, active, d)
        _measurement_operators(kernel_pinv, coupled, L, K, KK)
    dY = np.empty(m)
    z_new = np.empty(n)
    p_new = np.empty(d)
    log_factor = np.empty(d)
    first_slot = np.searchsorted(saved_steps, first_step + 1)
    for t in range(N):
        slot = first_slot
        z = Z[t]
        p = populations[t]
        theta = phases[t]
        n_active = 0
        for a in range(d):
            if p[a] != 0.0:
                active[n_active] = a
                n_active += 1
        for k in range(chunk):
            step = first_step + k + 1
            if status[t] == 0:
                _interaction(code, params, table, z, H, L, active, n_active)
                if not constant_ops:
                    _measurement_operators(kernel_pinv, coupled, L, K, KK)
                # classical drift {Z, H_C} + ⟨L⟩ (free particles: q̇ = p/m) and noise σ dW
                half = n // 2
                for r in range(half):
                    z_new[r] = z[r] + z[half + r] / params[1] * dt
                    z_new[half + r] = z[half + r]
                for j in range(c):
                    acc = 0.0
                    for u in range(n_active):
                        acc += L[j, active[u]] * p[active[u]]
                    z_new[coupled[j]] += acc * dt
                finite = True
                for r in range(n):
                    acc = z_new[r]
                    for i in range(m):
                        acc += kernel[r, i] * dW[t, k, i]
                    z_new[r] = acc
                    finite = finite and np.isfinite(acc)
                # the record dY_i = dW_i + 2⟨K_i⟩dt and the population update
                for i in range(m):
                    acc = 0.0
                    for u in range(n_active):
                        acc += K[i, active[u]] * p[active[u]]
                    dY[i] = dW[t, k, i] + 2.0 * dt * acc
                top = -np.inf
                for u in range(n_active):
                    a = active[u]
                    acc = -dt * KK[a]
                    for i in range(m):
                        acc += K[i, a] * dY[i]
                    log_factor[a] = acc
                    top = acc if acc > top else top  # a select: no mispredicted branch
                total = 0.0
                for u in range(n_active):
                    a = active[u]
                    value = p[a] * np.exp(2.0 * (log_factor[a] - top))
                    p_new[a] = value
                    total += value
                finite = finite and np.isfinite(total) and total > 0.0
                if finite:
                    for r in range(n):
                        z[r] = z_new[r]
                    for u in range(n_active):
                        a = active[u]
                        p[a] = p_new[a] / total
                        theta[a] -= dt * H[a]
                else:
                    status[t] = 2  # non_finite: frozen at its last good state
                    status_step[t] = step
            if slot < saved_steps.shape[0] and saved_steps[slot] == step:
                for r in range(n):
                    classical_out[t, slot, r] = z[r]
                for a in range(d):
                    amplitude = np.sqrt(p[a])
                    psi_out[t, slot, a] = complex(
                        amplitude * np.cos(theta[a]), amplitude * np.sin(theta[a])
                    )
                slot += 1


def prepare(
    code, params, table, kernel, kernel_pinv, coupled, Z, populations, phases, dt,
    saved_steps, classical_out, psi_out, status, status_step,
):  # fmt: skip
    """A run's arrays bound once; returns ``advance(start, stop, dW, first_step)``.

    ``advance`` calls :func:`run_chunk` on rows ``start … stop − 1`` (views, updated in
    place) with their increments ``dW`` of shape (stop − start, chunk, m). Shapes as in
    :func:`run_chunk`; the C kernel's :func:`.c_kernel.prepare` has the same signature.
    """

    def advance(start, stop, dW, first_step):
        rows = slice(start, stop)
        run_chunk(
            code, params, table, kernel, kernel_pinv, coupled, Z[rows], populations[rows],
            phases[rows], dW, dt, first_step, saved_steps, classical_out[rows], psi_out[rows],
            status[rows], status_step[rows],
        )  # fmt: skip

    return advance
