/* Test firmware for the simulated boards (docs/sim-board.md): a line protocol on UART0.
 *   "ping"    -> "pong"
 *   "bench N" -> LED0 high, N iterations of a MAC loop, LED0 low; "cycles=<C> result=<R>"
 *                where C is measured with DWT CYCCNT (M4/M7) or SysTick (M0+)
 *   "fbench N" -> the same with a float MAC loop (libgcc soft-float calls when built soft-float)
 *   "sleep N" -> N SysTick periods of 1000 cycles in WFI; "slept"
 *   "fault"   -> jumps to an undefined instruction (udf)
 *   "hang"    -> spins forever
 *   "jump"    -> calls a function at an unmapped address (0x3000_0000)
 *   "peek"    -> reads an unmapped address (0x3000_0010)
 *   "reset"   -> SYSRESETREQ through AIRCR
 * Built with -DBOOT_FAULT / -DBOOT_HANG it faults / hangs right after boot; with -DBOOT_BENCH=N it
 * runs N workload iterations at boot (no counter output: QEMU's DWT reads 0) and exits through
 * semihosting SYS_EXIT, so instruction counts can be cross-checked against QEMU. */
#include <stdint.h>

#define REG(a) (*(volatile uint32_t *)(a))
#define UART_DATA REG(0x40004000u)
#define UART_STATE REG(0x40004004u)
#define UART_CTRL REG(0x40004008u)
#define LED REG(0x40028000u)
#define SYST_CSR REG(0xE000E010u)
#define SYST_RVR REG(0xE000E014u)
#define SYST_CVR REG(0xE000E018u)
#define DEMCR REG(0xE000EDFCu)
#define DWT_CTRL REG(0xE0001000u)
#define DWT_CYCCNT REG(0xE0001004u)
#define AIRCR REG(0xE000ED0Cu)

static void putc_(char c) { UART_DATA = (uint8_t)c; }
static void puts_(const char *s) { while (*s) putc_(*s++); }
static void putu(uint32_t v)
{
    char buf[11];
    int i = 10;
    buf[i] = 0;
    do { buf[--i] = (char)('0' + v % 10u); v /= 10u; } while (v);
    puts_(&buf[i]);
}
static char getc_(void)
{
    while (!(UART_STATE & 2u)) {}
    return (char)UART_DATA;
}
static int readline(char *buf, int n)
{
    int i = 0;
    for (;;) {
        char c = getc_();
        if (c == '\n' || c == '\r') { buf[i] = 0; return i; }
        if (i < n - 1) buf[i++] = c;
    }
}
static int starts(const char *s, const char *p)
{
    while (*p) if (*s++ != *p++) return 0;
    return 1;
}
static uint32_t atou(const char *s)
{
    uint32_t v = 0;
    while (*s >= '0' && *s <= '9') v = v * 10u + (uint32_t)(*s++ - '0');
    return v;
}

#if defined(__ARM_ARCH_6M__)
static void counter_start(void) { SYST_RVR = 0xFFFFFFu; SYST_CVR = 0; SYST_CSR = 5u; }
static uint32_t counter_read(void) { return SYST_CVR; }
static uint32_t counter_delta(uint32_t a, uint32_t b) { return (a - b) & 0xFFFFFFu; }
#else
static void counter_start(void) { DEMCR |= 1u << 24; DWT_CYCCNT = 0; DWT_CTRL |= 1u; }
static uint32_t counter_read(void) { return DWT_CYCCNT; }
static uint32_t counter_delta(uint32_t a, uint32_t b) { return b - a; }
#endif

static volatile int32_t data[64];

__attribute__((noinline)) static int32_t workload(uint32_t n)
{
    int32_t acc = 0;
    for (uint32_t k = 0; k < n; k++)
        for (int i = 0; i < 64; i++) acc += data[i] * (int32_t)(i + k);
    return acc;
}

static volatile float fdata[64];

/* Float MACs: with -mfloat-abi=soft every operation is a libgcc call (call-heavy code). */
__attribute__((noinline)) static int32_t fworkload(uint32_t n)
{
    float acc = 0.0f;
    for (uint32_t k = 0; k < n; k++)
        for (int i = 0; i < 64; i++) acc += fdata[i] * (float)(int32_t)(i + k);
    return (int32_t)(acc * 1e-3f);
}

static void bench(uint32_t n, int use_float)
{
    counter_start();
    uint32_t t0 = counter_read();
    LED = 1u;
    int32_t r = use_float ? fworkload(n) : workload(n);
    LED = 0u;
    uint32_t t1 = counter_read();
    puts_("cycles=");
    putu(counter_delta(t0, t1));
    puts_(" result=");
    putu((uint32_t)r);
    puts_("\n");
}

static void sleep_ticks(uint32_t n)
{
    SYST_RVR = 999u;
    SYST_CVR = 0;
    SYST_CSR = 7u;
    for (uint32_t i = 0; i < n; i++) {
        __asm volatile("wfi");
        while (!(SYST_CSR & (1u << 16))) {}
    }
    SYST_CSR = 0;
    puts_("slept\n");
}

int main(void)
{
    char line[32];
    UART_CTRL = 3u;
    for (int i = 0; i < 64; i++) {
        data[i] = i - 20;
        fdata[i] = (float)(i - 20) * 0.25f;
    }
#if defined(BOOT_FAULT)
    __asm volatile("udf #0");
#elif defined(BOOT_HANG)
    for (;;) {}
#endif
    puts_("ready\n");
#if defined(BOOT_BENCH)
    LED = 1u;
    data[0] = workload(BOOT_BENCH);
    LED = 0u;
    {
        register uint32_t op __asm("r0") = 0x18u;      /* SYS_EXIT */
        register uint32_t arg __asm("r1") = 0x20026u;  /* ADP_Stopped_ApplicationExit */
        __asm volatile("bkpt 0xab" : : "r"(op), "r"(arg) : "memory");
    }
#endif
    for (;;) {
        readline(line, sizeof line);
        if (starts(line, "ping")) puts_("pong\n");
        else if (starts(line, "bench ")) bench(atou(line + 6), 0);
        else if (starts(line, "fbench ")) bench(atou(line + 7), 1);
        else if (starts(line, "sleep ")) sleep_ticks(atou(line + 6));
        else if (starts(line, "fault")) __asm volatile("udf #1");
        else if (starts(line, "hang")) for (;;) {}
        else if (starts(line, "jump")) ((void (*)(void))0x30000001u)();
        else if (starts(line, "peek")) putu(REG(0x30000010u));
        else if (starts(line, "reset")) AIRCR = 0x05FA0004u;
        else puts_("?\n");
    }
}
