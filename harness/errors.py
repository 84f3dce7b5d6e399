"""Errors that reach the user as a one-line message instead of a traceback."""

from __future__ import annotations


class HarnessError(Exception):
    """Base class: its message is shown to the user as is, and the CLI exits non-zero."""

    exit_code = 1


class ConfigError(HarnessError):
    """A configuration file is missing, unreadable or violates its schema."""

    exit_code = 2

    def __init__(self, file: str, problems: list[str]):
        self.file = file
        self.problems = problems
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"{file}: invalid configuration\n{lines}")


class NotBuiltYet(HarnessError):
    """A stage that exists in the CLI but is not implemented yet (never faked)."""

    exit_code = 3


class StageError(HarnessError):
    """A pipeline stage failed (build, flash, DUT link, instrument); says which and why."""
