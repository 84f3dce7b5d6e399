/* Quantized pooling, add and clamp on raw uint8/int8 CHW tensors (see reference.py). */
#include "nnrt.h"
#include "nnrt_fixed.h"

/* Valid window [*y0, *y1) x [*x0, *x1) of output (oy, ox); padding is never counted. */
static void window(const nnrt_pool_t *p, int32_t oy, int32_t ox, int32_t *y0, int32_t *y1, int32_t *x0,
                   int32_t *x1)
{
    const int32_t ys = oy * p->s_h - p->p_h, xs = ox * p->s_w - p->p_w;
    *y0 = ys < 0 ? 0 : ys;
    *y1 = ys + p->k_h > p->in_h ? p->in_h : ys + p->k_h;
    *x0 = xs < 0 ? 0 : xs;
    *x1 = xs + p->k_w > p->in_w ? p->in_w : xs + p->k_w;
}

void nnrt_maxpool_q(const nnrt_pool_t *p, int32_t act_signed, const void *in, void *out)
{
    int32_t c, oy, ox, y, x, y0, y1, x0, x1, o = 0;
    for (c = 0; c < p->c; c++) {
        const int32_t base = c * p->in_h * p->in_w;
        for (oy = 0; oy < p->out_h; oy++) {
            for (ox = 0; ox < p->out_w; ox++) {
                int32_t m = -1000;
                window(p, oy, ox, &y0, &y1, &x0, &x1);
                for (y = y0; y < y1; y++) {
                    for (x = x0; x < x1; x++) {
                        const int32_t v = nnrt_ld(in, base + y * p->in_w + x, act_signed);
                        m = v > m ? v : m;
                    }
                }
                nnrt_st(out, o++, act_signed, m);
            }
        }
    }
}

void nnrt_avgpool_q(const nnrt_pool_t *p, int32_t act_signed, const void *in, void *out)
{
    int32_t c, oy, ox, y, x, y0, y1, x0, x1, o = 0;
    for (c = 0; c < p->c; c++) {
        const int32_t base = c * p->in_h * p->in_w;
        for (oy = 0; oy < p->out_h; oy++) {
            for (ox = 0; ox < p->out_w; ox++) {
                int32_t sum = 0, n;
                window(p, oy, ox, &y0, &y1, &x0, &x1);
                for (y = y0; y < y1; y++) {
                    for (x = x0; x < x1; x++) {
                        sum += nnrt_ld(in, base + y * p->in_w + x, act_signed);
                    }
                }
                n = (y1 - y0) * (x1 - x0);
                sum = sum >= 0 ? (sum + n / 2) / n : -((-sum + n / 2) / n);
                nnrt_st(out, o++, act_signed, sum);
            }
        }
    }
}

void nnrt_add_q(const nnrt_add_q_t *p, const void *a, const void *b, void *out)
{
    int32_t i;
    for (i = 0; i < p->n; i++) {
        const int32_t va = nnrt_ld(a, i, p->act_signed), vb = nnrt_ld(b, i, p->act_signed);
        int64_t v;
        if (p->rq == NNRT_RQ_POW2) {
            v = nnrt_pow2_shift((int64_t)va * ((int64_t)1 << p->a_shift) + (int64_t)vb * ((int64_t)1 << p->b_shift),
                                p->out_shift);
        } else {
            const int32_t sa = nnrt_mbqm((va - p->a_zp) * (1 << 20), p->a_mult, p->a_shift);
            const int32_t sb = nnrt_mbqm((vb - p->b_zp) * (1 << 20), p->b_mult, p->b_shift);
            v = (int64_t)nnrt_mbqm(sa + sb, p->out_mult, p->out_shift) + p->out_zp;
        }
        nnrt_st(out, i, p->act_signed, nnrt_clamp(v, p->act_min, p->act_max));
    }
}

void nnrt_clamp_q(int32_t n, int32_t act_signed, const void *in, void *out, int32_t lo, int32_t hi)
{
    int32_t i;
    for (i = 0; i < n; i++) {
        nnrt_st(out, i, act_signed, nnrt_clamp(nnrt_ld(in, i, act_signed), lo, hi));
    }
}

void nnrt_copy(void *dst, const void *src, int32_t nbytes)
{
    uint8_t *d = (uint8_t *)dst;
    const uint8_t *s = (const uint8_t *)src;
    int32_t i;
    for (i = 0; i < nbytes; i++) {
        d[i] = s[i];
    }
}
