/* bench_main.c - portable device side of the benchmark protocol (docs/protocol.md).
 *
 * Commands arrive over the UART terminated by '%'; every reply line starts with "m-" (data) or
 * "e-" (error) and every command's reply ends with "m-crc=<crc32 of the reply's bytes>" then
 * "m-ready", so the host can reject a reply corrupted on the wire.  Only hal.h and the generated
 * model.h are used, so the same file runs on the simulated boards and under Mbed.
 *
 * Build-time defines: BOARD_NAME, BUILD_ID (strings), optional BENCH_MAX_LAPS, and
 * BENCH_INJECT_HANG (test hook: every inference spins forever, to exercise the host's timeouts),
 * BENCH_INJECT_FAULT (test hook: every inference executes an undefined instruction: a HardFault/
 * UsageFault, to exercise the host's fault detection).
 */
#include <stdint.h>

#include "hal.h"
#include "model.h"

#ifndef BOARD_NAME
#define BOARD_NAME "unknown"
#endif
#ifndef BUILD_ID
#define BUILD_ID "unknown"
#endif
#ifndef BENCH_MAX_LAPS
#define BENCH_MAX_LAPS 256
#endif
#define BENCH_PROTOCOL_VERSION 2
#define BENCH_CMD_MAX 300       /* "db " + 128 bytes of hex fits with room to spare */
#define BENCH_RESULT_CHUNK 32   /* output bytes per "m-results=" line */

/* Host-loaded input, copied into model_input() before every inference because the model's
 * arena may reuse the input buffer; the copy happens outside the GPIO window. */
static uint8_t s_input[MODEL_INPUT_BYTES];
static uint32_t s_loaded;
static uint32_t s_expected;
static uint32_t s_lap_ticks[BENCH_MAX_LAPS];
static uint32_t s_lap_crc[BENCH_MAX_LAPS];
static uint8_t s_lap_wrapped[(BENCH_MAX_LAPS + 7) / 8];
static uint32_t s_overhead;
static char s_cmd[BENCH_CMD_MAX];
static uint32_t s_reply_crc = 0xFFFFFFFFu; /* running CRC-32 of the reply being sent */

/* ---- output helpers (no printf: keeps the image small and libc-free) ---------------------- */

/* One CRC-32 step (IEEE 802.3, reflected, as zlib.crc32); bitwise to stay small. */
static uint32_t crc32_step(uint32_t crc, uint8_t b) {
    crc ^= b;
    for (int k = 0; k < 8; k++) crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1u)));
    return crc;
}

/* Every reply byte goes through here, so the reply's checksum covers exactly what was sent. */
static void out(char c) {
    s_reply_crc = crc32_step(s_reply_crc, (uint8_t)c);
    hal_putc(c);
}

static void put_str(const char *s) {
    while (*s) out(*s++);
}

static void put_u32(uint32_t v) {
    char buf[11];
    int n = 0;
    do {
        buf[n++] = (char)('0' + v % 10u);
        v /= 10u;
    } while (v);
    while (n) out(buf[--n]);
}

static void put_hex8(uint8_t v) {
    static const char digits[] = "0123456789abcdef";
    out(digits[v >> 4]);
    out(digits[v & 15u]);
}

static void put_hex32(uint32_t v) {
    for (int shift = 24; shift >= 0; shift -= 8) put_hex8((uint8_t)(v >> shift));
}

static void eol(void) {
    out('\r');
    out('\n');
}

static void reply_str(const char *key, const char *value) {
    put_str("m-");
    put_str(key);
    out('=');
    put_str(value);
    eol();
}

static void reply_u32(const char *key, uint32_t value) {
    put_str("m-");
    put_str(key);
    out('=');
    put_u32(value);
    eol();
}

static void error(const char *what) {
    put_str("e-");
    put_str(what);
    eol();
}

/* End of a reply: its checksum line, then m-ready (not covered: a fixed token), then a fresh
 * checksum for the next reply. */
static void end_reply(void) {
    uint32_t crc = ~s_reply_crc;
    put_str("m-crc=");
    put_hex32(crc);
    eol();
    put_str("m-ready");
    eol();
    s_reply_crc = 0xFFFFFFFFu;
}

/* ---- small pure helpers --------------------------------------------------------------------- */

/* CRC-32 of a buffer (the same function as zlib.crc32). */
static uint32_t crc32(const uint8_t *p, uint32_t n) {
    uint32_t crc = 0xFFFFFFFFu;
    while (n--) crc = crc32_step(crc, *p++);
    return ~crc;
}

static int hex_value(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Parse a decimal uint32 at *s, skipping leading spaces; returns 0 on failure. */
static int parse_u32(const char **s, uint32_t *out) {
    const char *p = *s;
    uint32_t v = 0;
    while (*p == ' ') p++;
    if (*p < '0' || *p > '9') return 0;
    while (*p >= '0' && *p <= '9') {
        uint32_t d = (uint32_t)(*p++ - '0');
        if (v > (0xFFFFFFFFu - d) / 10u) return 0;
        v = v * 10u + d;
    }
    *s = p;
    *out = v;
    return 1;
}

static int starts_with(const char *s, const char *prefix) {
    while (*prefix)
        if (*s++ != *prefix++) return 0;
    return 1;
}

static int str_eq(const char *a, const char *b) {
    while (*a && *a == *b) a++, b++;
    return *a == *b;
}

static void stage_input(void) {
    uint8_t *dst = model_input();
    for (uint32_t i = 0; i < MODEL_INPUT_BYTES; i++) dst[i] = s_input[i];
}

static void __attribute__((noinline)) bench_empty(void) {
    __asm__ volatile("" ::: "memory");
}

/* Ticks of one counter start/read pair around an empty call: the constant included in every
 * lap (see docs/protocol.md). The minimum of a few tries excludes one-off effects. */
static uint32_t measure_overhead(void) {
    uint32_t best = 0xFFFFFFFFu;
    for (int i = 0; i < 4; i++) {
        int wrapped = 0;
        hal_counter_start();
        bench_empty();
        uint32_t t = hal_counter_read(&wrapped);
        if (!wrapped && t < best) best = t;
    }
    return best == 0xFFFFFFFFu ? 0 : best;
}

/* ---- commands ------------------------------------------------------------------------------- */

static void cmd_identify(void) {
    reply_u32("protocol", BENCH_PROTOCOL_VERSION);
    reply_str("board", BOARD_NAME);
    reply_str("model", MODEL_NAME);
    reply_str("model-hash", MODEL_HASH);
    reply_str("build", BUILD_ID);
    reply_str("numeric", MODEL_NUMERIC);
    reply_u32("input-bytes", MODEL_INPUT_BYTES);
    reply_u32("output-bytes", MODEL_OUTPUT_BYTES);
    reply_u32("output-count", MODEL_OUTPUT_COUNT);
    reply_u32("arena-bytes", MODEL_ARENA_BYTES);
    reply_str("counter", hal_counter_kind());
    reply_u32("counter-hz", hal_counter_hz());
    reply_u32("counter-overhead", s_overhead);
    reply_u32("max-laps", BENCH_MAX_LAPS);
}

static void cmd_db(const char *arg) {
    if (starts_with(arg, "load")) {
        const char *p = arg + 4;
        uint32_t n;
        if (!parse_u32(&p, &n) || *p) {
            error("db-load-args");
            return;
        }
        if (n != MODEL_INPUT_BYTES) {
            error("db-load-size");
            return;
        }
        s_expected = n;
        s_loaded = 0;
        reply_u32("db-expect", n);
        return;
    }
    if (s_expected == 0) {
        error("db-not-started");
        return;
    }
    uint32_t n = 0;
    for (const char *p = arg; p[n]; n++) {
        if (hex_value(p[n]) < 0) {
            error("db-bad-hex");
            return;
        }
    }
    if (n == 0 || (n & 1u)) {
        error("db-bad-hex");
        return;
    }
    if (s_loaded + n / 2u > s_expected) {
        error("db-overflow");
        return;
    }
    for (uint32_t i = 0; i < n; i += 2)
        s_input[s_loaded++] = (uint8_t)(hex_value(arg[i]) << 4 | hex_value(arg[i + 1]));
    reply_u32("db-loaded", s_loaded);
}

static void cmd_infer(const char *arg) {
    uint32_t n, warmup, gap_us;
    const char *p = arg;
    if (!parse_u32(&p, &n) || !parse_u32(&p, &warmup) || !parse_u32(&p, &gap_us) || *p) {
        error("infer-args");
        return;
    }
    if (n == 0 || n > BENCH_MAX_LAPS) {
        error("infer-laps-range");
        return;
    }
    if (s_expected == 0 || s_loaded != s_expected) {
        error("infer-no-input");
        return;
    }
#ifdef BENCH_INJECT_HANG
    for (;;) {
        __asm volatile("" ::: "memory");
    }
#endif
#ifdef BENCH_INJECT_FAULT
    __asm volatile("udf #0" ::: "memory");
#endif
    for (uint32_t w = 0; w < warmup; w++) {
        stage_input();
        model_run();
    }
    for (uint32_t i = 0; i < sizeof s_lap_wrapped; i++) s_lap_wrapped[i] = 0;
    hal_idle_us(gap_us);
    for (uint32_t i = 0; i < n; i++) {
        int wrapped = 0;
        stage_input();
        /* The measured window: GPIO high, counter start, model_run, counter read, GPIO low. */
        hal_gpio_set(1);
        hal_counter_start();
        model_run();
        uint32_t ticks = hal_counter_read(&wrapped);
        hal_gpio_set(0);
        s_lap_ticks[i] = ticks;
        if (wrapped) s_lap_wrapped[i >> 3] |= (uint8_t)(1u << (i & 7u));
        s_lap_crc[i] = crc32(model_output(), MODEL_OUTPUT_BYTES);
        hal_idle_us(gap_us);
    }
    for (uint32_t i = 0; i < n; i++) {
        put_str("m-lap-");
        put_u32(i);
        out('=');
        if (s_lap_wrapped[i >> 3] & (1u << (i & 7u)))
            put_str("wrapped");
        else
            put_u32(s_lap_ticks[i]);
        out(',');
        put_hex32(s_lap_crc[i]);
        eol();
    }
    reply_u32("infer-done", n);
}

static void cmd_results(void) {
    const uint8_t *out = model_output();
    reply_u32("results-bytes", MODEL_OUTPUT_BYTES);
    for (uint32_t i = 0; i < MODEL_OUTPUT_BYTES; i += BENCH_RESULT_CHUNK) {
        put_str("m-results=");
        for (uint32_t j = i; j < MODEL_OUTPUT_BYTES && j < i + BENCH_RESULT_CHUNK; j++) put_hex8(out[j]);
        eol();
    }
}

static void dispatch(const char *cmd) {
    if (cmd[0] == 0) {
        /* empty command: a resync probe, answered with m-crc=00000000 and m-ready alone */
    } else if (str_eq(cmd, "identify")) {
        cmd_identify();
    } else if (str_eq(cmd, "name")) {
        reply_str("name", BOARD_NAME);
    } else if (starts_with(cmd, "db ")) {
        cmd_db(cmd + 3);
    } else if (starts_with(cmd, "infer ")) {
        cmd_infer(cmd + 6);
    } else if (str_eq(cmd, "results")) {
        cmd_results();
    } else if (str_eq(cmd, "reset")) {
        reply_str("reset", BOARD_NAME);
        hal_reset();
    } else {
        error("unknown-command");
    }
    end_reply();
}

void bench_run(void) {
    uint32_t len = 0;
    int overflow = 0;
    s_overhead = measure_overhead();
    hal_gpio_set(0);
    s_reply_crc = 0xFFFFFFFFu;
    reply_str("boot", BOARD_NAME);
    end_reply();
    for (;;) {
        int c = hal_getc();
        if (c == '%') {
            s_cmd[len] = 0;
            if (overflow) {
                error("command-too-long");
                end_reply();
            } else {
                dispatch(s_cmd);
            }
            len = 0;
            overflow = 0;
        } else if (c >= 0x20 && c < 0x7F) {
            if (len + 1 < BENCH_CMD_MAX)
                s_cmd[len++] = (char)c;
            else
                overflow = 1;
        } /* CR, LF and other control bytes are ignored */
    }
}
