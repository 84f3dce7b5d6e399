/* CoreMark port layer for the simulated boards: bare-metal start-up, UART output, timing by the
 * benchmark pin (see core_portme.h). Ends with a semihosting SYS_EXIT so the run stops. */
#include <stdarg.h>
#include <stdint.h>

#include "coremark.h"

#define UART0_DATA (*(volatile uint32_t *)0x40004000u)
#define UART0_CTRL (*(volatile uint32_t *)0x40004008u)
#define LED (*(volatile uint32_t *)0x40028000u)
#define DWT_CTRL (*(volatile uint32_t *)0xE0001000u)
#define DWT_CYCCNT (*(volatile uint32_t *)0xE0001004u)
#define DEMCR (*(volatile uint32_t *)0xE000EDFCu)
#define SCB_CPACR (*(volatile uint32_t *)0xE000ED88u)

volatile ee_s32 seed1_volatile = 0x0;
volatile ee_s32 seed2_volatile = 0x0;
volatile ee_s32 seed3_volatile = 0x66;
volatile ee_s32 seed4_volatile = ITERATIONS;
volatile ee_s32 seed5_volatile = 0;
ee_u32 default_num_contexts = 1;

static CORETIMETYPE start_val, stop_val;

static CORETIMETYPE now(void) {
#if CM_HAS_DWT
    return DWT_CYCCNT;
#else
    return 0;
#endif
}

void start_time(void) {
    LED = 1;
    start_val = now();
}

void stop_time(void) {
    stop_val = now();
    LED = 0;
}

CORE_TICKS get_time(void) { return stop_val - start_val; }

secs_ret time_in_secs(CORE_TICKS ticks) { return ticks / CM_CLOCK_HZ; }

void portable_init(core_portable *p, int *argc, char *argv[]) {
    (void)argc;
    (void)argv;
    UART0_CTRL = 1;
#if CM_HAS_DWT
    DEMCR |= 1u << 24;
    DWT_CYCCNT = 0;
    DWT_CTRL |= 1u;
#endif
    p->portable_id = 1;
}

void portable_fini(core_portable *p) { p->portable_id = 0; }

static void put(char c) { UART0_DATA = (uint32_t)(unsigned char)c; }

static void put_u(unsigned long v, unsigned base) {
    char buf[12];
    int n = 0;
    do {
        unsigned d = (unsigned)(v % base);
        buf[n++] = (char)(d < 10 ? '0' + d : 'a' + d - 10);
        v /= base;
    } while (v);
    while (n) put(buf[--n]);
}

/* The subset CoreMark's report uses: %d %u %x %s %c with an optional 'l' and a field width
 * (ignored but for hexadecimal 0-padding, which is not needed for checking the CRCs). */
int ee_printf(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    for (const char *p = fmt; *p; p++) {
        if (*p != '%') {
            put(*p);
            continue;
        }
        p++;
        while ((*p >= '0' && *p <= '9') || *p == '-' || *p == '.') p++;
        if (*p == 'l') p++;
        switch (*p) {
        case 'd': {
            long v = va_arg(ap, int);
            if (v < 0) {
                put('-');
                v = -v;
            }
            put_u((unsigned long)v, 10);
            break;
        }
        case 'u': put_u(va_arg(ap, unsigned), 10); break;
        case 'x': case 'X': put_u(va_arg(ap, unsigned), 16); break;
        case 's': for (const char *s = va_arg(ap, const char *); *s; s++) put(*s); break;
        case 'c': put((char)va_arg(ap, int)); break;
        case '%': put('%'); break;
        default: put('?'); break;
        }
    }
    va_end(ap);
    return 0;
}

/* ---- start-up ------------------------------------------------------------------------ */
extern uint32_t __data_load[], __data_start[], __data_end[], __bss_start[], __bss_end[], __stack_end[];
int main(void);
void Reset_Handler(void);
static void Default_Handler(void) {
    for (;;) {
    }
}

__attribute__((section(".isr_vector"), used)) void (*const __isr_vector[16])(void) = {
    (void (*)(void))(uintptr_t)__stack_end, Reset_Handler, Default_Handler, Default_Handler,
    Default_Handler, Default_Handler, Default_Handler, 0, 0, 0, 0, Default_Handler, Default_Handler,
    0, Default_Handler, Default_Handler,
};

__attribute__((optimize("no-tree-loop-distribute-patterns"), noreturn)) void Reset_Handler(void) {
    uint32_t *src = __data_load;
    for (uint32_t *dst = __data_start; dst < __data_end;) *dst++ = *src++;
    for (uint32_t *dst = __bss_start; dst < __bss_end;) *dst++ = 0;
#if defined(__ARM_FP)
    SCB_CPACR |= 0xFu << 20;
    __asm__ volatile("dsb\n\tisb" ::: "memory");
#endif
    main();
    register uint32_t r0 __asm__("r0") = 0x18u; /* semihosting SYS_EXIT */
    register uint32_t r1 __asm__("r1") = 0x20026u;
    __asm__ volatile("bkpt 0xab" : : "r"(r0), "r"(r1));
    for (;;) {
    }
}
