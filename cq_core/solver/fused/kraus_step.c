/*
 * The quantum step of the generated kernel for full operators (the Kraus scheme), and the
 * products of structured matrices it needs: appended by cq_core/solver/fused/codegen.py after
 * generic_step.c, whose header describes the generated part, the equations and the layouts.
 */
#if !DIAG
/* X v for an operator entry X whose structure is `nz` (bit 1: real part not identically
   zero, bit 2: imaginary part): a real or imaginary entry costs two products, not four. With
   the masks constant and the loops unrolled, the compiler resolves these branches. */
static inline cplx entry_times(cplx X, unsigned char nz, cplx v)
{
    if (nz == 3)
        return X * v;
    if (nz == 1)
        return CMPLX(creal(X) * creal(v), creal(X) * cimag(v));
    if (nz == 2) /* i x v = (−x Im v, x Re v), written out: a product with I costs four */
        return CMPLX(-cimag(X) * cimag(v), cimag(X) * creal(v));
    return 0.0;
}

#if defined(__GNUC__)
typedef double pair_t __attribute__((vector_size(16)));

/* entry_times on (re, im) pairs in one vector register (GCC, Clang): x v = x_re (v_re, v_im)
   + (−x_im, x_im) (v_im, v_re), the products and sums of the complex product, in half the
   instructions where a chain of them stays in vector registers (matvec's; the density step's
   products, which mix real and complex parts, measured slower so). */
static inline pair_t entry_times_pair(cplx X, unsigned char nz, pair_t v)
{
    const pair_t swapped = {v[1], v[0]}, imaginary = {-cimag(X), cimag(X)};
    if (nz == 3)
        return creal(X) * v + imaginary * swapped;
    if (nz == 1)
        return creal(X) * v;
    if (nz == 2)
        return imaginary * swapped;
    return (pair_t){0.0, 0.0};
}
#endif

/* y = X x for a D × D matrix X. */
static inline void matvec(const cplx *X, const unsigned char *nz, const cplx *x, cplx *y)
{
    UNROLL
    for (int a = 0; a < D; a++) {
#if defined(__GNUC__)
        pair_t acc = {0.0, 0.0};
        UNROLL
        for (int b = 0; b < D; b++)
            if (nz[a * D + b]) {
                const pair_t v = {creal(x[b]), cimag(x[b])};
                acc += entry_times_pair(X[a * D + b], nz[a * D + b], v);
            }
        y[a] = CMPLX(acc[0], acc[1]);
#else
        cplx acc = 0.0;
        UNROLL
        for (int b = 0; b < D; b++)
            if (nz[a * D + b])
                acc += entry_times(X[a * D + b], nz[a * D + b], x[b]);
        y[a] = acc;
#endif
    }
}

/* Re ⟨O⟩ = Re ψ† O ψ (pure) or Re Tr(O ρ) (density). */
static inline double expect(const cplx *O, const unsigned char *nz, const cplx *q)
{
    double acc = 0.0;
#if DENSITY
    UNROLL
    for (int a = 0; a < D; a++)
        UNROLL
        for (int b = 0; b < D; b++)
            if (nz[a * D + b])
                acc += creal(entry_times(O[a * D + b], nz[a * D + b], q[b * D + a]));
#else
    UNROLL
    for (int a = 0; a < D; a++) {
        cplx row = 0.0;
        UNROLL
        for (int b = 0; b < D; b++)
            if (nz[a * D + b])
                row += entry_times(O[a * D + b], nz[a * D + b], q[b]);
        acc += creal(conj(q[a]) * row);
    }
#endif
    return acc;
}
#endif

#if !DIAG
/* One quantum step from q (the state) into out; returns 0 if the result is not finite. The
   expectations ⟨L_j⟩ go to mean_L. K, K2 already scaled to the run's sigma. */
static inline int quantum_step(const double *q_in, double *out, const op_t *H, const op_t *L,
                               const op_t *K, const op_t *K2, const double *P, double inv_sigma,
                               const double *w, double dt, double excess, double *mean_L)
{
    double dY[M];
    const cplx *q = (const cplx *)q_in;
    for (int j = 0; j < NLC; j++)
        mean_L[j] = expect(L + j * D * D, NZ_L, q);
    mean_measurements(P, inv_sigma, mean_L, w, dt, dY);
    /* A = Σ_i K_i dY_i (dY real): real and imaginary parts summed only where K has them, so
       that a real A is known real (a product with a zero is not zero in IEEE arithmetic and
       would be computed) */
    double A_re[D * D], A_im[D * D];
    cplx A[D * D];
    UNROLL
    for (int x = 0; x < D * D; x++) {
        double re = 0.0, im = 0.0;
        UNROLL
        for (int i = 0; i < M; i++) {
            if (NZ_K[x] & 1)
                re += creal(K[i * D * D + x]) * dY[i];
            if (NZ_K[x] & 2)
                im += cimag(K[i * D * D + x]) * dY[i];
        }
        A_re[x] = re;
        A_im[x] = im;
        A[x] = CMPLX(re, im);
    }
#if DENSITY
    /* M = 1 − i H dt − (1 + v/2) K2 dt + A + ½ A², part by part where the structures of H,
       K2 and K (NZ_*) have them; NZ_M (generated) is the structure of the result */
    const double k2_scale = (1.0 + 0.5 * excess) * dt;
    cplx Mk[D * D], T1[D * D];
    UNROLL
    for (int a = 0; a < D; a++)
        UNROLL
        for (int b = 0; b < D; b++) {
            const int x = a * D + b;
            double re = a == b ? 1.0 : 0.0, im = 0.0;
            if (NZ_H[x] & 2)
                re += dt * cimag(H[x]);
            if (NZ_H[x] & 1)
                im -= dt * creal(H[x]);
            if (NZ_K2[x] & 1)
                re -= k2_scale * creal(K2[x]);
            if (NZ_K2[x] & 2)
                im -= k2_scale * cimag(K2[x]);
            if (NZ_K[x] & 1)
                re += A_re[x];
            if (NZ_K[x] & 2)
                im += A_im[x];
            UNROLL
            for (int c = 0; c < D; c++) {
                const int ac = a * D + c, cb = c * D + b;
                if (!(NZ_K[ac] && NZ_K[cb]))
                    continue;
                if ((NZ_K[ac] & 1) && (NZ_K[cb] & 1))
                    re += 0.5 * (A_re[ac] * A_re[cb]);
                if ((NZ_K[ac] & 2) && (NZ_K[cb] & 2))
                    re -= 0.5 * (A_im[ac] * A_im[cb]);
                if ((NZ_K[ac] & 1) && (NZ_K[cb] & 2))
                    im += 0.5 * (A_re[ac] * A_im[cb]);
                if ((NZ_K[ac] & 2) && (NZ_K[cb] & 1))
                    im += 0.5 * (A_im[ac] * A_re[cb]);
            }
            Mk[x] = CMPLX(re, im);
        }
    /* T1 = M ρ, then ρ' = T1 M† */
    UNROLL
    for (int a = 0; a < D; a++)
        UNROLL
        for (int b = 0; b < D; b++) {
            cplx acc = 0.0;
            UNROLL
            for (int c = 0; c < D; c++)
                if (NZ_M[a * D + c])
                    acc += entry_times(Mk[a * D + c], NZ_M[a * D + c], q[c * D + b]);
            T1[a * D + b] = acc;
        }
    /* ρ' = T1 M† is Hermitian: its upper triangle (real diagonal) is computed, the lower
       triangle is its mirror */
    cplx *rho_new = (cplx *)out;
    UNROLL
    for (int a = 0; a < D; a++) {
        double diagonal = 0.0;
        UNROLL
        for (int c = 0; c < D; c++) {
            const cplx m = Mk[a * D + c], t = T1[a * D + c]; /* Re t m* */
            if (NZ_M[a * D + c] & 1)
                diagonal += creal(t) * creal(m);
            if (NZ_M[a * D + c] & 2)
                diagonal += cimag(t) * cimag(m);
        }
        rho_new[a * D + a] = diagonal;
        UNROLL
        for (int b = a + 1; b < D; b++) {
            cplx acc = 0.0;
            UNROLL
            for (int c = 0; c < D; c++)
                if (NZ_M[b * D + c])
                    acc += entry_times(conj(Mk[b * D + c]), NZ_M[b * D + c], T1[a * D + c]);
            rho_new[a * D + b] = acc;
            rho_new[b * D + a] = conj(acc);
        }
    }
    if (excess != 0.0) { /* ρ' += v dt Σ_i K_i ρ' K_i, on ρ' = M ρ M† as the NumPy scheme */
        cplx extra[D * D];
        UNROLL
        for (int x = 0; x < D * D; x++)
            extra[x] = 0.0;
        UNROLL
        for (int i = 0; i < M; i++) {
            const cplx *Ki = K + i * D * D;
            UNROLL
            for (int a = 0; a < D; a++)
                UNROLL
                for (int b = 0; b < D; b++) {
                    cplx acc = 0.0;
                    UNROLL
                    for (int c = 0; c < D; c++)
                        acc += Ki[a * D + c] * rho_new[c * D + b];
                    T1[a * D + b] = acc;
                }
            UNROLL
            for (int a = 0; a < D; a++)
                UNROLL
                for (int b = 0; b < D; b++) {
                    cplx acc = 0.0;
                    UNROLL
                    for (int c = 0; c < D; c++)
                        acc += T1[a * D + c] * Ki[c * D + b];
                    extra[a * D + b] += acc;
                }
        }
        UNROLL
        for (int x = 0; x < D * D; x++)
            rho_new[x] += excess * dt * extra[x];
        UNROLL
        for (int a = 0; a < D; a++)
            UNROLL
            for (int b = a; b < D; b++) {
                const cplx upper = 0.5 * (rho_new[a * D + b] + conj(rho_new[b * D + a]));
                rho_new[a * D + b] = upper;
                rho_new[b * D + a] = conj(upper);
            }
    }
    double trace = 0.0;
    UNROLL
    for (int a = 0; a < D; a++)
        trace += creal(rho_new[a * D + a]);
    const double inv_trace = 1.0 / trace;
    double zeros = finite_zero(trace);
    UNROLL
    for (int x = 0; x < D * D; x++) {
        rho_new[x] *= inv_trace;
        zeros += finite_zero(creal(rho_new[x])) + finite_zero(cimag(rho_new[x]));
    }
    return zeros == 0.0 && trace > 0.0;
#else
#if REAL_DIAGONAL_K
    /* every K_i (so A and K2) real and diagonal: M = m − i dt H with the real diagonal
       m_a = 1 − dt K2_aa + A_aa + ½ A_aa², one matrix–vector product */
    cplx h_psi[D];
    matvec(H, NZ_H, q, h_psi);
    cplx *psi_new = (cplx *)out;
    double norm2 = 0.0;
    UNROLL
    for (int a = 0; a < D; a++) {
        const int aa = a * D + a;
        const double m = 1.0 - dt * creal(K2[aa]) + A_re[aa] + 0.5 * (A_re[aa] * A_re[aa]);
        const cplx value = CMPLX(m * creal(q[a]) + dt * cimag(h_psi[a]),
                                 m * cimag(q[a]) - dt * creal(h_psi[a]));
        psi_new[a] = value;
        norm2 += creal(value) * creal(value) + cimag(value) * cimag(value);
    }
#else
    /* Mψ = ψ − i dt Hψ − dt K2ψ + Aψ + ½ A(Aψ): matrix–vector products only */
    cplx h_psi[D], k2_psi[D], a_psi[D], aa_psi[D];
    matvec(H, NZ_H, q, h_psi);
    matvec(K2, NZ_K2, q, k2_psi);
    matvec(A, NZ_K, q, a_psi);
    matvec(A, NZ_K, a_psi, aa_psi);
    cplx *psi_new = (cplx *)out;
    double norm2 = 0.0;
    UNROLL
    for (int a = 0; a < D; a++) {
        /* ψ − i dt Hψ − dt K2ψ + Aψ + ½ A(Aψ), real and imaginary parts written out */
        const cplx value = CMPLX(
            creal(q[a]) + dt * cimag(h_psi[a]) - dt * creal(k2_psi[a]) + creal(a_psi[a])
                + 0.5 * creal(aa_psi[a]),
            cimag(q[a]) - dt * creal(h_psi[a]) - dt * cimag(k2_psi[a]) + cimag(a_psi[a])
                + 0.5 * cimag(aa_psi[a]));
        psi_new[a] = value;
        norm2 += creal(value) * creal(value) + cimag(value) * cimag(value);
    }
#endif
    /* ‖Mψ‖² finite and > 0: every amplitude is finite, and so is every amplitude / ‖Mψ‖ */
    const double inv_norm = 1.0 / sqrt(norm2);
    UNROLL
    for (int a = 0; a < D; a++)
        psi_new[a] *= inv_norm;
    return finite_zero(norm2) == 0.0 && norm2 > 0.0;
#endif
}
#endif
