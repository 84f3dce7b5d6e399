/* Bare-metal test driver for QEMU (semihosting): runs the model on the embedded inputs, prints
 * each output as one hex line "O <hex>" and the SysTick ticks of each model_run as "T <n>". */
#include <stdint.h>
#include "model.h"
#include "test_inputs.h" /* TEST_COUNT, TEST_REPEAT, test_inputs[TEST_COUNT][MODEL_INPUT_BYTES] */

#define SYST_CSR (*(volatile uint32_t *)0xE000E010u)
#define SYST_RVR (*(volatile uint32_t *)0xE000E014u)
#define SYST_CVR (*(volatile uint32_t *)0xE000E018u)

extern uint32_t _sidata, _sdata, _edata, _sbss, _ebss, _estack;
int main(void);
void reset_handler(void);

__attribute__((section(".vectors"), used)) static const void *const vectors[2] = {&_estack, (void *)reset_handler};

static int32_t semihost(int32_t op, const void *arg)
{
    register int32_t r0 __asm__("r0") = op;
    register const void *r1 __asm__("r1") = arg;
    __asm__ volatile("bkpt 0xab" : "+r"(r0) : "r"(r1) : "memory");
    return r0;
}

void reset_handler(void)
{
    uint32_t *src = &_sidata, *dst = &_sdata;
    while (dst < &_edata) {
        *dst++ = *src++;
    }
    for (dst = &_sbss; dst < &_ebss; dst++) {
        *dst = 0;
    }
#if defined(__ARM_FP)
    *(volatile uint32_t *)0xE000ED88u |= (0xFu << 20); /* CPACR: CP10/CP11 full access */
    __asm__ volatile("dsb\n isb");
#endif
    (void)main();
    semihost(0x18, (const void *)0x20026); /* SYS_EXIT, ADP_Stopped_ApplicationExit */
    for (;;) {
    }
}

static char line[2 * MODEL_OUTPUT_BYTES + 16];

static void put_hex(const char *tag, const uint8_t *p, int32_t n)
{
    static const char digits[] = "0123456789abcdef";
    int32_t i, j = 0;
    line[j++] = tag[0];
    line[j++] = ' ';
    for (i = 0; i < n; i++) {
        line[j++] = digits[p[i] >> 4];
        line[j++] = digits[p[i] & 15];
    }
    line[j++] = '\n';
    line[j] = 0;
    semihost(0x04, line); /* SYS_WRITE0 */
}

int main(void)
{
    int32_t i, r, b;
    SYST_RVR = 0x00FFFFFFu;
    SYST_CVR = 0;
    SYST_CSR = 5u; /* enable, processor clock */
    for (i = 0; i < TEST_COUNT; i++) {
        for (r = 0; r < TEST_REPEAT; r++) {
            uint8_t *dst = model_input();
            uint32_t t0, t1, dt;
            for (b = 0; b < MODEL_INPUT_BYTES; b++) {
                dst[b] = test_inputs[i][b];
            }
            t0 = SYST_CVR;
            model_run();
            t1 = SYST_CVR;
            dt = (t0 - t1) & 0x00FFFFFFu;
            put_hex("T", (const uint8_t *)&dt, 4);
        }
        put_hex("O", model_output(), MODEL_OUTPUT_BYTES);
    }
    return 0;
}
