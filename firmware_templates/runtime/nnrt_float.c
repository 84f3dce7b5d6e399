/* float32 kernels (same im2col structure as the quantized path, accumulation in float). */
#include "nnrt.h"

static void im2col_f(const nnrt_conv_f_t *p, const float *in, int32_t g, int32_t pix, float *col)
{
    const int32_t cin_g = p->in_c / p->groups;
    const int32_t hw = p->in_h * p->in_w;
    const int32_t oy = pix / p->out_w, ox = pix - oy * p->out_w;
    const int32_t y0 = oy * p->s_h - p->p_h, x0 = ox * p->s_w - p->p_w;
    int32_t c, ky, kx;
    for (c = 0; c < cin_g; c++) {
        const float *plane = in + (g * cin_g + c) * hw;
        for (ky = 0; ky < p->k_h; ky++) {
            const int32_t iy = y0 + ky * p->d_h;
            for (kx = 0; kx < p->k_w; kx++) {
                const int32_t ix = x0 + kx * p->d_w;
                *col++ = (iy >= 0 && iy < p->in_h && ix >= 0 && ix < p->in_w) ? plane[iy * p->in_w + ix] : 0.0f;
            }
        }
    }
}

/* Activation bounds by bit pattern, so the common cases need no float compare (a soft-float
 * call each on cores without an FPU): none (-inf, +inf), ReLU [0, +inf), else general. */
enum { ACT_NONE, ACT_RELU, ACT_CLAMP };

static uint32_t f_bits(float f)
{
    uint32_t u;
    __builtin_memcpy(&u, &f, 4);
    return u;
}

static int act_kind(float lo, float hi)
{
    if (f_bits(hi) != 0x7F800000u) return ACT_CLAMP;
    if (f_bits(lo) == 0xFF800000u) return ACT_NONE;
    if (f_bits(lo) == 0u) return ACT_RELU;
    return ACT_CLAMP;
}

static inline __attribute__((always_inline)) float act(int kind, float v, float lo, float hi)
{
    if (kind == ACT_RELU) return (f_bits(v) & 0x80000000u) ? 0.0f : v; /* sign bit: v < 0 (or -0) */
    if (kind == ACT_CLAMP) return v < lo ? lo : (v > hi ? hi : v);
    return v;
}

/* Two output channels share one pass over the column, four columns per step: each input value
 * is loaded once per two MACs, the pointers fit in registers, and the two accumulators are
 * independent (the FPU's multiply-accumulates do not wait for each other). Per channel the
 * summation order is the plain one (bias, then k = 0..K-1). On an ARMv7E-M FPU the step is
 * assembly: one VLDM of four values per stream (1 + N cycles instead of 2 per VLDR) and eight
 * VFMAs; elsewhere it is the C loop below. */
#if defined(__ARM_ARCH_7EM__) && defined(__ARM_FP) && (__ARM_FP & 4)
static void dot2_f(const float *w0, int32_t K, const float *x, float *acc)
{
    const float *w1 = w0 + K;
    float a = acc[0], b = acc[1];
    int32_t steps = K >> 2, k;
    if (steps) {
        __asm__ volatile(
            "1:\n\t"
            "vldmia %[x]!, {s0-s3}\n\t"
            "vldmia %[w0]!, {s4-s7}\n\t"
            "vldmia %[w1]!, {s8-s11}\n\t"
            "vfma.f32 %[a], s4, s0\n\t"
            "vfma.f32 %[b], s8, s0\n\t"
            "vfma.f32 %[a], s5, s1\n\t"
            "vfma.f32 %[b], s9, s1\n\t"
            "vfma.f32 %[a], s6, s2\n\t"
            "vfma.f32 %[b], s10, s2\n\t"
            "vfma.f32 %[a], s7, s3\n\t"
            "vfma.f32 %[b], s11, s3\n\t"
            "subs %[n], %[n], #1\n\t"
            "bne 1b"
            : [a] "+t"(a), [b] "+t"(b), [x] "+r"(x), [w0] "+r"(w0), [w1] "+r"(w1), [n] "+r"(steps)
            :
            : "s0", "s1", "s2", "s3", "s4", "s5", "s6", "s7", "s8", "s9", "s10", "s11", "cc", "memory");
    }
    for (k = 0; k < (K & 3); k++) {
        a += w0[k] * x[k];
        b += w1[k] * x[k];
    }
    acc[0] = a;
    acc[1] = b;
}
#else
static void dot2_f(const float *w0, int32_t K, const float *x, float *acc)
{
    const float *w1 = w0 + K;
    float a = acc[0], b = acc[1];
    int32_t k = 0;
    for (; k + 4 <= K; k += 4) {
        const float x0 = x[k], x1 = x[k + 1], x2 = x[k + 2], x3 = x[k + 3];
        a += w0[k] * x0;
        b += w1[k] * x0;
        a += w0[k + 1] * x1;
        b += w1[k + 1] * x1;
        a += w0[k + 2] * x2;
        b += w1[k + 2] * x2;
        a += w0[k + 3] * x3;
        b += w1[k + 3] * x3;
    }
    for (; k < K; k++) {
        a += w0[k] * x[k];
        b += w1[k] * x[k];
    }
    acc[0] = a;
    acc[1] = b;
}
#endif

static float dot1_f(const float *w, int32_t K, const float *x, float acc)
{
    int32_t k = 0;
    for (; k + 2 <= K; k += 2) {
        acc += w[k] * x[k];
        acc += w[k + 1] * x[k + 1];
    }
    if (k < K) acc += w[k] * x[k];
    return acc;
}

/* Output pixels pix and pix + 1, CSR weights: both columns are gathered (the scratch holds two,
 * K apart) and each row is walked once for both, sharing its index and weight loads. Each
 * pixel's sum runs in the same order as the one-pixel loop, so the results are identical. */
static void csr_pixel_pair_f(const nnrt_conv_f_t *p, const float *in, float *out, float *c0, int32_t g,
                             int32_t pix, int32_t og, int32_t K, int32_t npix, int kind)
{
    const float *const c1 = c0 + K;
    int32_t i;
    im2col_f(p, in, g, pix, c0);
    im2col_f(p, in, g, pix + 1, c0 + K);
    for (i = 0; i < og; i++) {
        const int32_t o = g * og + i;
        int32_t start, end;
        nnrt_csr_span(p->wfmt, p->row, o, &start, &end);
        const float *v = p->w + start, *const ve = p->w + end;
        const uint16_t *ci = p->col + start;
        float s0 = p->bias ? p->bias[o] : 0.0f, s1 = s0;
        for (; v < ve; v++, ci++) {
            const float w = *v;
            const uint32_t k = *ci;
            s0 += w * c0[k];
            s1 += w * c1[k];
        }
        out[o * npix + pix] = act(kind, s0, p->act_min, p->act_max);
        out[o * npix + pix + 1] = act(kind, s1, p->act_min, p->act_max);
    }
}

void nnrt_conv_f(const nnrt_conv_f_t *p, const float *in, float *out, float *scratch)
{
    const int32_t cin_g = p->in_c / p->groups, og = p->out_c / p->groups;
    const int32_t K = cin_g * p->k_h * p->k_w;
    const int32_t npix = p->out_h * p->out_w;
    const int kind = act_kind(p->act_min, p->act_max);
    /* a fully connected layer (one output pixel of a 1x1, unpadded, ungrouped conv): the input
     * already is the column */
    const int direct = npix == 1 && p->k_h == 1 && p->k_w == 1 && p->p_h == 0 && p->p_w == 0 && p->groups == 1;
    int32_t g, pix, i;
    for (g = 0; g < p->groups; g++) {
        pix = 0;
        if (!direct && p->wfmt != NNRT_W_DENSE) { /* the planner gave CSR layers two columns */
            for (; pix + 1 < npix; pix += 2) {
                csr_pixel_pair_f(p, in, out, scratch, g, pix, og, K, npix, kind);
            }
        }
        for (; pix < npix; pix++) {
            const float *col = direct ? in : scratch;
            if (!direct) im2col_f(p, in, g, pix, scratch);
            i = 0;
            if (p->wfmt == NNRT_W_DENSE) {
                for (; i + 2 <= og; i += 2) {
                    const int32_t o = g * og + i;
                    float acc[2] = {p->bias ? p->bias[o] : 0.0f, p->bias ? p->bias[o + 1] : 0.0f};
                    dot2_f(p->w + o * K, K, col, acc);
                    out[o * npix + pix] = act(kind, acc[0], p->act_min, p->act_max);
                    out[(o + 1) * npix + pix] = act(kind, acc[1], p->act_min, p->act_max);
                }
            }
            for (; i < og; i++) {
                const int32_t o = g * og + i;
                float acc = p->bias ? p->bias[o] : 0.0f;
                if (p->wfmt == NNRT_W_DENSE) {
                    acc = dot1_f(p->w + o * K, K, col, acc);
                } else {
                    int32_t j, start, end;
                    nnrt_csr_span(p->wfmt, p->row, o, &start, &end);
                    for (j = start; j < end; j++) {
                        acc += p->w[j] * col[p->col[j]];
                    }
                }
                out[o * npix + pix] = act(kind, acc, p->act_min, p->act_max);
            }
        }
    }
}

static void pool_f(const nnrt_pool_t *p, const float *in, float *out, int32_t is_max)
{
    int32_t c, oy, ox, y, x, o = 0;
    for (c = 0; c < p->c; c++) {
        const float *plane = in + c * p->in_h * p->in_w;
        for (oy = 0; oy < p->out_h; oy++) {
            for (ox = 0; ox < p->out_w; ox++) {
                const int32_t ys = oy * p->s_h - p->p_h, xs = ox * p->s_w - p->p_w;
                const int32_t y0 = ys < 0 ? 0 : ys, y1 = ys + p->k_h > p->in_h ? p->in_h : ys + p->k_h;
                const int32_t x0 = xs < 0 ? 0 : xs, x1 = xs + p->k_w > p->in_w ? p->in_w : xs + p->k_w;
                float acc = is_max ? plane[y0 * p->in_w + x0] : 0.0f;
                for (y = y0; y < y1; y++) {
                    for (x = x0; x < x1; x++) {
                        const float v = plane[y * p->in_w + x];
                        if (is_max) {
                            acc = v > acc ? v : acc;
                        } else {
                            acc += v;
                        }
                    }
                }
                out[o++] = is_max ? acc : acc / (float)((y1 - y0) * (x1 - x0));
            }
        }
    }
}

void nnrt_maxpool_f(const nnrt_pool_t *p, const float *in, float *out)
{
    pool_f(p, in, out, 1);
}

void nnrt_avgpool_f(const nnrt_pool_t *p, const float *in, float *out)
{
    pool_f(p, in, out, 0);
}

void nnrt_add_f(int32_t n, const float *a, const float *b, float *out, float lo, float hi)
{
    int32_t i;
    for (i = 0; i < n; i++) {
        const float v = a[i] + b[i];
        out[i] = v < lo ? lo : (v > hi ? hi : v);
    }
}

void nnrt_clamp_f(int32_t n, const float *in, float *out, float lo, float hi)
{
    int32_t i;
    for (i = 0; i < n; i++) {
        const float v = in[i];
        out[i] = v < lo ? lo : (v > hi ? hi : v);
    }
}
