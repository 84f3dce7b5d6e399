/* hal_sim.c - hal.h for the simulated boards (docs/sim-board.md): CMSDK UART0, FPGAIO LED bit 0
 * as the benchmark pin, DWT CYCCNT or SysTick as the cycle counter, SysTick + WFI for idle.
 * The same map is QEMU mps2-an386's, so the image also runs there.
 *
 * Build-time defines: BENCH_CLOCK_HZ, BENCH_BAUD, BENCH_HAS_DWT (0/1), BENCH_GPIO_ACTIVE_HIGH.
 */
#include <stdint.h>

#include "hal.h"

#ifndef BENCH_GPIO_ACTIVE_HIGH
#define BENCH_GPIO_ACTIVE_HIGH 1
#endif

#define REG(addr) (*(volatile uint32_t *)(addr))

#define UART0_DATA REG(0x40004000u)
#define UART0_STATE REG(0x40004004u)
#define UART0_CTRL REG(0x40004008u)
#define UART0_BAUDDIV REG(0x40004010u)
#define UART_STATE_TXFULL 1u
#define UART_STATE_RXFULL 2u
#define UART_CTRL_TXEN 1u
#define UART_CTRL_RXEN 2u

#define FPGAIO_LED REG(0x40028000u)

#define SYST_CSR REG(0xE000E010u)
#define SYST_RVR REG(0xE000E014u)
#define SYST_CVR REG(0xE000E018u)
#define SYST_ENABLE 1u
#define SYST_TICKINT 2u
#define SYST_CLKSOURCE 4u
#define SYST_COUNTFLAG (1u << 16)
#define SYST_MAX 0xFFFFFFu

#define DWT_CTRL REG(0xE0001000u)
#define DWT_CYCCNT REG(0xE0001004u)
#define DEMCR REG(0xE000EDFCu)
#define SCB_AIRCR REG(0xE000ED0Cu)

void hal_init(void) {
    uint32_t div = BENCH_CLOCK_HZ / BENCH_BAUD;
    UART0_CTRL = 0;
    UART0_BAUDDIV = div < 16u ? 16u : div;
    UART0_CTRL = UART_CTRL_TXEN | UART_CTRL_RXEN;
    hal_gpio_set(0);
#if BENCH_HAS_DWT
    DEMCR |= 1u << 24; /* TRCENA */
    DWT_CYCCNT = 0;
    DWT_CTRL |= 1u; /* CYCCNTENA */
#endif
}

void hal_putc(char c) {
    while (UART0_STATE & UART_STATE_TXFULL) {
    }
    UART0_DATA = (uint8_t)c;
}

int hal_getc(void) {
    while (!(UART0_STATE & UART_STATE_RXFULL)) {
    }
    return (int)(UART0_DATA & 0xFFu);
}

void hal_gpio_set(int level) {
    FPGAIO_LED = (level != 0) == (BENCH_GPIO_ACTIVE_HIGH != 0) ? 1u : 0u;
}

#if BENCH_HAS_DWT
static uint32_t s_start;

void hal_counter_start(void) {
    s_start = DWT_CYCCNT;
}

uint32_t hal_counter_read(int *wrapped) {
    uint32_t now = DWT_CYCCNT;
    *wrapped = 0; /* 32-bit modular difference: exact below 2^32 cycles */
    return now - s_start;
}

const char *hal_counter_kind(void) {
    return "dwt";
}
#else
/* SysTick free-running from 0xFFFFFF with no interrupt: a lap is exact below 2^24 cycles and
 * COUNTFLAG (set on reaching zero) marks a lap that went past that. */
void hal_counter_start(void) {
    SYST_CSR = 0;
    SYST_RVR = SYST_MAX;
    SYST_CVR = 0; /* clears the counter and COUNTFLAG; next tick reloads SYST_MAX */
    SYST_CSR = SYST_ENABLE | SYST_CLKSOURCE;
}

uint32_t hal_counter_read(int *wrapped) {
    uint32_t now = SYST_CVR;
    *wrapped = (SYST_CSR & SYST_COUNTFLAG) != 0;
    return SYST_MAX - now;
}

const char *hal_counter_kind(void) {
    return "systick";
}
#endif

uint32_t hal_counter_hz(void) {
    return BENCH_CLOCK_HZ;
}

/* SysTick with TICKINT + WFI: the core sleeps until the counter reaches zero (chunks of at
 * most 2^24 cycles), so the gap is spent at idle current. 32-bit arithmetic only. */
#define TICKS_PER_US (BENCH_CLOCK_HZ / 1000000u)
_Static_assert(TICKS_PER_US >= 1u, "hal_sim needs a core clock of at least 1 MHz");

void hal_idle_us(uint32_t us) {
    const uint32_t max_chunk_us = (SYST_MAX + 1u) / TICKS_PER_US;
    while (us) {
        uint32_t chunk_us = us > max_chunk_us ? max_chunk_us : us;
        uint32_t ticks = chunk_us * TICKS_PER_US;
        us -= chunk_us;
        if (ticks < 2u) continue;
        SYST_CSR = 0;
        SYST_RVR = ticks - 1u;
        SYST_CVR = 0;
        SYST_CSR = SYST_ENABLE | SYST_TICKINT | SYST_CLKSOURCE;
        while (!(SYST_CSR & SYST_COUNTFLAG)) __asm__ volatile("wfi");
        SYST_CSR = 0;
    }
}

void hal_reset(void) {
    __asm__ volatile("dsb" ::: "memory");
    SCB_AIRCR = 0x05FA0004u; /* VECTKEY | SYSRESETREQ */
    __asm__ volatile("dsb" ::: "memory");
    for (;;) {
    }
}
