/*
 * The generated kernel of a large diagonal model, pure state, exponential scheme: appended by
 * cq_core/solver/fused/codegen_tables.py after the model's part, which defines the sizes NC
 * (classical components), D (levels), M (Wiener processes), NLC (coupled components), KT
 * (table columns), COUPLED[NLC] and the functions of one classical point z below. The level
 * table T (D × KT, level-major: H_a = Σ_k f_k T_ak) is not compiled in (2ⁿ levels would make
 * the source megabytes long): the loader points cq_table at it (cq_core/solver/fused/build.py).
 *
 *   cq_table_point(z, flow, f, b, kappa, Q, S)  the flow {Z_j, H_C} (NC), f (KT), b (NLC × KT:
 *                          L_ja = Σ_k b_jk T_ak), kappa (M × KT: K_ia = Σ_k κ_ik T_ak per unit
 *                          sigma), Q (KT × KT, upper triangle: K2_a = Σ_kl Q_kl T_ak T_al per
 *                          unit sigma²) and the noise shape S (NC × M); only the entries that
 *                          are not identically zero are written, and only those are read:
 *   cq_means(b, kappa, tau, mean_L, mean_K)  ⟨L_j⟩ and ⟨K_i⟩ (per unit sigma) from the table
 *                          means tau_k = Σ_a p_a T_ak
 *   cq_weights(kappa, dY, u)  u_k = Σ_i κ_ik dY_i
 *   cq_square(Q, t)        K2_a per unit sigma² from the level's table row t = TABLE + a KT
 *   cq_noise(S, w, sigma, z_new)  z_new += sigma S w
 *   cq_inside(z)           1 inside the model's domain
 *
 * The equations are those of the exponential scheme (docs/physics.md, "Equations → code"):
 *   z ← z + ({z, H_C} + ⟨L⟩) dt + sigma S dW, with the record dY_i = dW_i + 2⟨K_i⟩ dt,
 *   p_a ← p_a exp(2 (Σ_i K_ia dY_i − dt K2_a)) normalised, θ_a ← θ_a − dt H_a,
 * all operators taken at the step's starting point. A pure exponential step multiplies each
 * population, so a level with p_a = 0 keeps p_a = 0: each trajectory loops over its levels with
 * p_a ≠ 0 only (`active`, ascending; a level whose population underflows to 0 leaves it at
 * once, so the set never depends on where a call starts), and stores ψ_a = 0 for the others.
 * A trajectory whose new point leaves the domain (status 1) or stops being finite (status 2)
 * is frozen at its last good state.
 *
 * Layouts (C order): Z (N, NC); state (N, 2 D) populations then phases; dW (N, chunk, M);
 * classical_out (N, T, NC); quantum_out (N, T, D) complex; status (N,) int8;
 * status_step (N,) int64; rng (N, 4) SFC64 states (KEYED_NOISE builds), or NULL.
 */

static int64_t table_first_slot(const int64_t *saved, int64_t n_saved, int64_t value)
{
    int64_t low = 0, high = n_saved;
    while (low < high) {
        const int64_t middle = low + (high - low) / 2;
        if (saved[middle] < value)
            low = middle + 1;
        else
            high = middle;
    }
    return low;
}

/* ψ_a = √p_a e^{iθ_a} for the active levels, 0 for the others, as (re, im) pairs. */
static void table_store(const double *p, const double *theta, const int32_t *active,
                        int32_t n_active, double *out)
{
    memset(out, 0, sizeof(double) * 2 * D);
    for (int32_t u = 0; u < n_active; u++) {
        const int32_t a = active[u];
        const double amplitude = sqrt(p[a]);
        out[2 * a] = amplitude * cos(theta[a]);
        out[2 * a + 1] = amplitude * sin(theta[a]);
    }
}

/* Whether this build draws the keyed noise itself (cq_run's `rng`). */
const int cq_keyed_noise = KEYED_NOISE;

/* The level table T (D × KT doubles), set by the loader before any call. */
const double *cq_table = NULL;

/* Advance N trajectories by `chunk` steps in place. Returns 0, −1 if scratch memory ran out,
   or −2 if cq_table was not set. `excess` is not used (pure states). */
int cq_run(int64_t N, int64_t chunk, double dt, double sigma, double excess, int64_t first_step,
           const int64_t *saved, int64_t T, double *Z, double *state, const double *dW,
           double *classical_out, double *quantum_out, int8_t *status, int64_t *status_step,
           uint64_t *rng, double noise_scale)
{
    (void)excess, (void)rng, (void)noise_scale;
    const double inv_sigma = 1.0 / sigma, inv_sigma2 = inv_sigma * inv_sigma;
    const double *restrict const TABLE = cq_table;
    if (TABLE == NULL)
        return -2;
    int32_t *active = malloc(sizeof(int32_t) * D);
    double *log_factor = malloc(sizeof(double) * D), *phase = malloc(sizeof(double) * D);
    if (active == NULL || log_factor == NULL || phase == NULL) {
        free(active), free(log_factor), free(phase);
        return -1;
    }
    const int64_t first_slot = table_first_slot(saved, T, first_step + 1);
    for (int64_t t = 0; t < N; t++) {
        double *z = Z + t * NC, *p = state + t * 2 * D, *theta = p + D;
        int32_t n_active = 0;
        for (int32_t a = 0; a < D; a++)
            if (p[a] != 0.0)
                active[n_active++] = a;
        int64_t slot = first_slot;
        for (int64_t k = 0; k < chunk; k++) {
            const int64_t step = first_step + k + 1;
            if (status[t] == 0) {
                double w_drawn[M];
                const double *w = w_drawn;
#if KEYED_NOISE
                if (rng != NULL) { /* a frozen trajectory draws no more: nothing reads it */
                    for (int i = 0; i < M; i++)
                        w_drawn[i] = keyed_normal(rng + 4 * t) * noise_scale;
                } else {
                    w = dW + (t * chunk + k) * M;
                }
#else
                w = dW + (t * chunk + k) * M;
#endif
                double flow[NC], f[KT], b[(NLC > 0 ? NLC : 1) * KT], kappa[M * KT];
                double Q[KT * KT], S[NC * M];
                cq_table_point(z, flow, f, b, kappa, Q, S);
                double tau[KT];
                for (int c = 0; c < KT; c++)
                    tau[c] = 0.0;
                for (int32_t u = 0; u < n_active; u++) {
                    const double *row = TABLE + (int64_t)active[u] * KT, pa = p[active[u]];
                    for (int c = 0; c < KT; c++)
                        tau[c] += pa * row[c];
                }
                double mean_L[NLC > 0 ? NLC : 1], mean_K[M], dY[M], weight[KT];
                cq_means(b, kappa, tau, mean_L, mean_K);
                for (int i = 0; i < M; i++)
                    dY[i] = w[i] + 2.0 * dt * (inv_sigma * mean_K[i]);
                cq_weights(kappa, dY, weight);
                double top = -INFINITY;
                for (int32_t u = 0; u < n_active; u++) {
                    const double *row = TABLE + (int64_t)active[u] * KT;
                    double acc = 0.0, h = 0.0;
                    for (int c = 0; c < KT; c++) {
                        acc += row[c] * weight[c];
                        h += f[c] * row[c];
                    }
                    acc = inv_sigma * acc - dt * (inv_sigma2 * cq_square(Q, row));
                    log_factor[u] = acc;
                    phase[u] = theta[active[u]] - dt * h;
                    top = acc > top ? acc : top;
                }
                double total = 0.0, zeros = 0.0;
                for (int32_t u = 0; u < n_active; u++) {
                    log_factor[u] = p[active[u]] * exp(2.0 * (log_factor[u] - top));
                    total += log_factor[u];
                    zeros += phase[u] * 0.0;
                }
                double z_new[NC];
                for (int r = 0; r < NC; r++)
                    z_new[r] = flow[r];
                for (int j = 0; j < NLC; j++)
                    z_new[COUPLED[j]] += mean_L[j];
                for (int r = 0; r < NC; r++)
                    z_new[r] = z[r] + z_new[r] * dt;
                cq_noise(S, w, sigma, z_new);
                for (int r = 0; r < NC; r++)
                    zeros += z_new[r] * 0.0;
                const int finite = zeros == 0.0 && total > 0.0 && total * 0.0 == 0.0;
                if (cq_accept(cq_inside(z_new), finite, status + t, status_step + t, step)) {
                    memcpy(z, z_new, sizeof z_new);
                    const double inv_total = 1.0 / total;
                    int32_t kept = 0;
                    for (int32_t u = 0; u < n_active; u++) {
                        const int32_t a = active[u];
                        p[a] = log_factor[u] * inv_total;
                        theta[a] = phase[u];
                        if (p[a] != 0.0)
                            active[kept++] = a;
                    }
                    n_active = kept;
                }
            }
            if (slot < T && saved[slot] == step) {
                memcpy(classical_out + (t * T + slot) * NC, z, sizeof(double) * NC);
                table_store(p, theta, active, n_active, quantum_out + (t * T + slot) * 2 * D);
                slot++;
            }
        }
    }
    free(active), free(log_factor), free(phase);
    return 0;
}
