/* Quantized conv2d / linear (uint8 affine, int8 affine, qmn) as im2col + matrix-vector products.
 * One column of K = Cin/groups*kh*kw int16 values (input minus its zero point) is gathered per
 * output pixel, then every output channel of the group is a dot product with its weight row.
 * With NNRT_USE_DSP and an ARMv7E-M core, weights in the DSP layout (NNRT_W_DSP) run through
 * SMLAD on two rows x two pixels at a time; integer sums are order independent, so the result is
 * bit-exact with the portable loop (which also reads the DSP layout, slowly, on other cores). */
#include "nnrt.h"
#include "nnrt_fixed.h"

#if defined(NNRT_USE_DSP) && NNRT_USE_DSP && defined(__ARM_FEATURE_DSP)
#define NNRT_DSP 1
#include <arm_acle.h>
#else
#define NNRT_DSP 0
#endif

static void im2col_q(const nnrt_conv_q_t *p, const void *in, int32_t g, int32_t pix, int16_t *col)
{
    const int32_t cin_g = p->in_c / p->groups;
    const int32_t hw = p->in_h * p->in_w;
    const int32_t oy = pix / p->out_w, ox = pix - oy * p->out_w;
    const int32_t y0 = oy * p->s_h - p->p_h, x0 = ox * p->s_w - p->p_w;
    const int32_t zp = p->in_zp;
    int32_t c, ky, kx;
    for (c = 0; c < cin_g; c++) {
        const int32_t base = (g * cin_g + c) * hw;
        for (ky = 0; ky < p->k_h; ky++) {
            const int32_t iy = y0 + ky * p->d_h;
            if (iy < 0 || iy >= p->in_h) {
                for (kx = 0; kx < p->k_w; kx++) {
                    *col++ = 0;
                }
                continue;
            }
            if (p->act_signed) {
                const int8_t *src = (const int8_t *)in + base + iy * p->in_w;
                for (kx = 0; kx < p->k_w; kx++) {
                    const int32_t ix = x0 + kx * p->d_w;
                    *col++ = (ix >= 0 && ix < p->in_w) ? (int16_t)(src[ix] - zp) : 0;
                }
            } else {
                const uint8_t *src = (const uint8_t *)in + base + iy * p->in_w;
                for (kx = 0; kx < p->k_w; kx++) {
                    const int32_t ix = x0 + kx * p->d_w;
                    *col++ = (ix >= 0 && ix < p->in_w) ? (int16_t)(src[ix] - zp) : 0;
                }
            }
        }
    }
}

/* Requantization parameters copied out of the descriptor, so that the output stores (through
 * byte pointers, which may alias anything) do not force the compiler to reload them. The clamp
 * bounds are relative to the output zero point: clamp(v + zp, lo, hi) == clamp(v, lo-zp, hi-zp) + zp,
 * which keeps the arithmetic in 32 bits. */
typedef struct {
    int32_t pow2, ch_mask, out_zp, lo, hi;
    const int32_t *mult, *shift;
} rq_t;

static inline rq_t rq_of(const nnrt_conv_q_t *p)
{
    rq_t r;
    r.pow2 = p->rq == NNRT_RQ_POW2;
    r.ch_mask = p->per_channel ? -1 : 0;
    r.out_zp = p->out_zp;
    r.lo = p->act_min - p->out_zp;
    r.hi = p->act_max - p->out_zp;
    r.mult = p->mult;
    r.shift = p->shift;
    return r;
}

/* int8 and uint8 outputs are both the low byte of the clamped value. */
static inline void store_q(rq_t r, void *out, int32_t o, int32_t idx, int32_t acc)
{
    int32_t v;
    if (r.pow2) {
        v = nnrt_pow2_shift32(acc, r.shift[0]);
    } else {
        const int32_t i = o & r.ch_mask;
        v = nnrt_mbqm_pos(acc, r.mult[i], r.shift[i]);
    }
    v = v < r.lo ? r.lo : (v > r.hi ? r.hi : v);
    ((uint8_t *)out)[idx] = (uint8_t)(v + r.out_zp);
}

/* Byte offset of weight (o, k) in the DSP layout (see nnrt.h, NNRT_W_DSP). */
static int32_t dsp_index(const nnrt_conv_q_t *p, int32_t o, int32_t k, int32_t kp)
{
    const int32_t og = p->out_c / p->groups;
    const int32_t i = o % og, second = i & 1;
    const int32_t r = k & 3, pr = r ^ (3 * ((r ^ (r >> 1)) & 1)); /* 0 2 1 3 */
    if ((i | 1) < og) {
        return (o - second) * kp + (k >> 2) * 8 + second * 4 + pr;
    }
    return o * kp + (k & ~3) + pr;
}

static int32_t dot_dense(const nnrt_conv_q_t *p, int32_t o, const int16_t *col, int32_t K)
{
    int32_t sum = 0, k;
    if (p->wfmt == NNRT_W_DSP) { /* DSP layout on a core without DSP: slow but exact */
        const int32_t kp = (K + 3) & ~3;
        for (k = 0; k < K; k++) {
            const int32_t idx = dsp_index(p, o, k, kp);
            const int32_t w = p->w_signed ? (int32_t)((const int8_t *)p->w)[idx]
                                          : (int32_t)((const uint8_t *)p->w)[idx] - p->w_zp;
            sum += w * col[k];
        }
    } else if (p->w_signed) {
        const int8_t *w = (const int8_t *)p->w + o * K;
        for (k = 0; k < K; k++) {
            sum += (int32_t)w[k] * col[k];
        }
    } else {
        const uint8_t *w = (const uint8_t *)p->w + o * K;
        const int32_t zp = p->w_zp;
        for (k = 0; k < K; k++) {
            sum += ((int32_t)w[k] - zp) * col[k];
        }
    }
    return sum;
}

static int32_t dot_csr(const nnrt_conv_q_t *p, int32_t o, const int16_t *col)
{
    int32_t sum = 0, j, start, end;
    if (p->wfmt == NNRT_W_CSR16) {
        start = ((const uint16_t *)p->row)[o];
        end = ((const uint16_t *)p->row)[o + 1];
    } else {
        start = (int32_t)((const uint32_t *)p->row)[o];
        end = (int32_t)((const uint32_t *)p->row)[o + 1];
    }
    if (p->w_signed) {
        const int8_t *v = (const int8_t *)p->w;
        for (j = start; j < end; j++) {
            sum += (int32_t)v[j] * col[p->col[j]];
        }
    } else {
        const uint8_t *v = (const uint8_t *)p->w;
        const int32_t zp = p->w_zp;
        for (j = start; j < end; j++) {
            sum += ((int32_t)v[j] - zp) * col[p->col[j]];
        }
    }
    return sum;
}

#if NNRT_DSP
/* Two pixels' columns interleaved for mac_*x2, zero padded to kp: per block of four k the int16
 * pairs (c0[k], c0[k+1]) (c1[k], c1[k+1]) (c0[k+2], c0[k+3]) (c1[k+2], c1[k+3]). With pix1 < 0
 * one pixel in natural order. Rows that lie fully inside the input skip the bounds checks. */
#define DEFINE_IM2COL_DSP(NAME, T)                                                                    \
    static void NAME(const nnrt_conv_q_t *p, const T *in, int32_t g, int32_t pix0, int32_t pix1,      \
                     int16_t *col, int32_t kp)                                                       \
    {                                                                                                \
        const int32_t cin_g = p->in_c / p->groups, H = p->in_h, W = p->in_w, hw = H * W;             \
        const int32_t kh = p->k_h, kw = p->k_w, dh = p->d_h, dw = p->d_w, zp = p->in_zp;            \
        const int32_t two = pix1 >= 0, span = (kw - 1) * dw;                                         \
        const int32_t oy0 = pix0 / p->out_w, oy1 = two ? pix1 / p->out_w : oy0;                      \
        const int32_t y0 = oy0 * p->s_h - p->p_h, x0 = (pix0 - oy0 * p->out_w) * p->s_w - p->p_w;    \
        const int32_t y1 = oy1 * p->s_h - p->p_h;                                                    \
        const int32_t x1 = two ? (pix1 - oy1 * p->out_w) * p->s_w - p->p_w : x0;                     \
        const int32_t cols_in = x0 >= 0 && x0 + span < W && x1 >= 0 && x1 + span < W;               \
        const int32_t rows_in = y0 >= 0 && y0 + (kh - 1) * dh < H && y1 >= 0 && y1 + (kh - 1) * dh < H; \
        int32_t c, ky, kx, k = 0;                                                                    \
        int16_t *d = col;                                                                            \
        if (kh == 1 && kw == 1 && cols_in && rows_in) { /* pointwise / linear: one strided walk */ \
            const T *pa = in + g * cin_g * hw + y0 * W + x0, *pb = in + g * cin_g * hw + y1 * W + x1; \
            if (two) {                                                                               \
                for (c = 0; c + 1 < cin_g; c += 2, pa += 2 * hw, pb += 2 * hw, d += 4) {             \
                    d[0] = (int16_t)(pa[0] - zp);                                                    \
                    d[1] = (int16_t)(pa[hw] - zp);                                                   \
                    d[2] = (int16_t)(pb[0] - zp);                                                    \
                    d[3] = (int16_t)(pb[hw] - zp);                                                   \
                }                                                                                    \
                if (c < cin_g) {                                                                     \
                    d[0] = (int16_t)(pa[0] - zp);                                                    \
                    d[2] = (int16_t)(pb[0] - zp);                                                    \
                    d += 1;                                                                          \
                }                                                                                    \
            } else {                                                                                 \
                for (c = 0; c < cin_g; c++, pa += hw) {                                              \
                    *d++ = (int16_t)(pa[0] - zp);                                                    \
                }                                                                                    \
            }                                                                                        \
            k = cin_g;                                                                               \
        } else if (cols_in && rows_in) { /* whole window inside: pointer walks only */               \
            const T *pa = in + g * cin_g * hw + y0 * W + x0, *pb = in + g * cin_g * hw + y1 * W + x1; \
            const int32_t rstep = dh * W, kwd = kw * dw;                                             \
            int32_t odd = 0;                                                                         \
            for (c = 0; c < cin_g; c++, pa += hw, pb += hw) {                                        \
                const T *ra = pa, *rb = pb;                                                          \
                for (ky = 0; ky < kh; ky++, ra += rstep, rb += rstep) {                              \
                    if (two) {                                                                       \
                        for (kx = 0; kx < kwd; kx += dw) {                                           \
                            d[0] = (int16_t)(ra[kx] - zp);                                           \
                            d[2] = (int16_t)(rb[kx] - zp);                                           \
                            d += 1 + odd;                                                            \
                            odd ^= 2;                                                                \
                        }                                                                            \
                    } else {                                                                         \
                        for (kx = 0; kx < kwd; kx += dw) {                                           \
                            *d++ = (int16_t)(ra[kx] - zp);                                           \
                        }                                                                            \
                    }                                                                                \
                }                                                                                    \
            }                                                                                        \
            k = cin_g * kh * kw;                                                                     \
        }                                                                                            \
        for (c = k ? cin_g : 0; c < cin_g; c++) {                                                    \
            const T *plane = in + (g * cin_g + c) * hw;                                              \
            for (ky = 0; ky < kh; ky++) {                                                            \
                const int32_t iya = y0 + ky * dh, iyb = y1 + ky * dh;                                \
                const int32_t ina = (uint32_t)iya < (uint32_t)H, inb = (uint32_t)iyb < (uint32_t)H;  \
                const T *ra = plane + iya * W + x0, *rb = plane + iyb * W + x1;                      \
                if (cols_in && ina && inb) {                                                         \
                    if (two) {                                                                       \
                        for (kx = 0; kx < kw; kx++, k++) {                                           \
                            d[0] = (int16_t)(ra[kx * dw] - zp);                                      \
                            d[2] = (int16_t)(rb[kx * dw] - zp);                                      \
                            d += 1 + ((k & 1) << 1);                                                 \
                        }                                                                            \
                    } else {                                                                         \
                        for (kx = 0; kx < kw; kx++, k++) {                                           \
                            *d++ = (int16_t)(ra[kx * dw] - zp);                                      \
                        }                                                                            \
                    }                                                                                \
                    continue;                                                                        \
                }                                                                                    \
                for (kx = 0; kx < kw; kx++, k++) {                                                   \
                    const int32_t ixa = x0 + kx * dw, ixb = x1 + kx * dw;                            \
                    const int32_t va = (ina && (uint32_t)ixa < (uint32_t)W) ? ra[kx * dw] - zp : 0;  \
                    if (two) {                                                                       \
                        d[0] = (int16_t)va;                                                          \
                        d[2] = (int16_t)((inb && (uint32_t)ixb < (uint32_t)W) ? rb[kx * dw] - zp : 0); \
                        d += 1 + ((k & 1) << 1);                                                     \
                    } else {                                                                         \
                        *d++ = (int16_t)va;                                                          \
                    }                                                                                \
                }                                                                                    \
            }                                                                                        \
        }                                                                                            \
        for (; k < kp; k++) {                                                                        \
            if (two) {                                                                               \
                d[0] = 0;                                                                            \
                d[2] = 0;                                                                            \
                d += 1 + ((k & 1) << 1);                                                             \
            } else {                                                                                 \
                *d++ = 0;                                                                            \
            }                                                                                        \
        }                                                                                            \
    }

DEFINE_IM2COL_DSP(im2col_dsp_s8, int8_t)
DEFINE_IM2COL_DSP(im2col_dsp_u8, uint8_t)

static void im2col_dsp(const nnrt_conv_q_t *p, const void *in, int32_t g, int32_t pix0, int32_t pix1,
                       int16_t *col, int32_t kp)
{
    if (p->act_signed) {
        im2col_dsp_s8(p, (const int8_t *)in, g, pix0, pix1, col, kp);
    } else {
        im2col_dsp_u8(p, (const uint8_t *)in, g, pix0, pix1, col, kp);
    }
}

static inline uint32_t ld32(const void *p)
{
    uint32_t v;
    __builtin_memcpy(&v, __builtin_assume_aligned(p, 4), 4);
    return v;
}

static inline int32_t sxtb16_ror8(uint32_t x)
{
    int32_t r;
    __asm__("sxtb16 %0, %1, ror #8" : "=r"(r) : "r"(x));
    return r;
}

static inline uint32_t uxtb16_ror8(uint32_t x)
{
    uint32_t r;
    __asm__("uxtb16 %0, %1, ror #8" : "=r"(r) : "r"(x));
    return r;
}

/* 4 weight bytes in DSP order (w0 w2 w1 w3) -> int16 pairs (w0, w1) and (w2, w3). */
#define LO_S(w) ((int32_t)__sxtb16(w))
#define HI_S(w) sxtb16_ror8(w)
#define LO_U(w) ((int32_t)__ssub16((int32_t)__uxtb16(w), zz))
#define HI_U(w) ((int32_t)__ssub16((int32_t)uxtb16_ror8(w), zz))

/* Row pair (interleaved) x two pixels (interleaved): acc = a0 a1 b0 b1. Unrolled twice. */
#define STEP_2X2(LO, HI)                                                                          \
    do {                                                                                       \
        const uint32_t wa = ld32(w), wb = ld32(w + 4);                                         \
        const int32_t x00 = (int32_t)ld32(col), x10 = (int32_t)ld32(col + 2);                   \
        const int32_t x01 = (int32_t)ld32(col + 4), x11 = (int32_t)ld32(col + 6);               \
        int32_t lo = LO(wa), hi = HI(wa);                                                      \
        w += 8;                                                                                \
        col += 8;                                                                              \
        a0 = __smlad(lo, x00, a0);                                                             \
        a1 = __smlad(lo, x10, a1);                                                             \
        a0 = __smlad(hi, x01, a0);                                                             \
        a1 = __smlad(hi, x11, a1);                                                             \
        lo = LO(wb);                                                                           \
        hi = HI(wb);                                                                           \
        b0 = __smlad(lo, x00, b0);                                                             \
        b1 = __smlad(lo, x10, b1);                                                             \
        b0 = __smlad(hi, x01, b0);                                                             \
        b1 = __smlad(hi, x11, b1);                                                             \
    } while (0)

#define DEFINE_2X2(NAME, LO, HI)                                                                  \
    static void NAME(const uint8_t *w, const int16_t *col, int32_t kp, int32_t zz, int32_t *acc) \
    {                                                                                          \
        int32_t a0 = acc[0], a1 = acc[1], b0 = acc[2], b1 = acc[3];                             \
        int32_t n = kp >> 3;                                                                   \
        (void)zz;                                                                              \
        if (kp & 4) {                                                                          \
            STEP_2X2(LO, HI);                                                                  \
        }                                                                                      \
        while (n-- > 0) {                                                                      \
            STEP_2X2(LO, HI);                                                                  \
            STEP_2X2(LO, HI);                                                                  \
        }                                                                                      \
        acc[0] = a0;                                                                           \
        acc[1] = a1;                                                                           \
        acc[2] = b0;                                                                           \
        acc[3] = b1;                                                                           \
    }

/* Row pair (interleaved) x one pixel (natural): acc = a b. Unrolled twice. */
#define STEP_2X1(LO, HI)                                                                          \
    do {                                                                                       \
        const uint32_t wa = ld32(w), wb = ld32(w + 4);                                         \
        const int32_t x0 = (int32_t)ld32(col), x1 = (int32_t)ld32(col + 2);                     \
        w += 8;                                                                                \
        col += 4;                                                                              \
        a = __smlad(LO(wa), x0, a);                                                            \
        a = __smlad(HI(wa), x1, a);                                                            \
        b = __smlad(LO(wb), x0, b);                                                            \
        b = __smlad(HI(wb), x1, b);                                                            \
    } while (0)

#define DEFINE_2X1(NAME, LO, HI)                                                                  \
    static void NAME(const uint8_t *w, const int16_t *col, int32_t kp, int32_t zz, int32_t *acc) \
    {                                                                                          \
        int32_t a = acc[0], b = acc[1];                                                        \
        int32_t n = kp >> 3;                                                                   \
        (void)zz;                                                                              \
        if (kp & 4) {                                                                          \
            STEP_2X1(LO, HI);                                                                  \
        }                                                                                      \
        while (n-- > 0) {                                                                      \
            STEP_2X1(LO, HI);                                                                  \
            STEP_2X1(LO, HI);                                                                  \
        }                                                                                      \
        acc[0] = a;                                                                            \
        acc[1] = b;                                                                            \
    }

/* Single row x two pixels (interleaved): acc = a0 a1. */
#define DEFINE_1X2(NAME, LO, HI)                                                                  \
    static void NAME(const uint8_t *w, const int16_t *col, int32_t kp, int32_t zz, int32_t *acc) \
    {                                                                                          \
        int32_t a0 = acc[0], a1 = acc[1];                                                      \
        const int16_t *end = col + 2 * kp;                                                     \
        (void)zz;                                                                              \
        while (col < end) {                                                                    \
            const uint32_t wa = ld32(w);                                                       \
            const int32_t lo = LO(wa), hi = HI(wa);                                            \
            a0 = __smlad(lo, (int32_t)ld32(col), a0);                                          \
            a1 = __smlad(lo, (int32_t)ld32(col + 2), a1);                                      \
            a0 = __smlad(hi, (int32_t)ld32(col + 4), a0);                                      \
            a1 = __smlad(hi, (int32_t)ld32(col + 6), a1);                                      \
            w += 4;                                                                            \
            col += 8;                                                                          \
        }                                                                                      \
        acc[0] = a0;                                                                           \
        acc[1] = a1;                                                                           \
    }

/* Single row x one pixel. */
#define DEFINE_1X1(NAME, LO, HI)                                                                  \
    static void NAME(const uint8_t *w, const int16_t *col, int32_t kp, int32_t zz, int32_t *acc) \
    {                                                                                          \
        int32_t a = acc[0];                                                                    \
        const int16_t *end = col + kp;                                                         \
        (void)zz;                                                                              \
        while (col < end) {                                                                    \
            const uint32_t wa = ld32(w);                                                       \
            a = __smlad(LO(wa), (int32_t)ld32(col), a);                                        \
            a = __smlad(HI(wa), (int32_t)ld32(col + 2), a);                                    \
            w += 4;                                                                            \
            col += 4;                                                                          \
        }                                                                                      \
        acc[0] = a;                                                                            \
    }

#if defined(__OPTIMIZE__)
/* The 2x2 kernels in inline assembly: GCC interleaves the loads with the SMLADs otherwise, which
 * costs the M4 its load pipelining; LDRD keeps three 64-bit loads per 16 MACs. (At -O0 there are
 * not enough free registers, so the C version below is used.) */
#define ASM_2X2_S8                                \
    "ldrd %[x00], %[x10], [%[c]], #8\n\t"         \
    "ldrd %[x01], %[x11], [%[c]], #8\n\t"         \
    "ldrd %[wa], %[wb], [%[w]], #8\n\t"           \
    "sxtb16 %[t], %[wa]\n\t"                      \
    "smlad %[a0], %[t], %[x00], %[a0]\n\t"        \
    "smlad %[a1], %[t], %[x10], %[a1]\n\t"        \
    "sxtb16 %[t], %[wa], ror #8\n\t"              \
    "smlad %[a0], %[t], %[x01], %[a0]\n\t"        \
    "smlad %[a1], %[t], %[x11], %[a1]\n\t"        \
    "sxtb16 %[t], %[wb]\n\t"                      \
    "smlad %[b0], %[t], %[x00], %[b0]\n\t"        \
    "smlad %[b1], %[t], %[x10], %[b1]\n\t"        \
    "sxtb16 %[t], %[wb], ror #8\n\t"              \
    "smlad %[b0], %[t], %[x01], %[b0]\n\t"        \
    "smlad %[b1], %[t], %[x11], %[b1]\n\t"

#define ASM_2X2_U8_ROW(W, A, B)                   \
    "ldr %[wa], [%[w]], #4\n\t"                   \
    "uxtb16 %[t], %[wa]\n\t"                      \
    "ssub16 %[t], %[t], %[zz]\n\t"                \
    "smlad %[" A "], %[t], %[x00], %[" A "]\n\t"  \
    "smlad %[" B "], %[t], %[x10], %[" B "]\n\t"  \
    "uxtb16 %[t], %[wa], ror #8\n\t"              \
    "ssub16 %[t], %[t], %[zz]\n\t"                \
    "smlad %[" A "], %[t], %[x01], %[" A "]\n\t"  \
    "smlad %[" B "], %[t], %[x11], %[" B "]\n\t"

#define ASM_2X2_U8                                \
    "ldrd %[x00], %[x10], [%[c]], #8\n\t"         \
    "ldrd %[x01], %[x11], [%[c]], #8\n\t"         \
    ASM_2X2_U8_ROW(w, "a0", "a1")                 \
    ASM_2X2_U8_ROW(w, "b0", "b1")

static void mac_2x2_s8(const uint8_t *w, const int16_t *col, int32_t kp, int32_t zz, int32_t *acc)
{
    int32_t a0 = acc[0], a1 = acc[1], b0 = acc[2], b1 = acc[3];
    int32_t n = kp >> 3;
    uint32_t x00, x10, x01, x11, wa, wb, t;
    (void)zz;
    if (kp & 4) {
        __asm__ volatile(ASM_2X2_S8
                         : [a0] "+r"(a0), [a1] "+r"(a1), [b0] "+r"(b0), [b1] "+r"(b1), [w] "+r"(w), [c] "+r"(col),
                           [x00] "=&r"(x00), [x10] "=&r"(x10), [x01] "=&r"(x01), [x11] "=&r"(x11), [wa] "=&r"(wa),
                           [wb] "=&r"(wb), [t] "=&r"(t)
                         :
                         : "memory");
    }
    if (n > 0) {
        __asm__ volatile("1:\n\t" ASM_2X2_S8 ASM_2X2_S8 "subs %[n], %[n], #1\n\tbne 1b\n\t"
                         : [a0] "+r"(a0), [a1] "+r"(a1), [b0] "+r"(b0), [b1] "+r"(b1), [w] "+r"(w), [c] "+r"(col),
                           [n] "+r"(n), [x00] "=&r"(x00), [x10] "=&r"(x10), [x01] "=&r"(x01), [x11] "=&r"(x11),
                           [wa] "=&r"(wa), [wb] "=&r"(wb), [t] "=&r"(t)
                         :
                         : "cc", "memory");
    }
    acc[0] = a0;
    acc[1] = a1;
    acc[2] = b0;
    acc[3] = b1;
}

static void mac_2x2_u8(const uint8_t *w, const int16_t *col, int32_t kp, int32_t zz, int32_t *acc)
{
    int32_t a0 = acc[0], a1 = acc[1], b0 = acc[2], b1 = acc[3];
    int32_t n = kp >> 2;
    uint32_t x00, x10, x01, x11, wa, t;
    if (n > 0) {
        __asm__ volatile("1:\n\t" ASM_2X2_U8 "subs %[n], %[n], #1\n\tbne 1b\n\t"
                         : [a0] "+r"(a0), [a1] "+r"(a1), [b0] "+r"(b0), [b1] "+r"(b1), [w] "+r"(w), [c] "+r"(col),
                           [n] "+r"(n), [x00] "=&r"(x00), [x10] "=&r"(x10), [x01] "=&r"(x01), [x11] "=&r"(x11),
                           [wa] "=&r"(wa), [t] "=&r"(t)
                         : [zz] "r"(zz)
                         : "cc", "memory");
    }
    acc[0] = a0;
    acc[1] = a1;
    acc[2] = b0;
    acc[3] = b1;
}
#else
DEFINE_2X2(mac_2x2_s8, LO_S, HI_S)
DEFINE_2X2(mac_2x2_u8, LO_U, HI_U)
#endif
DEFINE_2X1(mac_2x1_s8, LO_S, HI_S)
DEFINE_2X1(mac_2x1_u8, LO_U, HI_U)
DEFINE_1X2(mac_1x2_s8, LO_S, HI_S)
DEFINE_1X2(mac_1x2_u8, LO_U, HI_U)
DEFINE_1X1(mac_1x1_s8, LO_S, HI_S)
DEFINE_1X1(mac_1x1_u8, LO_U, HI_U)

typedef void (*mac_fn)(const uint8_t *, const int16_t *, int32_t, int32_t, int32_t *);

/* All output channels of group g for pixel pix0 (and pix1 >= 0): row pairs, then an odd last row. */
static void dsp_rows(const nnrt_conv_q_t *p, int32_t g, int32_t kp, const int16_t *col, int32_t pix0, int32_t pix1,
                     int32_t npix, void *out)
{
    const int32_t og = p->out_c / p->groups;
    const int32_t two = pix1 >= 0, s = p->w_signed;
    const int32_t zz = (int32_t)(((uint32_t)p->w_zp << 16) | ((uint32_t)p->w_zp & 0xFFFFu));
    const mac_fn pair = two ? (s ? mac_2x2_s8 : mac_2x2_u8) : (s ? mac_2x1_s8 : mac_2x1_u8);
    const mac_fn single = two ? (s ? mac_1x2_s8 : mac_1x2_u8) : (s ? mac_1x1_s8 : mac_1x1_u8);
    const rq_t r = rq_of(p);
    const int32_t *bias = p->bias;
    const uint8_t *wbase = (const uint8_t *)p->w;
    int32_t i;
    for (i = 0; i < og; i += 2) {
        const int32_t oa = g * og + i;
        const uint8_t *w = wbase + oa * kp;
        const int32_t ba = bias ? bias[oa] : 0;
        int32_t acc[4];
        if (i + 1 < og) {
            const int32_t bb = bias ? bias[oa + 1] : 0;
            if (two) {
                acc[0] = ba;
                acc[1] = ba;
                acc[2] = bb;
                acc[3] = bb;
                pair(w, col, kp, zz, acc);
                store_q(r, out, oa, oa * npix + pix0, acc[0]);
                store_q(r, out, oa, oa * npix + pix1, acc[1]);
                store_q(r, out, oa + 1, (oa + 1) * npix + pix0, acc[2]);
                store_q(r, out, oa + 1, (oa + 1) * npix + pix1, acc[3]);
            } else {
                acc[0] = ba;
                acc[1] = bb;
                pair(w, col, kp, zz, acc);
                store_q(r, out, oa, oa * npix + pix0, acc[0]);
                store_q(r, out, oa + 1, (oa + 1) * npix + pix0, acc[1]);
            }
        } else {
            acc[0] = ba;
            acc[1] = ba;
            single(w, col, kp, zz, acc);
            store_q(r, out, oa, oa * npix + pix0, acc[0]);
            if (two) {
                store_q(r, out, oa, oa * npix + pix1, acc[1]);
            }
        }
    }
}
#endif /* NNRT_DSP */

void nnrt_conv_q(const nnrt_conv_q_t *p, const void *in, void *out, int16_t *scratch)
{
    const int32_t cin_g = p->in_c / p->groups, og = p->out_c / p->groups;
    const int32_t K = cin_g * p->k_h * p->k_w;
    const int32_t npix = p->out_h * p->out_w;
    const rq_t r = rq_of(p);
    int32_t g, pix, i;
    for (g = 0; g < p->groups; g++) {
        pix = 0;
#if NNRT_DSP
        if (p->wfmt == NNRT_W_DSP) {
            const int32_t kp = (K + 3) & ~3;
            for (; pix + 1 < npix; pix += 2) {
                im2col_dsp(p, in, g, pix, pix + 1, scratch, kp);
                dsp_rows(p, g, kp, scratch, pix, pix + 1, npix, out);
            }
            if (pix < npix) {
                im2col_dsp(p, in, g, pix, -1, scratch, kp);
                dsp_rows(p, g, kp, scratch, pix, -1, npix, out);
            }
            continue;
        }
#endif
        for (; pix < npix; pix++) {
            im2col_q(p, in, g, pix, scratch);
            for (i = 0; i < og; i++) {
                const int32_t o = g * og + i;
                const int32_t acc = (p->bias ? p->bias[o] : 0) +
                                    (p->wfmt == NNRT_W_CSR16 || p->wfmt == NNRT_W_CSR32 ? dot_csr(p, o, scratch)
                                                                                        : dot_dense(p, o, scratch, K));
                store_q(r, out, o, o * npix + pix, acc);
            }
        }
    }
}
