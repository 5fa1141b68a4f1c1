"""A fused Numba kernel for the default integrator of the built-in diagonal models.

The same equations as the NumPy path (``cq_core.simulate.integrate`` with the element-wise
``exponential`` step of ``cq_core.integrators``, SPEC §1), written as one loop over
trajectories and time steps so that no temporary arrays are allocated. It consumes exactly the
same Brownian increments (``cq_core.noise``), and agrees with the NumPy path to rounding
(``tests/test_compiled.py``).

Covered: pure mode, the ``exponential`` method, models with a constant noise kernel whose
:class:`~cq_core.models.base.Model` carries a ``compiled_form`` (``linear`` with ω = 0,
``mass_superposition``, ``qubit_lattice``). Everything else runs on the NumPy path.
Compiled functions are cached on disk (``cache=True``), so only the first call on a machine
pays the compilation.
"""

from __future__ import annotations

import numpy as np

try:
    import numba
except ImportError:  # pragma: no cover - numba is a dependency, but stay importable
    numba = None

__all__ = ["AVAILABLE", "LINEAR", "MASS_SUPERPOSITION", "QUBIT_LATTICE", "run_chunk"]

AVAILABLE = numba is not None

LINEAR = 0
"""``compiled_form`` code of ``linear``: params (lam, m, phi); table = σz diagonal.

Every model's params hold the mass at index 1 (used by the free-particle flow)."""
MASS_SUPERPOSITION = 1
"""Code of ``mass_superposition``: params (G·M·m, m, d, eps², phi); table = σz diagonal."""
QUBIT_LATTICE = 2
"""Code of ``qubit_lattice``: params (lam, m, gamma); table = spins (n, d)."""


def _njit(function=None, *, inline="never"):
    """``numba.njit`` with an on-disk cache and NumPy float semantics (x/0 = inf, no raise)."""
    if function is None:
        return lambda f: _njit(f, inline=inline)
    if numba is None:  # pragma: no cover
        return function
    return numba.njit(cache=True, nogil=True, inline=inline, error_model="numpy")(function)


@_njit(inline="always")
def _interaction(code, params, table, Z, H, L):
    """Fill H (d,) = diag H_I(Z) and L (c, d) = the coupled back-reaction operators at Z."""
    d = H.shape[0]
    if code == LINEAR:
        lam, phi = params[0], params[2]
        h = 2.0 * lam * Z[0] + phi
        for a in range(d):
            H[a] = h * table[0, a]
            L[0, a] = -2.0 * lam * table[0, a]
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
        for a in range(d):
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
    """Advance every trajectory by ``dW.shape[1]`` exponential steps (SPEC §1).

    For diagonal operators the exponential step ``ψ ← normalise(exp(−iH dt − ΣK² dt + ΣK dY)ψ)``
    acts separately on the moduli and the phases of the amplitudes, so the state is carried as
    populations ``p_a = |ψ_a|²`` and phases ``θ_a = arg ψ_a``::

        p_a ← p_a exp(2 Σ_i (K_ia dY_i − K_ia² dt)) / Σ_b (…),   θ_a ← θ_a − H_a dt

    which needs no trigonometry per step; ``ψ_a = √p_a e^{iθ_a}`` is formed only when stored.

    Shapes: Z (N, n), populations and phases (N, d), dW (N, chunk, m), kernel (n, m) = σ·shape,
    kernel_pinv (m, n) = σ⁺, coupled (c,) component indices, saved_steps (T,) step indices,
    classical_out (N, T, n), psi_out (N, T, d), status (N,) int8, status_step (N,) int64.
    Updated in place; a frozen trajectory (status ≠ 0) keeps its state and fills its
    remaining save slots with it.
    """
    N, n = Z.shape
    d = populations.shape[1]
    chunk, m = dW.shape[1], dW.shape[2]
    c = coupled.shape[0]
    H = np.empty(d)
    L = np.empty((c, d))
    K = np.empty((m, d))
    KK = np.empty(d)
    constant_ops = code != MASS_SUPERPOSITION
    if constant_ops:  # L (and so K) do not depend on Z
        if code == QUBIT_LATTICE:
            _lattice_forces(params, table, L)
        else:
            _interaction(code, params, table, Z[0], H, L)
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
        for k in range(chunk):
            step = first_step + k + 1
            if status[t] == 0:
                _interaction(code, params, table, z, H, L)
                if not constant_ops:
                    _measurement_operators(kernel_pinv, coupled, L, K, KK)
                # classical drift {Z, H_C} + ⟨L⟩ (free particles: q̇ = p/m) and noise σ dW
                half = n // 2
                for r in range(half):
                    z_new[r] = z[r] + z[half + r] / params[1] * dt
                    z_new[half + r] = z[half + r]
                for j in range(c):
                    acc = 0.0
                    for a in range(d):
                        acc += L[j, a] * p[a]
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
                    for a in range(d):
                        acc += K[i, a] * p[a]
                    dY[i] = dW[t, k, i] + 2.0 * dt * acc
                top = -np.inf
                for a in range(d):
                    acc = -dt * KK[a]
                    for i in range(m):
                        acc += K[i, a] * dY[i]
                    log_factor[a] = acc
                    if acc > top:
                        top = acc
                total = 0.0
                for a in range(d):
                    value = p[a] * np.exp(2.0 * (log_factor[a] - top))
                    p_new[a] = value
                    total += value
                finite = finite and np.isfinite(total) and total > 0.0
                if finite:
                    for r in range(n):
                        z[r] = z_new[r]
                    for a in range(d):
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
