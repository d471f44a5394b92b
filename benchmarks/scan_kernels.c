/* Compiled kernels for benchmarks/bench_scan.py (chapter 12, "Linear recurrences and
 * parallel scans"). Plain C99, no dependencies, single-threaded; compiled at benchmark
 * time (gcc or cc, -O2) and called through ctypes. Arrays are row-major (T, H), float64.
 *
 * scan_loop      h_t = a_t * h_{t-1} + b_t from h_0 = 0: T - 1 dependent steps, each
 *                one multiply-add per channel. The sequential loop without an
 *                interpreter: the bound a scan on one core is measured against.
 * scan_blelloch  the same states by Blelloch's scan, the schedule of
 *                companion.scratch.scan.blelloch_scan (up-sweep, inclusive down-sweep),
 *                in place on copies of a and b: about twice the combines of the loop.
 * triad          out_i = a_i * s + b_i over the same T * H elements: the same loads,
 *                stores and multiply-adds as the loop, without the dependence between
 *                steps. What the memory system and the arithmetic units allow.
 */
#include <string.h>

void scan_loop(const double *a, const double *b, double *h, long T, long H)
{
    for (long j = 0; j < H; j++)
        h[j] = b[j];
    for (long t = 1; t < T; t++) {
        const double *at = a + t * H, *bt = b + t * H;
        const double *prev = h + (t - 1) * H;
        double *ht = h + t * H;
        for (long j = 0; j < H; j++)
            ht[j] = at[j] * prev[j] + bt[j];
    }
}

/* position r absorbs position l (l < r): (A_r, B_r) <- (A_r A_l, A_r B_l + B_r) */
static void absorb(double *A, double *B, long l, long r, long H)
{
    double *Ar = A + r * H, *Br = B + r * H;
    const double *Al = A + l * H, *Bl = B + l * H;
    for (long j = 0; j < H; j++) {
        Br[j] = Ar[j] * Bl[j] + Br[j];
        Ar[j] = Ar[j] * Al[j];
    }
}

void scan_blelloch(const double *a, const double *b, double *A, double *B, long T, long H)
{
    long s;
    memcpy(A, a, sizeof(double) * T * H);
    memcpy(B, b, sizeof(double) * T * H);
    for (s = 2; s / 2 < T; s *= 2)            /* up-sweep */
        for (long r = s - 1; r < T; r += s)
            absorb(A, B, r - s / 2, r, H);
    for (; s >= 2; s /= 2)                    /* down-sweep, inclusive */
        for (long r = s - 1 + s / 2; r < T; r += s)
            absorb(A, B, r - s / 2, r, H);
}

void triad(const double *a, const double *b, double *out, double s, long n)
{
    for (long i = 0; i < n; i++)
        out[i] = a[i] * s + b[i];
}
