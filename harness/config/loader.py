"""Read a TOML file into a pydantic model, turning every failure into a ConfigError that names
the file, the field, the bad value and what is allowed."""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import TypeVar

from pydantic import BaseModel, ValidationError

from harness.config.limits import SAFE_NAME
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
    name = str(name_or_path)
    if SAFE_NAME.match(name) and ".." not in name:  # a bare name; never a path built from user text
        cand = folder / f"{name}.toml"
        if cand.exists():
            return cand
    if p.exists():
        return p
    known = sorted(f.stem for f in folder.glob("*.toml")) if folder.exists() else []
    raise ConfigError(
        str(name_or_path),
        [f"no {kind[:-1]} named {str(name_or_path)!r}; known {kind}: {', '.join(known) or '(none)'}"],
    )


MAX_CONFIG_BYTES = 1 << 20  # config files are a few KB; a huge one is the wrong file


def read_toml(path: Path) -> dict:
    """The file's TOML as a dict; every way a file can be unreadable becomes a ConfigError."""
    try:
        if path.is_dir():
            raise ConfigError(str(path), ["is a directory, not a TOML file"])
        with open(path, "rb") as fh:
            raw = fh.read(MAX_CONFIG_BYTES + 1)
    except FileNotFoundError:
        raise ConfigError(str(path), ["file not found"]) from None
    except PermissionError:
        raise ConfigError(str(path), ["permission denied (not readable by this user)"]) from None
    except OSError as exc:
        raise ConfigError(str(path), [f"cannot read the file: {exc.strerror or exc}"]) from None
    if len(raw) > MAX_CONFIG_BYTES:
        raise ConfigError(str(path), [f"larger than {MAX_CONFIG_BYTES // 1024} KiB: not a configuration file"])
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(str(path), [f"not a UTF-8 text file (byte {exc.start} is {raw[exc.start]:#04x}); "
                                      "TOML files must be UTF-8"]) from None
    if "\x00" in text:
        raise ConfigError(str(path), ["contains NUL bytes: a binary file, not TOML"])
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(str(path), [f"not valid TOML: {exc}"]) from None
    except RecursionError:
        raise ConfigError(str(path), ["nested too deeply to be a configuration file"]) from None


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
            text = msg.removeprefix("Value error, ")
            problems.append(text if not err["loc"] else f"field '{field}': {text}")
            continue
        shown = repr(value)
        if len(shown) > 80:
            shown = shown[:77] + "..."
        allowed = ""
        ctx = err.get("ctx") or {}
        if "expected" in ctx:
            allowed = f" (allowed: {ctx['expected']})"
        problems.append(f"field '{field}': {msg.removeprefix('Value error, ')}; got {shown}{allowed}")
    return problems


def load_model(model: type[M], path: Path, extra: dict | None = None) -> M:
    data = read_toml(path)
    if extra:
        data = {**data, **extra}
    try:
        return model.model_validate(data, context={"file": str(path)})
    except ValidationError as exc:
        raise ConfigError(str(path), format_validation_error(exc)) from None
