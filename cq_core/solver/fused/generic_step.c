/*
 * The step loop of the generated kernel: one loop for every model, specialised at compile time.
 *
 * cq_core/solver/fused/codegen.py writes, above this file, the model's part: the sizes NC
 * (classical components), D (levels), M (Wiener processes), NLC (coupled components), the
 * flags DIAG, DENSITY and KRAUS, the array COUPLED[NLC], and two functions of one classical
 * point z (generated from the SymPy model, common subexpressions shared):
 *
 *   cq_point(z, flow, H, L, K, K2, S, P) the Hamiltonian flow {Z_j, H_C} (NC), H_I, the coupled
 *                                       back-reaction operators L_j, K_i = ½ Σ_j (S⁺)_ij L_j
 *                                       and K2 = Σ_i K_i² per unit sigma, the noise shape S
 *                                       (NC × M) and P = S⁺ (M × NLC), per unit sigma
 *   cq_inside(z)                        1 inside the model's domain (NaN: outside)
 *
 * Operators are real diagonals (D entries) when DIAG, else complex D × D matrices stored as
 * C99 double complex, row major. NZ_H, NZ_L, NZ_K, NZ_K2 (static const, per entry: bit 1 the
 * real part, bit 2 the imaginary part is not identically zero) mark the structure: loops skip the others, and where the
 * compiler unrolls a loop it drops them. The run's K is K / sigma and its noise kernel sigma · S.
 *
 * The equations are those of the NumPy reference path (cq_core/solver/integrate.py with the
 * schemes of cq_core/solver/schemes.py; docs/physics.md, "Equations → code"):
 *   classical: z ← z + ({z, H_C} + ⟨L⟩) dt + sigma S dW          (Euler–Maruyama)
 *   DIAG (exponential):  ψ_a ← ψ_a exp(Σ_i K_ia dY_i − dt Σ_i K_ia² − i H_a dt), normalised,
 *                        carried as populations and phases in pure mode; in density mode
 *                        ρ_ab ← e_a ρ_ab e_b* exp(−½ v dt Σ_i (K_ia − K_ib)²), trace 1
 *   KRAUS:  M = 1 − i H dt − (1 + v/2) K2 dt + A + ½ A²,  A = Σ_i K_i dY_i,
 *           ψ ← Mψ/‖Mψ‖, or ρ' = M ρ M†, ρ ← (ρ' + v dt Σ_i K_i ρ' K_i)/trace
 * with the record dY_i = dW_i + 2⟨K_i⟩ dt. MEANFIELD: the deterministic semi-classical equations
 * dz = ({z, H_C} + ⟨L⟩) dt, dψ = −i H_I ψ dt by classical RK4, ψ renormalised after each step. A trajectory whose new point leaves the domain
 * (status 1) or stops being finite (status 2) is frozen at its last good state.
 *
 * Layouts (C order): Z (N, NC); state (N, STATE) doubles: pure DIAG (p[D], θ[D]), pure KRAUS
 * and MEANFIELD ψ (D complex), density DIAG (|ρ_ab| (D × D), arg ρ_ab (D × D)), density KRAUS
 * ρ (D × D complex); dW (N, chunk, M); classical_out (N, T, NC);
 * quantum_out (N, T, D) or (N, T, D, D) complex; status (N,) int8; status_step (N,) int64.
 */
#include <complex.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

typedef double complex cplx;

#ifndef MEANFIELD
#define MEANFIELD 0
#endif
#if DIAG
#define OPS D
#else
#define OPS (D * D)
#endif
#if DENSITY && !MEANFIELD
#define QSIZE (2 * D * D)
#define QOUT (2 * D * D)
#else
#define QSIZE (2 * D)
#define QOUT (2 * D)
#endif

/* Small operators (D <= 4) are unrolled completely, so that the structure masks (NZ_*) are
   resolved at compile time and their zero parts cost nothing; larger ones keep their loops. */
#if D <= 4
#define UNROLL _Pragma("GCC unroll 64")
#else
#define UNROLL
#endif

#if DIAG
typedef double op_t;
#else
typedef cplx op_t;
#endif

static int64_t first_slot_at(const int64_t *saved, int64_t n_saved, int64_t value)
{
    int64_t low = 0, high = n_saved;
    while (low < high) {
        int64_t middle = low + (high - low) / 2;
        if (saved[middle] < value)
            low = middle + 1;
        else
            high = middle;
    }
    return low;
}

/* `yes` if `choose`, else `no`, by bit masks: a compiler turns `choose ? yes : no` into a
   branch, mispredicted half the time when `choose` is a coin flip (which level is larger). */
static inline double select_double(int choose, double yes, double no)
{
    uint64_t yes_bits, no_bits, mask = (uint64_t)0 - (uint64_t)(choose != 0);
    memcpy(&yes_bits, &yes, sizeof yes_bits);
    memcpy(&no_bits, &no, sizeof no_bits);
    const uint64_t bits = (yes_bits & mask) | (no_bits & ~mask);
    double chosen;
    memcpy(&chosen, &bits, sizeof chosen);
    return chosen;
}

/* 0.0 if x is finite, else NaN: sums of these test many values with one comparison and no
   branch (every step pays for its checks). */
static inline double finite_zero(double x)
{
    return x * 0.0;
}

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

/* y = X x for a D × D matrix X. */
static inline void matvec(const cplx *X, const unsigned char *nz, const cplx *x, cplx *y)
{
    UNROLL
    for (int a = 0; a < D; a++) {
        cplx acc = 0.0;
        UNROLL
        for (int b = 0; b < D; b++)
            if (nz[a * D + b])
                acc += entry_times(X[a * D + b], nz[a * D + b], x[b]);
        y[a] = acc;
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

/* The record dY_i = dW_i + 2⟨K_i⟩ dt with ⟨K_i⟩ = ½ Σ_j (σ⁺)_ij ⟨L_j⟩, σ⁺ = P / sigma. */
static inline void mean_measurements(const double *P, double inv_sigma, const double *mean_L,
                                     const double *w, double dt, double *dY)
{
    UNROLL
    for (int i = 0; i < M; i++) {
        double acc = 0.0;
        for (int j = 0; j < NLC; j++)
            acc += P[i * NLC + j] * mean_L[j];
        dY[i] = w[i] + 2.0 * dt * (0.5 * inv_sigma * acc);
    }
}

/* One quantum step from q (the state) into out; returns 0 if the result is not finite. The
   expectations ⟨L_j⟩ go to mean_L. K, K2 already scaled to the run's sigma. */
static inline int quantum_step(const double *q_in, double *out, const op_t *H, const op_t *L,
                               const op_t *K, const op_t *K2, const double *P, double inv_sigma,
                               const double *w, double dt, double excess, double *mean_L)
{
    double dY[M];
#if DIAG
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
    mean_measurements(P, inv_sigma, mean_L, w, dt, dY);
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
       exp(−|f_0 − f_1|) (the same bits as exp(f_a − top)) */
    const double decay = exp(-fabs(log_factor[0] - log_factor[1]));
    const int first_smaller = log_factor[0] < log_factor[1];
    modulus[0] = select_double(first_smaller, decay, 1.0);
    modulus[1] = select_double(first_smaller, 1.0, decay);
    (void)top;
#else
    UNROLL
    for (int a = 0; a < D; a++)
        modulus[a] = exp(log_factor[a] - top);
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
                scale *= exp(-0.5 * excess * dt * gap);
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
       exp(−2|f_0 − f_1|) (the same bits as exp(2 (f_a − top))) */
    const double decay = exp(-2.0 * fabs(log_factor[0] - log_factor[1]));
    const int first_smaller = log_factor[0] < log_factor[1];
    out[0] = pop[0] * select_double(first_smaller, decay, 1.0);
    out[1] = pop[1] * select_double(first_smaller, 1.0, decay);
    total = out[0] + out[1];
    (void)top;
#else
    UNROLL
    for (int a = 0; a < D; a++) {
        const double value = pop[a] * exp(2.0 * (log_factor[a] - top));
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
#else /* KRAUS, full matrices */
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
    /* ‖Mψ‖² finite and > 0: every amplitude is finite, and so is every amplitude / ‖Mψ‖ */
    const double inv_norm = 1.0 / sqrt(norm2);
    UNROLL
    for (int a = 0; a < D; a++)
        psi_new[a] *= inv_norm;
    return finite_zero(norm2) == 0.0 && norm2 > 0.0;
#endif
#endif
}

/* sin x and cos x in one call where the compiler offers it (GCC, Clang: sincos). */
static inline void sine_cosine(double x, double *sine, double *cosine)
{
#if defined(__GNUC__)
    __builtin_sincos(x, sine, cosine);
#else
    *sine = sin(x);
    *cosine = cos(x);
#endif
}

static inline void store_quantum(const double *q, double *out)
{
#if DIAG && !DENSITY && !MEANFIELD
    UNROLL
    for (int a = 0; a < D; a++) {
        const double amplitude = sqrt(q[a]);
        double sine, cosine;
        sine_cosine(q[D + a], &sine, &cosine);
        out[2 * a] = amplitude * cosine;
        out[2 * a + 1] = amplitude * sine;
    }
#elif DIAG && DENSITY && !MEANFIELD
    /* ρ is Hermitian (|ρ_ba| = |ρ_ab|, arg ρ_ba = −arg ρ_ab): the lower triangle mirrors; the
       diagonal is real (its phases stay those of ψ0's populations, 0) */
    UNROLL
    for (int a = 0; a < D; a++) {
        out[2 * (a * D + a)] = q[a * D + a];
        out[2 * (a * D + a) + 1] = 0.0;
        UNROLL
        for (int b = a + 1; b < D; b++) {
            const int ab = a * D + b, ba = b * D + a;
            double sine, cosine;
            sine_cosine(q[D * D + ab], &sine, &cosine);
            const double re = q[ab] * cosine, im = q[ab] * sine;
            out[2 * ab] = re;
            out[2 * ab + 1] = im;
            out[2 * ba] = re;
            out[2 * ba + 1] = -im;
        }
    }
#else
    memcpy(out, q, sizeof(double) * QOUT);
#endif
}
