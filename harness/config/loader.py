"""Read a TOML file into a pydantic model, turning every failure into a ConfigError that names
the file, the field, the bad value and what is allowed."""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import TypeVar

from pydantic import BaseModel, ValidationError

from harness.errors import ConfigError

M = TypeVar("M", bound=BaseModel)


def repo_root() -> Path:
    """Folder holding boards/, instruments/, campaigns/ (overridable with HARNESS_HOME)."""
    env = os.environ.get("HARNESS_HOME")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[2]


def find_config(kind: str, name_or_path: str | Path) -> Path:
    """Resolve a config given as a path or as a bare name in the shipped folder (boards/, ...)."""
    p = Path(name_or_path)
    if p.suffix == ".toml" and p.exists():
        return p
    folder = repo_root() / kind
    cand = folder / f"{name_or_path}.toml"
    if cand.exists():
        return cand
    if p.exists():
        return p
    known = sorted(f.stem for f in folder.glob("*.toml")) if folder.exists() else []
    raise ConfigError(
        str(name_or_path),
        [f"no {kind[:-1]} named {str(name_or_path)!r}; known {kind}: {', '.join(known) or '(none)'}"],
    )


def read_toml(path: Path) -> dict:
    try:
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(str(path), ["file not found"]) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(str(path), [f"not valid TOML: {exc}"]) from None


def format_validation_error(exc: ValidationError) -> list[str]:
    problems = []
    for err in exc.errors():
        field = ".".join(str(p) for p in err["loc"]) or "(top level)"
        msg = err["msg"]
        if err["type"] == "missing":
            problems.append(f"field '{field}': required but missing")
            continue
        value = err.get("input")
        if isinstance(value, dict):  # a cross-field check: the message names the fields
            problems.append(f"field '{field}': {msg.removeprefix('Value error, ')}")
            continue
        shown = repr(value)
        if len(shown) > 80:
            shown = shown[:77] + "..."
        allowed = ""
        ctx = err.get("ctx") or {}
        if "expected" in ctx:
            allowed = f" (allowed: {ctx['expected']})"
        problems.append(f"field '{field}': {msg}; got {shown}{allowed}")
    return problems


def load_model(model: type[M], path: Path, extra: dict | None = None) -> M:
    data = read_toml(path)
    if extra:
        data = {**data, **extra}
    try:
        return model.model_validate(data, context={"file": str(path)})
    except ValidationError as exc:
        raise ConfigError(str(path), format_validation_error(exc)) from None
