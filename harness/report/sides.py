"""One side of a comparison, whatever it was read from: a campaign run folder, a result file of
``harness measure -o``, or a stored baseline. All three become the same :class:`Side`: per
configuration identity its status, the per-repetition samples of the noisy metrics and the single
values of the deterministic ones, so the compare engine never cares where data came from."""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from harness.report.gate_rules import METRICS
from harness.report.rundata import ReportError, RunNotReadable

if TYPE_CHECKING:
    from harness.build.records import AnyFootprint

DEFAULT_BUILD = "default"
DEFAULT_RUNTIME = "portable"
PER_REP = tuple(n for n, m in METRICS.items() if m.per_rep)
PER_CONFIG = tuple(n for n, m in METRICS.items() if not m.per_rep)


@dataclass(frozen=True, order=True)
class Identity:
    """What makes two measurements comparable: the same model, compression, numeric type,
    board, build variant (optimisation, DSP, flags, template) and kernel runtime."""

    model: str
    compression: str
    numeric: str
    board: str
    build: str = DEFAULT_BUILD
    runtime: str = DEFAULT_RUNTIME

    @property
    def label(self) -> str:
        parts = [self.model, self.compression, self.numeric, self.board]
        if self.build != DEFAULT_BUILD:
            parts.append(self.build)
        text = "/".join(parts)
        return text if self.runtime == DEFAULT_RUNTIME else f"{text}@{self.runtime}"


@dataclass
class ConfigResult:
    identity: Identity
    config_id: str
    status: str  # measured | failed | does-not-fit | pending | ...
    reason: str | None = None
    samples: dict[str, list[float]] = field(default_factory=dict)
    values: dict[str, float] = field(default_factory=dict)
    build_options: dict[str, Any] = field(default_factory=dict)
    firmware_sha256: str | None = None
    build_id: str | None = None

    def array(self, metric: str) -> np.ndarray:
        return np.asarray(self.samples.get(metric, []), dtype=float)

    @property
    def measured(self) -> bool:
        return self.status == "measured"


@dataclass
class Side:
    label: str
    kind: str  # run | measure | baseline
    source: str
    configs: dict[Identity, ConfigResult]
    simulated: bool | None = None
    provenance: dict[str, Any] = field(default_factory=dict)
    gate_table: dict[str, Any] | None = None  # the campaign's [gate] table, if any

    def to_dict(self) -> dict[str, Any]:
        return {
            "label": self.label, "kind": self.kind, "source": self.source, "simulated": self.simulated,
            "provenance": self.provenance, "gate": self.gate_table,
            "configs": [asdict(c) for c in self.configs.values()],
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any], kind: str | None = None, source: str | None = None) -> Side:
        configs = {}
        for c in d["configs"]:
            c = dict(c)
            ident = Identity(**c.pop("identity"))
            configs[ident] = ConfigResult(identity=ident, **c)
        return cls(d["label"], kind or d["kind"], source or d["source"], configs, d.get("simulated"),
                   d.get("provenance") or {}, d.get("gate"))


def _num(v: Any) -> float | None:
    if v is None:
        return None
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def _text(v: Any, default: str) -> str:
    return default if v is None or (isinstance(v, float) and math.isnan(v)) or v == "" else str(v)


def system_label(board: Any, extra_json: Any) -> str:
    """The report's "system" cell: the board, plus the build variant when it is not the default
    (``sim-m4 [o0]``), so tables tell builds of one configuration apart."""
    name = _text(board, "")
    try:
        extra = json.loads(extra_json) if isinstance(extra_json, str) else {}
    except json.JSONDecodeError:
        extra = {}
    variant = extra.get("build_variant") if isinstance(extra, dict) else None
    runtime = (extra.get("build_options") or {}).get("backend") if isinstance(extra, dict) else None
    if variant and variant != DEFAULT_BUILD and variant != runtime:  # a runtime shows in the type column
        name += f" [{variant}]"
    if runtime == "prebuilt":
        name += " [prebuilt]"
    return name


def footprint_values(fp: AnyFootprint) -> dict[str, float]:
    """Flash and RAM totals, code size and the size of each main ELF section from a footprint.json
    (an image that did not link has lower-bound totals, when known, and nothing else)."""
    from harness.build.records import Footprint

    out: dict[str, float] = {}
    if fp.flash.total is not None:
        out["flash_bytes"] = float(fp.flash.total)
    if fp.ram.total is not None:
        out["ram_bytes"] = float(fp.ram.total)
    if isinstance(fp, Footprint):
        out["code_bytes"] = float(fp.flash.code)
        for sec in ("text", "rodata", "data", "bss"):
            if f".{sec}" in fp.sections:
                out[f"{sec}_bytes"] = float(fp.sections[f".{sec}"])
    return out


def _parse_footprint(data: Any, path: Path) -> AnyFootprint:
    """A footprint.json's data; one that does not match the schema is a ReportError naming it."""
    from harness.build.records import parse_footprint
    from harness.stage_record import RecordError

    try:
        return parse_footprint(data, path)
    except RecordError as exc:
        raise ReportError(str(exc)) from None


def _footprint(run_dir: Path, config_id: str, firmware_path: Any) -> AnyFootprint | None:
    """footprint.json of a configuration's build folder (beside the image, or where the runner
    builds it; a configuration that did not fit has one from the unbounded relink or the linker's
    overflow message). An unreadable file counts as none."""
    candidates = [run_dir / "firmware" / config_id.replace("/", "__") / "footprint.json"]
    if isinstance(firmware_path, str) and firmware_path:
        candidates.insert(0, Path(firmware_path).parent / "footprint.json")
    for p in candidates:
        if p.is_file():
            try:
                data = json.loads(p.read_text())
            except (OSError, UnicodeDecodeError, json.JSONDecodeError):
                return None
            return _parse_footprint(data, p)
    return None


def from_run(run_dir: Path) -> Side:
    """A campaign run folder (results.sqlite)."""
    from harness.report.provenance import manifest
    from harness.report.rundata import load_run

    run = load_run(run_dir)
    m = run.measurements
    groups = {k: g for k, g in m.groupby("config_id")} if len(m) else {}
    prov = run.provenance
    last_prov = {r["config_id"]: r for r in prov.to_dict("records")} if len(prov) else {}
    configs: dict[Identity, ConfigResult] = {}
    for row in run.configs.to_dict("records"):
        cid = str(row["config_id"])
        extra = json.loads(row["extra_json"]) if isinstance(row.get("extra_json"), str) else {}
        opts = extra.get("build_options") or {}
        ident = Identity(
            _text(row.get("model_id"), cid.split("/")[0]), _text(row.get("compression_id"), "-"),
            _text(row.get("numeric_type"), "-"), _text(row.get("board"), "-"),
            _text(extra.get("build_variant"), DEFAULT_BUILD), _text(opts.get("backend"), DEFAULT_RUNTIME),
        )
        reason = _text(row.get("failure_reason"), "") or None
        res = ConfigResult(ident, cid, str(row["status"]), reason, build_options=opts)
        g = groups.get(cid)
        if g is not None:
            for metric in PER_REP:
                if metric in g.columns:
                    vals = [float(v) for v in g[metric].dropna()]
                    if vals:
                        res.samples[metric] = vals
        for metric in ("flash_bytes", "ram_bytes", "weights_bytes", "device_accuracy"):
            v = _num(row.get(metric))
            if v is not None:
                res.values[metric] = v
        fp = _footprint(run.run_dir, cid, row.get("firmware_path"))
        if fp:
            fp_values = footprint_values(fp)
            for total in ("flash_bytes", "ram_bytes"):  # the store's figure, when it has one, wins
                if total in fp_values:
                    res.values.setdefault(total, fp_values.pop(total))
            res.values.update(fp_values)
        p = last_prov.get(cid)
        if p:
            res.firmware_sha256 = _text(p.get("firmware_sha256"), "") or None
            res.build_id = _text(p.get("build_id"), "") or None
        if ident in configs:
            raise ReportError(f"{run_dir}: configurations {configs[ident].config_id} and {cid} have the same identity")
        configs[ident] = res
    man = manifest(run)
    prov_summary = {k: man.get(k) for k in ("campaign", "toolchains", "instruments", "probes", "sessions")}
    rigs = []
    for extra in run.runs.get("extra_json", []) if len(run.runs) else []:
        try:
            rig = json.loads(extra).get("rig") if isinstance(extra, str) else None
        except json.JSONDecodeError:
            rig = None
        if rig and rig not in rigs:
            rigs.append(rig)
    prov_summary["rigs"] = rigs
    return Side(str(run_dir), "run", str(run_dir), configs, man.get("simulated"), prov_summary,
                run.campaign().get("gate"))


def from_measure_file(path: Path) -> Side:
    """A ``harness measure -o`` result: one configuration (the board and its firmware)."""
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ReportError(f"{path}: not a JSON file ({exc})") from None
    if not isinstance(doc, dict) or "inferences" not in doc or "board" not in doc:
        raise ReportError(f"{path}: not a `harness measure -o` result (needs 'board' and 'inferences')")
    dut = doc.get("dut") or {}  # the firmware's identify reply (model, numeric), when recorded
    ident = Identity(str(dut.get("model") or "measure"), "-", str(dut.get("numeric") or "-"), str(doc["board"]),
                     DEFAULT_BUILD, "firmware")
    res = ConfigResult(ident, ident.label, "measured" if doc["inferences"] else "failed",
                       None if doc["inferences"] else "no inferences recorded")
    for metric in PER_REP:
        vals = [float(r[metric]) for r in doc["inferences"] if _num(r.get(metric)) is not None]
        if vals:
            res.samples[metric] = vals
    fw = doc.get("firmware")
    if fw:
        fp_path = Path(fw).parent / "footprint.json"
        if fp_path.is_file():
            res.values.update(footprint_values(_parse_footprint(json.loads(fp_path.read_text()), fp_path)))
        image = Path(fw)
        if image.is_file():
            import hashlib

            res.firmware_sha256 = hashlib.sha256(image.read_bytes()).hexdigest()
    res.build_id = dut.get("build_id")
    analyzer = doc.get("analyzer") or {}
    simulated = doc.get("simulated")
    return Side(str(path), "measure", str(path), {ident: res}, simulated if isinstance(simulated, bool) else None,
                {"rig": doc.get("rig"), "analyzer": analyzer, "firmware": fw})


def load_side(spec: str, baselines_dir: Path | None = None) -> Side:
    """A run folder, a measure result file, or the name of a stored baseline (in that order)."""
    from harness.report.baseline import BaselineStore, is_baseline_file

    path = Path(spec)
    if path.is_dir():
        return from_run(path)
    if path.is_file():
        return BaselineStore(path.parent).load_file(path) if is_baseline_file(path) else from_measure_file(path)
    store = BaselineStore(baselines_dir)
    if store.exists(spec):
        return store.load(spec)
    raise RunNotReadable(
        f"{spec!r} is neither a run folder, a `harness measure` result file nor a stored baseline "
        f"(baselines in {store.root}: {', '.join(store.names()) or 'none'})"
    )
