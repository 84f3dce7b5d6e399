/* main.c - the team's firmware entry point, with the harness porting layer added: describe the
 * workload, bring the board up, hand control to the benchmark protocol. */
#include <stdint.h>

#include "fc_kernel.h"
#include "harness_port.h"

#ifndef EXAMPLE_BUILD_ID
#define EXAMPLE_BUILD_ID "dev"
#endif
#ifndef EXAMPLE_CLOCK_HZ
#define EXAMPLE_CLOCK_HZ 100000000u
#endif

void board_init(void); /* the team's BSP: clocks, UART, GPIO (sim_board.c here) */

static int8_t s_in[FC_IN];
static int8_t s_out[FC_OUT];

/* Eight frames per timed call keep the GPIO window (about 21 ms on sim-m4) long against the
 * analyzer's 20 us sample interval, so the GPIO and cycle-counter timings agree closely. */
#define EXAMPLE_FRAMES 8

static void run_fc(void *ctx) {
    (void)ctx;
    for (int f = 0; f < EXAMPLE_FRAMES; f++) fc_run(s_in, s_out);
}

static const harness_workload_t workload = {
    .board = "sim-m4",
    .name = "fc256x128",
    .version = "fc256x128-v1",
    .build = EXAMPLE_BUILD_ID,
    .numeric = "int8",
    .input = (uint8_t *)s_in,
    .input_bytes = sizeof s_in,
    .output = (const uint8_t *)s_out,
    .output_bytes = sizeof s_out,
    .output_count = FC_OUT,
    .arena_bytes = 0,
    .core_clock_hz = EXAMPLE_CLOCK_HZ,
    .run = run_fc,
    .ctx = 0,
};

int main(void) {
    board_init();
    fc_init(42u);
    harness_init(&workload);
    harness_serve();
    return 0;
}
