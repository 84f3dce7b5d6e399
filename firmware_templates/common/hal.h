/* hal.h - the only board services the benchmark main loop (bench_main.c) needs.
 *
 * Each firmware template (bare-metal sim boards, Mbed) implements this once; bench_main.c stays
 * portable.  The protocol is documented in docs/protocol.md.
 */
#ifndef BENCH_HAL_H
#define BENCH_HAL_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Clocks, UART (board baud rate), benchmark GPIO (driven low), counter. */
void hal_init(void);

/* Blocking UART byte I/O. */
void hal_putc(char c);
int hal_getc(void);

/* Benchmark pin: level 1 = "inference running" (the port handles active-low pins). */
void hal_gpio_set(int level);

/* Start the cycle counter; hal_counter_read returns ticks since the last start and sets
 * *wrapped when the count is not trustworthy (SysTick passed its 24-bit range). */
void hal_counter_start(void);
uint32_t hal_counter_read(int *wrapped);
/* "dwt" (core cycles), "systick" (core cycles, < 2^24 per lap) or "ticker" (Mbed us_ticker
 * ticks at hal_counter_hz()). */
const char *hal_counter_kind(void);
uint32_t hal_counter_hz(void);

/* Sleep (not spin, where the port can) for about `us` microseconds. */
void hal_idle_us(uint32_t us);

/* Reset the chip; does not return. */
void hal_reset(void);

/* The portable benchmark loop (bench_main.c); never returns. */
void bench_run(void);

#ifdef __cplusplus
}
#endif

#endif
