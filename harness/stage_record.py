"""Base of the typed records one stage hands to the next and saves as JSON (artifact.json's
metadata, footprint.json, build.json): attributes instead of string keys, so a misspelt field is
a type error, while files written by earlier versions still load (keys this version does not know
are kept and written back, a field of the wrong type is an error naming the file)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from harness.errors import HarnessError

R = TypeVar("R", bound=BaseModel)


class Record(BaseModel):
    """A stage's output record; unknown keys (from other versions) are kept, not refused."""

    model_config = ConfigDict(extra="allow")


class RecordError(HarnessError):
    """A record file (artifact.json, footprint.json, build.json) does not match its schema."""

    def __init__(self, file: str, problems: list[str]):
        self.file, self.problems = file, problems
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"{file}: not a valid record\n{lines}")


def validate_record(model: type[R], data: Any, file: str | Path, part: str = "") -> R:
    """``data`` (parsed JSON) as ``model``; a RecordError naming ``file`` (and the ``part`` of it
    that ``data`` is) and the bad fields if not."""
    from harness.config.loader import format_validation_error

    try:
        return model.model_validate(data)
    except ValidationError as exc:
        problems = format_validation_error(exc)
        raise RecordError(str(file), [f"{part}: {p}" for p in problems] if part else problems) from None


def read_json(path: Path) -> Any:
    """A record file's JSON; unreadable or malformed files are a RecordError naming the file."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise RecordError(str(path), [f"cannot read it as JSON: {exc}"]) from None


def dumps(record: BaseModel) -> str:
    """The JSON text the stages have always written (indent 1, trailing newline)."""
    return json.dumps(record.model_dump(mode="json"), indent=1) + "\n"
