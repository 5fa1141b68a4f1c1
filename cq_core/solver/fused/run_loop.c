/*
 * The loop of the generated kernel over trajectories and steps, and the mean-field step:
 * appended by cq_core/solver/fused/codegen.py after generic_step.c (whose header describes
 * the generated part, the equations and the array layouts) and loop_shared.c.
 */

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
                if (cq_accept(cq_inside(z_new), finite, status + t, status_step + t, step)) {
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
                if (cq_accept(cq_inside(z_new), finite, status + t, status_step + t, step)) {
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
