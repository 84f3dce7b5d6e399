"""Compression stage: train, prune and quantize a model, then export it as an IR artifact.

Import submodules directly (``harness.compress.api``); this package stays import-light so the
CLI starts fast.
"""
