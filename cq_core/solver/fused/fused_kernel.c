/*
 * The fused kernel of cq_core, in C: the default integrator of the built-in diagonal models.
 *
 * The same equations, operation for operation, as the Numba kernel in
 * numba_kernel.py beside it (docs/physics.md, the element-wise `exponential` step; see `run_chunk`
 * there for the derivation), so that both give the same bits. Built at install time as the
 * shared library `_fused_kernel*.so` beside it (setup.py) and called through ctypes by
 * c_kernel.py, which checks every shape before calling: nothing here re-checks them.
 * Why C beside Numba: loading a Numba kernel costs a process ~130 MB of LLVM, more than the
 * rest of a cell (issue 8's per-cell memory target); this library costs ~0.1 MB.
 *
 * Floating point: compiled without FMA contraction and without fast-math (setup.py), so
 * every sum and product rounds as written; exp, sqrt, cos and sin are the C library's.
 *
 * Array layouts (C order, float64 unless said): Z (N, n); populations, phases (N, d);
 * dW (N, chunk, m); kernel (n, m) = σ·shape; kernel_pinv (m, n) = σ⁺; table (rows, d);
 * coupled (c,) int64; saved_steps (T,) int64; classical_out (N, T, n); psi_out (N, T, d)
 * complex128 as (re, im) pairs; status (N,) int8; status_step (N,) int64.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

enum { LINEAR = 0, MASS_SUPERPOSITION = 1, QUBIT_LATTICE = 2 };
enum { STATUS_NON_FINITE = 2 };

/* First index i with saved_steps[i] >= value (numpy.searchsorted, side "left"). */
static int64_t first_slot_at(const int64_t *saved_steps, int64_t n_saved, int64_t value)
{
    int64_t low = 0, high = n_saved;
    while (low < high) {
        int64_t middle = low + (high - low) / 2;
        if (saved_steps[middle] < value)
            low = middle + 1;
        else
            high = middle;
    }
    return low;
}

/* `yes` if `choose`, else `no`, by bit masks: gcc turns `choose ? yes : no` into a branch,
   which is mispredicted half the time when `choose` is a coin flip. */
static inline double select(int choose, double yes, double no)
{
    uint64_t yes_bits, no_bits, mask = (uint64_t)0 - (uint64_t)(choose != 0);
    memcpy(&yes_bits, &yes, sizeof yes_bits);
    memcpy(&no_bits, &no, sizeof no_bits);
    const uint64_t bits = (yes_bits & mask) | (no_bits & ~mask);
    double chosen;
    memcpy(&chosen, &bits, sizeof chosen);
    return chosen;
}

/* ψ_a = √p_a e^{iθ_a}, written as (re, im) pairs into psi_out[t, slot, :]. */
static void store_amplitudes(double *psi, const double *p, const double *theta, int64_t d)
{
    for (int64_t a = 0; a < d; a++) {
        double amplitude = sqrt(p[a]);
        psi[2 * a] = amplitude * cos(theta[a]);
        psi[2 * a + 1] = amplitude * sin(theta[a]);
    }
}

/*
 * mass_superposition (d = 2, n = 6, three noises) written out with scalar locals.
 * params = (G·M·m, m, d, eps², phi). Returns 0.
 */
int cq_run_chunk_mass(const double *restrict params, const double *restrict kernel,
                      const double *restrict kernel_pinv, double *restrict Z,
                      double *restrict populations, double *restrict phases,
                      const double *restrict dW, int64_t N, int64_t chunk, double dt,
                      int64_t first_step, const int64_t *restrict saved_steps, int64_t n_saved,
                      double *restrict classical_out, double *restrict psi_out,
                      int8_t *restrict status, int64_t *restrict status_step)
{
    const int64_t n = 6, m = 3;
    const double gmm = params[0], mass = params[1], d_src = params[2], eps2 = params[3];
    const double phi = params[4];
    const double s_x = kernel[3 * m + 0], s_y = kernel[4 * m + 1], s_z = kernel[5 * m + 2];
    const double k_x = 0.5 * kernel_pinv[0 * n + 3], k_y = 0.5 * kernel_pinv[1 * n + 4];
    const double k_z = 0.5 * kernel_pinv[2 * n + 5];
    const int64_t first_slot = first_slot_at(saved_steps, n_saved, first_step + 1);
    for (int64_t t = 0; t < N; t++) {
        int64_t slot = first_slot;
        double *zt = Z + t * n;
        double x = zt[0], y = zt[1], z = zt[2], px = zt[3], py = zt[4], pz = zt[5];
        double p_l = populations[2 * t], p_r = populations[2 * t + 1];
        double theta_l = phases[2 * t], theta_r = phases[2 * t + 1];
        const double *noise = dW + t * chunk * m;
        int running = status[t] == 0;
        for (int64_t k = 0; k < chunk; k++) {
            const int64_t step = first_step + k + 1;
            if (running) {
                const double dw_x = noise[k * m], dw_y = noise[k * m + 1];
                const double dw_z = noise[k * m + 2];
                /* forces F_X = −GMm (r − r_X)/|r − r_X|³ and the branches' potentials */
                const double sx_l = x + d_src, sx_r = x - d_src;
                const double yz2 = y * y + z * z + eps2;
                const double inv_l = 1.0 / sqrt(sx_l * sx_l + yz2);
                const double inv_r = 1.0 / sqrt(sx_r * sx_r + yz2);
                const double h_l = -gmm * inv_l + phi;
                const double h_r = -gmm * inv_r - phi;
                const double f_l = -gmm * inv_l * inv_l * inv_l;
                const double f_r = -gmm * inv_r * inv_r * inv_r;
                const double fx_l = f_l * sx_l, fy_l = f_l * y, fz_l = f_l * z;
                const double fx_r = f_r * sx_r, fy_r = f_r * y, fz_r = f_r * z;
                const double mean_fx = fx_l * p_l + fx_r * p_r;
                const double mean_fy = fy_l * p_l + fy_r * p_r;
                const double mean_fz = fz_l * p_l + fz_r * p_r;
                /* K_i = ½ σ⁺ F_i; the record dY_i = dW_i + 2⟨K_i⟩ dt; populations */
                const double dy_x = dw_x + 2.0 * dt * k_x * mean_fx;
                const double dy_y = dw_y + 2.0 * dt * k_y * mean_fy;
                const double dy_z = dw_z + 2.0 * dt * k_z * mean_fz;
                const double kx_l = k_x * fx_l, ky_l = k_y * fy_l, kz_l = k_z * fz_l;
                const double kx_r = k_x * fx_r, ky_r = k_y * fy_r, kz_r = k_z * fz_r;
                double a_l = kx_l * dy_x + ky_l * dy_y + kz_l * dy_z;
                a_l -= dt * (kx_l * kx_l + ky_l * ky_l + kz_l * kz_l);
                double a_r = kx_r * dy_x + ky_r * dy_y + kz_r * dy_z;
                a_r -= dt * (kx_r * kx_r + ky_r * ky_r + kz_r * kz_r);
                /* the smaller branch decays by exp(−2|a_l − a_r|) relative to the larger
                   (selects, not a branch: its sign is a coin flip); a NaN makes w_r NaN */
                const double decay = exp(-2.0 * fabs(a_l - a_r));
                const int left_smaller = a_l < a_r;
                const double w_l = p_l * select(left_smaller, decay, 1.0); /* p·1 = p exactly */
                const double w_r = p_r * select(left_smaller, 1.0, decay);
                const double total = w_l + w_r;
                /* classical Euler–Maruyama step: q̇ = p/m, ṗ = ⟨F⟩ + σ dW (written after the
                   exp call, across which every live value must be saved) */
                const double x_new = x + px / mass * dt;
                const double y_new = y + py / mass * dt;
                const double z_new = z + pz / mass * dt;
                const double px_new = px + mean_fx * dt + s_x * dw_x;
                const double py_new = py + mean_fy * dt + s_y * dw_y;
                const double pz_new = pz + mean_fz * dt + s_z * dw_z;
                /* all finite: each v·0 is ±0 and so is their sum; an inf or NaN makes it NaN.
                   One comparison instead of seven (every step pays for this check) */
                const double zeros = x_new * 0.0 + y_new * 0.0 + z_new * 0.0 + px_new * 0.0
                                     + py_new * 0.0 + pz_new * 0.0 + total * 0.0;
                const int finite = zeros == 0.0 && total > 0.0;
                if (finite) {
                    x = x_new, y = y_new, z = z_new, px = px_new, py = py_new, pz = pz_new;
                    p_l = w_l / total, p_r = w_r / total;
                    theta_l -= dt * h_l;
                    theta_r -= dt * h_r;
                } else {
                    status[t] = STATUS_NON_FINITE; /* frozen at its last good state */
                    status_step[t] = step;
                    running = 0;
                }
            }
            if (slot < n_saved && saved_steps[slot] == step) {
                double *out = classical_out + (t * n_saved + slot) * n;
                out[0] = x, out[1] = y, out[2] = z, out[3] = px, out[4] = py, out[5] = pz;
                const double p[2] = {p_l, p_r}, theta[2] = {theta_l, theta_r};
                store_amplitudes(psi_out + 2 * (t * n_saved + slot) * 2, p, theta, 2);
                slot++;
            }
        }
        zt[0] = x, zt[1] = y, zt[2] = z, zt[3] = px, zt[4] = py, zt[5] = pz;
        populations[2 * t] = p_l, populations[2 * t + 1] = p_r;
        phases[2 * t] = theta_l, phases[2 * t + 1] = theta_r;
    }
    return 0;
}

/* H_a = diag H_I(Z) for the levels a in `active` (all d if NULL) and, for LINEAR, L (1, d);
   QUBIT_LATTICE's L is constant. */
static void interaction(int64_t code, const double *params, const double *table,
                        int64_t table_rows, const double *z, int64_t d, double *H, double *L,
                        const int64_t *active, int64_t n_active)
{
    const int64_t count = active == NULL ? d : n_active;
    if (code == LINEAR) {
        const double lam = params[0], phi = params[2];
        const double h = 2.0 * lam * z[0] + phi;
        for (int64_t a = 0; a < d; a++)
            L[a] = -2.0 * lam * table[a];
        for (int64_t u = 0; u < count; u++) {
            const int64_t a = active == NULL ? u : active[u];
            H[a] = h * table[a];
        }
    } else { /* QUBIT_LATTICE: params (lam, m, gamma), table = spins (n, d) */
        const double lam = params[0], gamma = params[2];
        for (int64_t u = 0; u < count; u++) {
            const int64_t a = active == NULL ? u : active[u];
            double h = 0.0;
            for (int64_t i = 0; i < table_rows; i++)
                h += (z[i] + gamma) * table[i * d + a];
            H[a] = lam * h;
        }
    }
}

/*
 * The generic loop for LINEAR (ω = 0) and QUBIT_LATTICE: constant back-reaction operators
 * L (c, d) and K_i = ½ Σ_j σ⁺_ij L_j (m, d). The exponential step multiplies each population,
 * so a level with p_a = 0 keeps p_a = 0: each trajectory's loop runs over its levels with
 * p_a ≠ 0 only (`active`; for the lattice's GHZ state 2 of 2ⁿ), and its ψ_a = 0 is stored. Returns 0, or −1 if scratch memory ran out,
 * or −2 for a code this loop does not cover (mass_superposition has its own).
 */
int cq_run_chunk(int64_t code, const double *params, const double *table, int64_t table_rows,
                 const double *kernel, const double *kernel_pinv, const int64_t *coupled,
                 int64_t c, double *Z, int64_t N, int64_t n, double *populations,
                 double *phases, int64_t d, const double *dW, int64_t chunk, int64_t m,
                 double dt, int64_t first_step, const int64_t *saved_steps, int64_t n_saved,
                 double *classical_out, double *psi_out, int8_t *status, int64_t *status_step)
{
    if (code != LINEAR && code != QUBIT_LATTICE)
        return -2;
    /* scratch: H (d), L (c·d), K (m·d), KK (d), dY (m), z_new (n), p_new (d), log_factor (d) */
    double *scratch = malloc(sizeof(double) * (size_t)(4 * d + c * d + m * d + m + n));
    int64_t *active = malloc(sizeof(int64_t) * (size_t)d);
    if (scratch == NULL || active == NULL) {
        free(scratch);
        free(active);
        return -1;
    }
    double *H = scratch, *L = H + d, *K = L + c * d, *KK = K + m * d, *dY = KK + d;
    double *z_new = dY + m, *p_new = z_new + n, *log_factor = p_new + d;
    /* L (and so K) do not depend on Z: filled once */
    if (code == QUBIT_LATTICE) {
        const double lam = params[0];
        for (int64_t i = 0; i < table_rows; i++)
            for (int64_t a = 0; a < d; a++)
                L[i * d + a] = -lam * table[i * d + a]; /* L_{π_i} = −λ σz^(i) */
    } else {
        interaction(code, params, table, table_rows, Z, d, H, L, NULL, 0);
    }
    for (int64_t a = 0; a < d; a++)
        KK[a] = 0.0;
    for (int64_t i = 0; i < m; i++)
        for (int64_t a = 0; a < d; a++) {
            double acc = 0.0;
            for (int64_t j = 0; j < c; j++)
                acc += kernel_pinv[i * n + coupled[j]] * L[j * d + a];
            K[i * d + a] = 0.5 * acc;
            KK[a] += K[i * d + a] * K[i * d + a];
        }
    const int64_t first_slot = first_slot_at(saved_steps, n_saved, first_step + 1);
    const int64_t half = n / 2;
    const double mass = params[1];
    for (int64_t t = 0; t < N; t++) {
        int64_t slot = first_slot;
        double *z = Z + t * n, *p = populations + t * d, *theta = phases + t * d;
        int64_t n_active = 0;
        for (int64_t a = 0; a < d; a++)
            if (p[a] != 0.0)
                active[n_active++] = a;
        for (int64_t k = 0; k < chunk; k++) {
            const int64_t step = first_step + k + 1;
            const double *noise = dW + (t * chunk + k) * m;
            if (status[t] == 0) {
                interaction(code, params, table, table_rows, z, d, H, L, active, n_active);
                /* classical drift {Z, H_C} + ⟨L⟩ (free particles: q̇ = p/m), noise σ dW */
                for (int64_t r = 0; r < half; r++) {
                    z_new[r] = z[r] + z[half + r] / mass * dt;
                    z_new[half + r] = z[half + r];
                }
                for (int64_t j = 0; j < c; j++) {
                    double acc = 0.0;
                    for (int64_t u = 0; u < n_active; u++)
                        acc += L[j * d + active[u]] * p[active[u]];
                    z_new[coupled[j]] += acc * dt;
                }
                int finite = 1;
                for (int64_t r = 0; r < n; r++) {
                    double acc = z_new[r];
                    for (int64_t i = 0; i < m; i++)
                        acc += kernel[r * m + i] * noise[i];
                    z_new[r] = acc;
                    finite = finite && isfinite(acc);
                }
                /* the record dY_i = dW_i + 2⟨K_i⟩dt and the population update */
                for (int64_t i = 0; i < m; i++) {
                    double acc = 0.0;
                    for (int64_t u = 0; u < n_active; u++)
                        acc += K[i * d + active[u]] * p[active[u]];
                    dY[i] = noise[i] + 2.0 * dt * acc;
                }
                double top = -INFINITY;
                for (int64_t u = 0; u < n_active; u++) {
                    const int64_t a = active[u];
                    double acc = -dt * KK[a];
                    for (int64_t i = 0; i < m; i++)
                        acc += K[i * d + a] * dY[i];
                    log_factor[a] = acc;
                    top = acc > top ? acc : top;
                }
                double total = 0.0;
                for (int64_t u = 0; u < n_active; u++) {
                    const int64_t a = active[u];
                    const double value = p[a] * exp(2.0 * (log_factor[a] - top));
                    p_new[a] = value;
                    total += value;
                }
                finite = finite && isfinite(total) && total > 0.0;
                if (finite) {
                    for (int64_t r = 0; r < n; r++)
                        z[r] = z_new[r];
                    for (int64_t u = 0; u < n_active; u++) {
                        const int64_t a = active[u];
                        p[a] = p_new[a] / total;
                        theta[a] -= dt * H[a];
                    }
                } else {
                    status[t] = STATUS_NON_FINITE; /* frozen at its last good state */
                    status_step[t] = step;
                }
            }
            if (slot < n_saved && saved_steps[slot] == step) {
                double *out = classical_out + (t * n_saved + slot) * n;
                for (int64_t r = 0; r < n; r++)
                    out[r] = z[r];
                store_amplitudes(psi_out + 2 * (t * n_saved + slot) * d, p, theta, d);
                slot++;
            }
        }
    }
    free(scratch);
    free(active);
    return 0;
}
