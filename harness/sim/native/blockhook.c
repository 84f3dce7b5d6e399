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
 * Stopping from here (cycle limit or a stop request) happens before the block executes.
 *
 * Memory system (harness/sim/memmodel.py): an optional set-associative LRU cache in front of the
 * flash. Instruction fetches of a block in the cached region look up each line the block spans
 * (a miss stalls `miss_cycles`). Data reads from flash either use the same cache or pay
 * `data_wait` cycles each (`bh_data_read`). They arrive two ways, neither of them a Unicorn
 * memory hook (a hooked read restores the CPU state mid-block, which breaks Thumb IT blocks,
 * unicorn-engine/unicorn#2309, and puts every load of the program on Unicorn's slow path):
 * - flash pages that hold no executed code are a Unicorn mmio region whose read callback is
 *   `bh_flash_read`: it returns the bytes of the flash buffer and charges the read;
 * - reads of code pages (literal pools, branch tables: PC-relative, so known when the block is
 *   decoded) are listed in the block's entry and charged when the block is entered.
 * `data_timing` = 0 (an untimed scope) skips both charges and the instruction-fetch cache
 * model; the bytes are the same.
 * ROM soft float (RP2040): a block whose entry carries a ROM op computes it here on r0/r1
 * before its `bx lr` runs; the op's documented cycle count is the block's cost. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "blockhook.h"

/* One mmio region of flash data pages: the callback's user data. */
typedef struct {
    bh_state *s;
    const uint8_t *mem;        /* the flash buffer at the region's first byte */
    uint64_t base;             /* the region's guest address */
} bh_flash_region;

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

/* 1 on a hit; a miss installs the line (LRU). */
static int bh_cache(bh_state *s, uint32_t line) {
    /* sets is a power of two on every board so far: a mask, not a division (a tenth of the
     * emulation time went here) */
    const uint32_t index = (s->sets & (s->sets - 1u)) == 0 ? (line & (s->sets - 1u)) : line % s->sets;
    uint32_t *set = s->tags + (uint64_t)index * s->ways;
    uint32_t tag = line + 1, w;
    for (w = 0; w < s->ways; w++)
        if (set[w] == tag) break;
    int hit = w < s->ways;
    if (!hit) w = s->ways - 1;
    for (; w > 0; w--) set[w] = set[w - 1];
    set[0] = tag;
    return hit;
}

static void bh_data_read(bh_state *s, uint64_t address) {
    s->data_reads++;
    if (s->cache_data && s->tags) {
        if (!bh_cache(s, (uint32_t)(address >> s->line_shift))) {
            s->cycles += s->miss_cycles;
            s->data_misses++;
        }
    } else {
        s->cycles += s->data_wait;
    }
}

/* uc_cb_mmio_read_t of the flash data regions (Unicorn splits wider or unaligned accesses into
 * aligned ones of at most 4 bytes, as the core's bus does). */
uint64_t bh_flash_read(void *uc, uint64_t offset, unsigned size, void *user) {
    bh_flash_region *r = (bh_flash_region *)user;
    uint64_t value = 0;
    (void)uc;
    memcpy(&value, r->mem + offset, size < 8 ? size : 8);  /* little-endian host and guest */
    if (r->s->data_timing) bh_data_read(r->s, r->base + offset);
    return value;
}

static float bh_ftz(float x) {  /* the ROM library flushes denormals to zero, NaN to infinity */
    if (isnan(x)) return signbit(x) ? -INFINITY : INFINITY;
    if (x != 0.0f && fabsf(x) < 1.17549435e-38f) return signbit(x) ? -0.0f : 0.0f;
    return x;
}

static float bh_as_float(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }
static uint32_t bh_as_u32(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }

static int32_t bh_f2i(float x, int toward_zero) {
    if (isnan(x)) return 0;
    double d = toward_zero ? trunc(x) : floor(x);
    if (d >= 2147483647.0) return INT32_MAX;
    if (d <= -2147483648.0) return INT32_MIN;
    return (int32_t)d;
}

static void bh_rom_op(bh_state *s, void *uc, uint32_t op) {
    uint32_t r0 = 0, r1 = 0, out;
    s->reg_read(uc, s->reg_r0, &r0);
    s->reg_read(uc, s->reg_r1, &r1);
    float a = bh_ftz(bh_as_float(r0)), b = bh_ftz(bh_as_float(r1));
    switch (op) {
    case 1: out = bh_as_u32(bh_ftz(a + b)); break;
    case 2: out = bh_as_u32(bh_ftz(a - b)); break;
    case 3: out = bh_as_u32(bh_ftz(a * b)); break;
    case 4: out = bh_as_u32(bh_ftz(a / b)); break;
    case 5: out = (uint32_t)(a == b ? 0 : (a < b ? -1 : 1)); break;
    case 6: out = bh_as_u32(bh_ftz(sqrtf(a))); break;
    case 7: out = (uint32_t)bh_f2i(a, 0); break;                 /* _float2int: towards -inf */
    case 8: out = a <= 0.0f ? 0u : (a >= 4294967295.0f ? 0xFFFFFFFFu : (uint32_t)floorf(a)); break;
    case 9: out = bh_as_u32((float)(int32_t)r0); break;
    case 10: out = bh_as_u32((float)r0); break;
    case 11: out = bh_as_u32(bh_ftz(expf(a))); break;
    case 12: out = bh_as_u32(bh_ftz(a <= 0.0f ? -INFINITY : logf(a))); break;
    case 13: out = (uint32_t)bh_f2i(a, 1); break;                /* __aeabi_f2iz entry: towards zero */
    default: return;
    }
    s->reg_write(uc, s->reg_r0, &out);
    s->rom_calls++;
}

void bh_commit(bh_state *s, uint64_t next_address) {
    if (!s->have_cur) return;
    s->cycles += s->cur_cycles;
    s->insns += s->cur_insns;
    s->mem += s->cur_mem;
    s->fp += s->cur_fp;
    s->mul += s->cur_mul;
    if (next_address != s->cur_addr + s->cur_size) s->cycles += s->cur_penalty;
    s->have_cur = 0;
}

static bh_entry *bh_lookup(bh_state *s, uint64_t address, uint32_t size) {
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
    return e;
}

void bh_block(void *uc, uint64_t address, uint32_t size, void *user) {
    bh_state *s = (bh_state *)user;
    bh_entry *e = bh_lookup(s, address, size);
    /* a taken branch into a 32-bit instruction at an odd halfword refills one cycle longer */
    if (s->have_cur && s->cur_penalty && address != s->cur_addr + s->cur_size && (e->flags & 2u))
        s->cycles += s->target_extra;
    bh_commit(s, address);
    if (s->stop_request || s->cycles >= s->cycle_limit) {
        s->stopped = s->stop_request ? 2 : 1;
        s->stop(uc);
        return;
    }
    s->cur_addr = address;
    s->cur_size = size;
    s->cur_cycles = e->cycles;
    s->cur_insns = e->insns;
    s->cur_mem = e->mem;
    s->cur_penalty = e->penalty;
    s->cur_fp = e->fp;
    s->cur_mul = e->mul;
    s->have_cur = 1;
    s->blocks++;
    if ((e->flags & 1u) && s->tags && s->data_timing) { /* untimed: no fetch charges either */
        uint32_t first = (uint32_t)(address >> s->line_shift);
        uint32_t last = (uint32_t)((address + (size ? size : 1) - 1) >> s->line_shift);
        for (uint32_t line = first; line <= last; line++) {
            s->fetch_lines++;
            if (!bh_cache(s, line)) {
                s->cycles += s->miss_cycles;
                s->fetch_misses++;
            }
        }
    }
    if (s->data_timing)
        for (uint32_t i = 0; i < e->nlits; i++) bh_data_read(s, e->lits[i]);
    if (e->flags >> 8) bh_rom_op(s, uc, (e->flags >> 8) & 0xFFu);
}
