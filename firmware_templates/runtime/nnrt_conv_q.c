/* Quantized conv2d / linear (uint8 affine, int8 affine, qmn) as im2col + matrix-vector products.
 * One column of K = Cin/groups*kh*kw int16 values (input minus its zero point, 0 in padding) is
 * gathered per output pixel, then every output channel of the group is a dot product with its
 * weight row. With NNRT_USE_DSP and an ARMv7E-M core, weights in the DSP layout (NNRT_W_DSP) run
 * through SMLAD on two rows x two pixels at a time; integer sums are order independent, so the
 * result is bit-exact with the portable loop (which also reads the DSP layout, slowly, elsewhere).
 * Layers with >= 2 output pixels use conv_dsp_fast (interleaved pixel-pair columns, assembly
 * gather and SMLAD kernels, requantization after the MAC loop; README.md). */
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
#define IM2COL_ONE(src, DT, STEP)                                                                  \
    do {                                                                                           \
        const int32_t v_ = (src) - zp;                                                             \
        sum += v_;                                                                                 \
        *d = (DT)v_;                                                                               \
        d += STEP;                                                                                 \
    } while (0)

#define DEFINE_IM2COL(NAME, T, DT, STEP)                                                           \
    static int32_t NAME(const nnrt_conv_q_t *p, const T *in, int32_t g, int32_t pix, DT *d,         \
                        int32_t kp)                                                                \
    {                                                                                              \
        const int32_t cin_g = p->in_c / p->groups, H = p->in_h, W = p->in_w, hw = H * W;           \
        const int32_t kh = p->k_h, kw = p->k_w, dh = p->d_h, dw = p->d_w, zp = p->in_zp;          \
        const int32_t oy = pix / p->out_w, ox = pix - oy * p->out_w;                               \
        const int32_t y = oy * p->s_h - p->p_h, x = ox * p->s_w - p->p_w;                          \
        int32_t ky0 = 0, ky1 = kh, kx0 = 0, kx1 = kw, c, ky, n, sum = 0;                           \
        DT *const start = d;                                                                       \
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
                IM2COL_ONE(*r, DT, STEP);                                                                    \
            }                                                                                      \
        } else {                                                                                   \
            const int32_t pre = kx0, ncopy = kx1 - kx0, post = kw - kx1, rstep = dh * W;           \
            for (c = 0; c < cin_g; c++) {                                                          \
                const T *r0 = in + (g * cin_g + c) * hw + (y + ky0 * dh) * W + x + kx0 * dw;       \
                for (n = ky0 * kw; n > 0; n--) {                                                   \
                    *d = 0; d += STEP;                                                             \
                }                                                                                  \
                for (ky = ky0; ky < ky1; ky++, r0 += rstep) {                                      \
                    const T *r = r0;                                                               \
                    for (n = pre; n > 0; n--) {                                                    \
                        *d = 0; d += STEP;                                                         \
                    }                                                                              \
                    if (dw == 1 && ncopy <= 8) {                                                   \
                        switch (ncopy) {                                                           \
                        case 8: IM2COL_ONE(*r++, DT, STEP); /* fallthrough */                                \
                        case 7: IM2COL_ONE(*r++, DT, STEP); /* fallthrough */                                \
                        case 6: IM2COL_ONE(*r++, DT, STEP); /* fallthrough */                                \
                        case 5: IM2COL_ONE(*r++, DT, STEP); /* fallthrough */                                \
                        case 4: IM2COL_ONE(*r++, DT, STEP); /* fallthrough */                                \
                        case 3: IM2COL_ONE(*r++, DT, STEP); /* fallthrough */                                \
                        case 2: IM2COL_ONE(*r++, DT, STEP); /* fallthrough */                                \
                        case 1: IM2COL_ONE(*r++, DT, STEP); /* fallthrough */                                \
                        default: break;                                                            \
                        }                                                                          \
                    } else {                                                                       \
                        for (n = ncopy; n > 0; n--, r += dw) {                                     \
                            IM2COL_ONE(*r, DT, STEP);                                                        \
                        }                                                                          \
                    }                                                                              \
                    for (n = post; n > 0; n--) {                                                   \
                        *d = 0; d += STEP;                                                         \
                    }                                                                              \
                }                                                                                  \
                for (n = (kh - ky1) * kw; n > 0; n--) {                                            \
                    *d = 0; d += STEP;                                                             \
                }                                                                                  \
            }                                                                                      \
        }                                                                                          \
        while (d < start + kp * STEP) {                                                            \
            *d = 0; d += STEP;                                                                     \
        }                                                                                          \
        return sum;                                                                                \
    }

DEFINE_IM2COL(im2col_s8, int8_t, int16_t, 1)
DEFINE_IM2COL(im2col_u8, uint8_t, int16_t, 1)
/* One pixel of a four-pixel int32 column (dense_quad): stride 4, see there. */
DEFINE_IM2COL(im2col4_s8, int8_t, int32_t, 4)
DEFINE_IM2COL(im2col4_u8, uint8_t, int32_t, 4)
/* An int32 column (dense_rows4: the one-pixel kernel loads it with LDR, which has an offset). */
DEFINE_IM2COL(im2col32_s8, int8_t, int32_t, 1)
DEFINE_IM2COL(im2col32_u8, uint8_t, int32_t, 1)

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
static inline __attribute__((always_inline)) void store_q(rq_t r, void *out, int32_t o, int32_t idx, int32_t acc)
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
    nnrt_csr_span(p->wfmt, p->row, o, &start, &end);
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

/* Two output pixels per walk of a CSR row: the index and weight loads are shared by both
 * pixels' columns (c0 and c0 + kp), halving the per-MAC cost on cores without DSP (the walk was
 * 14 instructions per MAC on the M0+, 8 here). acc[0], acc[1] are added to. Integer sums are
 * order independent, so this is bit-exact with dot_csr. On Arm it is Thumb-1 assembly, valid
 * on every Cortex-M, so the cost is the same at every optimization level; elsewhere (host
 * builds) C. */
#if defined(__thumb__)
void nnrt_csr2_u8(const uint8_t *v, const uint16_t *ci, const uint16_t *ce, const int16_t *c0, int32_t *acc,
                  int32_t kp_bytes, int32_t neg_zp);
void nnrt_csr2_s8(const int8_t *v, const uint16_t *ci, const uint16_t *ce, const int16_t *c0, int32_t *acc,
                  int32_t kp_bytes, int32_t neg_zp);

/* Top-level assembly functions: their own text section, Thumb, word aligned, a typed global. */
#define NNRT_ASM_BEGIN(NAME)                                                                       \
    ".pushsection .text." #NAME ",\"ax\",%progbits\n\t.syntax unified\n\t.thumb\n\t.p2align 2\n\t"  \
    ".global " #NAME "\n\t.type " #NAME ", %function\n\t.thumb_func\n" #NAME ":\n\t"
#define NNRT_ASM_END(NAME) ".size " #NAME ", .-" #NAME "\n\t.popsection\n"

/* r0 v, r1 ci, r2 ce (then r10), r3 c0; r4 r5 sums; r8 -zp, r9 kp bytes; stack after both
 * pushes: [sp+32] acc, [sp+36] kp_bytes, [sp+40] neg_zp. WIDEN turns the weight byte into
 * (w - zp): "add r7, r7, r8" (uint8, r8 = -zp) or "sxtb r7, r7" (int8). */
#define DEFINE_CSR2(NAME, WIDEN)                                                                   \
    __asm__(NNRT_ASM_BEGIN(NAME)                                                                 \
            "push {r4-r7, lr}\n\t"                                                                 \
            "mov r4, r8\n\t"                                                                       \
            "mov r5, r9\n\t"                                                                       \
            "mov r6, r10\n\t"                                                                      \
            "push {r4-r6}\n\t"                                                                     \
            "ldr r4, [sp, #36]\n\t"                                                                \
            "mov r9, r4\n\t"                                                                       \
            "ldr r4, [sp, #40]\n\t"                                                                \
            "mov r8, r4\n\t"                                                                       \
            "mov r10, r2\n\t"                                                                      \
            "ldr r2, [sp, #32]\n\t"                                                                \
            "ldr r4, [r2]\n\t"                                                                     \
            "ldr r5, [r2, #4]\n\t"                                                                 \
            "cmp r1, r10\n\t"                                                                      \
            "bcs 2f\n"                                                                             \
            "1:\n\t"                                                                               \
            "ldrh r6, [r1]\n\t"                                                                    \
            "adds r1, r1, #2\n\t"                                                                  \
            "ldrb r7, [r0]\n\t"                                                                    \
            "adds r0, r0, #1\n\t" WIDEN "\n\t"                                                     \
            "lsls r6, r6, #1\n\t"                                                                  \
            "ldrsh r2, [r3, r6]\n\t"                                                               \
            "muls r2, r7, r2\n\t"                                                                  \
            "adds r4, r4, r2\n\t"                                                                  \
            "add r6, r6, r9\n\t"                                                                   \
            "ldrsh r2, [r3, r6]\n\t"                                                               \
            "muls r2, r7, r2\n\t"                                                                  \
            "adds r5, r5, r2\n\t"                                                                  \
            "cmp r1, r10\n\t"                                                                      \
            "bcc 1b\n"                                                                             \
            "2:\n\t"                                                                               \
            "ldr r2, [sp, #32]\n\t"                                                                \
            "str r4, [r2]\n\t"                                                                     \
            "str r5, [r2, #4]\n\t"                                                                 \
            "pop {r4-r6}\n\t"                                                                      \
            "mov r8, r4\n\t"                                                                       \
            "mov r9, r5\n\t"                                                                       \
            "mov r10, r6\n\t"                                                                      \
            "pop {r4-r7, pc}\n\t"                                                                  \
            NNRT_ASM_END(NAME));
DEFINE_CSR2(nnrt_csr2_u8, "add r7, r7, r8")
DEFINE_CSR2(nnrt_csr2_s8, "sxtb r7, r7")
#else
#define DEFINE_CSR2(NAME, T)                                                                       \
    static void NAME(const T *v, const uint16_t *ci, const uint16_t *ce, const int16_t *c0, int32_t *acc,   \
                     int32_t kp_bytes, int32_t neg_zp)                                             \
    {                                                                                              \
        const int16_t *c1 = c0 + kp_bytes / 2;                                                     \
        int32_t s0 = acc[0], s1 = acc[1];                                                          \
        for (; ci < ce; ci++, v++) {                                                               \
            const int32_t w = (int32_t)*v + neg_zp;                                                \
            s0 += w * c0[*ci];                                                                     \
            s1 += w * c1[*ci];                                                                     \
        }                                                                                          \
        acc[0] = s0;                                                                               \
        acc[1] = s1;                                                                               \
    }
DEFINE_CSR2(nnrt_csr2_u8, uint8_t)
DEFINE_CSR2(nnrt_csr2_s8, int8_t)
#endif

/* Output pixels pix and pix + 1 of group g, CSR weights: both columns gathered (the scratch holds
 * two, kp apart), then every output channel's row walked once for both. */
static void csr_pixel_pair(const nnrt_conv_q_t *p, rq_t r, const void *in, void *out, int16_t *col,
                           int32_t g, int32_t pix, int32_t og, int32_t kp, int32_t npix)
{
    int32_t i;
    (void)im2col(p, in, g, pix, col, kp);
    (void)im2col(p, in, g, pix + 1, col + kp, kp);
    for (i = 0; i < og; i++) {
        const int32_t o = g * og + i;
        int32_t start, end, acc[2];
        acc[0] = acc[1] = p->bias ? p->bias[o] : 0;
        nnrt_csr_span(p->wfmt, p->row, o, &start, &end);
        if (p->w_signed) {
            nnrt_csr2_s8((const int8_t *)p->w + start, p->col + start, p->col + end, col, acc, 2 * kp, 0);
        } else {
            nnrt_csr2_u8((const uint8_t *)p->w + start, p->col + start, p->col + end, col, acc, 2 * kp, -p->w_zp);
        }
        store_q(r, out, o, o * npix + pix, acc[0]);
        store_q(r, out, o, o * npix + pix + 1, acc[1]);
    }
}

/* Dense rows on cores without the DSP layout: four output pixels per walk of a weight row. The
 * four pixels' columns are interleaved as int32 (col4[4 k + q] = column of pixel q at k), so one
 * LDM fetches the four values one weight byte multiplies: per k one weight load, one 4-register
 * LDM, four MULS and four ADDs into high registers, 15 cycles for 4 MACs on the M0+ (the
 * one-pixel loop costs about 7 per MAC). Weights go in raw (uint8 0..255, or sign-extended
 * int8); the uint8 zero point comes off as zp x (column sum) before the call. acc[0..3] are added
 * to; the sums wrap like the one-pixel loop's, so the result is bit-exact with it. Thumb-1
 * assembly on Arm (any Cortex-M, the same cost at every optimization level), C elsewhere. */
#if defined(__thumb__)
void nnrt_dense4_u8(const uint8_t *w, const int32_t *col4, const int32_t *main_end, const int32_t *end,
                    int32_t *acc);
void nnrt_dense4_s8(const int8_t *w, const int32_t *col4, const int32_t *main_end, const int32_t *end,
                    int32_t *acc);

/* One k: r3 weight, r4-r7 the four columns' values, then products, summed into r8-r11. */
#define DENSE4_K(OFF, WIDEN)                                                                       \
    "ldrb r3, [r0, #" #OFF "]\n\t" WIDEN "ldm r1!, {r4-r7}\n\t"                                   \
    "muls r4, r3, r4\n\tmuls r5, r3, r5\n\tmuls r6, r3, r6\n\tmuls r7, r3, r7\n\t"                 \
    "add r8, r8, r4\n\tadd r9, r9, r5\n\tadd r10, r10, r6\n\tadd r11, r11, r7\n\t"

/* r0 w, r1 col4, r2 end of the 4-k unrolled part, r12 end; [sp+36] acc after both pushes. */
#define DEFINE_DENSE4(NAME, WIDEN)                                                                 \
    __asm__(NNRT_ASM_BEGIN(NAME)                                                                 \
            "push {r4-r7, lr}\n\t"                                                                 \
            "mov r4, r8\n\tmov r5, r9\n\tmov r6, r10\n\tmov r7, r11\n\t"                           \
            "push {r4-r7}\n\t"                                                                     \
            "mov r12, r3\n\t"                                                                      \
            "ldr r3, [sp, #36]\n\t"                                                                \
            "ldm r3!, {r4-r7}\n\t"                                                                 \
            "mov r8, r4\n\tmov r9, r5\n\tmov r10, r6\n\tmov r11, r7\n\t"                           \
            "cmp r1, r2\n\t"                                                                       \
            "bcs 3f\n"                                                                             \
            "1:\n\t" DENSE4_K(0, WIDEN) DENSE4_K(1, WIDEN) DENSE4_K(2, WIDEN) DENSE4_K(3, WIDEN)   \
            "adds r0, r0, #4\n\t"                                                                  \
            "cmp r1, r2\n\t"                                                                       \
            "bcc 1b\n"                                                                             \
            "3:\n\t"                                                                               \
            "cmp r1, r12\n\t"                                                                      \
            "bcs 4f\n"                                                                             \
            "2:\n\t" DENSE4_K(0, WIDEN)                                                            \
            "adds r0, r0, #1\n\t"                                                                  \
            "cmp r1, r12\n\t"                                                                      \
            "bcc 2b\n"                                                                             \
            "4:\n\t"                                                                               \
            "mov r4, r8\n\tmov r5, r9\n\tmov r6, r10\n\tmov r7, r11\n\t"                           \
            "ldr r3, [sp, #36]\n\t"                                                                \
            "stm r3!, {r4-r7}\n\t"                                                                 \
            "pop {r4-r7}\n\t"                                                                      \
            "mov r8, r4\n\tmov r9, r5\n\tmov r10, r6\n\tmov r11, r7\n\t"                           \
            "pop {r4-r7, pc}\n\t"                                                                  \
            NNRT_ASM_END(NAME));
DEFINE_DENSE4(nnrt_dense4_u8, "")
DEFINE_DENSE4(nnrt_dense4_s8, "sxtb r3, r3\n\t")
#else
#define DEFINE_DENSE4(NAME, T)                                                                     \
    static void NAME(const T *w, const int32_t *col4, const int32_t *main_end, const int32_t *end,  \
                     int32_t *acc)                                                                 \
    {                                                                                              \
        uint32_t s[4], q;                                                                          \
        (void)main_end;                                                                            \
        for (q = 0; q < 4; q++) {                                                                  \
            s[q] = (uint32_t)acc[q];                                                               \
        }                                                                                          \
        for (; col4 < end; col4 += 4, w++) {                                                       \
            for (q = 0; q < 4; q++) {                                                              \
                s[q] += (uint32_t)((int32_t)*w * col4[q]);                                         \
            }                                                                                      \
        }                                                                                          \
        for (q = 0; q < 4; q++) {                                                                  \
            acc[q] = (int32_t)s[q];                                                                \
        }                                                                                          \
    }
DEFINE_DENSE4(nnrt_dense4_u8, uint8_t)
DEFINE_DENSE4(nnrt_dense4_s8, int8_t)
#endif

/* One output pixel (linear layers), dense rows: four filters per walk of the int32 column, so
 * each column value is loaded once for four weight bytes (rows o..o+3 at w, w + K, w + 2K,
 * w + 3K): 19 cycles for 4 MACs on the M0+. Same conventions as nnrt_dense4_*. */
#if defined(__thumb__)
void nnrt_dense1x4_u8(const uint8_t *w, int32_t K, const int32_t *col, const int32_t *main_end,
                      const int32_t *end, int32_t *acc);
void nnrt_dense1x4_s8(const int8_t *w, int32_t K, const int32_t *col, const int32_t *main_end,
                      const int32_t *end, int32_t *acc);

/* One k: r5 the column value, r6 each row's weight then product, summed into r8-r11. */
#define DENSE1X4_K(OFF, WIDEN)                                                                     \
    "ldr r5, [r4, #" #OFF "]\n\t"                                                                  \
    "ldrb r6, [r0]\n\t" WIDEN "muls r6, r5, r6\n\tadd r8, r8, r6\n\t"                              \
    "ldrb r6, [r0, r1]\n\t" WIDEN "muls r6, r5, r6\n\tadd r9, r9, r6\n\t"                          \
    "ldrb r6, [r0, r2]\n\t" WIDEN "muls r6, r5, r6\n\tadd r10, r10, r6\n\t"                        \
    "ldrb r6, [r0, r3]\n\t" WIDEN "muls r6, r5, r6\n\tadd r11, r11, r6\n\t"                        \
    "adds r0, r0, #1\n\t"

/* r0 w, r1 K, r2 2K, r3 3K, r4 col, r7 end of the 4-k unrolled part, r12 end; after both
 * pushes [sp+36] end, [sp+40] acc. */
#define DEFINE_DENSE1X4(NAME, WIDEN)                                                               \
    __asm__(NNRT_ASM_BEGIN(NAME)                                                                 \
            "push {r4-r7, lr}\n\t"                                                                 \
            "mov r4, r8\n\tmov r5, r9\n\tmov r6, r10\n\tmov r7, r11\n\t"                           \
            "push {r4-r7}\n\t"                                                                     \
            "mov r4, r2\n\t"                                                                       \
            "mov r7, r3\n\t"                                                                       \
            "ldr r2, [sp, #36]\n\t"                                                                \
            "mov r12, r2\n\t"                                                                      \
            "adds r2, r1, r1\n\t"                                                                  \
            "adds r3, r2, r1\n\t"                                                                  \
            "ldr r6, [sp, #40]\n\t"                                                                \
            "ldr r5, [r6]\n\tmov r8, r5\n\t"                                                       \
            "ldr r5, [r6, #4]\n\tmov r9, r5\n\t"                                                   \
            "ldr r5, [r6, #8]\n\tmov r10, r5\n\t"                                                  \
            "ldr r5, [r6, #12]\n\tmov r11, r5\n\t"                                                 \
            "cmp r4, r7\n\t"                                                                       \
            "bcs 3f\n"                                                                             \
            "1:\n\t" DENSE1X4_K(0, WIDEN) DENSE1X4_K(4, WIDEN) DENSE1X4_K(8, WIDEN)                \
            DENSE1X4_K(12, WIDEN)                                                                  \
            "adds r4, r4, #16\n\t"                                                                 \
            "cmp r4, r7\n\t"                                                                       \
            "bcc 1b\n"                                                                             \
            "3:\n\t"                                                                               \
            "cmp r4, r12\n\t"                                                                      \
            "bcs 4f\n"                                                                             \
            "2:\n\t" DENSE1X4_K(0, WIDEN)                                                          \
            "adds r4, r4, #4\n\t"                                                                  \
            "cmp r4, r12\n\t"                                                                      \
            "bcc 2b\n"                                                                             \
            "4:\n\t"                                                                               \
            "ldr r6, [sp, #40]\n\t"                                                                \
            "mov r5, r8\n\tstr r5, [r6]\n\t"                                                       \
            "mov r5, r9\n\tstr r5, [r6, #4]\n\t"                                                   \
            "mov r5, r10\n\tstr r5, [r6, #8]\n\t"                                                  \
            "mov r5, r11\n\tstr r5, [r6, #12]\n\t"                                                 \
            "pop {r4-r7}\n\t"                                                                      \
            "mov r8, r4\n\tmov r9, r5\n\tmov r10, r6\n\tmov r11, r7\n\t"                           \
            "pop {r4-r7, pc}\n\t"                                                                  \
            NNRT_ASM_END(NAME));
DEFINE_DENSE1X4(nnrt_dense1x4_u8, "")
DEFINE_DENSE1X4(nnrt_dense1x4_s8, "sxtb r6, r6\n\t")
#else
#define DEFINE_DENSE1X4(NAME, T)                                                                   \
    static void NAME(const T *w, int32_t K, const int32_t *col, const int32_t *main_end,           \
                     const int32_t *end, int32_t *acc)                                             \
    {                                                                                              \
        uint32_t s[4];                                                                             \
        int32_t q;                                                                                 \
        (void)main_end;                                                                            \
        for (q = 0; q < 4; q++) {                                                                  \
            s[q] = (uint32_t)acc[q];                                                               \
        }                                                                                          \
        for (; col < end; col++, w++) {                                                            \
            for (q = 0; q < 4; q++) {                                                              \
                s[q] += (uint32_t)((int32_t)w[q * K] * *col);                                      \
            }                                                                                      \
        }                                                                                          \
        for (q = 0; q < 4; q++) {                                                                  \
            acc[q] = (int32_t)s[q];                                                                \
        }                                                                                          \
    }
DEFINE_DENSE1X4(nnrt_dense1x4_u8, uint8_t)
DEFINE_DENSE1X4(nnrt_dense1x4_s8, int8_t)
#endif

/* The one output pixel of group g, dense rows: four filters at a time, the last og % 4 one by
 * one (C). col holds K int32 (the one-pixel scratch: 2 x 2 round_up(K, 4) bytes). */
static void dense_rows4(const nnrt_conv_q_t *p, rq_t r, const void *in, void *out, int32_t *col, int32_t g,
                        int32_t og, int32_t K)
{
    const int32_t sum = p->act_signed ? im2col32_s8(p, (const int8_t *)in, g, 0, col, K)
                                      : im2col32_u8(p, (const uint8_t *)in, g, 0, col, K);
    const int32_t corr = (p->w_signed ? 0 : p->w_zp) * sum;
    int32_t i, q, k;
    for (i = 0; i + 4 <= og; i += 4) {
        const int32_t o = g * og + i;
        int32_t acc[4];
        for (q = 0; q < 4; q++) {
            acc[q] = (p->bias ? p->bias[o + q] : 0) - corr;
        }
        if (p->w_signed) {
            nnrt_dense1x4_s8((const int8_t *)p->w + o * K, K, col, col + (K & ~3), col + K, acc);
        } else {
            nnrt_dense1x4_u8((const uint8_t *)p->w + o * K, K, col, col + (K & ~3), col + K, acc);
        }
        for (q = 0; q < 4; q++) {
            store_q(r, out, o + q, o + q, acc[q]);
        }
    }
    for (; i < og; i++) {
        const int32_t o = g * og + i;
        uint32_t acc = (uint32_t)((p->bias ? p->bias[o] : 0) - corr);
        if (p->w_signed) {
            const int8_t *w = (const int8_t *)p->w + o * K;
            for (k = 0; k < K; k++) {
                acc += (uint32_t)((int32_t)w[k] * col[k]);
            }
        } else {
            const uint8_t *w = (const uint8_t *)p->w + o * K;
            for (k = 0; k < K; k++) {
                acc += (uint32_t)((int32_t)w[k] * col[k]);
            }
        }
        store_q(r, out, o, o, (int32_t)acc);
    }
}

/* Weight bytes of one filter block: every pixel quad reuses the block's rows before the next
 * block, so they stay in the cache (the RP2040's 16 KB 2-way XIP cache: conv2 of the paper's
 * LeNet, 18 KB, read per quad missed on every line; as two 9 KB blocks it misses once per block
 * on sim-pico, and the rest of the cache holds the code). The columns are rebuilt per block. */
#define NNRT_DENSE_BLOCK_BYTES 10240

/* The four pixels' columns when they lie on one output row with unit stride and dilation along x
 * and no padding under the kernel (most quads of an unpadded conv): each kernel row's kw + 3
 * input values are read once for all four columns instead of four times. Returns 0, writing
 * nothing, when the quad does not qualify (the per-pixel im2col4 then runs). */
#define DEFINE_QUAD_ROWS(NAME, T)                                                                  \
    static int32_t NAME(const nnrt_conv_q_t *p, const T *in, int32_t g, int32_t pix, int32_t *d)    \
    {                                                                                              \
        const int32_t cin_g = p->in_c / p->groups, W = p->in_w, hw = p->in_h * W;                  \
        const int32_t kh = p->k_h, kw = p->k_w, rstep = p->d_h * W, zp = p->in_zp;                 \
        const int32_t oy = pix / p->out_w, ox = pix - oy * p->out_w;                               \
        const int32_t y = oy * p->s_h - p->p_h, x = ox - p->p_w;                                   \
        int32_t c, ky, kx;                                                                         \
        if (p->s_w != 1 || p->d_w != 1 || ox + 3 >= p->out_w || x < 0 || x + kw + 2 >= W || y < 0 || \
            y + (kh - 1) * p->d_h >= p->in_h) {                                                    \
            return 0;                                                                              \
        }                                                                                          \
        for (c = 0; c < cin_g; c++) {                                                              \
            const T *r = in + (g * cin_g + c) * hw + y * W + x;                                    \
            for (ky = 0; ky < kh; ky++, r += rstep) {                                              \
                int32_t a = r[0] - zp, b = r[1] - zp, e = r[2] - zp;                               \
                for (kx = 0; kx < kw; kx++, d += 4) {                                              \
                    const int32_t f = r[kx + 3] - zp;                                              \
                    d[0] = a;                                                                      \
                    d[1] = b;                                                                      \
                    d[2] = e;                                                                      \
                    d[3] = f;                                                                      \
                    a = b;                                                                         \
                    b = e;                                                                         \
                    e = f;                                                                         \
                }                                                                                  \
            }                                                                                      \
        }                                                                                          \
        return 1;                                                                                  \
    }
DEFINE_QUAD_ROWS(quad_rows_s8, int8_t)
DEFINE_QUAD_ROWS(quad_rows_u8, uint8_t)

/* Column sums of a four-pixel int32 column (the uint8 weight zero point's correction). */
static void quad_sums(const int32_t *d, int32_t K, int32_t *sums)
{
    int32_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    const int32_t *const end = d + 4 * K;
    for (; d < end; d += 4) {
        s0 += d[0];
        s1 += d[1];
        s2 += d[2];
        s3 += d[3];
    }
    sums[0] = s0;
    sums[1] = s1;
    sums[2] = s2;
    sums[3] = s3;
}

/* Columns of pixels pix..pix+3 into col4; corr[q] = weight zero point x column sum. */
static void quad_columns(const nnrt_conv_q_t *p, const void *in, int32_t g, int32_t pix, int32_t *col4, int32_t K,
                         int32_t wzp, int32_t *corr)
{
    int32_t q, sums[4];
    const int32_t rows = p->act_signed ? quad_rows_s8(p, (const int8_t *)in, g, pix, col4)
                                       : quad_rows_u8(p, (const uint8_t *)in, g, pix, col4);
    if (rows) {
        if (wzp == 0) {
            corr[0] = corr[1] = corr[2] = corr[3] = 0;
            return;
        }
        quad_sums(col4, K, sums);
    } else {
        for (q = 0; q < 4; q++) {
            sums[q] = p->act_signed ? im2col4_s8(p, (const int8_t *)in, g, pix + q, col4 + q, K)
                                    : im2col4_u8(p, (const uint8_t *)in, g, pix + q, col4 + q, K);
        }
    }
    for (q = 0; q < 4; q++) {
        corr[q] = wzp * sums[q];
    }
}

/* Output pixels 0 .. npix & ~3 of group g, dense natural-layout weights (row o at w + o K);
 * col4 holds 4 K int32 (planner.scratch_bytes). */
static void dense_quads(const nnrt_conv_q_t *p, rq_t r, const void *in, void *out, int32_t *col4, int32_t g,
                        int32_t og, int32_t K, int32_t npix)
{
    const int32_t nblk = (og * K + NNRT_DENSE_BLOCK_BYTES - 1) / NNRT_DENSE_BLOCK_BYTES;
    const int32_t bsize = (og + nblk - 1) / nblk;
    const int32_t wzp = p->w_signed ? 0 : p->w_zp;
    int32_t b0, pix, q, i;
    for (b0 = 0; b0 < og; b0 += bsize) {
        const int32_t b1 = b0 + bsize < og ? b0 + bsize : og;
        for (pix = 0; pix + 4 <= npix; pix += 4) {
            int32_t corr[4];
            quad_columns(p, in, g, pix, col4, K, wzp, corr);
            for (i = b0; i < b1; i++) {
                const int32_t o = g * og + i, bias = p->bias ? p->bias[o] : 0;
                int32_t acc[4];
                for (q = 0; q < 4; q++) {
                    acc[q] = bias - corr[q];
                }
                if (p->w_signed) {
                    nnrt_dense4_s8((const int8_t *)p->w + o * K, col4, col4 + 4 * (K & ~3), col4 + 4 * K, acc);
                } else {
                    nnrt_dense4_u8((const uint8_t *)p->w + o * K, col4, col4 + 4 * (K & ~3), col4 + 4 * K, acc);
                }
                for (q = 0; q < 4; q++) {
                    store_q(r, out, o, o * npix + pix + q, acc[q]);
                }
            }
        }
    }
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

/* Kernels for one output pixel: linear layers and single-pixel convs (the fast conv below needs
 * >= 2 pixels). Two row pairs (w, w + 2 kp) x one pixel: acc = a b c d. Inline assembly keeps the
 * loads grouped (GCC interleaves them with the SMLADs otherwise, losing the M4 load pipelining);
 * at -O0 there are not enough free registers and the C 2x1 loop below does all the rows. */
#if defined(__OPTIMIZE__)
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

/* Single row x one pixel: acc = a0 (the mac_fn c1 argument is unused). */
#define DEFINE_1XN(NAME, LO, HI)                                                                          \
    static void NAME(const uint8_t *w, const int16_t *c0, const int16_t *c1, int32_t kp, int32_t *acc)    \
    {                                                                                                     \
        int32_t a0 = acc[0], k;                                                                           \
        (void)c1;                                                                                         \
        for (k = 0; k < kp; k += 4, w += 4) {                                                             \
            const uint32_t wa = ld32(w);                                                                  \
            a0 = __smlad(LO(wa), (int32_t)ld32(c0 + k), a0);                                              \
            a0 = __smlad(HI(wa), (int32_t)ld32(c0 + k + 2), a0);                                          \
        }                                                                                                 \
        acc[0] = a0;                                                                                      \
    }

DEFINE_2X1(mac_2x1_s8, LO_S, HI_S)
DEFINE_2X1(mac_2x1_u8, LO_U, HI_U)
DEFINE_1XN(mac_1xn_s8, LO_S, HI_S)
DEFINE_1XN(mac_1xn_u8, LO_U, HI_U)

typedef void (*mac_fn)(const uint8_t *, const int16_t *, const int16_t *, int32_t, int32_t *);

/* All output channels of group g for the single pixel pix0 (column c0, sum s0): four rows at a
 * time (optimized builds), then row pairs, then an odd last row. */
static void dsp_rows(const nnrt_conv_q_t *p, int32_t g, int32_t kp, const int16_t *c0, int32_t s0, int32_t pix0,
                     int32_t npix, void *out)
{
    const int32_t og = p->out_c / p->groups, sg = p->w_signed;
    const mac_fn pair = sg ? mac_2x1_s8 : mac_2x1_u8;
    const mac_fn single = sg ? mac_1xn_s8 : mac_1xn_u8;
    const rq_t r = rq_of(p);
    const int32_t *bias = p->bias;
    const uint8_t *wbase = (const uint8_t *)p->w;
    /* uint8 weights: sum (w - zw) x = sum w x - zw sum x */
    const int32_t corr0 = sg ? 0 : p->w_zp * s0;
    int32_t i = 0;
#if defined(HAVE_4X1)
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
#endif
    for (; i < og; i += 2) {
        const int32_t oa = g * og + i;
        const uint8_t *w = wbase + oa * kp;
        int32_t acc[2];
        acc[0] = (bias ? bias[oa] : 0) - corr0;
        if (i + 1 < og) {
            acc[1] = (bias ? bias[oa + 1] : 0) - corr0;
            pair(w, c0, 0, kp, acc);
            store_q(r, out, oa, oa * npix + pix0, acc[0]);
            store_q(r, out, oa + 1, (oa + 1) * npix + pix0, acc[1]);
        } else {
            acc[1] = 0;
            single(w, c0, 0, kp, acc);
            store_q(r, out, oa, oa * npix + pix0, acc[0]);
        }
    }
}

/* ---- Fast DSP conv (any layer with >= 2 output pixels and DSP-layout weights) ----------------
 * Two output pixels share one interleaved q15 column buffer: for every k pair (k, k+1) it holds
 * the word (x0[k], x0[k+1]) of pixel 0, then the word (x1[k], x1[k+1]) of pixel 1, each value
 * already minus the input zero point, so one 16-byte group covers four k of both pixels and the
 * assembly kernel reads it with a single pointer. The column is gathered once per pixel pair
 * through a table of input offsets (computed once per layer; valid for every window because a
 * padded layer reads a zero-point padded band of input rows) and reused by every output channel.
 * Scratch (nnrt.h, NNRT_DSP_SCRATCH_BYTES): column (4 kp bytes), offset table (4 kp bytes),
 * accumulators (8 og bytes), padded band (only if the layer pads). See README.md. */
/* Interleaved column pair of the windows at b0 and b1 (see above): per 4 k, one LDM of 4 offsets,
 * 8 byte loads in one pipelined run, PKHBT into (k, k+1) pairs, SSUB16 of the zero point pair
 * zp2, one STM; two steps per loop iteration. kp is a multiple of 4. */
void nnrt_gather_s8(const int8_t *b0, const int8_t *b1, const int32_t *tab, uint32_t *d, int32_t kp, uint32_t zp2);
void nnrt_gather_u8(const uint8_t *b0, const uint8_t *b1, const int32_t *tab, uint32_t *d, int32_t kp,
                    uint32_t zp2);

#define GATHER_STEP(L)                                                                             \
    "ldm r2!, {r4-r7}\n\t"                                                                         \
    L " r8, [r0, r4]\n\t"                                                                          \
    L " r9, [r0, r5]\n\t"                                                                          \
    L " r10, [r1, r4]\n\t"                                                                         \
    L " r11, [r1, r5]\n\t"                                                                         \
    L " r4, [r0, r6]\n\t"                                                                          \
    L " r5, [r0, r7]\n\t"                                                                          \
    L " r6, [r1, r6]\n\t"                                                                          \
    L " r7, [r1, r7]\n\t"                                                                          \
    "pkhbt r8, r8, r9, lsl #16\n\t"                                                                \
    "pkhbt r9, r10, r11, lsl #16\n\t"                                                              \
    "pkhbt r10, r4, r5, lsl #16\n\t"                                                               \
    "pkhbt r11, r6, r7, lsl #16\n\t"                                                               \
    "ssub16 r8, r8, r12\n\t"                                                                       \
    "ssub16 r9, r9, r12\n\t"                                                                       \
    "ssub16 r10, r10, r12\n\t"                                                                     \
    "ssub16 r11, r11, r12\n\t"                                                                     \
    "stm r3!, {r8-r11}\n\t"

/* Stack after the push: [sp+36] kp, [sp+40] zp2. */
#define DEFINE_GATHER(NAME, L)                                                                     \
    __asm__(NNRT_ASM_BEGIN(NAME)                                                                 \
            "push {r4-r11, lr}\n\t"                                                                \
            "ldr lr, [sp, #36]\n\t"                                                                \
            "ldr r12, [sp, #40]\n\t"                                                               \
            "tst lr, #4\n\t"                                                                       \
            "add lr, r2, lr, lsl #2\n\t"                                                           \
            "beq 1f\n\t" GATHER_STEP(L) "1:\n\t"                                                   \
            "cmp r2, lr\n\t"                                                                       \
            "beq 2f\n"                                                                             \
            "3:\n\t" GATHER_STEP(L) GATHER_STEP(L) "cmp r2, lr\n\t"                                \
            "bne 3b\n"                                                                             \
            "2:\n\t"                                                                               \
            "pop {r4-r11, pc}\n\t"                                                                 \
            NNRT_ASM_END(NAME));
DEFINE_GATHER(nnrt_gather_s8, "ldrsb")
DEFINE_GATHER(nnrt_gather_u8, "ldrb")

/* Every row pair of a group x the pixel pair: for each of npairs row pairs (consecutive in the DSP
 * layout, 2 kp bytes each) over nblk = kp / 4 blocks, accs receives a0 a1 b0 b1 (row a pixel 0,
 * row a pixel 1, row b pixel 0, row b pixel 1; starting from init0 for pixel 0 and init1 for
 * pixel 1, no bias). Per block: six loads in one pipelined run (4 column words, 2 weight words),
 * four SXTB16 (UXTB16 for uint8 weights), eight SMLAD; eight blocks per loop iteration. Plain
 * assembly (the kernel needs all 14 registers), so it is the same at every optimization level. */
void nnrt_mac_rows_s8(const uint8_t *w, const uint32_t *col, int32_t nblk, int32_t npairs, int32_t *accs,
                      int32_t init0, int32_t init1);
void nnrt_mac_rows_u8(const uint8_t *w, const uint32_t *col, int32_t nblk, int32_t npairs, int32_t *accs,
                      int32_t init0, int32_t init1);

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

/* Stack after the push: [sp] col, [sp+4] nblk, [sp+8] pairs left, [sp+48] accs, [sp+52] init0,
 * [sp+56] init1 (stack arguments). The 8-block loop is entered Duff-style through a TBH table so
 * that nblk % 8 costs no extra loop overhead: ceil(nblk / 8) passes, the first one partial. */
#define MAC_ROWS_LBL(NAME, S) ".L" #NAME "_" #S
#define DEFINE_MAC_ROWS(NAME, X)                                                                   \
    __asm__(NNRT_ASM_BEGIN(NAME)                                                                 \
            "push {r1-r11, lr}\n"                                                                  \
            "5:\n\t"                                                                               \
            "ldr r4, [sp, #52]\n\t"                                                                \
            "ldr r5, [sp, #56]\n\t"                                                                \
            "mov r6, r4\n\t"                                                                       \
            "mov r7, r5\n\t"                                                                       \
            "ldr r1, [sp]\n\t"                                                                     \
            "ldr r2, [sp, #4]\n\t"                                                                 \
            "and r3, r2, #7\n\t"                                                                   \
            "adds r2, r2, #7\n\t"                                                                  \
            "lsrs r2, r2, #3\n\t"                                                                  \
            "tbh [pc, r3, lsl #1]\n" MAC_ROWS_LBL(NAME, t) ":\n\t"                                 \
            ".hword (" MAC_ROWS_LBL(NAME, b0) " - " MAC_ROWS_LBL(NAME, t) ") / 2\n\t"              \
            ".hword (" MAC_ROWS_LBL(NAME, b7) " - " MAC_ROWS_LBL(NAME, t) ") / 2\n\t"              \
            ".hword (" MAC_ROWS_LBL(NAME, b6) " - " MAC_ROWS_LBL(NAME, t) ") / 2\n\t"              \
            ".hword (" MAC_ROWS_LBL(NAME, b5) " - " MAC_ROWS_LBL(NAME, t) ") / 2\n\t"              \
            ".hword (" MAC_ROWS_LBL(NAME, b4) " - " MAC_ROWS_LBL(NAME, t) ") / 2\n\t"              \
            ".hword (" MAC_ROWS_LBL(NAME, b3) " - " MAC_ROWS_LBL(NAME, t) ") / 2\n\t"              \
            ".hword (" MAC_ROWS_LBL(NAME, b2) " - " MAC_ROWS_LBL(NAME, t) ") / 2\n\t"              \
            ".hword (" MAC_ROWS_LBL(NAME, b1) " - " MAC_ROWS_LBL(NAME, t) ") / 2\n"                \
            MAC_ROWS_LBL(NAME, b0) ":\n\t" MAC2X2I_BLOCK(X)                                         \
            MAC_ROWS_LBL(NAME, b1) ":\n\t" MAC2X2I_BLOCK(X)                                         \
            MAC_ROWS_LBL(NAME, b2) ":\n\t" MAC2X2I_BLOCK(X)                                         \
            MAC_ROWS_LBL(NAME, b3) ":\n\t" MAC2X2I_BLOCK(X)                                         \
            MAC_ROWS_LBL(NAME, b4) ":\n\t" MAC2X2I_BLOCK(X)                                         \
            MAC_ROWS_LBL(NAME, b5) ":\n\t" MAC2X2I_BLOCK(X)                                         \
            MAC_ROWS_LBL(NAME, b6) ":\n\t" MAC2X2I_BLOCK(X)                                         \
            MAC_ROWS_LBL(NAME, b7) ":\n\t" MAC2X2I_BLOCK(X)                                         \
            "subs r2, r2, #1\n\t"                                                                  \
            "bne " MAC_ROWS_LBL(NAME, b0) "\n\t"                                                   \
            "ldr r3, [sp, #48]\n\t"                                                                \
            "stmia r3!, {r4-r7}\n\t"                                                               \
            "str r3, [sp, #48]\n\t"                                                                \
            "ldr r3, [sp, #8]\n\t"                                                                 \
            "subs r3, r3, #1\n\t"                                                                  \
            "str r3, [sp, #8]\n\t"                                                                 \
            "bne 5b\n\t"                                                                           \
            "add sp, sp, #12\n\t"                                                                  \
            "pop {r4-r11, pc}\n\t"                                                                 \
            NNRT_ASM_END(NAME));
DEFINE_MAC_ROWS(nnrt_mac_rows_s8, "sxtb16")
DEFINE_MAC_ROWS(nnrt_mac_rows_u8, "uxtb16")

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

/* Sums of the two columns over all kp entries (SMLAD with (1, 1)): s[0] pixel 0, s[1] pixel 1. */
static void col_sums(const uint32_t *col, int32_t kp, int32_t *s)
{
    const uint32_t *const end = col + kp;
    int32_t a = 0, b = 0;
    for (; col < end; col += 4) {
        a = __smlad((int32_t)col[0], 0x00010001, a);
        b = __smlad((int32_t)col[1], 0x00010001, b);
        a = __smlad((int32_t)col[2], 0x00010001, a);
        b = __smlad((int32_t)col[3], 0x00010001, b);
    }
    s[0] = a;
    s[1] = b;
}

/* Requantization for the fast path. Mode 1 (fixed point, every right shift e in 1..31, the usual
 * case): srdhm is one SMLAL and rdbpot(x, e) == (x + 2^(e-1) - (x < 0)) >> e whenever
 * x + 2^(e-1) does not overflow (else the generic routine runs). Mode 2: power of two with a
 * right shift r >= 1 (nnrt_pow2_shift32). Mode 0: store_q. Chosen once per layer. */
static int32_t rq_mode(const nnrt_conv_q_t *p)
{
    int32_t i, n;
    if (p->rq == NNRT_RQ_POW2) {
        return p->shift[0] >= 1 ? 2 : 0;
    }
    n = p->per_channel ? p->out_c : 1;
    for (i = 0; i < n; i++) {
        if (p->shift[i] > -1 || p->shift[i] < -31 || p->mult[i] < 0) {
            return 0;
        }
    }
    return 1;
}

/* Requantize and store the accumulators of one pixel pair (corrections already in them): channel
 * i (o = o0 + i) of pixel 0 is accs[2 i] + bias, stored at out[i * npix], of pixel 1 accs[2 i + 1]
 * + bias at out[i * npix + 1]. single: only pixel 0 (the last pixel of an odd count). */
#define RQ_CLAMP_STORE(V, IDX)                                                                     \
    do {                                                                                           \
        const int32_t v_ = (V);                                                                    \
        out[IDX] = (uint8_t)((v_ < lo ? lo : (v_ > hi ? hi : v_)) + zp);                           \
    } while (0)

static void requant_pair(const nnrt_conv_q_t *p, int32_t mode, const int32_t *accs, int32_t o0, int32_t og,
                         uint8_t *out, int32_t npix, int32_t single)
{
    const rq_t r = rq_of(p);
    const int32_t *const bias = p->bias;
    const int32_t lo = r.lo, hi = r.hi, zp = r.out_zp;
    const int32_t *const end = accs + 2 * og;
    const int32_t *bp = bias ? bias + o0 : 0;
    int32_t i;
    if (single || mode == 0) {
        for (i = 0; i < og; i++, out += npix) {
            const int32_t b = bias ? bias[o0 + i] : 0;
            store_q(r, out, o0 + i, 0, accs[2 * i] + b);
            if (!single) {
                store_q(r, out, o0 + i, 1, accs[2 * i + 1] + b);
            }
        }
    } else if (mode == 1 && r.ch_mask) {
        const int32_t *mp = r.mult + o0, *sp = r.shift + o0;
        for (; accs < end; accs += 2, out += npix) {
            const int32_t b = bp ? *bp++ : 0, m = *mp++, e = -*sp++, h = (int32_t)(1u << (e - 1));
            RQ_CLAMP_STORE(nnrt_mbqm_rshift(accs[0] + b, m, e, h), 0);
            RQ_CLAMP_STORE(nnrt_mbqm_rshift(accs[1] + b, m, e, h), 1);
        }
    } else if (mode == 1) {
        const int32_t m = r.mult[0], e = -r.shift[0], h = (int32_t)(1u << (e - 1));
        for (; accs < end; accs += 2, out += npix) {
            const int32_t b = bp ? *bp++ : 0;
            RQ_CLAMP_STORE(nnrt_mbqm_rshift(accs[0] + b, m, e, h), 0);
            RQ_CLAMP_STORE(nnrt_mbqm_rshift(accs[1] + b, m, e, h), 1);
        }
    } else {
        const int32_t e = r.shift[0];
        for (; accs < end; accs += 2, out += npix) {
            const int32_t b = bp ? *bp++ : 0;
            RQ_CLAMP_STORE(nnrt_pow2_shift32(accs[0] + b, e), 0);
            RQ_CLAMP_STORE(nnrt_pow2_shift32(accs[1] + b, e), 1);
        }
    }
}

/* Rows [band0, band0 + rows) of the zero-point padded input planes of one group (nc channels at
 * src), each Wp bytes wide, channel after channel. */
static void fill_band(const nnrt_conv_q_t *p, const uint8_t *src, uint8_t *band, int32_t band0, int32_t rows,
                      int32_t nc, int32_t Wp)
{
    const uint32_t zw = ((uint32_t)p->in_zp & 0xFFu) * 0x01010101u;
    const int32_t H = p->in_h, W = p->in_w, ph = p->p_h, pw = p->p_w;
    const int32_t nwords = (nc * rows * Wp + 3) >> 2;
    uint32_t *const b32 = (uint32_t *)(void *)band;
    int32_t i, c, j, x;
    for (i = 0; i < nwords; i++) {
        b32[i] = zw;
    }
    for (c = 0; c < nc; c++) {
        for (j = 0; j < rows; j++) {
            const int32_t y = band0 + j - ph;
            if (y >= 0 && y < H) {
                const uint8_t *s = src + (c * H + y) * W;
                uint8_t *d = band + (c * rows + j) * Wp + pw;
                for (x = 0; x + 4 <= W; x += 4) { /* unaligned word copies (ARMv7E-M) */
                    uint32_t v;
                    __builtin_memcpy(&v, s + x, 4);
                    __builtin_memcpy(d + x, &v, 4);
                }
                for (; x < W; x++) {
                    d[x] = s[x];
                }
            }
        }
    }
}

static void conv_dsp_fast(const nnrt_conv_q_t *p, const void *in, void *out, int16_t *scratch)
{
    const int32_t cin_g = p->in_c / p->groups, og = p->out_c / p->groups;
    const int32_t kh = p->k_h, kw = p->k_w, K = cin_g * kh * kw, kp = (K + 3) & ~3;
    const int32_t npix = p->out_h * p->out_w, ow = p->out_w, sg = p->w_signed, sh = p->s_h;
    const int32_t Wp = p->in_w + 2 * p->p_w, Hp = p->in_h + 2 * p->p_h;
    const int32_t pads = p->p_h || p->p_w, span = (kh - 1) * p->d_h + 1;
    /* padded layers read a band of rows: enough for two output rows (a pixel pair may straddle) */
    const int32_t rows = pads && sh + span < Hp ? sh + span : Hp, plane = rows * Wp;
    const uint32_t zp2 = ((uint32_t)p->in_zp & 0xFFFFu) * 0x10001u;
    uint32_t *const col = (uint32_t *)(void *)scratch;
    int32_t *const tab = (int32_t *)(void *)(scratch + 2 * kp);
    int32_t *const accs = tab + kp; /* 2 og */
    uint8_t *const band = (uint8_t *)(accs + 2 * og);
    const uint8_t *wbase = (const uint8_t *)p->w;
    const int32_t mode = rq_mode(p);
    int32_t g, pix, c, ky, kx, n = 0;
    for (c = 0; c < cin_g; c++) {
        for (ky = 0; ky < kh; ky++) {
            for (kx = 0; kx < kw; kx++) {
                tab[n++] = c * plane + ky * p->d_h * Wp + kx * p->d_w;
            }
        }
    }
    for (; n < kp; n++) {
        tab[n] = 0;
    }
    for (g = 0; g < p->groups; g++) {
        const uint8_t *const gin = (const uint8_t *)in + g * cin_g * p->in_h * p->in_w;
        const uint8_t *const gsrc = pads ? band : gin;
        int32_t band0 = pads ? -1 : 0;
        for (pix = 0; pix < npix; pix += 2) {
            const int32_t pix1 = pix + 1 < npix ? pix + 1 : pix;
            const int32_t oy0 = pix / ow, ox0 = pix - oy0 * ow, oy1 = pix1 / ow, ox1 = pix1 - oy1 * ow;
            const uint8_t *b0, *b1;
            int32_t corr0 = 0, corr1 = 0;
            if (pads && (band0 < 0 || oy0 * sh < band0 || oy1 * sh + span > band0 + rows)) {
                band0 = oy0 * sh < Hp - rows ? oy0 * sh : Hp - rows;
                fill_band(p, gin, band, band0, rows, cin_g, Wp);
            }
            b0 = gsrc + (oy0 * sh - band0) * Wp + ox0 * p->s_w;
            b1 = gsrc + (oy1 * sh - band0) * Wp + ox1 * p->s_w;
            if (p->act_signed) {
                nnrt_gather_s8((const int8_t *)b0, (const int8_t *)b1, tab, col, kp, zp2);
            } else {
                nnrt_gather_u8(b0, b1, tab, col, kp, zp2);
            }
            for (n = K; n < kp; n++) { /* zero the k padding */
                int16_t *h = (int16_t *)(void *)col + (n >> 1) * 4 + (n & 1);
                h[0] = 0;
                h[2] = 0;
            }
            if (!sg) { /* uint8 weights: sum (w - zw) x = sum w x - zw sum x */
                int32_t cs[2];
                col_sums(col, kp, cs);
                corr0 = p->w_zp * cs[0];
                corr1 = p->w_zp * cs[1];
            }
            if (og >= 2) {
                if (sg) {
                    nnrt_mac_rows_s8(wbase + g * og * kp, col, kp >> 2, og >> 1, accs, -corr0, -corr1);
                } else {
                    nnrt_mac_rows_u8(wbase + g * og * kp, col, kp >> 2, og >> 1, accs, -corr0, -corr1);
                }
            }
            if (og & 1) {
                accs[2 * og - 2] = -corr0;
                accs[2 * og - 1] = -corr1;
                mac_1x2i(wbase + (g * og + og - 1) * kp, col, kp, sg, accs + 2 * og - 2);
            }
            requant_pair(p, mode, accs, g * og, og, (uint8_t *)out + g * og * npix + pix, npix, pix1 == pix);
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
        if (p->wfmt == NNRT_W_DSP) { /* one output pixel (linear layers) */
            const int32_t s0 = im2col(p, in, g, 0, scratch, kp);
            dsp_rows(p, g, kp, scratch, s0, 0, npix, out);
            continue;
        }
#endif
        if (p->wfmt == NNRT_W_DENSE && npix == 1) {
            dense_rows4(p, r, in, out, (int32_t *)(void *)scratch, g, og, K);
            continue;
        }
        if (p->wfmt == NNRT_W_DENSE && npix >= 4) {
            dense_quads(p, r, in, out, (int32_t *)(void *)scratch, g, og, K, npix);
            pix = npix & ~3;
        }
        if (p->wfmt == NNRT_W_CSR16 || p->wfmt == NNRT_W_CSR32) {
            for (; pix + 1 < npix; pix += 2) {
                csr_pixel_pair(p, r, in, out, scratch, g, pix, og, kp, npix);
            }
        }
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
