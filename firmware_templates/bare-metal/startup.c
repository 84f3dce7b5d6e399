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

#if defined(BENCH_RP2040_ROM_FLOAT)
/* RP2040 boot-ROM float, as the real firmware uses it (Pico SDK pico_float, linked by Mbed CE's
 * RP2040 target): at start-up the ROM's soft_float_table is found with rom_table_lookup (16-bit
 * pointers at 0x16 / 0x18, RP2040 datasheet "Bootrom Contents") and copied to RAM; every
 * __aeabi_f* helper is a tail call through that copy (SDK: table_tail_call). On the simulated
 * board the ROM is emulated (harness/sim/romfloat.py); offsets are the datasheet's. */
#define SF_TABLE_WORDS 33u
typedef const void *(*rom_table_lookup_fn)(const uint16_t *table, uint32_t code);
static uintptr_t sf_table[SF_TABLE_WORDS];

static void rom_float_init(void) {
    uintptr_t rom_header = 0x14u;
    __asm__("" : "+r"(rom_header)); /* a real address near 0: keep GCC's array-bounds check quiet */
    const volatile uint16_t *hdr = (const volatile uint16_t *)rom_header;
    rom_table_lookup_fn lookup = (rom_table_lookup_fn)(uintptr_t)hdr[2];
    const uint32_t *sf = lookup((const uint16_t *)(uintptr_t)hdr[1], 'S' | ('F' << 8));
    for (uint32_t i = 0; i < SF_TABLE_WORDS; i++) sf_table[i] = sf[i];
}

typedef float (*sf_ff_f)(float, float);
typedef int (*sf_ff_i)(float, float);
typedef float (*sf_i_f)(int);
typedef float (*sf_u_f)(unsigned);
typedef int (*sf_f_i)(float);
typedef unsigned (*sf_f_u)(float);
#define SF(off, type) ((type)sf_table[(off) / 4u])

float __aeabi_fadd(float a, float b) { return SF(0x00, sf_ff_f)(a, b); }
float __aeabi_fsub(float a, float b) { return SF(0x04, sf_ff_f)(a, b); }
float __aeabi_frsub(float a, float b) { return SF(0x04, sf_ff_f)(b, a); }
float __aeabi_fmul(float a, float b) { return SF(0x08, sf_ff_f)(a, b); }
float __aeabi_fdiv(float a, float b) { return SF(0x0C, sf_ff_f)(a, b); }
int __aeabi_fcmpeq(float a, float b) { return SF(0x10, sf_ff_i)(a, b) == 0; }
int __aeabi_fcmplt(float a, float b) { return SF(0x10, sf_ff_i)(a, b) < 0; }
int __aeabi_fcmple(float a, float b) { return SF(0x10, sf_ff_i)(a, b) <= 0; }
int __aeabi_fcmpgt(float a, float b) { return SF(0x10, sf_ff_i)(a, b) > 0; }
int __aeabi_fcmpge(float a, float b) { return SF(0x10, sf_ff_i)(a, b) >= 0; }
int __aeabi_fcmpun(float a, float b) { (void)a; (void)b; return 0; } /* the ROM maps NaN to inf */
float __aeabi_i2f(int x) { return SF(0x28, sf_i_f)(x); }
float __aeabi_ui2f(unsigned x) { return SF(0x30, sf_u_f)(x); }
unsigned __aeabi_f2uiz(float x) { return SF(0x20, sf_f_u)(x); }
int __aeabi_f2iz(float x) { return SF(0x80, sf_f_i)(x); }
#endif

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
#if defined(BENCH_RP2040_ROM_FLOAT)
    rom_float_init();
#endif
#if defined(__ARM_FP)
    SCB_CPACR |= 0xFu << 20; /* CP10 + CP11 full access */
    __asm__ volatile("dsb\n\tisb" ::: "memory");
#endif
    hal_init();
    bench_run();
    for (;;) {
    }
}
