/*
 * What the loops of every generated kernel share, the per-level one (run_loop.c) and the
 * table one (table_step.c): the rule that freezes and flags a trajectory, and the keyed noise
 * draw. Appended by codegen.py and codegen_tables.py after the generated part (which defines
 * KEYED_NOISE and, where it is 1, NumPy's ziggurat tables) and before the loop.
 */

#ifndef KEYED_NOISE
#define KEYED_NOISE 0
#endif

/* Whether a trajectory takes its step to z_new: 1 if z_new is inside the model's domain and
   the step is finite. Otherwise 0, and the trajectory is frozen at its last good state and
   flagged at `step`: status 1 (left_domain) if z_new left the domain, else 2 (non_finite). */
static inline int cq_accept(int inside, int finite, int8_t *status, int64_t *status_step,
                            int64_t step)
{
    if (inside && finite)
        return 1;
    *status = inside ? 2 : 1;
    *status_step = step;
    return 0;
}

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
