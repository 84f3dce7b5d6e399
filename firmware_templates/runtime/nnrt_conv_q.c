/* Quantized conv2d / linear (uint8 affine, int8 affine, qmn) as im2col + matrix-vector products.
 * One column of K = Cin/groups*kh*kw int16 values (input minus its zero point, 0 in padding) is
 * gathered per output pixel, then every output channel of the group is a dot product with its
 * weight row. With NNRT_USE_DSP and an ARMv7E-M core, weights in the DSP layout (NNRT_W_DSP) run
 * through SMLAD on two rows x two pixels at a time; integer sums are order independent, so the
 * result is bit-exact with the portable loop (which also reads the DSP layout, slowly, elsewhere). */
#include "nnrt.h"
#include "nnrt_fixed.h"

#if defined(NNRT_USE_DSP) && NNRT_USE_DSP && defined(__ARM_FEATURE_DSP)
#define NNRT_DSP 1
#include <arm_acle.h>
#else
#define NNRT_DSP 0
#endif

/* Column of output pixel pix in natural k order, zero padded to kp; returns its sum (used for
 * the uint8 weight zero point correction). The valid kernel rows/columns are found once, so the
 * copy loops carry no bounds checks; short rows (kw <= 8) are copied unrolled. */
#define IM2COL_ONE(src)                                                                            \
    do {                                                                                           \
        const int32_t v_ = (src) - zp;                                                             \
        sum += v_;                                                                                 \
        *d++ = (int16_t)v_;                                                                        \
    } while (0)

#define DEFINE_IM2COL(NAME, T)                                                                     \
    static int32_t NAME(const nnrt_conv_q_t *p, const T *in, int32_t g, int32_t pix, int16_t *d,    \
                        int32_t kp)                                                                \
    {                                                                                              \
        const int32_t cin_g = p->in_c / p->groups, H = p->in_h, W = p->in_w, hw = H * W;           \
        const int32_t kh = p->k_h, kw = p->k_w, dh = p->d_h, dw = p->d_w, zp = p->in_zp;          \
        const int32_t oy = pix / p->out_w, ox = pix - oy * p->out_w;                               \
        const int32_t y = oy * p->s_h - p->p_h, x = ox * p->s_w - p->p_w;                          \
        int32_t ky0 = 0, ky1 = kh, kx0 = 0, kx1 = kw, c, ky, n, sum = 0;                           \
        int16_t *const start = d;                                                                  \
        while (ky0 < kh && y + ky0 * dh < 0) {                                                     \
            ky0++;                                                                                 \
        }                                                                                          \
        while (ky1 > ky0 && y + (ky1 - 1) * dh >= H) {                                             \
            ky1--;                                                                                 \
        }                                                                                          \
        while (kx0 < kw && x + kx0 * dw < 0) {                                                     \
            kx0++;                                                                                 \
        }                                                                                          \
        while (kx1 > kx0 && x + (kx1 - 1) * dw >= W) {                                             \
            kx1--;                                                                                 \
        }                                                                                          \
        if (kh == 1 && kw == 1 && ky1 == 1 && kx1 == 1) { /* pointwise / linear */                 \
            const T *r = in + g * cin_g * hw + y * W + x;                                          \
            for (c = 0; c < cin_g; c++, r += hw) {                                                 \
                IM2COL_ONE(*r);                                                                    \
            }                                                                                      \
        } else {                                                                                   \
            const int32_t pre = kx0, ncopy = kx1 - kx0, post = kw - kx1, rstep = dh * W;           \
            for (c = 0; c < cin_g; c++) {                                                          \
                const T *r0 = in + (g * cin_g + c) * hw + (y + ky0 * dh) * W + x + kx0 * dw;       \
                for (n = ky0 * kw; n > 0; n--) {                                                   \
                    *d++ = 0;                                                                      \
                }                                                                                  \
                for (ky = ky0; ky < ky1; ky++, r0 += rstep) {                                      \
                    const T *r = r0;                                                               \
                    for (n = pre; n > 0; n--) {                                                    \
                        *d++ = 0;                                                                  \
                    }                                                                              \
                    if (dw == 1 && ncopy <= 8) {                                                   \
                        switch (ncopy) {                                                           \
                        case 8: IM2COL_ONE(*r++); /* fallthrough */                                \
                        case 7: IM2COL_ONE(*r++); /* fallthrough */                                \
                        case 6: IM2COL_ONE(*r++); /* fallthrough */                                \
                        case 5: IM2COL_ONE(*r++); /* fallthrough */                                \
                        case 4: IM2COL_ONE(*r++); /* fallthrough */                                \
                        case 3: IM2COL_ONE(*r++); /* fallthrough */                                \
                        case 2: IM2COL_ONE(*r++); /* fallthrough */                                \
                        case 1: IM2COL_ONE(*r++); /* fallthrough */                                \
                        default: break;                                                            \
                        }                                                                          \
                    } else {                                                                       \
                        for (n = ncopy; n > 0; n--, r += dw) {                                     \
                            IM2COL_ONE(*r);                                                        \
                        }                                                                          \
                    }                                                                              \
                    for (n = post; n > 0; n--) {                                                   \
                        *d++ = 0;                                                                  \
                    }                                                                              \
                }                                                                                  \
                for (n = (kh - ky1) * kw; n > 0; n--) {                                            \
                    *d++ = 0;                                                                      \
                }                                                                                  \
            }                                                                                      \
        }                                                                                          \
        while (d < start + kp) {                                                                   \
            *d++ = 0;                                                                              \
        }                                                                                          \
        return sum;                                                                                \
    }

DEFINE_IM2COL(im2col_s8, int8_t)
DEFINE_IM2COL(im2col_u8, uint8_t)

#if NNRT_DSP
/* Columns of two horizontally adjacent pixels (same output row, windows fully inside, dw == 1):
 * one pass, pixel 1 reads s_w bytes further on. Returns the two column sums in s[0], s[1]. */
#define PAIR_ONE()                                                                                 \
    do {                                                                                           \
        const int32_t va_ = q[0] - zp, vb_ = q[sw] - zp;                                           \
        q++;                                                                                       \
        sa += va_;                                                                                 \
        sb += vb_;                                                                                 \
        *d0++ = (int16_t)va_;                                                                      \
        *d1++ = (int16_t)vb_;                                                                      \
    } while (0)

#define DEFINE_IM2COL_PAIR(NAME, T)                                                                \
    static void NAME(const nnrt_conv_q_t *p, const T *in, int32_t g, int32_t pix, int16_t *d0,      \
                     int16_t *d1, int32_t kp, int32_t *s)                                          \
    {                                                                                              \
        const int32_t cin_g = p->in_c / p->groups, W = p->in_w, hw = p->in_h * W;                  \
        const int32_t kh = p->k_h, kw = p->k_w, rstep = p->d_h * W, zp = p->in_zp, sw = p->s_w;   \
        const int32_t oy = pix / p->out_w, ox = pix - oy * p->out_w;                               \
        const T *r0 = in + g * cin_g * hw + (oy * p->s_h - p->p_h) * W + ox * sw - p->p_w;         \
        int32_t c, ky, sa = 0, sb = 0, n;                                                          \
        for (c = 0; c < cin_g; c++, r0 += hw) {                                                    \
            const T *r = r0;                                                                       \
            for (ky = 0; ky < kh; ky++, r += rstep) {                                              \
                const T *q = r;                                                                    \
                switch (kw) {                                                                      \
                case 8: PAIR_ONE(); /* fallthrough */                                             \
                case 7: PAIR_ONE(); /* fallthrough */                                             \
                case 6: PAIR_ONE(); /* fallthrough */                                             \
                case 5: PAIR_ONE(); /* fallthrough */                                             \
                case 4: PAIR_ONE(); /* fallthrough */                                             \
                case 3: PAIR_ONE(); /* fallthrough */                                             \
                case 2: PAIR_ONE(); /* fallthrough */                                             \
                default: PAIR_ONE();                                                              \
                }                                                                                  \
            }                                                                                      \
        }                                                                                          \
        for (n = cin_g * kh * kw; n < kp; n++) {                                                   \
            *d0++ = 0;                                                                             \
            *d1++ = 0;                                                                             \
        }                                                                                          \
        s[0] = sa;                                                                                 \
        s[1] = sb;                                                                                 \
    }

DEFINE_IM2COL_PAIR(im2col_pair_s8, int8_t)
DEFINE_IM2COL_PAIR(im2col_pair_u8, uint8_t)

/* True when pixels pix and pix + 1 share an output row and both windows lie inside the input. */
static int32_t pair_inside(const nnrt_conv_q_t *p, int32_t pix)
{
    const int32_t oy = pix / p->out_w, ox = pix - oy * p->out_w;
    const int32_t y = oy * p->s_h - p->p_h, x = ox * p->s_w - p->p_w;
    return ox + 1 < p->out_w && p->d_w == 1 && p->k_w <= 8 && y >= 0 && y + (p->k_h - 1) * p->d_h < p->in_h &&
           x >= 0 && x + p->s_w + p->k_w - 1 < p->in_w;
}
#endif

static int32_t im2col(const nnrt_conv_q_t *p, const void *in, int32_t g, int32_t pix, int16_t *col, int32_t kp)
{
    if (p->act_signed) {
        return im2col_s8(p, (const int8_t *)in, g, pix, col, kp);
    }
    return im2col_u8(p, (const uint8_t *)in, g, pix, col, kp);
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
        for (k = 0; k + 4 <= K; k += 4) { /* unrolled: the loop overhead is half the cost on M0+ */
            sum += (int32_t)w[k] * col[k] + (int32_t)w[k + 1] * col[k + 1] + (int32_t)w[k + 2] * col[k + 2] +
                   (int32_t)w[k + 3] * col[k + 3];
        }
        for (; k < K; k++) {
            sum += (int32_t)w[k] * col[k];
        }
    } else {
        const uint8_t *w = (const uint8_t *)p->w + o * K;
        const int32_t zp = p->w_zp;
        for (k = 0; k + 4 <= K; k += 4) {
            sum += ((int32_t)w[k] - zp) * col[k] + ((int32_t)w[k + 1] - zp) * col[k + 1] +
                   ((int32_t)w[k + 2] - zp) * col[k + 2] + ((int32_t)w[k + 3] - zp) * col[k + 3];
        }
        for (; k < K; k++) {
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

/* 4 weight bytes in DSP order (w0 w2 w1 w3) -> int16 pairs (w0, w1) and (w2, w3). The unsigned
 * variants return raw 0..255 values: the weight zero point is corrected afterwards with
 * acc -= z_w * sum(column), which is exact. */
#define LO_S(w) ((int32_t)__sxtb16(w))
#define HI_S(w) sxtb16_ror8(w)
#define LO_U(w) ((int32_t)__uxtb16(w))
#define HI_U(w) ((int32_t)uxtb16_ror8(w))

/* Row pair (interleaved per 4 k) x two pixels (natural columns c0, c1): acc = a0 a1 b0 b1. */
#if defined(__OPTIMIZE__)
/* Inline assembly keeps the loads grouped (GCC interleaves them with the SMLADs otherwise, losing
 * the M4 load pipelining). At -O0 there are not enough free registers: the C version is used. */
#define ASM_2X2(X)                                \
    "ldrd %[x00], %[x01], [%[c0]], #8\n\t"        \
    "ldrd %[x10], %[x11], [%[c1]], #8\n\t"        \
    "ldr %[w4], [%[w]], #4\n\t"                   \
    X " %[t], %[w4]\n\t"                          \
    "smlad %[a0], %[t], %[x00], %[a0]\n\t"        \
    "smlad %[a1], %[t], %[x10], %[a1]\n\t"        \
    X " %[t], %[w4], ror #8\n\t"                  \
    "smlad %[a0], %[t], %[x01], %[a0]\n\t"        \
    "smlad %[a1], %[t], %[x11], %[a1]\n\t"        \
    "ldr %[w4], [%[w]], #4\n\t"                   \
    X " %[t], %[w4]\n\t"                          \
    "smlad %[b0], %[t], %[x00], %[b0]\n\t"        \
    "smlad %[b1], %[t], %[x10], %[b1]\n\t"        \
    X " %[t], %[w4], ror #8\n\t"                  \
    "smlad %[b0], %[t], %[x01], %[b0]\n\t"        \
    "smlad %[b1], %[t], %[x11], %[b1]\n\t"

#define DEFINE_2X2(NAME, X)                                                                               \
    static void NAME(const uint8_t *w, const int16_t *c0, const int16_t *c1, int32_t kp, int32_t *acc)    \
    {                                                                                                     \
        int32_t a0 = acc[0], a1 = acc[1], b0 = acc[2], b1 = acc[3];                                        \
        int32_t n = kp >> 3;                                                                              \
        uint32_t x00, x10, x01, x11, w4, t;                                                               \
        if (kp & 4) {                                                                                     \
            __asm__ volatile(ASM_2X2(X)                                                                   \
                             : [a0] "+r"(a0), [a1] "+r"(a1), [b0] "+r"(b0), [b1] "+r"(b1), [w] "+r"(w),  \
                               [c0] "+r"(c0), [c1] "+r"(c1), [x00] "=&r"(x00), [x10] "=&r"(x10),           \
                               [x01] "=&r"(x01), [x11] "=&r"(x11), [w4] "=&r"(w4), [t] "=&r"(t)          \
                             :                                                                            \
                             : "memory");                                                                 \
        }                                                                                                 \
        if (n > 0) {                                                                                      \
            __asm__ volatile("1:\n\t" ASM_2X2(X) ASM_2X2(X) "subs %[n], %[n], #1\n\tbne 1b\n\t"           \
                             : [a0] "+r"(a0), [a1] "+r"(a1), [b0] "+r"(b0), [b1] "+r"(b1), [w] "+r"(w),  \
                               [c0] "+r"(c0), [c1] "+r"(c1), [n] "+r"(n), [x00] "=&r"(x00),               \
                               [x10] "=&r"(x10), [x01] "=&r"(x01), [x11] "=&r"(x11), [w4] "=&r"(w4),      \
                               [t] "=&r"(t)                                                               \
                             :                                                                            \
                             : "cc", "memory");                                                           \
        }                                                                                                 \
        acc[0] = a0;                                                                                      \
        acc[1] = a1;                                                                                      \
        acc[2] = b0;                                                                                      \
        acc[3] = b1;                                                                                      \
    }
DEFINE_2X2(mac_2x2_s8, "sxtb16")
DEFINE_2X2(mac_2x2_u8, "uxtb16")

/* Two row pairs (w, w + 2 kp) x one pixel, for linear layers: acc = a b c d. */
#define ASM_4X1(X)                                \
    "ldrd %[x0], %[x1], [%[c]], #8\n\t"           \
    "ldrd %[wa], %[wb], [%[pa]], #8\n\t"          \
    X " %[t], %[wa]\n\t"                          \
    "smlad %[a], %[t], %[x0], %[a]\n\t"           \
    X " %[t], %[wa], ror #8\n\t"                  \
    "smlad %[a], %[t], %[x1], %[a]\n\t"           \
    X " %[t], %[wb]\n\t"                          \
    "smlad %[b], %[t], %[x0], %[b]\n\t"           \
    X " %[t], %[wb], ror #8\n\t"                  \
    "smlad %[b], %[t], %[x1], %[b]\n\t"           \
    "ldrd %[wa], %[wb], [%[pb]], #8\n\t"          \
    X " %[t], %[wa]\n\t"                          \
    "smlad %[cc], %[t], %[x0], %[cc]\n\t"         \
    X " %[t], %[wa], ror #8\n\t"                  \
    "smlad %[cc], %[t], %[x1], %[cc]\n\t"         \
    X " %[t], %[wb]\n\t"                          \
    "smlad %[d], %[t], %[x0], %[d]\n\t"           \
    X " %[t], %[wb], ror #8\n\t"                  \
    "smlad %[d], %[t], %[x1], %[d]\n\t"

#define DEFINE_4X1(NAME, X)                                                                               \
    static void NAME(const uint8_t *pa, const int16_t *c, int32_t kp, int32_t *acc)                       \
    {                                                                                                     \
        int32_t a = acc[0], b = acc[1], cc = acc[2], d = acc[3], n = kp >> 2;                             \
        const uint8_t *pb = pa + 2 * kp;                                                                  \
        uint32_t x0, x1, wa, wb, t;                                                                       \
        if (n > 0) {                                                                                      \
            __asm__ volatile("1:\n\t" ASM_4X1(X) "subs %[n], %[n], #1\n\tbne 1b\n\t"                     \
                             : [a] "+r"(a), [b] "+r"(b), [cc] "+r"(cc), [d] "+r"(d), [pa] "+r"(pa),       \
                               [pb] "+r"(pb), [c] "+r"(c), [n] "+r"(n), [x0] "=&r"(x0), [x1] "=&r"(x1),    \
                               [wa] "=&r"(wa), [wb] "=&r"(wb), [t] "=&r"(t)                               \
                             :                                                                            \
                             : "cc", "memory");                                                           \
        }                                                                                                 \
        acc[0] = a;                                                                                       \
        acc[1] = b;                                                                                       \
        acc[2] = cc;                                                                                      \
        acc[3] = d;                                                                                       \
    }
DEFINE_4X1(mac_4x1_s8, "sxtb16")
DEFINE_4X1(mac_4x1_u8, "uxtb16")
#define HAVE_4X1 1
#else
#define DEFINE_2X2(NAME, LO, HI)                                                                          \
    static void NAME(const uint8_t *w, const int16_t *c0, const int16_t *c1, int32_t kp, int32_t *acc)    \
    {                                                                                                     \
        int32_t a0 = acc[0], a1 = acc[1], b0 = acc[2], b1 = acc[3], k;                                     \
        for (k = 0; k < kp; k += 4, w += 8) {                                                             \
            const uint32_t wa = ld32(w), wb = ld32(w + 4);                                                \
            const int32_t x00 = (int32_t)ld32(c0 + k), x01 = (int32_t)ld32(c0 + k + 2);                    \
            const int32_t x10 = (int32_t)ld32(c1 + k), x11 = (int32_t)ld32(c1 + k + 2);                    \
            a0 = __smlad(LO(wa), x00, a0);                                                                \
            a0 = __smlad(HI(wa), x01, a0);                                                                \
            a1 = __smlad(LO(wa), x10, a1);                                                                \
            a1 = __smlad(HI(wa), x11, a1);                                                                \
            b0 = __smlad(LO(wb), x00, b0);                                                                \
            b0 = __smlad(HI(wb), x01, b0);                                                                \
            b1 = __smlad(LO(wb), x10, b1);                                                                \
            b1 = __smlad(HI(wb), x11, b1);                                                                \
        }                                                                                                 \
        acc[0] = a0;                                                                                      \
        acc[1] = a1;                                                                                      \
        acc[2] = b0;                                                                                      \
        acc[3] = b1;                                                                                      \
    }
DEFINE_2X2(mac_2x2_s8, LO_S, HI_S)
DEFINE_2X2(mac_2x2_u8, LO_U, HI_U)
#endif

/* Row pair (interleaved) x one pixel: acc = a b. */
#define DEFINE_2X1(NAME, LO, HI)                                                                          \
    static void NAME(const uint8_t *w, const int16_t *c0, const int16_t *c1, int32_t kp, int32_t *acc)    \
    {                                                                                                     \
        int32_t a = acc[0], b = acc[1], k;                                                                \
        (void)c1;                                                                                         \
        for (k = 0; k < kp; k += 4, w += 8) {                                                             \
            const uint32_t wa = ld32(w), wb = ld32(w + 4);                                                \
            const int32_t x0 = (int32_t)ld32(c0 + k), x1 = (int32_t)ld32(c0 + k + 2);                     \
            a = __smlad(LO(wa), x0, a);                                                                   \
            a = __smlad(HI(wa), x1, a);                                                                   \
            b = __smlad(LO(wb), x0, b);                                                                   \
            b = __smlad(HI(wb), x1, b);                                                                   \
        }                                                                                                 \
        acc[0] = a;                                                                                       \
        acc[1] = b;                                                                                       \
    }

/* Single row x up to two pixels (c1 may be 0): acc = a0 a1. */
#define DEFINE_1XN(NAME, LO, HI)                                                                          \
    static void NAME(const uint8_t *w, const int16_t *c0, const int16_t *c1, int32_t kp, int32_t *acc)    \
    {                                                                                                     \
        int32_t a0 = acc[0], a1 = acc[1], k;                                                              \
        for (k = 0; k < kp; k += 4, w += 4) {                                                             \
            const uint32_t wa = ld32(w);                                                                  \
            const int32_t lo = LO(wa), hi = HI(wa);                                                       \
            a0 = __smlad(lo, (int32_t)ld32(c0 + k), a0);                                                  \
            a0 = __smlad(hi, (int32_t)ld32(c0 + k + 2), a0);                                              \
            if (c1) {                                                                                     \
                a1 = __smlad(lo, (int32_t)ld32(c1 + k), a1);                                              \
                a1 = __smlad(hi, (int32_t)ld32(c1 + k + 2), a1);                                          \
            }                                                                                             \
        }                                                                                                 \
        acc[0] = a0;                                                                                      \
        acc[1] = a1;                                                                                      \
    }

DEFINE_2X1(mac_2x1_s8, LO_S, HI_S)
DEFINE_2X1(mac_2x1_u8, LO_U, HI_U)
DEFINE_1XN(mac_1xn_s8, LO_S, HI_S)
DEFINE_1XN(mac_1xn_u8, LO_U, HI_U)

typedef void (*mac_fn)(const uint8_t *, const int16_t *, const int16_t *, int32_t, int32_t *);

/* All output channels of group g for pixel pix0 (column c0, sum s0) and, if c1, pix1: row pairs,
 * then an odd last row. */
static void dsp_rows(const nnrt_conv_q_t *p, int32_t g, int32_t kp, const int16_t *c0, const int16_t *c1,
                     int32_t s0, int32_t s1, int32_t pix0, int32_t pix1, int32_t npix, void *out)
{
    const int32_t og = p->out_c / p->groups, sg = p->w_signed;
    const mac_fn pair = c1 ? (sg ? mac_2x2_s8 : mac_2x2_u8) : (sg ? mac_2x1_s8 : mac_2x1_u8);
    const mac_fn single = sg ? mac_1xn_s8 : mac_1xn_u8;
    const rq_t r = rq_of(p);
    const int32_t *bias = p->bias;
    const uint8_t *wbase = (const uint8_t *)p->w;
    /* uint8 weights: sum (w - zw) x = sum w x - zw sum x */
    const int32_t corr0 = sg ? 0 : p->w_zp * s0, corr1 = sg ? 0 : p->w_zp * s1;
    int32_t i = 0;
#if defined(HAVE_4X1)
    if (!c1) { /* one pixel (linear layers, odd pixel counts): four rows at a time */
        for (; i + 3 < og; i += 4) {
            const int32_t oa = g * og + i;
            int32_t acc[4], j;
            for (j = 0; j < 4; j++) {
                acc[j] = (bias ? bias[oa + j] : 0) - corr0;
            }
            if (sg) {
                mac_4x1_s8(wbase + oa * kp, c0, kp, acc);
            } else {
                mac_4x1_u8(wbase + oa * kp, c0, kp, acc);
            }
            for (j = 0; j < 4; j++) {
                store_q(r, out, oa + j, (oa + j) * npix + pix0, acc[j]);
            }
        }
    }
#endif
    for (; i < og; i += 2) {
        const int32_t oa = g * og + i;
        const uint8_t *w = wbase + oa * kp;
        const int32_t ba = (bias ? bias[oa] : 0) - corr0, ba1 = (bias ? bias[oa] : 0) - corr1;
        int32_t acc[4];
        if (i + 1 < og) {
            const int32_t bb = (bias ? bias[oa + 1] : 0) - corr0, bb1 = (bias ? bias[oa + 1] : 0) - corr1;
            if (c1) {
                acc[0] = ba;
                acc[1] = ba1;
                acc[2] = bb;
                acc[3] = bb1;
                pair(w, c0, c1, kp, acc);
                store_q(r, out, oa, oa * npix + pix0, acc[0]);
                store_q(r, out, oa, oa * npix + pix1, acc[1]);
                store_q(r, out, oa + 1, (oa + 1) * npix + pix0, acc[2]);
                store_q(r, out, oa + 1, (oa + 1) * npix + pix1, acc[3]);
            } else {
                acc[0] = ba;
                acc[1] = bb;
                pair(w, c0, c1, kp, acc);
                store_q(r, out, oa, oa * npix + pix0, acc[0]);
                store_q(r, out, oa + 1, (oa + 1) * npix + pix0, acc[1]);
            }
        } else {
            acc[0] = ba;
            acc[1] = ba1;
            single(w, c0, c1, kp, acc);
            store_q(r, out, oa, oa * npix + pix0, acc[0]);
            if (c1) {
                store_q(r, out, oa, oa * npix + pix1, acc[1]);
            }
        }
    }
}

/* ---- Fast DSP conv (any layer with >= 2 output pixels and DSP-layout weights) ----------------
 * Two output pixels share one interleaved q15 column buffer: for every k pair (k, k+1) it holds
 * the word (x0[k], x0[k+1]) of pixel 0, then the word (x1[k], x1[k+1]) of pixel 1, each value
 * already minus the input zero point, so one 16-byte group covers four k of both pixels and the
 * assembly kernel reads it with a single pointer. The column is gathered once per pixel pair
 * through a table of input offsets (computed once per layer, valid for every window because the
 * input is first copied into a zero-point padded buffer when the layer pads) and reused by every
 * output channel. Scratch (see nnrt.h, NNRT_DSP_SCRATCH_BYTES): column (4 kp bytes), offset table
 * (4 kp bytes), padded input copy (in_c * (in_h + 2 p_h) * (in_w + 2 p_w) bytes, only if padded). */
static inline uint32_t pkhbt16(uint32_t lo, uint32_t hi)
{
    uint32_t r;
    __asm__("pkhbt %0, %1, %2, lsl #16" : "=r"(r) : "r"(lo), "r"(hi));
    return r;
}

#define DEFINE_GATHER(NAME, T)                                                                     \
    static void NAME(const T *b0, const T *b1, const int32_t *tab, int32_t kp, uint32_t zp2,       \
                     uint32_t *d)                                                                  \
    {                                                                                              \
        const int32_t *const end = tab + kp;                                                       \
        do {                                                                                       \
            const int32_t o0 = tab[0], o1 = tab[1], o2 = tab[2], o3 = tab[3];                       \
            const uint32_t u0 = pkhbt16((uint32_t)(int32_t)b0[o0], (uint32_t)(int32_t)b0[o1]);     \
            const uint32_t v0 = pkhbt16((uint32_t)(int32_t)b1[o0], (uint32_t)(int32_t)b1[o1]);     \
            const uint32_t u1 = pkhbt16((uint32_t)(int32_t)b0[o2], (uint32_t)(int32_t)b0[o3]);     \
            const uint32_t v1 = pkhbt16((uint32_t)(int32_t)b1[o2], (uint32_t)(int32_t)b1[o3]);     \
            d[0] = __ssub16(u0, zp2);                                                              \
            d[1] = __ssub16(v0, zp2);                                                              \
            d[2] = __ssub16(u1, zp2);                                                              \
            d[3] = __ssub16(v1, zp2);                                                              \
            d += 4;                                                                                \
            tab += 4;                                                                              \
        } while (tab < end);                                                                       \
    }
DEFINE_GATHER(gather_s8, int8_t)
DEFINE_GATHER(gather_u8, uint8_t)

/* Row pair x pixel pair over nblk = kp / 4 blocks: acc = a0 a1 b0 b1 (row a pixel 0, row a pixel 1,
 * row b pixel 0, row b pixel 1). Per block: six loads in one pipelined run (4 column words, 2
 * weight words), four SXTB16 (UXTB16 for uint8 weights), eight SMLAD; four blocks per iteration. */
void nnrt_mac2x2i_s8(const uint8_t *w, const uint32_t *col, int32_t nblk, int32_t *acc);
void nnrt_mac2x2i_u8(const uint8_t *w, const uint32_t *col, int32_t nblk, int32_t *acc);

#define MAC2X2I_BLOCK(X)                                                                           \
    "ldr r8, [r1, #4]\n\t"                                                                         \
    "ldr r9, [r1, #8]\n\t"                                                                         \
    "ldr r10, [r1, #12]\n\t"                                                                       \
    "ldr r3, [r1], #16\n\t"                                                                        \
    "ldr r11, [r0, #4]\n\t"                                                                        \
    "ldr r12, [r0], #8\n\t"                                                                        \
    X " lr, r12\n\t"                                                                               \
    "smlad r4, lr, r3, r4\n\t"                                                                     \
    "smlad r5, lr, r8, r5\n\t"                                                                     \
    X " r12, r12, ror #8\n\t"                                                                      \
    "smlad r4, r12, r9, r4\n\t"                                                                    \
    "smlad r5, r12, r10, r5\n\t"                                                                   \
    X " lr, r11\n\t"                                                                               \
    "smlad r6, lr, r3, r6\n\t"                                                                     \
    "smlad r7, lr, r8, r7\n\t"                                                                     \
    X " r11, r11, ror #8\n\t"                                                                      \
    "smlad r6, r11, r9, r6\n\t"                                                                    \
    "smlad r7, r11, r10, r7\n\t"

#define DEFINE_MAC2X2I(NAME, X)                                                                    \
    __asm__(".pushsection .text." #NAME ",\"ax\",%progbits\n\t"                                   \
            ".syntax unified\n\t"                                                                  \
            ".thumb\n\t"                                                                           \
            ".p2align 2\n\t"                                                                       \
            ".global " #NAME "\n\t"                                                                \
            ".type " #NAME ", %function\n\t"                                                       \
            ".thumb_func\n" #NAME ":\n\t"                                                          \
            "push {r3-r11, lr}\n\t"                                                                \
            "ldm r3, {r4-r7}\n\t"                                                                  \
            "tst r2, #3\n\t"                                                                       \
            "beq 2f\n"                                                                             \
            "1:\n\t" MAC2X2I_BLOCK(X) "subs r2, r2, #1\n\t"                                        \
            "tst r2, #3\n\t"                                                                       \
            "bne 1b\n"                                                                             \
            "2:\n\t"                                                                               \
            "lsrs r2, r2, #2\n\t"                                                                  \
            "beq 4f\n"                                                                             \
            "3:\n\t" MAC2X2I_BLOCK(X) MAC2X2I_BLOCK(X) MAC2X2I_BLOCK(X) MAC2X2I_BLOCK(X)           \
            "subs r2, r2, #1\n\t"                                                                  \
            "bne 3b\n"                                                                             \
            "4:\n\t"                                                                               \
            "ldr r3, [sp]\n\t"                                                                     \
            "stm r3, {r4-r7}\n\t"                                                                  \
            "pop {r3-r11, pc}\n\t"                                                                 \
            ".size " #NAME ", .-" #NAME "\n\t"                                                     \
            ".popsection\n");
DEFINE_MAC2X2I(nnrt_mac2x2i_s8, "sxtb16")
DEFINE_MAC2X2I(nnrt_mac2x2i_u8, "uxtb16")

/* Single (odd last) row x pixel pair: acc = a0 a1. */
static void mac_1x2i(const uint8_t *w, const uint32_t *col, int32_t kp, int32_t sg, int32_t *acc)
{
    int32_t a0 = acc[0], a1 = acc[1], k;
    for (k = 0; k < kp; k += 4, w += 4, col += 4) {
        const uint32_t wa = ld32(w);
        const int32_t lo = sg ? LO_S(wa) : LO_U(wa), hi = sg ? HI_S(wa) : HI_U(wa);
        a0 = __smlad(lo, (int32_t)col[0], a0);
        a1 = __smlad(lo, (int32_t)col[1], a1);
        a0 = __smlad(hi, (int32_t)col[2], a0);
        a1 = __smlad(hi, (int32_t)col[3], a1);
    }
    acc[0] = a0;
    acc[1] = a1;
}

/* Sum of the column of pixel p (0 or 1) over all kp entries: SMLAD with (1, 1). */
static int32_t col_sum(const uint32_t *col, int32_t kp, int32_t p)
{
    int32_t s = 0, k;
    for (k = 0; k < kp; k += 2) {
        s = __smlad((int32_t)col[k + p], 0x00010001, s);
    }
    return s;
}

static void conv_dsp_fast(const nnrt_conv_q_t *p, const void *in, void *out, int16_t *scratch)
{
    const int32_t cin_g = p->in_c / p->groups, og = p->out_c / p->groups;
    const int32_t kh = p->k_h, kw = p->k_w, K = cin_g * kh * kw, kp = (K + 3) & ~3;
    const int32_t npix = p->out_h * p->out_w, ow = p->out_w, sg = p->w_signed;
    const int32_t Wp = p->in_w + 2 * p->p_w, Hp = p->in_h + 2 * p->p_h, hwp = Hp * Wp;
    const uint32_t zp2 = ((uint32_t)p->in_zp & 0xFFFFu) * 0x10001u;
    uint32_t *const col = (uint32_t *)(void *)scratch;
    int32_t *const tab = (int32_t *)(void *)(scratch + 2 * kp);
    const uint8_t *src = (const uint8_t *)in;
    const uint8_t *wbase = (const uint8_t *)p->w;
    const int32_t *bias = p->bias;
    const rq_t r = rq_of(p);
    int32_t g, pix, c, ky, kx, n = 0;
    if (p->p_h || p->p_w) { /* zero-point padded copy of the whole input */
        uint8_t *buf = (uint8_t *)(tab + kp);
        const uint8_t zb = (uint8_t)p->in_zp;
        int32_t i, y, x;
        for (i = 0; i < p->in_c * hwp; i++) {
            buf[i] = zb;
        }
        for (c = 0; c < p->in_c; c++) {
            for (y = 0; y < p->in_h; y++) {
                const uint8_t *s = src + (c * p->in_h + y) * p->in_w;
                uint8_t *dd = buf + c * hwp + (y + p->p_h) * Wp + p->p_w;
                for (x = 0; x < p->in_w; x++) {
                    dd[x] = s[x];
                }
            }
        }
        src = buf;
    }
    for (c = 0; c < cin_g; c++) {
        for (ky = 0; ky < kh; ky++) {
            for (kx = 0; kx < kw; kx++) {
                tab[n++] = c * hwp + ky * p->d_h * Wp + kx * p->d_w;
            }
        }
    }
    for (; n < kp; n++) {
        tab[n] = 0;
    }
    for (g = 0; g < p->groups; g++) {
        const uint8_t *gsrc = src + g * cin_g * hwp;
        for (pix = 0; pix < npix; pix += 2) {
            const int32_t pix1 = pix + 1 < npix ? pix + 1 : pix;
            const int32_t oy0 = pix / ow, ox0 = pix - oy0 * ow, oy1 = pix1 / ow, ox1 = pix1 - oy1 * ow;
            const uint8_t *b0 = gsrc + oy0 * p->s_h * Wp + ox0 * p->s_w;
            const uint8_t *b1 = gsrc + oy1 * p->s_h * Wp + ox1 * p->s_w;
            int32_t corr0 = 0, corr1 = 0, i;
            if (p->act_signed) {
                gather_s8((const int8_t *)b0, (const int8_t *)b1, tab, kp, zp2, col);
            } else {
                gather_u8(b0, b1, tab, kp, zp2, col);
            }
            for (n = K; n < kp; n++) { /* zero the k padding */
                int16_t *h = (int16_t *)(void *)col + (n >> 1) * 4 + (n & 1);
                h[0] = 0;
                h[2] = 0;
            }
            if (!sg) { /* uint8 weights: sum (w - zw) x = sum w x - zw sum x */
                corr0 = p->w_zp * col_sum(col, kp, 0);
                corr1 = p->w_zp * col_sum(col, kp, 1);
            }
            for (i = 0; i < og; i += 2) {
                const int32_t oa = g * og + i;
                const int32_t ba = bias ? bias[oa] : 0;
                int32_t acc[4];
                if (i + 1 < og) {
                    const int32_t bb = bias ? bias[oa + 1] : 0;
                    acc[0] = ba - corr0;
                    acc[1] = ba - corr1;
                    acc[2] = bb - corr0;
                    acc[3] = bb - corr1;
                    if (sg) {
                        nnrt_mac2x2i_s8(wbase + oa * kp, col, kp >> 2, acc);
                    } else {
                        nnrt_mac2x2i_u8(wbase + oa * kp, col, kp >> 2, acc);
                    }
                    store_q(r, out, oa, oa * npix + pix, acc[0]);
                    store_q(r, out, oa + 1, (oa + 1) * npix + pix, acc[2]);
                    if (pix1 != pix) {
                        store_q(r, out, oa, oa * npix + pix1, acc[1]);
                        store_q(r, out, oa + 1, (oa + 1) * npix + pix1, acc[3]);
                    }
                } else {
                    acc[0] = ba - corr0;
                    acc[1] = ba - corr1;
                    mac_1x2i(wbase + oa * kp, col, kp, sg, acc);
                    store_q(r, out, oa, oa * npix + pix, acc[0]);
                    if (pix1 != pix) {
                        store_q(r, out, oa, oa * npix + pix1, acc[1]);
                    }
                }
            }
        }
    }
}
#endif /* NNRT_DSP */

void nnrt_conv_q(const nnrt_conv_q_t *p, const void *in, void *out, int16_t *scratch)
{
    const int32_t cin_g = p->in_c / p->groups, og = p->out_c / p->groups;
    const int32_t K = cin_g * p->k_h * p->k_w, kp = (K + 3) & ~3;
    const int32_t npix = p->out_h * p->out_w;
    const rq_t r = rq_of(p);
    int32_t g, pix, i;
    for (g = 0; g < p->groups; g++) {
        pix = 0;
#if NNRT_DSP
        if (p->wfmt == NNRT_W_DSP && npix >= 2) {
            conv_dsp_fast(p, in, out, scratch);
            return;
        }
        if (p->wfmt == NNRT_W_DSP) {
            int16_t *c1 = scratch + kp;
            for (; pix + 1 < npix; pix += 2) {
                int32_t s[2];
                if (pair_inside(p, pix)) {
                    if (p->act_signed) {
                        im2col_pair_s8(p, (const int8_t *)in, g, pix, scratch, c1, kp, s);
                    } else {
                        im2col_pair_u8(p, (const uint8_t *)in, g, pix, scratch, c1, kp, s);
                    }
                } else {
                    s[0] = im2col(p, in, g, pix, scratch, kp);
                    s[1] = im2col(p, in, g, pix + 1, c1, kp);
                }
                dsp_rows(p, g, kp, scratch, c1, s[0], s[1], pix, pix + 1, npix, out);
            }
            if (pix < npix) {
                const int32_t s0 = im2col(p, in, g, pix, scratch, kp);
                dsp_rows(p, g, kp, scratch, 0, s0, 0, pix, -1, npix, out);
            }
            continue;
        }
#endif
        for (; pix < npix; pix++) {
            (void)im2col(p, in, g, pix, scratch, kp);
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
