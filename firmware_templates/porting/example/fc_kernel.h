/* fc_kernel.h - the hand-written example workload (see fc_kernel.c). */
#ifndef FC_KERNEL_H
#define FC_KERNEL_H

#include <stdint.h>

#define FC_IN 256
#define FC_OUT 128
#define FC_SHIFT 8

void fc_init(uint32_t seed);
void fc_run(const int8_t *in, int8_t *out);

#endif
