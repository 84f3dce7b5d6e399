"""Memory-system model of a simulated board: what an instruction fetch or a data read from
flash costs beyond the core's own instruction timing (harness/sim/cycles.py).

Two shapes, chosen per board in ``[sim]`` of boards/sim-*.toml (sources cited there and in
docs/sim-accuracy.md):
- no ``[sim.cache]``: every instruction fetched from flash pays ``flash_wait_states`` (the old
  flat model; right for flash without an accelerator) and so does every data read from flash;
- ``[sim.cache]``: a set-associative LRU cache in front of the flash. Instruction fetches look up
  each line a translated block spans; a miss stalls ``miss_cycles`` (one line fill). Data reads
  from flash (weights, literal pools) use the same cache when ``data = true``, else pay
  ``flash_wait_states`` each. Hits cost nothing beyond the core's timing.
Code and data in SRAM (or ROM) never pay anything extra.

The native block hook (native/blockhook.c) runs this model; :class:`LruCache` is the same
algorithm for the pure-Python counter.
"""

from __future__ import annotations

from dataclasses import dataclass

from harness.config.board import SimCache, SimSettings


@dataclass(frozen=True)
class CacheSpec:
    sets: int
    ways: int
    line_shift: int
    miss_cycles: int
    data: bool

    @classmethod
    def from_settings(cls, c: SimCache) -> CacheSpec:
        if c.line_bytes & (c.line_bytes - 1):
            raise ValueError(f"cache line_bytes must be a power of two (got {c.line_bytes})")
        sets = c.size_bytes // (c.line_bytes * c.ways)
        if sets < 1 or sets * c.line_bytes * c.ways != c.size_bytes:
            raise ValueError(f"cache size {c.size_bytes} is not ways x line_bytes x sets")
        return cls(sets, c.ways, c.line_bytes.bit_length() - 1, c.miss_cycles, c.data)


@dataclass(frozen=True)
class MemorySystem:
    """What the counters need: the cache (or None), the flash range, per-read cost without a
    data cache, and the per-instruction fetch wait states for the cost tables."""

    cache: CacheSpec | None = None
    flash_range: tuple[int, int] = (0, 0)
    data_wait_cycles: int = 0
    fetch_wait_states: int = 0
    target_extra: int = 0  # core model: refill extra for a 32-bit branch target at an odd halfword

    @property
    def charges_flash_data(self) -> bool:
        """Data reads from flash cost something, so they must be seen: the flash's data pages
        are served through the counter's read callback (harness/sim/flashmap.py)."""
        return self.flash_range[1] > self.flash_range[0] and (
            (self.cache is not None and self.cache.data) or self.data_wait_cycles > 0
        )

    @classmethod
    def for_board(cls, sim: SimSettings, flash_base: int, flash_size: int, target_extra: int = 0) -> MemorySystem:
        cache = CacheSpec.from_settings(sim.cache) if sim.cache is not None else None
        return cls(
            target_extra=target_extra,
            cache=cache,
            flash_range=(flash_base, flash_base + flash_size),
            data_wait_cycles=sim.flash_wait_states,
            fetch_wait_states=0 if cache is not None else sim.flash_wait_states,
        )


class LruCache:
    """Tags per set, most recent first (the native hook's algorithm)."""

    def __init__(self, spec: CacheSpec):
        self.spec = spec
        self._sets: list[list[int]] = [[] for _ in range(spec.sets)]

    def clear(self) -> None:
        for s in self._sets:
            s.clear()

    def access_line(self, line: int) -> bool:
        s = self._sets[line % self.spec.sets]
        if line in s:
            s.remove(line)
            s.insert(0, line)
            return True
        s.insert(0, line)
        del s[self.spec.ways :]
        return False

    def access(self, address: int) -> bool:
        return self.access_line(address >> self.spec.line_shift)
