/* Declarations-only stand-in for the parts of Mbed OS 6 / Mbed CE that firmware_templates/mbed
 * uses, with the signatures of the Mbed API, so a host compiler can syntax-check main.cpp when
 * no Mbed tree is available. Not a model of Mbed's behaviour. */
#pragma once
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <sys/types.h>

/* the pins the shipped real boards name (the real list: the target's PinNames.h, checked by test_mbed_pins.py) */
typedef enum { P1_11, P1_3, P1_10, IO_15, IO_0, IO_1, PC_9, PB_13, PB_12, CONSOLE_TX, CONSOLE_RX, NC = -1 } PinName;

namespace mbed {
class DigitalOut {
public:
    DigitalOut(PinName pin, int value);
    DigitalOut &operator=(int value);
};
class BufferedSerial {
public:
    BufferedSerial(PinName tx, PinName rx, int baud);
    int set_blocking(bool blocking);
    ssize_t write(const void *buffer, size_t length);
    ssize_t read(void *buffer, size_t length);
};
}  // namespace mbed

namespace rtos {
namespace Kernel {
struct Clock {
    using duration_u32 = std::chrono::duration<uint32_t, std::milli>;
};
}  // namespace Kernel
namespace ThisThread {
void sleep_for(Kernel::Clock::duration_u32 rel_time);
}
}  // namespace rtos

extern "C" void wait_us(int us);
extern "C" void NVIC_SystemReset(void);
extern "C" uint32_t SystemCoreClock;

/* CMSIS core (core_cm4.h / core_cm7.h) */
typedef struct { volatile uint32_t DHCSR, DCRSR, DCRDR, DEMCR; } CoreDebug_Type;
typedef struct { volatile uint32_t CTRL, CYCCNT; uint32_t pad[1002]; volatile uint32_t LAR; } DWT_Type;
#define CoreDebug ((CoreDebug_Type *)0xE000EDF0UL)
#define DWT ((DWT_Type *)0xE0001000UL)
#define CoreDebug_DEMCR_TRCENA_Msk (1UL << 24)
#define DWT_CTRL_CYCCNTENA_Msk (1UL)

using namespace mbed;
using namespace rtos;
