/* Hand-written stand-in for the generated model.h (same C API as harness.codegen output). */
#ifndef MODEL_H
#define MODEL_H
#include <stdint.h>

#define MODEL_NAME "fixture"
#define MODEL_HASH "f1f7a4e000000001"
#define MODEL_NUMERIC "uint8"
#define MODEL_INPUT_BYTES 784
#define MODEL_OUTPUT_BYTES 10
#define MODEL_OUTPUT_COUNT 10
#define MODEL_ARENA_BYTES 1024

uint8_t *model_input(void);
const uint8_t *model_output(void);
void model_run(void);

#endif
