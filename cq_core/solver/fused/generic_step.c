/*
 * The common part of the generated kernel: one loop for every model, specialised at compile
 * time (the quantum steps are in diagonal_step.c and kraus_step.c, the loop in run_loop.c).
 *
 * cq_core/solver/fused/codegen.py writes, above this file, the model's part: the sizes NC
 * (classical components), D (levels), M (Wiener processes), NLC (coupled components), the
 * flags DIAG, DENSITY, KRAUS, NOISE_VARIES (the noise shape's pseudo-inverse depends on z) and
 * REAL_DIAGONAL_K (full operators whose K_i are all real and diagonal),
 * the array COUPLED[NLC], and two functions of one classical
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
 * compiler unrolls a loop it drops them; NZ_S (NC × M), NZ_P (M × NLC, one 0 if NLC is 0) and
 * NZ_FLOW (NC) mark the entries of S, P and the drift (flow, and ⟨L_j⟩ on coupled components)
 * that are not identically zero. The run's K is K / sigma and its
 * noise kernel sigma · S.
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

/* `yes` if x < y, else `no`, in the vector registers (GCC, Clang: a compare and three bitwise
   operations); select_double's mask from an integer costs four times as many instructions. */
static inline double select_less(double x, double y, double yes, double no)
{
#if defined(__GNUC__)
    typedef double pair __attribute__((vector_size(16)));
    typedef long long mask_pair __attribute__((vector_size(16)));
    const mask_pair mask = (pair){x, 0.0} < (pair){y, 0.0};
    const mask_pair bits =
        ((mask_pair)(pair){yes, 0.0} & mask) | ((mask_pair)(pair){no, 0.0} & ~mask);
    return ((pair)bits)[0];
#else
    return select_double(x < y, yes, no);
#endif
}

/* 0.0 if x is finite, else NaN: sums of these test many values with one comparison and no
   branch (every step pays for its checks). */
static inline double finite_zero(double x)
{
    return x * 0.0;
}

/* The record dY_i = dW_i + 2⟨K_i⟩ dt with ⟨K_i⟩ = ½ Σ_j (σ⁺)_ij ⟨L_j⟩, σ⁺ = P / sigma. */
static inline void mean_measurements(const double *P, double inv_sigma, const double *mean_L,
                                     const double *w, double dt, double *dY)
{
    UNROLL
    for (int i = 0; i < M; i++) {
        double acc = 0.0;
        UNROLL
        for (int j = 0; j < NLC; j++)
            if (NZ_P[i * NLC + j])
                acc += P[i * NLC + j] * mean_L[j];
        dY[i] = w[i] + 2.0 * dt * (0.5 * inv_sigma * acc);
    }
}


/* exp x for |x| < 512, within 0.52 ulp, inline: x = k ln2 / N + r with N = 2^EXP_TABLE_BITS,
   exp x = 2^(k/N) exp r, 2^(k/N) from EXP_TABLE (written by codegen.py) and exp r from a
   polynomial of degree 5 on |r| ≤ ln2 / 2N (the method and coefficients of the exp of the
   ARM optimized routines, which glibc uses). A call to the C library's exp costs about 50
   instructions, as much as the rest of a diagonal step; |x| ≥ 512 and NaN still go there. */
static inline double cq_exp(double x)
{
    if (!(fabs(x) < 512.0))
        return exp(x);
    const double inv_ln2_n = 0x1.71547652b82fep0 * (1 << EXP_TABLE_BITS);
    const double neg_ln2_hi_n = -0x1.62e42fefa0000p-8, neg_ln2_lo_n = -0x1.cf79abc9e3b3ap-47;
    const double shift = 0x1.8p52; /* adding it rounds to an integer, kept in the low bits */
    double kd = inv_ln2_n * x + shift;
    uint64_t ki;
    memcpy(&ki, &kd, sizeof ki);
    kd -= shift;
    const double r = x + kd * neg_ln2_hi_n + kd * neg_ln2_lo_n;
    const uint64_t index = 2 * (ki % (1 << EXP_TABLE_BITS));
    const uint64_t scale_bits = EXP_TABLE[index + 1] + (ki << (52 - EXP_TABLE_BITS));
    double tail, scale;
    memcpy(&tail, &EXP_TABLE[index], sizeof tail);
    memcpy(&scale, &scale_bits, sizeof scale);
    const double r2 = r * r;
    const double tmp = tail + r + r2 * (0x1.ffffffffffdbdp-2 + r * 0x1.555555555543cp-3)
                       + r2 * r2 * (0x1.55555cf172b91p-5 + r * 0x1.1111167a4d017p-7);
    return scale + scale * tmp;
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

/* sin x and cos x for |x| < 2^20 inline, within about 1 ulp of |x|'s scale: x = n π/2 + r with
   π/2 in two parts (the first of 33 bits, so n · it is exact), then the sine and cosine
   polynomials of fdlibm's kernels on |r| ≤ π/4 and the quadrant n mod 4. A stored level costs
   one pair; the C library's sincos costs about 95 instructions. Larger |x| and NaN go there. */
static inline void cq_sincos(double x, double *sine, double *cosine)
{
    if (!(fabs(x) < 0x1p20)) {
        sine_cosine(x, sine, cosine);
        return;
    }
    const double shift = 0x1.8p52; /* adding it rounds to an integer, kept in the low bits */
    double nd = x * 0x1.45f306dc9c883p-1 + shift; /* x · 2/π */
    uint64_t n;
    memcpy(&n, &nd, sizeof n);
    nd -= shift;
    const double r = (x - nd * 0x1.921fb544p0) - nd * 0x1.0b4611a626331p-34;
    const double S1 = -1.66666666666666324348e-01, S2 = 8.33333333332248946124e-03,
                 S3 = -1.98412698298579493134e-04, S4 = 2.75573137070700676789e-06,
                 S5 = -2.50507602534068634195e-08, S6 = 1.58969099521155010221e-10;
    const double C1 = 4.16666666666666019037e-02, C2 = -1.38888888888741095749e-03,
                 C3 = 2.48015872894767294178e-05, C4 = -2.75573143513906633035e-07,
                 C5 = 2.08757232129817482790e-09, C6 = -1.13596475577881948265e-11;
    const double z = r * r, w = z * z;
    const double sine_tail = S2 + z * (S3 + z * S4) + z * w * (S5 + z * S6);
    const double s = r + z * r * (S1 + z * sine_tail);
    const double cosine_tail =
        z * (C1 + z * (C2 + z * C3)) + w * w * (C4 + z * (C5 + z * C6));
    const double half_z = 0.5 * z, one_less = 1.0 - half_z;
    const double c = one_less + (((1.0 - one_less) - half_z) + z * cosine_tail);
    const int odd = (int)(n & 1);
    const double a = select_double(odd, c, s), b = select_double(odd, s, c);
    *sine = select_double((int)(n & 2), -a, a);
    *cosine = select_double((int)((n + 1) & 2), -b, b);
}

static inline void store_quantum(const double *q, double *out)
{
#if DIAG && !DENSITY && !MEANFIELD
    UNROLL
    for (int a = 0; a < D; a++) {
        const double amplitude = sqrt(q[a]);
        double sine, cosine;
        cq_sincos(q[D + a], &sine, &cosine);
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
            cq_sincos(q[D * D + ab], &sine, &cosine);
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
