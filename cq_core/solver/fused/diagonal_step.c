/*
 * The quantum step of the generated kernel for diagonal operators (the exponential scheme):
 * appended by cq_core/solver/fused/codegen.py after generic_step.c, whose header describes the
 * generated part, the equations and the layouts.
 */
#if DIAG

/* One quantum step from q (the state) into out; returns 0 if the result is not finite. The
   expectations ⟨L_j⟩ go to mean_L. K, K2 already scaled to the run's sigma. */
static inline int quantum_step(const double *q_in, double *out, const op_t *H, const op_t *L,
                               const op_t *K, const op_t *K2, const double *P, double inv_sigma,
                               const double *w, double dt, double excess, double *mean_L)
{
    double dY[M];
#if DENSITY
    const double *rho_modulus = q_in; /* then the phases */
    double pop[D];
    UNROLL
    for (int a = 0; a < D; a++)
        pop[a] = rho_modulus[a * D + a];
#else
    const double *pop = q_in, *theta = q_in + D;
#endif
    for (int j = 0; j < NLC; j++) {
        double acc = 0.0;
        UNROLL
        for (int a = 0; a < D; a++)
            acc += L[j * D + a] * pop[a];
        mean_L[j] = acc;
    }
#if NOISE_VARIES
    /* the record dY_i = dW_i + 2⟨K_i⟩ dt with ⟨K_i⟩ = Σ_a K_ia p_a (= ½ Σ_j (σ⁺)_ij ⟨L_j⟩):
       from K directly, so that the chain p → dY → ψ' does not wait for σ⁺ and L, which a
       position-dependent noise shape computes with square roots and divisions */
    UNROLL
    for (int i = 0; i < M; i++) {
        double acc = 0.0;
        UNROLL
        for (int a = 0; a < D; a++)
            acc += K[i * D + a] * pop[a];
        dY[i] = w[i] + 2.0 * dt * acc;
    }
    (void)P, (void)inv_sigma;
#else /* a constant σ⁺: from ⟨L⟩, needed for the drift anyway */
    mean_measurements(P, inv_sigma, mean_L, w, dt, dY);
#endif
    double log_factor[D], top = -INFINITY;
    UNROLL
    for (int a = 0; a < D; a++) {
        double acc = 0.0;
        UNROLL
        for (int i = 0; i < M; i++)
            acc += dY[i] * K[i * D + a];
        acc -= dt * K2[a];
        log_factor[a] = acc;
        top = acc > top ? acc : top;
    }
#if DENSITY
    /* e_a ρ_ab e_b* = |ρ_ab| |e_a||e_b| exp(i (φ_ab − dt (H_a − H_b))): ρ is carried as moduli
       and phases, so a step costs one exp per level and no trigonometry (ρ Hermitian by
       construction; the complex ρ is formed only when stored) */
    double modulus[D];
#if D == 2
    /* one exp: the larger level's factor is exp(0) = 1 exactly, the other's
       exp(−|f_0 − f_1|) (the same bits as exp(f_a − top); cq_exp) */
    const double decay = cq_exp(-fabs(log_factor[0] - log_factor[1]));
    modulus[0] = select_less(log_factor[0], log_factor[1], decay, 1.0);
    modulus[1] = select_less(log_factor[0], log_factor[1], 1.0, decay);
    (void)top;
#else
    UNROLL
    for (int a = 0; a < D; a++)
        modulus[a] = cq_exp(log_factor[a] - top);
#endif
    const double *old_phase = q_in + D * D;
    double *new_modulus = out, *new_phase = out + D * D;
    double trace = 0.0;
    UNROLL
    for (int a = 0; a < D; a++) {
        const int aa = a * D + a;
        new_modulus[aa] = rho_modulus[aa] * (modulus[a] * modulus[a]);
        new_phase[aa] = old_phase[aa];
        trace += new_modulus[aa];
        UNROLL
        for (int b = a + 1; b < D; b++) {
            double scale = modulus[a] * modulus[b];
            if (excess != 0.0) {
                double gap = 0.0;
                UNROLL
                for (int i = 0; i < M; i++) {
                    const double g = K[i * D + a] - K[i * D + b];
                    gap += g * g;
                }
                scale *= cq_exp(-0.5 * excess * dt * gap);
            }
            const int ab = a * D + b, ba = b * D + a;
            new_modulus[ab] = new_modulus[ba] = rho_modulus[ab] * scale;
            new_phase[ab] = old_phase[ab] - dt * (H[a] - H[b]);
            new_phase[ba] = -new_phase[ab];
        }
    }
    const double inv_trace = 1.0 / trace;
    double zeros = finite_zero(trace);
    UNROLL
    for (int x = 0; x < D * D; x++) {
        new_modulus[x] *= inv_trace;
        zeros += finite_zero(new_phase[x]);
    }
    /* trace finite and > 0 with moduli ≤ 1 before scaling: every modulus is finite */
    return zeros == 0.0 && trace > 0.0;
#else
    double total = 0.0;
#if D == 2
    /* one exp: the larger level's factor is exp(0) = 1 exactly, the other's
       exp(−2|f_0 − f_1|) (the same bits as exp(2 (f_a − top)); cq_exp) */
    const double decay = cq_exp(-2.0 * fabs(log_factor[0] - log_factor[1]));
    out[0] = pop[0] * select_less(log_factor[0], log_factor[1], decay, 1.0);
    out[1] = pop[1] * select_less(log_factor[0], log_factor[1], 1.0, decay);
    total = out[0] + out[1];
    (void)top;
#else
    UNROLL
    for (int a = 0; a < D; a++) {
        const double value = pop[a] * cq_exp(2.0 * (log_factor[a] - top));
        out[a] = value;
        total += value;
    }
#endif
    double zeros = finite_zero(total);
    const double inv_total = 1.0 / total; /* one division, not one per level */
    UNROLL
    for (int a = 0; a < D; a++) {
        out[a] *= inv_total;
        out[D + a] = theta[a] - dt * H[a];
        zeros += finite_zero(out[D + a]);
    }
    return zeros == 0.0 && total > 0.0;
#endif
}
#endif
