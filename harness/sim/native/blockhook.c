/* Native Unicorn block hook for the simulated boards (harness/sim/native.py builds and loads it).
 *
 * Why native: a Python block hook runs at ~7 M instructions/s; this one at hundreds of millions.
 * Each translated block's cost (cycles, instructions, load/store count, taken-branch penalty)
 * is computed once by Python (capstone + harness/sim/cycles.py) through the `miss` callback and
 * cached here in an open-addressing table keyed by (address, size).
 *
 * Accounting: on entering a block the previous block is committed (plus its taken-branch penalty
 * when this block is not its fall-through), so `cycles`/`insns`/`mem` always hold the totals at
 * the start of the current block; Python adds the per-instruction prefix inside the block.
 * Stopping from here (cycle limit or a stop request) happens before the block executes. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    uint64_t key;      /* (address << 32) | size; 0 = empty slot */
    uint32_t cycles;   /* cost of the whole block without the taken-branch penalty */
    uint32_t insns;
    uint32_t mem;      /* load/store instructions */
    uint32_t penalty;  /* extra cycles when the next block is not the fall-through */
} bh_entry;

typedef void (*bh_miss_fn)(uint64_t address, uint32_t size, bh_entry *out);
typedef int (*bh_stop_fn)(void *uc);

typedef struct {
    uint64_t cycles, insns, mem, blocks;
    uint64_t cur_addr;
    uint32_t cur_size, have_cur;
    uint32_t cur_cycles, cur_insns, cur_mem, cur_penalty;
    uint64_t cycle_limit;
    uint32_t stop_request;
    uint32_t stopped;          /* 0 running, 1 cycle limit, 2 stop request */
    bh_stop_fn stop;
    bh_miss_fn miss;
    bh_entry *table;
    uint64_t mask;             /* table size - 1 (power of two) */
    uint64_t used;
} bh_state;

static uint64_t bh_hash(uint64_t k) {
    k ^= k >> 33; k *= 0xff51afd7ed558ccdULL; k ^= k >> 33;
    return k;
}

static bh_entry *bh_slot(bh_entry *table, uint64_t mask, uint64_t key) {
    uint64_t i = bh_hash(key) & mask;
    while (table[i].key != 0 && table[i].key != key) i = (i + 1) & mask;
    return &table[i];
}

int bh_init(bh_state *s, uint64_t size_pow2) {
    s->table = calloc(size_pow2, sizeof(bh_entry));
    s->mask = size_pow2 - 1;
    s->used = 0;
    return s->table != NULL;
}

void bh_free(bh_state *s) { free(s->table); s->table = NULL; }

void bh_clear(bh_state *s) { memset(s->table, 0, (s->mask + 1) * sizeof(bh_entry)); s->used = 0; }

static void bh_grow(bh_state *s) {
    uint64_t n = (s->mask + 1) * 2;
    bh_entry *t = calloc(n, sizeof(bh_entry));
    if (!t) return;
    for (uint64_t i = 0; i <= s->mask; i++)
        if (s->table[i].key) *bh_slot(t, n - 1, s->table[i].key) = s->table[i];
    free(s->table);
    s->table = t;
    s->mask = n - 1;
}

void bh_commit(bh_state *s, uint64_t next_address) {
    if (!s->have_cur) return;
    s->cycles += s->cur_cycles;
    s->insns += s->cur_insns;
    s->mem += s->cur_mem;
    if (next_address != s->cur_addr + s->cur_size) s->cycles += s->cur_penalty;
    s->have_cur = 0;
}

void bh_block(void *uc, uint64_t address, uint32_t size, void *user) {
    bh_state *s = (bh_state *)user;
    bh_commit(s, address);
    if (s->stop_request || s->cycles >= s->cycle_limit) {
        s->stopped = s->stop_request ? 2 : 1;
        s->stop(uc);
        return;
    }
    uint64_t key = (address << 32) | size;
    bh_entry *e = bh_slot(s->table, s->mask, key);
    if (e->key != key) {
        bh_entry fresh = {0};
        s->miss(address, size, &fresh);
        fresh.key = key;
        if ((s->used + 1) * 2 > s->mask + 1) {
            bh_grow(s);
            e = bh_slot(s->table, s->mask, key);
        }
        *e = fresh;
        s->used++;
    }
    s->cur_addr = address;
    s->cur_size = size;
    s->cur_cycles = e->cycles;
    s->cur_insns = e->insns;
    s->cur_mem = e->mem;
    s->cur_penalty = e->penalty;
    s->have_cur = 1;
    s->blocks++;
}
