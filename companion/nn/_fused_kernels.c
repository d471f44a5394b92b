/* Element-wise parts of one LSTM time step, forward and backward, for companion.nn.fused.
 *
 * companion/nn/fused.py compiles this file with the machine's C compiler the first time
 * the fused engine runs an LSTM (see _compiled_kernels there) and calls it through
 * ctypes. The batched matrix products stay with torch; what is here replaces the dozen
 * small torch operations per step that the gate arithmetic otherwise takes, each of
 * which reads and writes the whole gate tensor and pays a fixed dispatch cost.
 *
 * Layout (feature-major, one member after another, as in fused.py): the gates of
 * member m are a[m][4][H][N] in torch's order i, f, g, o; every state is s[m][H][N].
 * The g block's pre-activation arrives doubled (its weights were doubled), so that
 * tanh(a_g) = 2 sigmoid(2 a_g) - 1 comes out of the same sigmoid as the other gates.
 *
 * The exponential is a polynomial written here, not libm's, so that the compiler can
 * vectorise the loops: Cody-Waite range reduction to |r| <= ln(2)/2, then the Taylor
 * polynomial of degree 13 (float64, truncation below 1e-17 relative) or 7 (float32,
 * below 1e-8), scaled by 2^n through the exponent bits. The argument is clamped to the
 * range where 2^n is a normal number, which changes nothing that a sigmoid can show,
 * and a NaN input gives a NaN sigmoid.
 *
 * With GCC, each loop is compiled three times (AVX-512, AVX2 and plain x86-64) and the
 * loader picks the one the CPU runs (target_clones); fused.py uses these kernels only
 * where kernels_vectorized() reports at least AVX2, and otherwise keeps torch's kernels.
 */
#include <stdint.h>
#include <string.h>

#ifdef COMPANION_CLONES
#define VECTORISED __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define VECTORISED
#endif

static inline double exp_f64(double z) {
    z = z < -708.0 ? -708.0 : (z > 709.0 ? 709.0 : z);
    const double shift = 6755399441055744.0; /* 1.5 * 2^52: adding it rounds to an integer */
    double t = z * 1.4426950408889634 + shift;
    double n = t - shift;
    double r = z - n * 0.6931471805598903 - n * 5.497923018708371e-14;
    double p = 1.0 / 6227020800.0;
    p = p * r + 1.0 / 479001600.0;
    p = p * r + 1.0 / 39916800.0;
    p = p * r + 1.0 / 3628800.0;
    p = p * r + 1.0 / 362880.0;
    p = p * r + 1.0 / 40320.0;
    p = p * r + 1.0 / 5040.0;
    p = p * r + 1.0 / 720.0;
    p = p * r + 1.0 / 120.0;
    p = p * r + 1.0 / 24.0;
    p = p * r + 1.0 / 6.0;
    p = p * r + 0.5;
    p = p * r + 1.0;
    p = p * r + 1.0;
    int64_t bits_t, bits_shift;
    memcpy(&bits_t, &t, sizeof t);
    memcpy(&bits_shift, &shift, sizeof shift);
    int64_t e = ((bits_t - bits_shift) + 1023) << 52; /* 2^n as a float64 bit pattern */
    double scale;
    memcpy(&scale, &e, sizeof e);
    return p * scale;
}

static inline float exp_f32(float z) {
    z = z < -87.0f ? -87.0f : (z > 88.0f ? 88.0f : z);
    const float shift = 12582912.0f; /* 1.5 * 2^23 */
    float t = z * 1.44269504f + shift;
    float n = t - shift;
    float r = z - n * 0.693145752f - n * 1.42860677e-06f;
    float p = 1.0f / 5040.0f;
    p = p * r + 1.0f / 720.0f;
    p = p * r + 1.0f / 120.0f;
    p = p * r + 1.0f / 24.0f;
    p = p * r + 1.0f / 6.0f;
    p = p * r + 0.5f;
    p = p * r + 1.0f;
    p = p * r + 1.0f;
    int32_t bits_t, bits_shift;
    memcpy(&bits_t, &t, sizeof t);
    memcpy(&bits_shift, &shift, sizeof shift);
    int32_t e = ((bits_t - bits_shift) + 127) << 23;
    float scale;
    memcpy(&scale, &e, sizeof e);
    return p * scale;
}

static inline double sigmoid_f64(double v) {
    double s = 1.0 / (1.0 + exp_f64(-v));
    return v != v ? v : s;
}

static inline float sigmoid_f32(float v) {
    float s = 1.0f / (1.0f + exp_f32(-v));
    return v != v ? v : s;
}

/* Forward, one step. In: a (M, 4H, N) pre-activations (g doubled), c_prev (M, H, N).
 * Out: a overwritten by the four sigmoids s_i, s_f, s_g, s_o; c = s_f c_prev + s_i g
 * with g = 2 s_g - 1; tc = tanh(c); h = s_o tc, written at h + m * h_stride (h is a
 * block of a larger buffer: one member's rows are h_stride numbers apart). */
#define LSTM_FORWARD(NAME, REAL, SIG)                                                      \
    VECTORISED void NAME(REAL *restrict a, const REAL *restrict c_prev, REAL *restrict c,   \
                         REAL *restrict tc, REAL *restrict h, long M, long HN,              \
                         long h_stride) {                                                   \
        for (long m = 0; m < M; m++) {                                                      \
            REAL *ai = a + m * 4 * HN, *af = ai + HN, *ag = af + HN, *ao = ag + HN;         \
            const REAL *cp = c_prev + m * HN;                                               \
            REAL *cm = c + m * HN, *tm = tc + m * HN, *hm = h + m * h_stride;               \
            for (long k = 0; k < HN; k++) {                                                 \
                REAL si = SIG(ai[k]), sf = SIG(af[k]), sg = SIG(ag[k]), so = SIG(ao[k]);    \
                ai[k] = si;                                                                 \
                af[k] = sf;                                                                 \
                ag[k] = sg;                                                                 \
                ao[k] = so;                                                                 \
                REAL cc = sf * cp[k] + si * ((REAL)2 * sg - (REAL)1);                       \
                REAL t = (REAL)2 * SIG((REAL)2 * cc) - (REAL)1;                             \
                cm[k] = cc;                                                                 \
                tm[k] = t;                                                                  \
                hm[k] = so * t;                                                             \
            }                                                                               \
        }                                                                                   \
    }

/* Backward, one step. In: a (the sigmoids of the forward step), c_prev, tc, dh (the
 * gradient reaching h_t), dc (the gradient reaching c_t from step t+1, already through
 * that step's forget gate). Out: d (M, 4H, N), the gradient of the (true, undoubled)
 * pre-activations; dc overwritten by the gradient reaching c_{t-1}. */
#define LSTM_BACKWARD(NAME, REAL)                                                          \
    VECTORISED void NAME(const REAL *restrict a, const REAL *restrict c_prev,               \
                         const REAL *restrict tc, const REAL *restrict dh,                  \
                         REAL *restrict dc, REAL *restrict d, long M, long HN) {            \
        for (long m = 0; m < M; m++) {                                                      \
            const REAL *ai = a + m * 4 * HN, *af = ai + HN, *ag = af + HN, *ao = ag + HN;   \
            const REAL *cp = c_prev + m * HN, *tm = tc + m * HN, *dhm = dh + m * HN;        \
            REAL *dcm = dc + m * HN;                                                        \
            REAL *di = d + m * 4 * HN, *df = di + HN, *dg = df + HN, *dout = dg + HN;       \
            for (long k = 0; k < HN; k++) {                                                 \
                REAL si = ai[k], sf = af[k], sg = ag[k], so = ao[k], t = tm[k];             \
                REAL g = (REAL)2 * sg - (REAL)1;                                            \
                REAL dct = dcm[k] + dhm[k] * so * ((REAL)1 - t * t);                        \
                dout[k] = dhm[k] * t * so * ((REAL)1 - so);                                 \
                di[k] = dct * g * si * ((REAL)1 - si);                                      \
                df[k] = dct * cp[k] * sf * ((REAL)1 - sf);                                  \
                dg[k] = dct * si * (REAL)4 * sg * ((REAL)1 - sg);                           \
                dcm[k] = dct * sf;                                                          \
            }                                                                               \
        }                                                                                   \
    }

LSTM_FORWARD(lstm_forward_f64, double, sigmoid_f64)
LSTM_FORWARD(lstm_forward_f32, float, sigmoid_f32)
LSTM_BACKWARD(lstm_backward_f64, double)
LSTM_BACKWARD(lstm_backward_f32, float)

/* 1 when the CPU runs the AVX2 or AVX-512 clone of the loops above, else 0. */
int kernels_vectorized(void) {
#if defined(COMPANION_CLONES) && (defined(__x86_64__) || defined(__i386__))
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") ? 1 : 0;
#else
    return 0;
#endif
}
