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
/* RP2040 boot-ROM float, as the real firmware uses it (Pico SDK pico_float,
 * float_aeabi_rp2040.S, linked by Mbed CE's RP2040 target): at start-up the ROM's
 * soft_float_table is found with rom_table_lookup (16-bit pointers at 0x16 / 0x18, RP2040
 * datasheet "Bootrom Contents") and copied to RAM; the arithmetic and int->float helpers are a
 * tail call through that copy (the SDK's table_tail_call: ldr, ldr, bx), comparisons are local
 * integer code (as the SDK's own compare routines). On the simulated board the ROM is emulated
 * (harness/sim/romfloat.py); the table offsets are the datasheet's. */
#define SF_TABLE_WORDS 32u
typedef const void *(*rom_table_lookup_fn)(const uint16_t *table, uint32_t code);
__attribute__((used)) uintptr_t sf_table[SF_TABLE_WORDS];

static void rom_float_init(void) {
    uintptr_t rom_header = 0x14u;
    __asm__("" : "+r"(rom_header)); /* a real address near 0: keep GCC's array-bounds check quiet */
    const volatile uint16_t *hdr = (const volatile uint16_t *)rom_header;
    rom_table_lookup_fn lookup = (rom_table_lookup_fn)(uintptr_t)hdr[2];
    const uint32_t *sf = lookup((const uint16_t *)(uintptr_t)hdr[1], 'S' | ('F' << 8));
    for (uint32_t i = 0; i < SF_TABLE_WORDS; i++) sf_table[i] = sf[i];
}

__asm__(".syntax unified\n"
        ".macro sf_tail name, off\n"
        "  .section .text.\\name, \"ax\", %progbits\n"
        "  .global \\name\n"
        "  .type \\name, %function\n"
        "  .thumb_func\n"
        "\\name:\n"
        "  ldr r3, =sf_table\n"
        "  ldr r3, [r3, #\\off]\n"
        "  bx r3\n"
        "  .ltorg\n"
        ".endm\n"
        "sf_tail __aeabi_fadd, 0x00\n"
        "sf_tail __aeabi_fsub, 0x04\n"
        "sf_tail __aeabi_fmul, 0x08\n"
        "sf_tail __aeabi_fdiv, 0x0C\n"
        "sf_tail __aeabi_i2f, 0x28\n"
        "sf_tail __aeabi_ui2f, 0x30\n"
        "sf_tail __aeabi_f2uiz, 0x20\n"
        "sf_tail __aeabi_f2iz, 0x7C\n"
        "  .section .text.__aeabi_frsub, \"ax\", %progbits\n"
        "  .global __aeabi_frsub\n"
        "  .type __aeabi_frsub, %function\n"
        "  .thumb_func\n"
        "__aeabi_frsub:\n"
        "  eors r0, r1\n"
        "  eors r1, r0\n"
        "  eors r0, r1\n"
        "  b __aeabi_fsub\n"
        ".text\n");

/* Ordering key of a float with denormals flushed to zero and -0 == +0 (the ROM library's
 * semantics; NaN is not distinguished, the library maps it to infinity). */
static int32_t f_key(float f) {
    uint32_t u;
    __builtin_memcpy(&u, &f, 4);
    if ((u & 0x7F800000u) == 0) u &= 0x80000000u;
    return (u & 0x80000000u) ? -(int32_t)(u & 0x7FFFFFFFu) : (int32_t)u;
}
int __aeabi_fcmpeq(float a, float b) { return f_key(a) == f_key(b); }
int __aeabi_fcmplt(float a, float b) { return f_key(a) < f_key(b); }
int __aeabi_fcmple(float a, float b) { return f_key(a) <= f_key(b); }
int __aeabi_fcmpgt(float a, float b) { return f_key(a) > f_key(b); }
int __aeabi_fcmpge(float a, float b) { return f_key(a) >= f_key(b); }
int __aeabi_fcmpun(float a, float b) { (void)a; (void)b; return 0; }
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
