/* The CMSDK UART's DATA / STATE / CTRL registers of a simulated board as a Unicorn mmio region
 * served in C (harness/sim/uartregs.py loads it with the block hook, docs/sim-board.md).
 *
 * Why: every byte the host and the firmware exchange is a STATE poll plus a DATA access; as
 * Python mmio callbacks that cost ~7 us a character. Here the bytes live in two FIFOs: the UART
 * server's threads push host bytes into `rx` (one call per received chunk) and take firmware
 * bytes out of `tx` (one call per burst, woken through `tx_fd` on a newline or when a burst
 * grows large). Both sides lock `lock`; the emulator thread runs without the GIL meanwhile.
 *
 * What stays in Python (the `fallback` callbacks, Mmio.periph_read/_write): every other offset
 * of the page, and an empty STATE read that may be the second read of an RX poll loop (Mmio
 * decides whether the core parks). The first empty STATE read after any other UART access is
 * answered here (0) and *deferred*: the counters and core registers are kept so Python can
 * place that read on its instruction later exactly as it would have at the time (the poll
 * loop's pc and cycle, and the decoder's cursor in that block). An mmio access charges no
 * cycles on either path (the instruction's cost comes from the block). */
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "blockhook.h"

#define BU_NREGS 16
#define BU_TX_WAKE 1024  /* bytes pending that wake the tx thread without a newline */

enum { BU_POLL_NONE = 0, BU_POLL_DEFERRED = 1, BU_POLL_PYTHON = 2, BU_POLL_CANCELLED = 3 };

typedef uint64_t (*bu_read_fn)(void *uc, uint64_t offset, unsigned size, void *user);
typedef void (*bu_write_fn)(void *uc, uint64_t offset, unsigned size, uint64_t value, void *user);
typedef int (*bu_batch_fn)(void *uc, int *regs, void **vals, int count);

typedef struct {
    uint8_t *buf;
    uint64_t cap, head, len;  /* ring: bytes buf[(head + i) % cap] for i < len */
} bu_fifo;

/* A deferred empty STATE read: the block counters then, the access address, the registers. */
typedef struct {
    uint64_t cycles, insns, mem, blocks, cur_addr;
    uint32_t cur_size, have_cur;
    uint64_t address;
    uint32_t regs[BU_NREGS];
} bu_snapshot;

typedef struct {
    pthread_mutex_t lock;      /* guards rx, tx, tx_signalled */
    bu_fifo rx, tx;
    int tx_signalled;          /* a wake-up byte is in the pipe and not yet answered */
    int tx_fd;                 /* write end of the pump thread's wake-up pipe (non-blocking), or -1 */
    uint32_t ctrl;             /* CTRL: bit 0 TXEN (output is dropped while clear) */
    uint32_t poll;             /* BU_POLL_*: emulator thread only */
    bu_snapshot snap;
    bh_state *s;
    uint64_t address;          /* the page's guest address */
    uint64_t window_offset;    /* the page's offset in the Python peripheral window */
    bu_read_fn fallback_read;
    bu_write_fn fallback_write;
    bu_batch_fn reg_read_batch;
    int reg_ids[BU_NREGS];
    uint64_t served;           /* accesses answered here (diagnostics) */
} bu_uart;

static int bu_fifo_reserve(bu_fifo *f, uint64_t extra) {
    if (f->len + extra <= f->cap) return 1;
    uint64_t cap = f->cap ? f->cap : 4096;
    while (cap < f->len + extra) cap *= 2;
    uint8_t *buf = malloc(cap);
    if (!buf) return 0;
    for (uint64_t i = 0; i < f->len; i++) buf[i] = f->buf[(f->head + i) % f->cap];
    free(f->buf);
    f->buf = buf;
    f->cap = cap;
    f->head = 0;
    return 1;
}

static void bu_fifo_push(bu_fifo *f, const uint8_t *data, uint64_t n) {
    if (!bu_fifo_reserve(f, n)) return;
    for (uint64_t i = 0; i < n; i++) f->buf[(f->head + f->len + i) % f->cap] = data[i];
    f->len += n;
}

static uint64_t bu_fifo_take(bu_fifo *f, uint8_t *out, uint64_t max) {
    uint64_t n = f->len < max ? f->len : max;
    for (uint64_t i = 0; i < n; i++) out[i] = f->buf[(f->head + i) % f->cap];
    if (n) f->head = (f->head + n) % f->cap;
    f->len -= n;
    return n;
}

/* -- setup (Python) ------------------------------------------------------------------- */
bu_uart *bu_new(bh_state *s, bu_batch_fn reg_read_batch, const int *reg_ids) {
    bu_uart *u = calloc(1, sizeof(bu_uart));
    if (!u) return NULL;
    pthread_mutex_init(&u->lock, NULL);
    u->s = s;
    u->tx_fd = -1;  /* until the UART server starts its pump thread */
    u->reg_read_batch = reg_read_batch;
    memcpy(u->reg_ids, reg_ids, sizeof(u->reg_ids));
    return u;
}

void bu_free(bu_uart *u) {
    if (!u) return;
    pthread_mutex_destroy(&u->lock);
    free(u->rx.buf);
    free(u->tx.buf);
    free(u);
}

/* The Python handlers of a new engine (they are bound to it). */
void bu_set_fallback(bu_uart *u, bu_read_fn rd, bu_write_fn wr, uint64_t address, uint64_t window_offset) {
    u->address = address;
    u->fallback_read = rd;
    u->fallback_write = wr;
    u->window_offset = window_offset;
}

void bu_set_tx_fd(bu_uart *u, int fd) {
    pthread_mutex_lock(&u->lock);
    u->tx_fd = fd;
    pthread_mutex_unlock(&u->lock);
}

uint32_t bu_get_ctrl(bu_uart *u) { return u->ctrl; }
void bu_set_ctrl(bu_uart *u, uint32_t v) { u->ctrl = v; }
uint32_t bu_get_poll(bu_uart *u) { return u->poll; }
void bu_set_poll(bu_uart *u, uint32_t v) { u->poll = v; }
uint64_t bu_served(bu_uart *u) { return u->served; }

void bu_snapshot_copy(bu_uart *u, bu_snapshot *out) { *out = u->snap; }

/* -- the UART server's threads ----------------------------------------------------------- */
void bu_rx_push(bu_uart *u, const uint8_t *data, uint64_t n) {
    pthread_mutex_lock(&u->lock);
    bu_fifo_push(&u->rx, data, n);
    pthread_mutex_unlock(&u->lock);
}

uint64_t bu_rx_count(bu_uart *u) {
    pthread_mutex_lock(&u->lock);
    uint64_t n = u->rx.len;
    pthread_mutex_unlock(&u->lock);
    return n;
}

int bu_rx_pop(bu_uart *u) {
    uint8_t b = 0;
    pthread_mutex_lock(&u->lock);
    bu_fifo_take(&u->rx, &b, 1);
    pthread_mutex_unlock(&u->lock);
    return b;
}

/* Firmware bytes not yet taken; re-arms the wake-up. */
uint64_t bu_tx_take(bu_uart *u, uint8_t *out, uint64_t max) {
    pthread_mutex_lock(&u->lock);
    uint64_t n = bu_fifo_take(&u->tx, out, max);
    if (u->tx.len == 0) u->tx_signalled = 0;
    pthread_mutex_unlock(&u->lock);
    return n;
}

uint64_t bu_tx_count(bu_uart *u) {
    pthread_mutex_lock(&u->lock);
    uint64_t n = u->tx.len;
    pthread_mutex_unlock(&u->lock);
    return n;
}

/* -- the firmware's accesses (emulator thread) ------------------------------------------ */
static void bu_defer(bu_uart *u, void *uc, uint64_t address) {
    bh_state *s = u->s;
    bu_snapshot *p = &u->snap;
    void *vals[BU_NREGS];
    p->cycles = s->cycles;
    p->insns = s->insns;
    p->mem = s->mem;
    p->blocks = s->blocks;
    p->cur_addr = s->cur_addr;
    p->cur_size = s->cur_size;
    p->have_cur = s->have_cur;
    p->address = address;
    for (int i = 0; i < BU_NREGS; i++) {
        p->regs[i] = 0;
        vals[i] = &p->regs[i];
    }
    u->reg_read_batch(uc, u->reg_ids, vals, BU_NREGS);
    u->poll = BU_POLL_DEFERRED;
}

/* Any UART access but an empty STATE read ends a poll sequence (Mmio: _last_poll = None); a
 * deferred read not yet placed stays kept for the decoder's cursor. */
static void bu_clear_poll(bu_uart *u) {
    if (u->poll == BU_POLL_DEFERRED) u->poll = BU_POLL_CANCELLED;
    else if (u->poll == BU_POLL_PYTHON) u->poll = BU_POLL_NONE;
}

static void bu_transmit(bu_uart *u, uint8_t byte) {
    pthread_mutex_lock(&u->lock);
    bu_fifo_push(&u->tx, &byte, 1);
    int fd = u->tx_fd;
    int wake = fd >= 0 && !u->tx_signalled && (byte == '\n' || u->tx.len >= BU_TX_WAKE);
    if (wake) u->tx_signalled = 1;
    pthread_mutex_unlock(&u->lock);
    if (wake) {
        ssize_t ignored = write(fd, "w", 1);  /* a full pipe already holds a wake-up */
        (void)ignored;
    }
}

uint64_t bu_read(void *uc, uint64_t offset, unsigned size, void *user) {
    bu_uart *u = (bu_uart *)user;
    uint64_t reg = offset & ~3ULL;
    if (reg == 0x4) {
        pthread_mutex_lock(&u->lock);
        int ready = u->rx.len != 0;
        pthread_mutex_unlock(&u->lock);
        if (ready) {
            bu_clear_poll(u);
            u->served++;
            return 2;  /* RX full */
        }
        /* a deferred read that was cancelled by a later access only matters for the decoder's
         * cursor inside its own block; once the core left that block it can be forgotten */
        if (u->poll == BU_POLL_NONE || (u->poll == BU_POLL_CANCELLED && u->snap.blocks != u->s->blocks)) {
            bu_defer(u, uc, u->address + offset);
            u->served++;
            return 0;
        }
    } else if (reg == 0x0) {
        uint8_t b = 0;
        pthread_mutex_lock(&u->lock);
        bu_fifo_take(&u->rx, &b, 1);
        pthread_mutex_unlock(&u->lock);
        bu_clear_poll(u);
        u->served++;
        return b;
    } else if (reg == 0x8) {
        u->served++;
        return u->ctrl;
    }
    return u->fallback_read(uc, u->window_offset + offset, size, NULL);
}

void bu_write(void *uc, uint64_t offset, unsigned size, uint64_t value, void *user) {
    bu_uart *u = (bu_uart *)user;
    uint64_t reg = offset & ~3ULL;
    if (reg == 0x0) {
        bu_clear_poll(u);
        if (u->ctrl & 1u) bu_transmit(u, (uint8_t)(value & 0xFF));
        u->served++;
        return;
    }
    if (reg == 0x8) {
        u->ctrl = (uint32_t)(value & 0xFF);
        u->served++;
        return;
    }
    u->fallback_write(uc, u->window_offset + offset, size, value, NULL);
}
