/* main.cpp - hal.h on Mbed OS 6 / Mbed CE for the real boards; the benchmark loop itself is the
 * portable common/bench_main.c.
 *
 * Defines set by the generated CMakeLists.txt: BENCH_PIN, BENCH_GPIO_ACTIVE_HIGH, BENCH_UART_TX,
 * BENCH_UART_RX, BENCH_BAUD, BENCH_HAS_DWT.  Without DWT (Cortex-M0+) the counter is the Mbed
 * us_ticker (kind "ticker", its own frequency), which has no 2^24 limit.
 */
#include "mbed.h"
#include "hal/us_ticker_api.h"

#include "hal.h"

static DigitalOut s_pin(BENCH_PIN, BENCH_GPIO_ACTIVE_HIGH ? 0 : 1);
static BufferedSerial s_uart(BENCH_UART_TX, BENCH_UART_RX, BENCH_BAUD);

extern "C" {

void hal_gpio_set(int level) {
    s_pin = ((level != 0) == (BENCH_GPIO_ACTIVE_HIGH != 0)) ? 1 : 0;
}

void hal_init(void) {
    s_uart.set_blocking(true);
    hal_gpio_set(0);
#if BENCH_HAS_DWT
    CoreDebug->DEMCR |= CoreDebug_DEMCR_TRCENA_Msk;
#if defined(__CORTEX_M) && (__CORTEX_M == 7U)
    DWT->LAR = 0xC5ACCE55u; /* Cortex-M7 DWT is write-locked until unlocked */
#endif
    DWT->CYCCNT = 0;
    DWT->CTRL |= DWT_CTRL_CYCCNTENA_Msk;
#endif
}

void hal_putc(char c) {
    s_uart.write(&c, 1);
}

int hal_getc(void) {
    char c = 0;
    while (s_uart.read(&c, 1) != 1) {
    }
    return (unsigned char)c;
}

static uint32_t s_start;

#if BENCH_HAS_DWT
void hal_counter_start(void) {
    s_start = DWT->CYCCNT;
}

uint32_t hal_counter_read(int *wrapped) {
    uint32_t now = DWT->CYCCNT;
    *wrapped = 0;
    return now - s_start;
}

const char *hal_counter_kind(void) {
    return "dwt";
}

uint32_t hal_counter_hz(void) {
    return SystemCoreClock;
}
#else
static uint32_t ticker_mask(void) {
    uint32_t bits = us_ticker_get_info()->bits;
    return bits >= 32 ? 0xFFFFFFFFu : ((1u << bits) - 1u);
}

void hal_counter_start(void) {
    s_start = us_ticker_read();
}

uint32_t hal_counter_read(int *wrapped) {
    uint32_t now = us_ticker_read();
    *wrapped = 0;
    return (now - s_start) & ticker_mask();
}

const char *hal_counter_kind(void) {
    return "ticker";
}

uint32_t hal_counter_hz(void) {
    return us_ticker_get_info()->frequency;
}
#endif

/* Whole milliseconds sleep in the RTOS idle thread (WFI); the remainder is a short busy wait. */
void hal_idle_us(uint32_t us) {
    if (us >= 1000u) ThisThread::sleep_for(std::chrono::milliseconds(us / 1000u));
    if (us % 1000u) wait_us((int)(us % 1000u));
}

void hal_reset(void) {
    NVIC_SystemReset();
}

}  // extern "C"

int main() {
    hal_init();
    bench_run();
}
