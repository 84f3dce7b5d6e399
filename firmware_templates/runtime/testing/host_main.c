/* Host test driver: reads MODEL_INPUT_BYTES samples from stdin until EOF, writes outputs. */
#include <stdio.h>
#include "model.h"

int main(void)
{
    for (;;) {
        size_t n = fread(model_input(), 1, MODEL_INPUT_BYTES, stdin);
        if (n == 0) {
            return 0;
        }
        if (n != MODEL_INPUT_BYTES) {
            return 2;
        }
        model_run();
        if (fwrite(model_output(), 1, MODEL_OUTPUT_BYTES, stdout) != MODEL_OUTPUT_BYTES) {
            return 3;
        }
    }
}
