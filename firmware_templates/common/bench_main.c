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
static uint32_t s_reply_crc; /* CRC-32 of the reply sent so far (zero-initialised: no .data) */

/* ---- output helpers (no printf: keeps the image small and libc-free) ---------------------- */

/* CRC-32 (IEEE 802.3, reflected, as zlib.crc32), one table lookup per byte: every reply byte
 * goes through it, and the replies that follow a measurement land in the analyzer's record, so
 * it must cost little (1 KB of flash; the bitwise form took ~8x the cycles per byte). */
static const uint32_t s_crc_table[256] = {
    0x00000000u, 0x77073096u, 0xee0e612cu, 0x990951bau, 0x076dc419u, 0x706af48fu,
    0xe963a535u, 0x9e6495a3u, 0x0edb8832u, 0x79dcb8a4u, 0xe0d5e91eu, 0x97d2d988u,
    0x09b64c2bu, 0x7eb17cbdu, 0xe7b82d07u, 0x90bf1d91u, 0x1db71064u, 0x6ab020f2u,
    0xf3b97148u, 0x84be41deu, 0x1adad47du, 0x6ddde4ebu, 0xf4d4b551u, 0x83d385c7u,
    0x136c9856u, 0x646ba8c0u, 0xfd62f97au, 0x8a65c9ecu, 0x14015c4fu, 0x63066cd9u,
    0xfa0f3d63u, 0x8d080df5u, 0x3b6e20c8u, 0x4c69105eu, 0xd56041e4u, 0xa2677172u,
    0x3c03e4d1u, 0x4b04d447u, 0xd20d85fdu, 0xa50ab56bu, 0x35b5a8fau, 0x42b2986cu,
    0xdbbbc9d6u, 0xacbcf940u, 0x32d86ce3u, 0x45df5c75u, 0xdcd60dcfu, 0xabd13d59u,
    0x26d930acu, 0x51de003au, 0xc8d75180u, 0xbfd06116u, 0x21b4f4b5u, 0x56b3c423u,
    0xcfba9599u, 0xb8bda50fu, 0x2802b89eu, 0x5f058808u, 0xc60cd9b2u, 0xb10be924u,
    0x2f6f7c87u, 0x58684c11u, 0xc1611dabu, 0xb6662d3du, 0x76dc4190u, 0x01db7106u,
    0x98d220bcu, 0xefd5102au, 0x71b18589u, 0x06b6b51fu, 0x9fbfe4a5u, 0xe8b8d433u,
    0x7807c9a2u, 0x0f00f934u, 0x9609a88eu, 0xe10e9818u, 0x7f6a0dbbu, 0x086d3d2du,
    0x91646c97u, 0xe6635c01u, 0x6b6b51f4u, 0x1c6c6162u, 0x856530d8u, 0xf262004eu,
    0x6c0695edu, 0x1b01a57bu, 0x8208f4c1u, 0xf50fc457u, 0x65b0d9c6u, 0x12b7e950u,
    0x8bbeb8eau, 0xfcb9887cu, 0x62dd1ddfu, 0x15da2d49u, 0x8cd37cf3u, 0xfbd44c65u,
    0x4db26158u, 0x3ab551ceu, 0xa3bc0074u, 0xd4bb30e2u, 0x4adfa541u, 0x3dd895d7u,
    0xa4d1c46du, 0xd3d6f4fbu, 0x4369e96au, 0x346ed9fcu, 0xad678846u, 0xda60b8d0u,
    0x44042d73u, 0x33031de5u, 0xaa0a4c5fu, 0xdd0d7cc9u, 0x5005713cu, 0x270241aau,
    0xbe0b1010u, 0xc90c2086u, 0x5768b525u, 0x206f85b3u, 0xb966d409u, 0xce61e49fu,
    0x5edef90eu, 0x29d9c998u, 0xb0d09822u, 0xc7d7a8b4u, 0x59b33d17u, 0x2eb40d81u,
    0xb7bd5c3bu, 0xc0ba6cadu, 0xedb88320u, 0x9abfb3b6u, 0x03b6e20cu, 0x74b1d29au,
    0xead54739u, 0x9dd277afu, 0x04db2615u, 0x73dc1683u, 0xe3630b12u, 0x94643b84u,
    0x0d6d6a3eu, 0x7a6a5aa8u, 0xe40ecf0bu, 0x9309ff9du, 0x0a00ae27u, 0x7d079eb1u,
    0xf00f9344u, 0x8708a3d2u, 0x1e01f268u, 0x6906c2feu, 0xf762575du, 0x806567cbu,
    0x196c3671u, 0x6e6b06e7u, 0xfed41b76u, 0x89d32be0u, 0x10da7a5au, 0x67dd4accu,
    0xf9b9df6fu, 0x8ebeeff9u, 0x17b7be43u, 0x60b08ed5u, 0xd6d6a3e8u, 0xa1d1937eu,
    0x38d8c2c4u, 0x4fdff252u, 0xd1bb67f1u, 0xa6bc5767u, 0x3fb506ddu, 0x48b2364bu,
    0xd80d2bdau, 0xaf0a1b4cu, 0x36034af6u, 0x41047a60u, 0xdf60efc3u, 0xa867df55u,
    0x316e8eefu, 0x4669be79u, 0xcb61b38cu, 0xbc66831au, 0x256fd2a0u, 0x5268e236u,
    0xcc0c7795u, 0xbb0b4703u, 0x220216b9u, 0x5505262fu, 0xc5ba3bbeu, 0xb2bd0b28u,
    0x2bb45a92u, 0x5cb36a04u, 0xc2d7ffa7u, 0xb5d0cf31u, 0x2cd99e8bu, 0x5bdeae1du,
    0x9b64c2b0u, 0xec63f226u, 0x756aa39cu, 0x026d930au, 0x9c0906a9u, 0xeb0e363fu,
    0x72076785u, 0x05005713u, 0x95bf4a82u, 0xe2b87a14u, 0x7bb12baeu, 0x0cb61b38u,
    0x92d28e9bu, 0xe5d5be0du, 0x7cdcefb7u, 0x0bdbdf21u, 0x86d3d2d4u, 0xf1d4e242u,
    0x68ddb3f8u, 0x1fda836eu, 0x81be16cdu, 0xf6b9265bu, 0x6fb077e1u, 0x18b74777u,
    0x88085ae6u, 0xff0f6a70u, 0x66063bcau, 0x11010b5cu, 0x8f659effu, 0xf862ae69u,
    0x616bffd3u, 0x166ccf45u, 0xa00ae278u, 0xd70dd2eeu, 0x4e048354u, 0x3903b3c2u,
    0xa7672661u, 0xd06016f7u, 0x4969474du, 0x3e6e77dbu, 0xaed16a4au, 0xd9d65adcu,
    0x40df0b66u, 0x37d83bf0u, 0xa9bcae53u, 0xdebb9ec5u, 0x47b2cf7fu, 0x30b5ffe9u,
    0xbdbdf21cu, 0xcabac28au, 0x53b39330u, 0x24b4a3a6u, 0xbad03605u, 0xcdd70693u,
    0x54de5729u, 0x23d967bfu, 0xb3667a2eu, 0xc4614ab8u, 0x5d681b02u, 0x2a6f2b94u,
    0xb40bbe37u, 0xc30c8ea1u, 0x5a05df1bu, 0x2d02ef8du,
};

/* zlib.crc32(b, crc): takes and returns the finished CRC, so 0 is the CRC of nothing. */
static uint32_t crc32_step(uint32_t crc, uint8_t b) {
    crc = ~crc;
    return ~(s_crc_table[(crc ^ b) & 0xFFu] ^ (crc >> 8));
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
    uint32_t crc = s_reply_crc;
    put_str("m-crc=");
    put_hex32(crc);
    eol();
    put_str("m-ready");
    eol();
    s_reply_crc = 0;
}

/* ---- small pure helpers --------------------------------------------------------------------- */

/* CRC-32 of a buffer (the same function as zlib.crc32). */
static uint32_t crc32(const uint8_t *p, uint32_t n) {
    uint32_t crc = 0;
    while (n--) crc = crc32_step(crc, *p++);
    return crc;
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
    s_reply_crc = 0;
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
