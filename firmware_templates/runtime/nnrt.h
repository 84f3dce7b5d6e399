/* nnrt: portable C99 neural-network runtime used by the generated model code.
 * Activations are CHW. Quantized layers use the integer arithmetic defined in
 * harness/codegen/reference.py; every kernel here is bit-exact with it. */
#ifndef NNRT_H
#define NNRT_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

enum { NNRT_RQ_FIXED = 0, NNRT_RQ_POW2 = 1 };
/* Weight formats. NNRT_W_DSP: rows zero-point padded to kp = round_up(K, 4) bytes; row o starts at
 * o * kp; within each group, rows (2i, 2i+1) are interleaved per block of four k (4 bytes of row
 * 2i, then 4 of row 2i+1) and every block is stored as w0 w2 w1 w3 (SXTB16 order); an odd last
 * row of a group is stored alone the same way. */
enum { NNRT_W_DENSE = 0, NNRT_W_CSR16 = 1, NNRT_W_CSR32 = 2, NNRT_W_DSP = 3 };

/* Entries [*start, *end) of output channel o in a CSR weight's arrays (row pointers are uint16
 * for NNRT_W_CSR16, uint32 for NNRT_W_CSR32). */
static inline void nnrt_csr_span(int32_t wfmt, const void *row, int32_t o, int32_t *start, int32_t *end)
{
    if (wfmt == NNRT_W_CSR16) {
        *start = ((const uint16_t *)row)[o];
        *end = ((const uint16_t *)row)[o + 1];
    } else {
        *start = (int32_t)((const uint32_t *)row)[o];
        *end = (int32_t)((const uint32_t *)row)[o + 1];
    }
}

/* conv2d or linear (linear = 1x1 conv on a (K,1,1) input). K = in_c / groups * k_h * k_w. */
typedef struct {
    int32_t in_c, in_h, in_w, out_c, out_h, out_w;
    int32_t k_h, k_w, s_h, s_w, p_h, p_w, d_h, d_w, groups;
    int32_t act_signed; /* activations int8 (1) or uint8 (0) */
    int32_t w_signed;   /* weights int8 (1) or uint8 (0) */
    int32_t in_zp, w_zp, out_zp, act_min, act_max;
    int32_t rq;          /* NNRT_RQ_FIXED: mult/shift per channel or one; NNRT_RQ_POW2: shift[0] = right shift */
    int32_t per_channel;
    const int32_t *bias; /* out_c entries, aligned to the accumulator, or NULL */
    const int32_t *mult;
    const int32_t *shift;
    int32_t wfmt;        /* NNRT_W_* */
    const void *w;       /* dense [out_c][K] or CSR values */
    const uint16_t *col; /* CSR column indices (within K) */
    const void *row;     /* CSR row pointers (out_c + 1), uint16 or uint32 */
} nnrt_conv_q_t;

typedef struct {
    int32_t in_c, in_h, in_w, out_c, out_h, out_w;
    int32_t k_h, k_w, s_h, s_w, p_h, p_w, d_h, d_w, groups;
    float act_min, act_max;
    const float *bias;
    int32_t wfmt;
    const float *w;
    const uint16_t *col;
    const void *row;
} nnrt_conv_f_t;

typedef struct {
    int32_t c, in_h, in_w, out_h, out_w, k_h, k_w, s_h, s_w, p_h, p_w;
} nnrt_pool_t;

typedef struct {
    int32_t n, act_signed, rq;
    int32_t a_zp, b_zp, out_zp;
    int32_t a_mult, a_shift, b_mult, b_shift, out_mult, out_shift;
    int32_t act_min, act_max;
} nnrt_add_q_t;

/* Scratch: int16 im2col columns, 2 * round_up(K, 4) entries (quantized; 4 round_up(K, 4) int32
 * for dense natural-layout weights with >= 4 output pixels, walked for pixel quads); K floats (float; 2 K
 * for CSR weights with >= 2 output pixels, walked for pixel pairs).
 * The fast DSP conv (NNRT_USE_DSP on an ARMv7E-M core, NNRT_W_DSP weights, >= 2 output pixels)
 * needs NNRT_DSP_SCRATCH_BYTES instead: column pair + offset table (4 kp bytes each) +
 * accumulators (8 bytes per output channel of a group) + a zero-point padded band of one group's
 * input when the layer pads: cin_g channels x rows x (in_w + 2 p_w) bytes, rows =
 * min(s_h + (k_h - 1) d_h + 1, in_h + 2 p_h) (harness/codegen/planner.py sizes it). */
#define NNRT_DSP_SCRATCH_BYTES(kp, og, cin_g, rows, wp, pads) \
    (8 * (kp) + 8 * (og) + ((pads) ? ((cin_g) * (rows) * (wp) + 3) / 4 * 4 : 0))
void nnrt_conv_q(const nnrt_conv_q_t *p, const void *in, void *out, int16_t *scratch);
void nnrt_conv_f(const nnrt_conv_f_t *p, const float *in, float *out, float *scratch);

void nnrt_maxpool_q(const nnrt_pool_t *p, int32_t act_signed, const void *in, void *out);
void nnrt_avgpool_q(const nnrt_pool_t *p, int32_t act_signed, const void *in, void *out);
void nnrt_maxpool_f(const nnrt_pool_t *p, const float *in, float *out);
void nnrt_avgpool_f(const nnrt_pool_t *p, const float *in, float *out);

void nnrt_add_q(const nnrt_add_q_t *p, const void *a, const void *b, void *out);
void nnrt_add_f(int32_t n, const float *a, const float *b, float *out, float lo, float hi);

void nnrt_clamp_q(int32_t n, int32_t act_signed, const void *in, void *out, int32_t lo, int32_t hi);
void nnrt_clamp_f(int32_t n, const float *in, float *out, float lo, float hi);

void nnrt_copy(void *dst, const void *src, int32_t nbytes);

#ifdef __cplusplus
}
#endif
#endif /* NNRT_H */
