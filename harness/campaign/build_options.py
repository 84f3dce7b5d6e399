"""Build options as a configuration axis (campaign ``[[build]]`` entries, ``harness run
--build-option``, ``harness build --opt-level/--cflag/--template``): optimisation level, DSP
kernels, kernel backend, sparse storage, extra C flags and firmware template.

They reach the compiler through harness.build.build_firmware's own parameters (``-O<level>`` is
appended after the default ``-O2``: GCC uses the last ``-O``), so they enter its content hash and
hence the build id; the variant id enters the configuration id and the identity compare matches."""

from __future__ import annotations

import re
import tomllib
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

OptLevel = Literal["O0", "O1", "O2", "O3", "Os", "Oz", "Og", "Ofast"]
ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
DEFAULT_ID = "default"


class BuildOptions(BaseModel):
    """One build variant. Unset fields keep the harness defaults (-O2, DSP on M4/M7, portable
    kernels, automatic sparse storage, the board's template)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    id: str = Field(DEFAULT_ID, description="Variant id; part of the configuration id (letters, digits, _ - .)")
    opt_level: OptLevel | None = Field(None, description="Optimisation level without the dash: O0, O1, O2, O3, Os, ...")
    dsp: bool | None = Field(None, description="SIMD (DSP extension) kernels; default on for Cortex-M4/M7")
    backend: Literal["portable", "cmsis-nn"] | None = Field(None, description="Kernel backend (default portable)")
    sparse: Literal["auto", "on", "off"] | None = Field(None, description="CSR storage of element-pruned layers")
    extra_cflags: list[str] = Field(default_factory=list, description="Appended to the compiler flags")
    template: Literal["bare-metal", "mbed"] | None = Field(None, description="Firmware template (default: the board's)")

    @field_validator("id")
    @classmethod
    def _id(cls, v: str) -> str:
        from harness.config.limits import check_safe_name

        return check_safe_name(v)  # part of configuration ids and firmware folder names

    @field_validator("extra_cflags")
    @classmethod
    def _flags(cls, v: list[str]) -> list[str]:
        from harness.config.cflags import check_cflags

        return check_cflags(v)  # the allow-list board files use: no flag that runs a program

    def cflags(self) -> list[str]:
        return [*([f"-{self.opt_level}"] if self.opt_level else []), *self.extra_cflags]

    def identity(self) -> dict[str, Any]:
        """The options as stored with each configuration (compare shows what changed)."""
        return {"opt_level": self.opt_level or "O2", "dsp": "auto" if self.dsp is None else self.dsp,
                "backend": self.backend or "portable", "sparse": self.sparse or "auto",
                "extra_cflags": list(self.extra_cflags), "template": self.template or "board"}

    def build_kwargs(self, board: Any, more_cflags: list[str] | None = None) -> dict[str, Any]:
        """Keyword arguments of harness.build.build_firmware for this variant on ``board``."""
        if self.template and self.template != board.build.template:
            board = board.model_copy(update={"build": board.build.model_copy(update={"template": self.template})})
        return {"board": board, "dsp": self.dsp, "backend": self.backend or "portable",
                "sparse": self.sparse or "auto", "extra_cflags": [*self.cflags(), *(more_cflags or [])]}


DEFAULT = BuildOptions()


def parse_overrides(items: list[str]) -> dict[str, Any]:
    """``opt_level=O0``, ``dsp=false``, ``extra_cflags=["-DFOO"]`` -> fields (TOML values; bare
    words as strings)."""
    out: dict[str, Any] = {}
    for text in items:
        key, sep, raw = text.partition("=")
        key = key.strip()
        if not sep or key not in BuildOptions.model_fields or key == "id":
            allowed = ", ".join(k for k in BuildOptions.model_fields if k != "id")
            raise ValueError(f"build option {text!r}: expected KEY=VALUE with KEY one of {allowed}")
        try:
            out[key] = tomllib.loads(f"v = {raw}")["v"]
        except tomllib.TOMLDecodeError:
            out[key] = raw.strip()
        if key == "opt_level" and isinstance(out[key], str):
            out[key] = out[key].lstrip("-")
    return out


def with_overrides(options: BuildOptions, fields: dict[str, Any]) -> BuildOptions:
    """``options`` with ``fields`` set (validated); ValueError naming the bad field."""
    try:
        return BuildOptions.model_validate({**options.model_dump(), **fields})
    except ValidationError as exc:
        e = exc.errors()[0]
        raise ValueError(f"build option {'.'.join(map(str, e['loc']))}: {e['msg']}") from None


def apply_to_campaign(campaign: Any, items: list[str]) -> tuple[Any, str]:
    """The campaign with ``items`` (KEY=VALUE) laid over every build variant (a campaign without a
    [[build]] axis gets its default variant changed, ids unchanged), and a TOML comment recording
    them: it is stored with the campaign text, so resuming with other overrides is refused."""
    fields = parse_overrides(items)
    variants = list(campaign.build) or [DEFAULT]
    new = [with_overrides(v, fields) for v in variants]
    note = "\n# harness run --build-option " + " --build-option ".join(items) + "\n"
    return campaign.model_copy(update={"build": new}), note
