/* Fixture "model": a dot product of the input with a rotated constant table per output,
 * repeated FIXTURE_ROUNDS times so its cycle count is controllable.  The result is a pure
 * function of the input (tests recompute it in Python):
 *   out[k] = ((R - 1 + 128 + sum_i in[i] * W[(i + 31 k) mod 784]) >> 8) & 0xFF,  W[j] = (37 j + 11) & 0xFF
 * with R = FIXTURE_ROUNDS.  The 128 comes from an initialised global (in .data), so a startup
 * that fails to copy .data changes the result. */
#include "model.h"

#ifndef FIXTURE_ROUNDS
#define FIXTURE_ROUNDS 1
#endif

#define W(j) (((j) * 37u + 11u) & 0xFFu)
#define W4(j) W(j), W((j) + 1), W((j) + 2), W((j) + 3)
#define W16(j) W4(j), W4((j) + 4), W4((j) + 8), W4((j) + 12)
#define W112(j) W16(j), W16((j) + 16), W16((j) + 32), W16((j) + 48), W16((j) + 64), W16((j) + 80), W16((j) + 96)

/* 784 bytes of "weights" in flash (the footprint test attributes exactly these). */
static const uint8_t fixture_weights[MODEL_INPUT_BYTES] = {
    W112(0), W112(112), W112(224), W112(336), W112(448), W112(560), W112(672),
};

/* Rounding offset: deliberately a non-const initialised global, i.e. in .data. */
uint32_t fixture_rounding = 128u;

/* Input and output live in one zero-initialised arena, like a generated model's. */
static uint8_t model_arena[MODEL_ARENA_BYTES] __attribute__((aligned(8)));

uint8_t *model_input(void) {
    return model_arena;
}

const uint8_t *model_output(void) {
    return model_arena + MODEL_INPUT_BYTES;
}

void model_run(void) {
    const uint8_t *in = model_arena;
    uint8_t *out = model_arena + MODEL_INPUT_BYTES;
    for (uint32_t r = 0; r < FIXTURE_ROUNDS; r++) {
        for (uint32_t k = 0; k < MODEL_OUTPUT_BYTES; k++) {
            uint32_t acc = r + fixture_rounding;
            uint32_t j = (31u * k) % MODEL_INPUT_BYTES;
            for (uint32_t i = 0; i < MODEL_INPUT_BYTES; i++) {
                acc += (uint32_t)in[i] * fixture_weights[j];
                if (++j == MODEL_INPUT_BYTES) j = 0;
            }
            out[k] = (uint8_t)(acc >> 8);
        }
    }
}
