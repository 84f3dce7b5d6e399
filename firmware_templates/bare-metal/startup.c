/* startup.c - reset path for the bare-metal benchmark image: vector table, .data copy, .bss
 * zeroing, FPU enable, then the portable benchmark loop.  Symbols come from board.ld. */
#include <stdint.h>

#include "hal.h"

extern uint32_t __data_load[], __data_start[], __data_end[];
extern uint32_t __bss_start[], __bss_end[];
extern uint32_t __stack_end[];

void Reset_Handler(void);
void Default_Handler(void);
void SysTick_Handler(void);

#define SCB_VTOR (*(volatile uint32_t *)0xE000ED08u)
#define SCB_CPACR (*(volatile uint32_t *)0xE000ED88u)

/* Cortex-M system exceptions only: the benchmark enables no peripheral interrupt. SysTick is
 * used to wake from WFI (hal_idle_us), so its handler must exist even though it does nothing. */
__attribute__((section(".isr_vector"), used)) void (*const __isr_vector[16])(void) = {
    (void (*)(void))(uintptr_t)__stack_end,
    Reset_Handler,
    Default_Handler, /* NMI */
    Default_Handler, /* HardFault */
    Default_Handler, /* MemManage */
    Default_Handler, /* BusFault */
    Default_Handler, /* UsageFault */
    0, 0, 0, 0,
    Default_Handler, /* SVCall */
    Default_Handler, /* DebugMon */
    0,
    Default_Handler, /* PendSV */
    SysTick_Handler,
};

void Default_Handler(void) {
    for (;;) {
    }
}

void SysTick_Handler(void) {
}

/* The copy loops must not become memcpy/memset calls before .data exists. */
__attribute__((optimize("no-tree-loop-distribute-patterns"), noreturn)) void Reset_Handler(void) {
    uint32_t *src = __data_load;
    for (uint32_t *dst = __data_start; dst < __data_end;) *dst++ = *src++;
    for (uint32_t *dst = __bss_start; dst < __bss_end;) *dst++ = 0;
    SCB_VTOR = (uint32_t)(uintptr_t)__isr_vector;
#if defined(__ARM_FP)
    SCB_CPACR |= 0xFu << 20; /* CP10 + CP11 full access */
    __asm__ volatile("dsb\n\tisb" ::: "memory");
#endif
    hal_init();
    bench_run();
    for (;;) {
    }
}
