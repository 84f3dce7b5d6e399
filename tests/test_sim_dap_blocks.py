"""The simulated AHB-AP moves DRW bursts of plain memory as one block (how pyOCD writes and
reads back a flash image): same memory and same TAR afterwards as word by word, including a
burst that ends on the 4 KiB TAR wrap, and word by word wherever a block would not be plain."""

from __future__ import annotations

from harness.config.board import load_board
from harness.sim.board import SimBoard
from harness.sim.debugport import AP_CSW, AP_DRW, AP_TAR, SimDap

CSW_WORD_INCREMENT = 0x03000052


def _dap() -> tuple[SimBoard, SimDap]:
    board = SimBoard(load_board("sim-m4"), persist=False)
    dap = SimDap(board)
    dap.write_ap(AP_CSW, CSW_WORD_INCREMENT)
    return board, dap


def test_drw_bursts_match_word_by_word_transfers() -> None:
    ram = load_board("sim-m4").memory.ram_base
    words = [0x11111111 * (i % 15 + 1) for i in range(16)]
    for start in (ram + 0x100, ram + 0x1000 - 4 * len(words)):  # inside a page; ending on the wrap
        block_board, block = _dap()
        word_board, word = _dap()
        for dap in (block, word):
            dap.write_ap(AP_TAR, start)
        block.write_ap_block(AP_DRW, words)
        for v in words:
            word.write_ap(AP_DRW, v)
        assert block.tar == word.tar  # the wrap at a 4 KiB boundary included
        assert block_board.debug_read(start, 64) == word_board.debug_read(start, 64)
        block.write_ap(AP_TAR, start)
        assert block.read_ap_block(AP_DRW, len(words)) == words
        assert block.tar == word.tar


def test_bursts_that_are_not_plain_memory_go_word_by_word() -> None:
    board, dap = _dap()
    ram = load_board("sim-m4").memory.ram_base
    dap.write_ap(AP_TAR, ram + 0x1000 - 8)  # four words from here cross the TAR wrap
    dap.write_ap_block(AP_DRW, [1, 2, 3, 4])
    assert board.debug_read(ram + 0x1000 - 8, 8) == bytes([1, 0, 0, 0, 2, 0, 0, 0])
    assert board.debug_read(ram, 8) == bytes([3, 0, 0, 0, 4, 0, 0, 0])  # wrapped like the per-word path
    assert dap.tar == ram + 8
