/* Integer primitives, bit-identical to harness/codegen/fixedpoint.py. */
#ifndef NNRT_FIXED_H
#define NNRT_FIXED_H

#include <stdint.h>

static inline int32_t nnrt_sat32(int64_t v)
{
    return v > INT32_MAX ? INT32_MAX : (v < INT32_MIN ? INT32_MIN : (int32_t)v);
}

/* gemmlowp SaturatingRoundingDoublingHighMul. Its nudge-and-truncate form equals
 * floor((a*b + 2^30) / 2^31) for every product (ties round up either way), which needs no sign
 * test; the only saturating case is INT32_MIN * INT32_MIN. */
static inline int32_t nnrt_srdhm(int32_t a, int32_t b)
{
    if (a == INT32_MIN && b == INT32_MIN) {
        return INT32_MAX;
    }
    return (int32_t)(((int64_t)a * (int64_t)b + ((int64_t)1 << 30)) >> 31);
}

/* nnrt_srdhm for b >= 0 from four 16 x 16 -> 32-bit products: cores without a 32 x 32 -> 64-bit
 * multiply (ARMv6-M) would otherwise call __aeabi_lmul. With a = ah 2^16 + al, b = bh 2^16 + bl
 * (al, bl, bh unsigned 16-bit, ah signed), a b = hh 2^32 + (lh + hl) 2^16 + ll, and
 * floor((a b + 2^30) / 2^31) = 2 hh + floor((lh + hl + (ll >> 16) + 2^14) / 2^15) (the low 16
 * bits of ll cannot carry past a multiple of 2^15 there); lh and hl are split at bit 15 so no
 * partial sum overflows. The sum wraps in uint32 to the exact int32 result. */
static inline int32_t nnrt_srdhm_pos32(int32_t a, int32_t b)
{
    const uint32_t al = (uint32_t)a & 0xFFFFu, bl = (uint32_t)b & 0xFFFFu;
    const int32_t ah = a >> 16, bh = b >> 16;
    const uint32_t ll = al * bl;
    const int32_t lh = (int32_t)(al * (uint32_t)bh), hl = ah * (int32_t)bl, hh = ah * bh;
    const uint32_t low = ((uint32_t)lh & 0x7FFFu) + ((uint32_t)hl & 0x7FFFu) + (ll >> 16) + 0x4000u;
    return (int32_t)(2u * (uint32_t)hh + (uint32_t)(lh >> 15) + (uint32_t)(hl >> 15) + (low >> 15));
}

/* gemmlowp RoundingDivideByPOT: round to nearest, ties away from zero; 0 <= e <= 31. */
static inline int32_t nnrt_rdbpot(int32_t x, int32_t e)
{
    const int32_t mask = (int32_t)((1u << e) - 1u); /* 32-bit: no 64-bit shift call on the M0+ */
    const int32_t rem = x & mask;
    const int32_t threshold = (mask >> 1) + (x < 0 ? 1 : 0);
    return (x >> e) + (rem > threshold ? 1 : 0);
}

/* TFLM MultiplyByQuantizedMultiplier; a positive shift saturates x << shift to int32. */
static inline int32_t nnrt_mbqm(int32_t x, int32_t m, int32_t shift)
{
    if (shift > 0) {
        x = nnrt_sat32((int64_t)x * ((int64_t)1 << shift));
        shift = 0;
    }
    return nnrt_rdbpot(nnrt_srdhm(x, m), -shift);
}

/* CMSIS-NN NN_ROUND right shift (floor after adding half); negative r shifts left. */
static inline int64_t nnrt_pow2_shift(int64_t acc, int32_t r)
{
    if (r > 0) {
        return (acc + ((int64_t)1 << (r - 1))) >> r;
    }
    return acc * ((int64_t)1 << (-r));
}

/* Same as nnrt_pow2_shift, saturated to int32, in 32-bit arithmetic:
 * floor((acc + 2^(r-1)) / 2^r) == (acc >> r) + bit r-1 of acc. */
static inline int32_t nnrt_pow2_shift32(int32_t acc, int32_t r)
{
    if (r > 0) {
        return (acc >> r) + ((acc >> (r - 1)) & 1);
    }
    return nnrt_sat32((int64_t)acc * ((int64_t)1 << (-r)));
}

/* nnrt_mbqm for a non-negative multiplier (the SRDHM overflow case cannot occur). */
static inline int32_t nnrt_mbqm_pos(int32_t x, int32_t m, int32_t shift)
{
    if (shift > 0) {
        x = nnrt_sat32((int64_t)x * ((int64_t)1 << shift));
        shift = 0;
    }
#if defined(__ARM_ARCH_6M__)
    return nnrt_rdbpot(nnrt_srdhm_pos32(x, m), -shift);
#else
    return nnrt_rdbpot((int32_t)(((int64_t)x * (int64_t)m + ((int64_t)1 << 30)) >> 31), -shift);
#endif
}

/* nnrt_mbqm_pos(x, m, -e) for a right shift 1 <= e <= 31, h = 2^(e-1) (the fast DSP conv's
 * requantization): SRDHM is one 64-bit multiply-add (an SMLAL), and rdbpot(v, e) ==
 * (v + 2^(e-1) - (v < 0)) >> e unless v + 2^(e-1) overflows (then nnrt_rdbpot runs). */
static inline int32_t nnrt_mbqm_rshift(int32_t x, int32_t m, int32_t e, int32_t h)
{
    const int32_t v = (int32_t)(((int64_t)x * m + ((int64_t)1 << 30)) >> 31);
    if (v > INT32_MAX - h) {
        return nnrt_rdbpot(v, e);
    }
    return (v + h + (v >> 31)) >> e;
}

static inline int32_t nnrt_clamp(int64_t v, int32_t lo, int32_t hi)
{
    return v < lo ? lo : (v > hi ? hi : (int32_t)v);
}

static inline int32_t nnrt_ld(const void *p, int32_t i, int32_t is_signed)
{
    return is_signed ? (int32_t)((const int8_t *)p)[i] : (int32_t)((const uint8_t *)p)[i];
}

static inline void nnrt_st(void *p, int32_t i, int32_t is_signed, int32_t v)
{
    if (is_signed) {
        ((int8_t *)p)[i] = (int8_t)v;
    } else {
        ((uint8_t *)p)[i] = (uint8_t)v;
    }
}

#endif /* NNRT_FIXED_H */
