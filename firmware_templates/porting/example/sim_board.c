/* sim_board.c - the team's board support for the example, here for the harness's simulated
 * Cortex-M4 (boards/sim-m4.toml; peripheral map in docs/sim-board.md): reset handler, CMSDK
 * UART0, the FPGAIO LED as benchmark pin, SysTick + WFI as idle. On a real board this is your
 * existing BSP; only the four harness_port_* hooks at the bottom are new. */
#include <stdint.h>

#include "harness_port.h"

#ifndef EXAMPLE_CLOCK_HZ
#define EXAMPLE_CLOCK_HZ 100000000u
#endif
#ifndef EXAMPLE_BAUD
#define EXAMPLE_BAUD 115200u
#endif

#define REG(addr) (*(volatile uint32_t *)(addr))
#define UART0_DATA REG(0x40004000u)
#define UART0_STATE REG(0x40004004u)
#define UART0_CTRL REG(0x40004008u)
#define UART0_BAUDDIV REG(0x40004010u)
#define FPGAIO_LED REG(0x40028000u)
#define SYST_CSR REG(0xE000E010u)
#define SYST_RVR REG(0xE000E014u)
#define SYST_CVR REG(0xE000E018u)
#define SCB_VTOR REG(0xE000ED08u)
#define SCB_CPACR REG(0xE000ED88u)

extern uint32_t __data_load[], __data_start[], __data_end[], __bss_start[], __bss_end[], __stack_end[];
int main(void);
void Reset_Handler(void);
void Default_Handler(void);
void SysTick_Handler(void);

__attribute__((section(".isr_vector"), used)) void (*const vectors[16])(void) = {
    (void (*)(void))(uintptr_t)__stack_end, Reset_Handler, Default_Handler, Default_Handler,
    Default_Handler, Default_Handler, Default_Handler, 0, 0, 0, 0, Default_Handler, Default_Handler, 0,
    Default_Handler, SysTick_Handler,
};

void Default_Handler(void) {
    for (;;) {
    }
}

void SysTick_Handler(void) {
}

__attribute__((optimize("no-tree-loop-distribute-patterns"), noreturn)) void Reset_Handler(void) {
    uint32_t *src = __data_load;
    for (uint32_t *dst = __data_start; dst < __data_end;) *dst++ = *src++;
    for (uint32_t *dst = __bss_start; dst < __bss_end;) *dst++ = 0;
    SCB_VTOR = (uint32_t)(uintptr_t)vectors;
#if defined(__ARM_FP)
    SCB_CPACR |= 0xFu << 20;
    __asm__ volatile("dsb\n\tisb" ::: "memory");
#endif
    main();
    for (;;) {
    }
}

void board_init(void) {
    uint32_t div = EXAMPLE_CLOCK_HZ / EXAMPLE_BAUD;
    UART0_CTRL = 0;
    UART0_BAUDDIV = div < 16u ? 16u : div;
    UART0_CTRL = 3u; /* TX + RX enable */
    FPGAIO_LED = 0;
}

/* ---- the porting hooks ---------------------------------------------------------------------- */
void harness_port_putc(char c) {
    while (UART0_STATE & 1u) {
    }
    UART0_DATA = (uint8_t)c;
}

int harness_port_getc(void) {
    while (!(UART0_STATE & 2u)) {
    }
    return (int)(UART0_DATA & 0xFFu);
}

void harness_port_gpio(int level) {
    FPGAIO_LED = level ? 1u : 0u;
}

void harness_port_idle_us(uint32_t us) {
    const uint32_t per_us = EXAMPLE_CLOCK_HZ / 1000000u, max_us = 0x1000000u / per_us;
    while (us) {
        uint32_t chunk = us > max_us ? max_us : us;
        us -= chunk;
        if (chunk * per_us < 2u) continue;
        SYST_CSR = 0;
        SYST_RVR = chunk * per_us - 1u;
        SYST_CVR = 0;
        SYST_CSR = 7u; /* enable, interrupt (wakes WFI), core clock */
        while (!(SYST_CSR & (1u << 16))) __asm__ volatile("wfi");
        SYST_CSR = 0;
    }
}
