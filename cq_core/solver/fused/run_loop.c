/*
 * The loop of the generated kernel over trajectories and steps, and the mean-field step:
 * appended by cq_core/solver/fused/codegen.py after generic_step.c (whose header describes
 * the generated part, the equations and the array layouts).
 */

#ifndef KEYED_NOISE
#define KEYED_NOISE 0
#endif

#if MEANFIELD
/* The mean-field right-hand side at (z, ψ): dz = {z, H_C} + ⟨L⟩, dψ = −i H_I ψ. */
static inline void mean_field_rhs(const double *z, const cplx *psi, double *dz, cplx *dpsi)
{
    double S[NC * M], P[M * (NLC > 0 ? NLC : 1)];
    op_t H[OPS], L[(NLC > 0 ? NLC : 1) * OPS], K[M * OPS], K2[OPS];
    cq_point(z, dz, H, L, K, K2, S, P);
    for (int j = 0; j < NLC; j++) {
#if DIAG
        double acc = 0.0;
        for (int a = 0; a < D; a++)
            acc += L[j * D + a] * (creal(psi[a]) * creal(psi[a]) + cimag(psi[a]) * cimag(psi[a]));
#else
        const double acc = expect(L + j * D * D, NZ_L, psi);
#endif
        dz[COUPLED[j]] += acc;
    }
#if DIAG
    for (int a = 0; a < D; a++)
        dpsi[a] = -I * (H[a] * psi[a]);
#else
    cplx h_psi[D];
    matvec(H, NZ_H, psi, h_psi);
    for (int a = 0; a < D; a++)
        dpsi[a] = -I * h_psi[a];
#endif
}

/* One RK4 step of the mean-field equations into (z_new, psi_new); returns 0 if not finite. */
static inline int mean_field_step(const double *z, const cplx *psi, double dt, double *z_new,
                                  cplx *psi_new)
{
    double k1z[NC], k2z[NC], k3z[NC], k4z[NC], zt[NC];
    cplx k1p[D], k2p[D], k3p[D], k4p[D], pt[D];
    mean_field_rhs(z, psi, k1z, k1p);
    for (int r = 0; r < NC; r++)
        zt[r] = z[r] + 0.5 * dt * k1z[r];
    for (int a = 0; a < D; a++)
        pt[a] = psi[a] + 0.5 * dt * k1p[a];
    mean_field_rhs(zt, pt, k2z, k2p);
    for (int r = 0; r < NC; r++)
        zt[r] = z[r] + 0.5 * dt * k2z[r];
    for (int a = 0; a < D; a++)
        pt[a] = psi[a] + 0.5 * dt * k2p[a];
    mean_field_rhs(zt, pt, k3z, k3p);
    for (int r = 0; r < NC; r++)
        zt[r] = z[r] + dt * k3z[r];
    for (int a = 0; a < D; a++)
        pt[a] = psi[a] + dt * k3p[a];
    mean_field_rhs(zt, pt, k4z, k4p);
    int finite = 1;
    for (int r = 0; r < NC; r++) {
        z_new[r] = z[r] + dt / 6.0 * (k1z[r] + 2.0 * k2z[r] + 2.0 * k3z[r] + k4z[r]);
        finite = finite && isfinite(z_new[r]);
    }
    double norm2 = 0.0;
    for (int a = 0; a < D; a++) {
        psi_new[a] = psi[a] + dt / 6.0 * (k1p[a] + 2.0 * k2p[a] + 2.0 * k3p[a] + k4p[a]);
        norm2 += creal(psi_new[a]) * creal(psi_new[a]) + cimag(psi_new[a]) * cimag(psi_new[a]);
    }
    const double norm = sqrt(norm2);
    finite = finite && isfinite(norm) && norm > 0.0;
    for (int a = 0; a < D; a++)
        psi_new[a] /= norm;
    return finite;
}
#endif

#if KEYED_NOISE
/* The engine's keyed noise drawn here, step by step, instead of read from dW: every
   trajectory's SFC64 generator (state s = a, b, c, counter; cq_core/solver/noise.py seeds it
   as NumPy does) feeds NumPy's ziggurat method for the standard normal, with NumPy's own
   tables ZIG_KI, ZIG_WI, ZIG_FI (read from its libnpyrandom.a by ziggurat.py and written
   above by codegen.py), so the increments are those of BrownianIncrements bit for bit,
   without a round trip through memory or Python. */
#define ZIG_R 3.6541528853610087963519472518     /* where the tail starts */
#define ZIG_INV_R 0.27366123732975827203338247596 /* 1 / ZIG_R */

static inline uint64_t sfc64_next(uint64_t *s)
{
    const uint64_t out = s[0] + s[1] + s[3]++;
    s[0] = s[1] ^ (s[1] >> 11);
    s[1] = s[2] + (s[2] << 3);
    s[2] = ((s[2] << 24) | (s[2] >> 40)) + out;
    return out;
}

static inline double sfc64_double(uint64_t *s)
{
    return (double)(sfc64_next(s) >> 11) * (1.0 / 9007199254740992.0);
}

/* The rare rejections of the ziggurat (under 1 % of draws), kept out of line: inlined, they
   would crowd the step's loop and keep the compiler from unrolling the draws. */
#if defined(__GNUC__)
__attribute__((noinline, cold))
#endif
static double keyed_normal_rejected(uint64_t *s, uint64_t rabs, int idx, double x)
{
    for (;;) {
        if (idx == 0) { /* the tail beyond ZIG_R */
            for (;;) {
                const double xx = -ZIG_INV_R * log1p(-sfc64_double(s));
                const double yy = -log1p(-sfc64_double(s));
                if (yy + yy > xx * xx)
                    return ((rabs >> 8) & 1) ? -(ZIG_R + xx) : ZIG_R + xx;
            }
        }
        if ((ZIG_FI[idx - 1] - ZIG_FI[idx]) * sfc64_double(s) + ZIG_FI[idx] < exp(-0.5 * x * x))
            return x;
        const uint64_t r = sfc64_next(s); /* rejected: draw again */
        idx = (int)(r & 0xff);
        rabs = (r >> 9) & 0x000fffffffffffffu;
        x = (double)rabs * ZIG_WI[idx];
        if ((r >> 8) & 1)
            x = -x;
        if (rabs < ZIG_KI[idx])
            return x;
    }
}

/* One standard normal from the SFC64 state s: 8 bits pick the layer, one the sign, 52 the
   abscissa, accepted at once inside the layer's rectangle. */
static inline double keyed_normal(uint64_t *s)
{
    const uint64_t r = sfc64_next(s);
    const int idx = (int)(r & 0xff);
    const uint64_t rabs = (r >> 9) & 0x000fffffffffffffu;
    double x = (double)rabs * ZIG_WI[idx];
    if ((r >> 8) & 1)
        x = -x;
    if (rabs < ZIG_KI[idx])
        return x;
    return keyed_normal_rejected(s, rabs, idx, x);
}
#endif

/* X_i ← s X_i for `count` operators X_i of OPS entries (structure `nz`, shared by all): the
   entries that are identically zero, or whose real or imaginary part is, are left alone. */
static inline void scale_entries(op_t *X, const unsigned char *nz, int count, double s)
{
    for (int i = 0; i < count; i++)
        for (int x = 0; x < OPS; x++) {
#if DIAG
            if (nz[x])
                X[i * OPS + x] *= s;
#else
            double *parts = (double *)(X + i * OPS + x);
            if (nz[x] & 1)
                parts[0] *= s;
            if (nz[x] & 2)
                parts[1] *= s;
#endif
        }
}

/* Whether this build draws the keyed noise itself (cq_run's `rng`). */
const int cq_keyed_noise = KEYED_NOISE;

/* Advance N trajectories by `chunk` steps in place (see the layouts above). Returns 0.
   The Wiener increments are read from dW (N, chunk, M), or, where `rng` is not NULL (builds
   with KEYED_NOISE), drawn here from the trajectories' SFC64 states rng (N, 4) — advanced
   in place — and scaled by noise_scale = √dt.

   Steps outside, trajectories inside: one trajectory's step is a chain of dependent
   operations (ψ → ⟨L⟩ → dY → Mψ → ‖Mψ‖), so consecutive iterations over independent
   trajectories let the processor overlap their chains (the group's state stays in L1). */
int cq_run(int64_t N, int64_t chunk, double dt, double sigma, double excess, int64_t first_step,
           const int64_t *saved, int64_t T, double *Z, double *state, const double *dW,
           double *classical_out, double *quantum_out, int8_t *status, int64_t *status_step,
           uint64_t *rng, double noise_scale)
{
    const double inv_sigma = 1.0 / sigma, inv_sigma2 = inv_sigma * inv_sigma;
    (void)rng, (void)noise_scale;
    int64_t slot = first_slot_at(saved, T, first_step + 1);
    for (int64_t k = 0; k < chunk; k++) {
        const int64_t step = first_step + k + 1;
        const int save = slot < T && saved[slot] == step;
        for (int64_t t = 0; t < N; t++) {
            double *z = Z + t * NC, *q = state + t * QSIZE;
#if MEANFIELD
            if (status[t] == 0) {
                double z_new[NC], q_new[QSIZE];
                const int finite = mean_field_step(z, (const cplx *)q, dt, z_new, (cplx *)q_new);
                if (!cq_inside(z_new)) {
                    status[t] = 1; /* left_domain: frozen at its last good state */
                    status_step[t] = step;
                } else if (!finite) {
                    status[t] = 2; /* non_finite */
                    status_step[t] = step;
                } else {
                    memcpy(z, z_new, sizeof z_new);
                    memcpy(q, q_new, sizeof q_new);
                }
            }
            (void)dW, (void)inv_sigma2;
#else
            if (status[t] == 0) {
#if KEYED_NOISE
                double w_drawn[M];
                const double *w = w_drawn;
                if (rng != NULL) { /* a frozen trajectory draws no more: nothing reads it */
                    UNROLL
                    for (int i = 0; i < M; i++)
                        w_drawn[i] = keyed_normal(rng + 4 * t) * noise_scale;
                } else {
                    w = dW + (t * chunk + k) * M;
                }
#else
                const double *w = dW + (t * chunk + k) * M;
#endif
                double flow[NC], S[NC * M], mean_L[NLC > 0 ? NLC : 1];
                double P[M * (NLC > 0 ? NLC : 1)];
                op_t H[OPS], L[(NLC > 0 ? NLC : 1) * OPS], K[M * OPS], K2[OPS];
                cq_point(z, flow, H, L, K, K2, S, P);
                scale_entries(K, NZ_K, M, inv_sigma);
                scale_entries(K2, NZ_K2, 1, inv_sigma2);
                double q_new[QSIZE];
                int finite =
                    quantum_step(q, q_new, H, L, K, K2, P, inv_sigma, w, dt, excess, mean_L);
                for (int j = 0; j < NLC; j++)
                    flow[COUPLED[j]] += mean_L[j];
                double z_new[NC], zeros = 0.0;
                UNROLL
                for (int r = 0; r < NC; r++) {
                    double noise = 0.0;
                    UNROLL
                    for (int i = 0; i < M; i++)
                        if (NZ_S[r * M + i])
                            noise += sigma * S[r * M + i] * w[i];
                    z_new[r] = z[r] + (NZ_FLOW[r] ? flow[r] * dt : 0.0) + noise;
                    zeros += finite_zero(z_new[r]);
                }
                finite = finite && zeros == 0.0;
                if (!cq_inside(z_new)) {
                    status[t] = 1; /* left_domain: frozen at its last good state */
                    status_step[t] = step;
                } else if (!finite) {
                    status[t] = 2; /* non_finite */
                    status_step[t] = step;
                } else {
                    memcpy(z, z_new, sizeof z_new);
                    memcpy(q, q_new, sizeof q_new);
                }
            }
#endif
            if (save) {
                memcpy(classical_out + (t * T + slot) * NC, z, sizeof(double) * NC);
                store_quantum(q, quantum_out + (t * T + slot) * QOUT);
            }
        }
        slot += save;
    }
    return 0;
}
