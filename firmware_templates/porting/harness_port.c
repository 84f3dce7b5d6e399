/* harness_port.c - the benchmark protocol, GPIO mark and cycle counter for your own firmware.
 * See harness_port.h for how to use it and docs/protocol.md for the wire format. */
#include "harness_port.h"

#define REG32(addr) (*(volatile uint32_t *)(addr))
#define DWT_CTRL REG32(0xE0001000u)
#define DWT_CYCCNT REG32(0xE0001004u)
#define DEMCR REG32(0xE000EDFCu)
#define SCB_AIRCR REG32(0xE000ED0Cu)
#define CMD_MAX 300      /* "db " + 128 bytes as hex, with room to spare */
#define RESULT_CHUNK 32  /* output bytes per "m-results=" line */

static const harness_workload_t *s_w;
static uint8_t s_staged[HARNESS_PORT_MAX_INPUT];
static uint32_t s_loaded, s_expected, s_overhead;
static uint32_t s_ticks[HARNESS_PORT_MAX_LAPS], s_crc[HARNESS_PORT_MAX_LAPS];
static uint8_t s_wrapped[HARNESS_PORT_MAX_LAPS];
static char s_cmd[CMD_MAX];
static uint32_t s_reply_crc; /* CRC-32 of the reply sent so far (protocol 2: m-crc) */
static uint32_t s_len;
static int s_overflow;

/* ---- weak defaults: DWT cycle counter and SYSRESETREQ ------------------------------------- */
static uint32_t s_start;

__attribute__((weak)) void harness_port_counter_start(void) {
    s_start = DWT_CYCCNT;
}

__attribute__((weak)) uint32_t harness_port_counter_read(int *wrapped) {
    *wrapped = 0; /* 32-bit modular difference: exact below 2^32 cycles */
    return DWT_CYCCNT - s_start;
}

__attribute__((weak)) const char *harness_port_counter_kind(void) {
    return "dwt";
}

__attribute__((weak)) uint32_t harness_port_counter_hz(void) {
    return s_w ? s_w->core_clock_hz : 0u;
}

__attribute__((weak)) void harness_port_reset(void) {
    __asm__ volatile("dsb" ::: "memory");
    SCB_AIRCR = 0x05FA0004u; /* VECTKEY | SYSRESETREQ */
    for (;;) {
    }
}

static void dwt_enable(void) {
    DEMCR |= 1u << 24; /* TRCENA */
    DWT_CYCCNT = 0;
    DWT_CTRL |= 1u;    /* CYCCNTENA */
}

/* ---- output --------------------------------------------------------------------------------- */
static uint32_t crc32_step(uint32_t crc, uint8_t b) { /* zlib.crc32(b, crc) */
    crc = ~crc ^ b;
    for (int k = 0; k < 8; k++) crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1u)));
    return ~crc;
}

static void out(char c) { /* every reply byte: sent and added to the reply's checksum */
    s_reply_crc = crc32_step(s_reply_crc, (uint8_t)c);
    harness_port_putc(c);
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

static void eol(void) {
    put_str("\r\n");
}

static void kv_str(const char *key, const char *value) {
    put_str("m-");
    put_str(key);
    out('=');
    put_str(value ? value : "unknown");
    eol();
}

static void kv_u32(const char *key, uint32_t value) {
    put_str("m-");
    put_str(key);
    out('=');
    put_u32(value);
    eol();
}

static void err(const char *what) {
    put_str("e-");
    put_str(what);
    eol();
}

static void end_reply(void) { /* m-crc (of every reply byte before it), m-ready, next reply */
    uint32_t crc = s_reply_crc;
    put_str("m-crc=");
    for (int shift = 24; shift >= 0; shift -= 8) put_hex8((uint8_t)(crc >> shift));
    eol();
    put_str("m-ready");
    eol();
    s_reply_crc = 0;
}

/* ---- helpers -------------------------------------------------------------------------------- */
static uint32_t crc32(const uint8_t *p, uint32_t n) { /* IEEE, as Python's zlib.crc32 */
    uint32_t crc = 0;
    while (n--) crc = crc32_step(crc, *p++);
    return crc;
}

static int hexval(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

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

static const char *after(const char *s, const char *prefix) { /* s past prefix, or 0 */
    while (*prefix)
        if (*s++ != *prefix++) return 0;
    return s;
}

static int same(const char *a, const char *b) {
    const char *rest = after(a, b);
    return rest && *rest == 0;
}

static void stage(void) {
    for (uint32_t i = 0; i < s_w->input_bytes; i++) s_w->input[i] = s_staged[i];
}

static void __attribute__((noinline)) empty_call(void *ctx) {
    (void)ctx;
    __asm__ volatile("" ::: "memory");
}

static uint32_t counter_overhead(void) { /* the constant in every lap (docs/protocol.md) */
    uint32_t best = 0xFFFFFFFFu;
    for (int i = 0; i < 4; i++) {
        int wrapped = 0;
        harness_port_counter_start();
        empty_call(0);
        uint32_t t = harness_port_counter_read(&wrapped);
        if (!wrapped && t < best) best = t;
    }
    return best == 0xFFFFFFFFu ? 0u : best;
}

/* ---- commands ------------------------------------------------------------------------------- */
static void cmd_identify(void) {
    kv_u32("protocol", HARNESS_PORT_PROTOCOL);
    kv_str("board", s_w->board);
    kv_str("model", s_w->name);
    kv_str("model-hash", s_w->version);
    kv_str("build", s_w->build);
    kv_str("numeric", s_w->numeric);
    kv_u32("input-bytes", s_w->input_bytes);
    kv_u32("output-bytes", s_w->output_bytes);
    kv_u32("output-count", s_w->output_count);
    kv_u32("arena-bytes", s_w->arena_bytes);
    kv_str("counter", harness_port_counter_kind());
    kv_u32("counter-hz", harness_port_counter_hz());
    kv_u32("counter-overhead", s_overhead);
    kv_u32("max-laps", HARNESS_PORT_MAX_LAPS);
}

static void cmd_db(const char *arg) {
    const char *p = after(arg, "load");
    if (p) {
        uint32_t n;
        if (!parse_u32(&p, &n) || *p) {
            err("db-load-args");
        } else if (n != s_w->input_bytes) {
            err("db-load-size");
        } else {
            s_expected = n;
            s_loaded = 0;
            kv_u32("db-expect", n);
        }
        return;
    }
    if (s_expected == 0) {
        err("db-not-started");
        return;
    }
    uint32_t n = 0;
    while (arg[n]) {
        if (hexval(arg[n]) < 0) {
            err("db-bad-hex");
            return;
        }
        n++;
    }
    if (n == 0 || (n & 1u)) {
        err("db-bad-hex");
    } else if (s_loaded + n / 2u > s_expected) {
        err("db-overflow");
    } else {
        for (uint32_t i = 0; i < n; i += 2) s_staged[s_loaded++] = (uint8_t)(hexval(arg[i]) << 4 | hexval(arg[i + 1]));
        kv_u32("db-loaded", s_loaded);
    }
}

static void cmd_infer(const char *arg) {
    uint32_t n, warmup, gap_us;
    const char *p = arg;
    if (!parse_u32(&p, &n) || !parse_u32(&p, &warmup) || !parse_u32(&p, &gap_us) || *p) {
        err("infer-args");
        return;
    }
    if (n == 0 || n > HARNESS_PORT_MAX_LAPS) {
        err("infer-laps-range");
        return;
    }
    if (s_expected == 0 || s_loaded != s_expected) {
        err("infer-no-input");
        return;
    }
    for (uint32_t w = 0; w < warmup; w++) {
        stage();
        s_w->run(s_w->ctx);
    }
    harness_port_idle_us(gap_us);
    for (uint32_t i = 0; i < n; i++) {
        int wrapped = 0;
        stage();
        harness_port_gpio(1); /* the measured window */
        harness_port_counter_start();
        s_w->run(s_w->ctx);
        uint32_t ticks = harness_port_counter_read(&wrapped);
        harness_port_gpio(0);
        s_ticks[i] = ticks;
        s_wrapped[i] = (uint8_t)(wrapped != 0);
        s_crc[i] = crc32(s_w->output, s_w->output_bytes);
        harness_port_idle_us(gap_us);
    }
    for (uint32_t i = 0; i < n; i++) {
        put_str("m-lap-");
        put_u32(i);
        out('=');
        if (s_wrapped[i])
            put_str("wrapped");
        else
            put_u32(s_ticks[i]);
        out(',');
        for (int shift = 24; shift >= 0; shift -= 8) put_hex8((uint8_t)(s_crc[i] >> shift));
        eol();
    }
    kv_u32("infer-done", n);
}

static void cmd_results(void) {
    kv_u32("results-bytes", s_w->output_bytes);
    for (uint32_t i = 0; i < s_w->output_bytes; i += RESULT_CHUNK) {
        put_str("m-results=");
        for (uint32_t j = i; j < s_w->output_bytes && j < i + RESULT_CHUNK; j++) put_hex8(s_w->output[j]);
        eol();
    }
}

static void dispatch(const char *cmd) {
    const char *arg;
    if (cmd[0] == 0) {
        /* a lone '%': resync probe, answered with m-crc=00000000 and m-ready alone */
    } else if (same(cmd, "identify")) {
        cmd_identify();
    } else if (same(cmd, "name")) {
        kv_str("name", s_w->board);
    } else if ((arg = after(cmd, "db ")) != 0) {
        cmd_db(arg);
    } else if ((arg = after(cmd, "infer ")) != 0) {
        cmd_infer(arg);
    } else if (same(cmd, "results")) {
        cmd_results();
    } else if (same(cmd, "reset")) {
        kv_str("reset", s_w->board);
        harness_port_reset();
    } else {
        err("unknown-command");
    }
    end_reply();
}

void harness_init(const harness_workload_t *workload) {
    s_w = workload;
    s_loaded = s_expected = 0;
    s_len = 0;
    s_overflow = 0;
    if (same(harness_port_counter_kind(), "dwt")) dwt_enable();
    s_overhead = counter_overhead();
    harness_port_gpio(0);
    s_reply_crc = 0;
    kv_str("boot", s_w->board);
    end_reply();
}

void harness_handle_char(int c) {
    if (c == '%') {
        s_cmd[s_len] = 0;
        if (s_overflow || s_w->input_bytes > HARNESS_PORT_MAX_INPUT) {
            err(s_overflow ? "command-too-long" : "input-too-large");
            end_reply();
        } else {
            dispatch(s_cmd);
        }
        s_len = 0;
        s_overflow = 0;
    } else if (c >= 0x20 && c < 0x7F) { /* CR, LF and other control bytes are ignored */
        if (s_len + 1u < CMD_MAX)
            s_cmd[s_len++] = (char)c;
        else
            s_overflow = 1;
    }
}

void harness_serve(void) {
    for (;;) harness_handle_char(harness_port_getc());
}
