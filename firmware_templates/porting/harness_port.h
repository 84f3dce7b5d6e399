/* harness_port.h - bring your own firmware to the benchmark harness.
 *
 * Add harness_port.h and harness_port.c to your firmware, describe your workload (the code to
 * time, its input and output buffers) in a harness_workload_t, implement the few board hooks
 * below, and call harness_serve() (or feed received bytes to harness_handle_char()). The harness
 * then measures your image like its own: `harness measure --board B --firmware your.elf`.
 *
 * What the layer does for you (docs/protocol.md is the wire format):
 *  - the UART benchmark protocol: identify, db load / db (input upload), infer N W G, results,
  *    name, reset, the empty resync command, boot banner, "m-crc=<crc32>" + "m-ready" after every reply;
 *  - the GPIO mark: pin high -> counter start -> workload run -> counter read -> pin low, so the
 *    power analyzer's (or scope's) trigger sees exactly the inference;
 *  - the cycle counter: DWT CYCCNT by default (Cortex-M3/M4/M7/M33), with the constant overhead
 *    of a start/read pair measured at boot and reported as counter-overhead;
 *  - identification: board, workload name and version, build id, numeric type, buffer sizes.
 *
 * Nothing here allocates, uses libc or enables an interrupt. See docs/porting.md.
 */
#ifndef HARNESS_PORT_H
#define HARNESS_PORT_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define HARNESS_PORT_PROTOCOL 2
#ifndef HARNESS_PORT_MAX_LAPS
#define HARNESS_PORT_MAX_LAPS 64 /* most inferences one "infer" command may hold */
#endif
#ifndef HARNESS_PORT_MAX_INPUT
#define HARNESS_PORT_MAX_INPUT 4096 /* bytes of the host-loaded input staging buffer */
#endif

/* What is timed. ``run`` is called with ``ctx`` between the GPIO edges; before every call the
 * host-loaded input is copied into ``input`` (outside the window), and after it the CRC-32 of
 * ``output`` is reported, so the host can check that every lap computed the same result. */
typedef struct {
    const char *board;      /* board name as in the harness's boards/<name>.toml */
    const char *name;       /* workload (model) name */
    const char *version;    /* any stable id of this workload's version, e.g. a git hash */
    const char *build;      /* build id of the image, e.g. from `git describe` via -D */
    const char *numeric;    /* "int8", "uint8", "float32", "q15", ... */
    uint8_t *input;         /* the workload reads its input here */
    uint32_t input_bytes;   /* <= HARNESS_PORT_MAX_INPUT */
    const uint8_t *output;  /* and leaves its result here */
    uint32_t output_bytes;
    uint32_t output_count;  /* number of output elements (classes, samples, ...) */
    uint32_t arena_bytes;   /* working memory the workload uses (informational) */
    uint32_t core_clock_hz; /* core clock: the DWT counter's rate */
    void (*run)(void *ctx);
    void *ctx;
} harness_workload_t;

/* ---- your board implements these -------------------------------------------------------- */
void harness_port_putc(char c);          /* blocking UART transmit */
int harness_port_getc(void);             /* blocking UART receive (used by harness_serve) */
void harness_port_gpio(int level);       /* benchmark pin: 1 = inference running */
void harness_port_idle_us(uint32_t us);  /* sleep about `us` microseconds (idle power is measured) */

/* Optional (weak defaults in harness_port.c): chip reset through SCB AIRCR, and the DWT cycle
 * counter. Boards without DWT (Cortex-M0/M0+) override all four counter functions, e.g. with
 * SysTick ("systick") or a timer ("ticker", with its own rate). */
void harness_port_reset(void);
void harness_port_counter_start(void);
uint32_t harness_port_counter_read(int *wrapped); /* ticks since start; *wrapped = untrustworthy */
const char *harness_port_counter_kind(void);      /* "dwt" | "systick" | "ticker" */
uint32_t harness_port_counter_hz(void);

/* ---- you call these ------------------------------------------------------------------------ */
/* Once, after your clocks, UART and GPIO are up: measures the counter overhead, drives the pin
 * low and prints the boot banner. */
void harness_init(const harness_workload_t *workload);
/* Feed one received byte; a command runs (and its reply is sent) when its '%' arrives. */
void harness_handle_char(int c);
/* The blocking protocol loop: harness_handle_char(harness_port_getc()) forever. */
void harness_serve(void);

#ifdef __cplusplus
}
#endif

#endif
