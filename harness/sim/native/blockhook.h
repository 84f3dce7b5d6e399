/* Types shared by the native block hook (blockhook.c) and the native UART registers
 * (uartregs.c); harness/sim/counter.py mirrors bh_state field by field. */
#ifndef BLOCKHOOK_H
#define BLOCKHOOK_H

#include <stdint.h>

typedef struct {
    uint64_t key;      /* (address << 32) | size; 0 = empty slot */
    uint32_t cycles;   /* cost of the whole block without the taken-branch penalty */
    uint32_t insns;
    uint32_t mem;      /* load/store instructions */
    uint32_t penalty;  /* extra cycles when the next block is not the fall-through */
    uint32_t fp;       /* FPU instructions */
    uint32_t mul;      /* multiply / MAC instructions */
    uint32_t flags;    /* bit 0: fetched through the flash cache; bit 1: starts with a 32-bit
                          instruction at an odd halfword; bits 8-15: ROM float op */
    uint32_t nlits;    /* flash reads of code pages the block makes (literal pools, tables) */
    const uint32_t *lits;  /* their addresses (owned by Python) */
} bh_entry;

typedef void (*bh_miss_fn)(uint64_t address, uint32_t size, bh_entry *out);
typedef int (*bh_stop_fn)(void *uc);
typedef int (*bh_reg_fn)(void *uc, int regid, void *value);

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
    /* instruction-class totals (power model) */
    uint64_t fp, mul;
    uint32_t cur_fp, cur_mul;
    /* flash cache: tags[set * ways + way], most recent first; tag = line + 1, 0 = invalid */
    uint32_t *tags;
    uint32_t sets, ways, line_shift, miss_cycles;
    uint32_t cache_data, data_wait;
    uint64_t fetch_lines, fetch_misses, data_reads, data_misses;
    /* ROM float */
    bh_reg_fn reg_read, reg_write;
    int32_t reg_r0, reg_r1;
    uint64_t rom_calls;
    uint32_t target_extra;     /* refill extra for flags bit 1 targets */
    uint32_t data_timing;      /* charge flash data reads (0 inside an untimed scope) */
} bh_state;

#endif
