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

void nnrt_conv_f(const nnrt_conv_f_t *p, const float *in, float *out, float *scratch)
{
    const int32_t cin_g = p->in_c / p->groups, og = p->out_c / p->groups;
    const int32_t K = cin_g * p->k_h * p->k_w;
    const int32_t npix = p->out_h * p->out_w;
    int32_t g, pix, i, k;
    for (g = 0; g < p->groups; g++) {
        for (pix = 0; pix < npix; pix++) {
            im2col_f(p, in, g, pix, scratch);
            for (i = 0; i < og; i++) {
                const int32_t o = g * og + i;
                float acc = p->bias ? p->bias[o] : 0.0f;
                if (p->wfmt == NNRT_W_DENSE) {
                    const float *w = p->w + o * K;
                    for (k = 0; k < K; k++) {
                        acc += w[k] * scratch[k];
                    }
                } else {
                    int32_t j, start, end;
                    if (p->wfmt == NNRT_W_CSR16) {
                        start = ((const uint16_t *)p->row)[o];
                        end = ((const uint16_t *)p->row)[o + 1];
                    } else {
                        start = (int32_t)((const uint32_t *)p->row)[o];
                        end = (int32_t)((const uint32_t *)p->row)[o + 1];
                    }
                    for (j = start; j < end; j++) {
                        acc += p->w[j] * scratch[p->col[j]];
                    }
                }
                acc = acc < p->act_min ? p->act_min : (acc > p->act_max ? p->act_max : acc);
                out[o * npix + pix] = acc;
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
