"""The paper's tables built from a run's DataFrames: Table 3/4 (performance per configuration),
Table 5 (two toolflows / numeric types with percentage change), the Fig. 6 footprint data and the
Fig. 4/5 accuracy-vs-compression data. Rows are grouped like the paper's: accuracy target /
compression, then numeric type, then board."""

from __future__ import annotations

import json
import math
from typing import TYPE_CHECKING, Any

from harness.report import fmt
from harness.report.sides import system_label
from harness.report.stats import DDOF
from harness.report.table import Table

if TYPE_CHECKING:
    import pandas as pd

METHOD_LABEL = {"structural": "structure", "element": "element", "none": "none"}
METHOD_ORDER = {"none": 0, "structural": 1, "element": 2}
TYPE_LABEL = {"float32": "float"}
TYPE_ORDER = {"float32": 0, "uint8": 1, "int8": 2, "qmn": 3}
# (summary prefix, header)
PERF_COLUMNS = [
    ("latency_ms", "execution time (ms)"),
    ("power_mw", "power (mW)"),
    ("energy_mws", "energy (mWs)"),
    ("energy_net_mws", "energy above baseline (mWs)"),
]
CAPTION_STATS = (
    f"Mean {fmt.PM} sample standard deviation (ddof = {DDOF}) per inference over n repetitions; "
    f"'{fmt.NOT_FIT}' = did not fit the board, '{fmt.FAILED}' = could not be measured, "
    f"'{fmt.MISSING}' = not measured yet."
)


def _f(x: Any) -> float:
    try:
        v = float(x)
    except (TypeError, ValueError):
        return math.nan
    return v


def _s(x: Any) -> str:
    return "" if x is None or (isinstance(x, float) and math.isnan(x)) else str(x)


def extra(row: Any, key: str) -> Any:
    """One key of a configuration's ``extra_json`` (on-device sample count, dataset, ...), or None."""
    raw = row.get("extra_json") if hasattr(row, "get") else None
    if not isinstance(raw, str):
        return None
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        return None
    return value.get(key) if isinstance(value, dict) else None


def synthetic_data(row: Any) -> bool:
    return bool((extra(row, "dataset") or {}).get("synthetic"))


def wilson_interval(correct: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval of a proportion (sound for small n and for 0 or n successes)."""
    from scipy.stats import binomtest

    ci = binomtest(correct, n).proportion_ci(confidence_level=confidence, method="wilson")
    return float(ci.low), float(ci.high)


def device_accuracy_cells(row: Any) -> tuple[str, str, str]:
    """(on-device accuracy, inputs, 95 % Wilson interval) of one configuration."""
    acc, n = _f(row.get("device_accuracy")), extra(row, "check_samples")
    if synthetic_data(row) or not math.isfinite(acc):
        return fmt.MISSING, str(n) if n else fmt.MISSING, fmt.MISSING
    if not n:
        return fmt.pct(acc), fmt.MISSING, fmt.MISSING
    lo, hi = wilson_interval(round(acc * n), int(n))
    return fmt.pct(acc), str(n), f"{fmt.pct(lo, 1)} – {fmt.pct(hi, 1)}"


def type_label(method: Any, numeric_type: Any) -> str:
    m = METHOD_LABEL.get(_s(method), _s(method) or "n/a")
    t = TYPE_LABEL.get(_s(numeric_type), _s(numeric_type) or "n/a")
    return f"{m}, {t}"


def accuracy_cell(target: Any, rel: Any) -> str:
    t = _f(target)
    if math.isfinite(t):
        return f">{fmt.pct(t)}"
    return fmt.pct(_f(rel))


def compression_cell(method: Any, rate: Any) -> str:
    r = _f(rate)
    if math.isfinite(r):
        return fmt.pct(r)
    return "none" if _s(method) in ("", "none") else fmt.MISSING


def labelled(df: pd.DataFrame) -> pd.DataFrame:
    """Add display labels and sort like the paper (model, target high->low, method, rate, type, board)."""
    d = df.copy()
    for col in ("config_id", "model_id", "compression_id", "method", "numeric_type", "board", "status"):
        if col not in d.columns:
            d[col] = None
    for col in ("accuracy_target", "rel_accuracy", "rate", "fits"):
        d[col] = d[col].astype(float) if col in d.columns else math.nan
    if "n" not in d.columns:
        d["n"] = 0
    d["_model"] = d["model_id"].map(_s)
    d["_acc"] = [accuracy_cell(t, r) for t, r in zip(d["accuracy_target"], d["rel_accuracy"], strict=True)]
    d["_compression"] = [compression_cell(m, r) for m, r in zip(d["method"], d["rate"], strict=True)]
    d["runtime"] = [extra(r, "runtime") or "portable" for _, r in d.iterrows()]
    d["_type"] = [type_label(m, t) + ("" if rt == "portable" else f", {rt}")
                  for m, t, rt in zip(d["method"], d["numeric_type"], d["runtime"], strict=True)]  # fmt: skip
    extra_json = d["extra_json"] if "extra_json" in d.columns else [None] * len(d)
    d["_system"] = [system_label(b, e) for b, e in zip(d["board"], extra_json, strict=True)]  # + build variant
    d["_k_target"] = -d["accuracy_target"].fillna(-math.inf)
    d["_k_method"] = d["method"].map(lambda m: METHOD_ORDER.get(_s(m), 9))
    d["_k_rate"] = d["rate"].fillna(-1.0)
    d["_k_type"] = d["numeric_type"].map(lambda t: TYPE_ORDER.get(_s(t), 9))
    d["_k_comp"] = d["compression_id"].map(_s)
    d["_k_runtime"] = d["runtime"].map(lambda r: "" if r == "portable" else r)  # ours first, as in Table 5
    keys = ["_model", "_k_target", "_k_method", "_k_rate", "_k_comp", "_k_type", "_k_runtime", "_system", "config_id"]
    return d.sort_values(keys, kind="stable").reset_index(drop=True)


def metric_cell(row: Any, prefix: str) -> str:
    status = _s(row.get("status"))
    if status == "does-not-fit" or _f(row.get("fits")) == 0:
        return fmt.NOT_FIT
    if status == "failed":
        return fmt.FAILED
    if int(row.get("n") or 0) == 0:
        return fmt.MISSING
    return fmt.mean_std(_f(row.get(f"{prefix}_mean")), _f(row.get(f"{prefix}_std")))


def _align(n_keys: int, n_cols: int) -> str:
    return "l" * n_keys + "r" * (n_cols - n_keys)


def _has(df: pd.DataFrame, col: str) -> bool:
    return col in df.columns and bool(df[col].notna().any())


def _key_columns(d: pd.DataFrame, with_acc: bool = True) -> tuple[list[str], list[str]]:
    """(headers, label columns) of the grouping keys; a model column only if there are several."""
    heads, cols = [], []
    if d["_model"].nunique() > 1:
        heads.append("model")
        cols.append("_model")
    if with_acc:
        heads.append("rel. accuracy")
        cols.append("_acc")
    heads += ["compression", "type", "system"]
    cols += ["_compression", "_type", "_system"]
    return heads, cols


NUMERIC_KEYS = ["config_id", "model_id", "compression_id", "method", "rate", "accuracy_target", "rel_accuracy",
                "numeric_type", "runtime", "board", "status", "fits", "n"]


def performance_table(summary: pd.DataFrame, name: str = "table3") -> Table:
    """Table 3/4: rel. accuracy | compression | type | system | time (ms) | power (mW) | energy (mWs)."""
    d = labelled(summary)
    heads, keys = _key_columns(d)
    metrics = [(p, h) for p, h in PERF_COLUMNS if _has(d, f"{p}_mean") or p in ("latency_ms", "power_mw", "energy_mws")]
    shown = (d["n"] > 0) & ~d["status"].isin(["failed", "does-not-fit"]) & (d["fits"] != 0)
    measured_n = d.loc[shown, "n"]
    show_n = measured_n.nunique() > 1
    by_bound = bool(d["accuracy_target"].notna().any())  # Table 3: also show what the chosen model kept
    columns = heads + [h for _, h in metrics] + (["n"] if show_n else []) + (["model rel. accuracy"] if by_bound else [])
    rows = []
    for _, r in d.iterrows():
        cells = [r[k] for k in keys] + [metric_cell(r, p) for p, _ in metrics]
        rows.append(cells + ([str(int(r["n"]))] if show_n else []) + ([fmt.pct(r["rel_accuracy"])] if by_bound else []))
    ns = sorted({int(x) for x in measured_n})
    n_text = f"n = {ns[0]}" if len(ns) == 1 else "n per row" if ns else "no repetitions measured yet"
    numeric_cols = [c for c in NUMERIC_KEYS if c in d.columns] + [
        c for p, _ in metrics for c in (f"{p}_mean", f"{p}_std") if c in d.columns
    ]
    bound_text = (" 'rel. accuracy' = the bound; per bound and method the smallest model of the candidate rates "
                  "meeting it (paper Sec. 5.4), 'compression' = its fraction of parameters removed, 'model rel. "
                  "accuracy' = its accuracy relative to the unpruned float model.") if by_bound else ""
    return Table(
        name=name,
        title="Execution time, power and energy per inference",
        caption=f"Average ({n_text}) execution time, power and energy per inference.{bound_text} {CAPTION_STATS}",
        columns=columns,
        rows=rows,
        numeric=d[numeric_cols].copy(),
        group_cols=len(heads) - 1,
        align=_align(len(heads), len(columns)),
    )


def _change(a: float, b: float) -> float:
    return (b / a - 1.0) if math.isfinite(a) and math.isfinite(b) and a != 0 else math.nan


def comparison_table(
    base: pd.DataFrame,
    other: pd.DataFrame,
    on: list[str],
    base_label: str,
    other_label: str,
    name: str = "table5",
) -> Table:
    """Table 5: the other run's/type's values with their change relative to the base, in percent."""
    a, b = labelled(base), labelled(other)
    m = b.merge(a, on=on, how="inner", suffixes=("", "_base"))
    heads, keys = _key_columns(m, with_acc=False)
    metrics = [(p, h) for p, h in PERF_COLUMNS[:3]]
    columns = list(heads)
    for _, h in metrics:
        columns += [h, "(%)"]
    rows, num = [], []
    for _, r in m.iterrows():
        cells = [r[k] for k in keys]
        rec = {k: r.get(k) for k in ("config_id", "model_id", "compression_id", "numeric_type", "board")}
        base_row = {k[: -len("_base")]: v for k, v in r.items() if str(k).endswith("_base")}
        for p, _ in metrics:
            cell, base_cell = metric_cell(r, p), metric_cell(base_row, p)
            special = (fmt.NOT_FIT, fmt.FAILED, fmt.MISSING)
            ok = cell not in special and base_cell not in special
            ch = _change(_f(r.get(f"{p}_mean_base")), _f(r.get(f"{p}_mean"))) if ok else math.nan
            no_change = fmt.NOT_FIT if fmt.NOT_FIT in (cell, base_cell) else fmt.MISSING
            cells += [cell, fmt.num(ch * 100, 2) if ok else no_change]
            rec |= {f"{p}_mean": _f(r.get(f"{p}_mean")), f"{p}_std": _f(r.get(f"{p}_std")),
                    f"{p}_mean_base": _f(r.get(f"{p}_mean_base")), f"{p}_change_pct": ch * 100}
        rows.append(cells)
        num.append(rec)
    import pandas as pd

    return Table(
        name=name,
        title=f"{other_label} compared with {base_label}",
        caption=(
            f"Metrics measured with {other_label}; '(%)' = change of the mean relative to {base_label} "
            f"(positive = higher with {other_label}). {CAPTION_STATS}"
        ),
        columns=columns,
        rows=rows,
        numeric=pd.DataFrame(num),
        group_cols=len(heads) - 1,
        align=_align(len(heads), len(columns)),
    )


def footprint_table(configs: pd.DataFrame) -> Table:
    """Fig. 6 data: flash and SRAM use per configuration against the board's limits."""
    d = labelled(configs)
    heads, keys = _key_columns(d, with_acc=False)
    columns = [*heads, "params (non-zero)", "flash (KiB)", "flash limit (KiB)", "flash use",
               "SRAM (KiB)", "SRAM limit (KiB)", "SRAM use", "fits"]
    rows = []
    for _, r in d.iterrows():
        params = _f(r.get("params_nonzero"))
        params = params if math.isfinite(params) else _f(r.get("params"))
        fl, fs, rb, rs = (_f(r.get(c)) for c in ("flash_bytes", "flash_size", "ram_bytes", "ram_size"))
        fits = _f(r.get("fits"))
        rows.append([r[k] for k in keys] + [
            fmt.num(params, 0), fmt.kib(fl), fmt.kib(fs), fmt.pct(fl / fs if fs else math.nan, 1),
            fmt.kib(rb), fmt.kib(rs), fmt.pct(rb / rs if rs else math.nan, 1),
            "yes" if fits == 1 else "no" if fits == 0 else fmt.MISSING,
        ])
    cols = [c for c in ("config_id", "model_id", "compression_id", "method", "rate", "numeric_type", "board", "params",
                        "params_nonzero", "flash_bytes", "ram_bytes", "weights_bytes", "arena_bytes", "flash_size",
                        "ram_size", "fits", "status") if c in d.columns]
    return Table(
        name="footprint",
        title="Memory footprint",
        caption="Flash (weights + code) and SRAM (tensor arena + stack) per configuration against each board's limit.",
        columns=columns,
        rows=rows,
        numeric=d[cols].copy(),
        group_cols=len(heads) - 1,
        align=_align(len(heads), len(columns)),
    )


def accuracy_table(configs: pd.DataFrame) -> Table:
    """Fig. 4/5 data: accuracy of each compressed model relative to its baseline, and on the device."""
    d = labelled(configs)
    multi = d["_model"].nunique() > 1
    heads = (["model"] if multi else []) + [
        "compression", "rate", "type", "rel. accuracy", "accuracy (float)", "accuracy (quantized)",
        "params (non-zero)", "system", "on-device accuracy", "inputs", "95% CI (Wilson)", "host agreement"]
    rows = []
    n_dev = []
    for _, r in d.iterrows():
        params = _f(r.get("params_nonzero"))
        params = params if math.isfinite(params) else _f(r.get("params"))
        dev, n, ci = device_accuracy_cells(r)
        n_dev.append(extra(r, "check_samples"))
        rows.append(([r["_model"]] if multi else []) + [
            _s(r.get("compression_id")) or fmt.MISSING, r["_compression"], r["_type"], fmt.pct(_f(r.get("rel_accuracy"))),
            fmt.pct(_f(r.get("accuracy_float"))), fmt.pct(_f(r.get("accuracy_quant"))), fmt.num(params, 0),
            r["_system"], dev, n, ci, fmt.pct(_f(r.get("host_agreement"))),
        ])
    cols = [c for c in ("config_id", "model_id", "compression_id", "method", "rate", "accuracy_target", "numeric_type",
                        "board", "accuracy_float", "accuracy_quant", "rel_accuracy", "params", "params_nonzero",
                        "device_accuracy", "host_agreement") if c in d.columns]
    numeric = d[cols].copy()
    numeric["device_samples"] = n_dev
    return Table(
        name="accuracy",
        title="Accuracy versus compression",
        caption="Test accuracy of each configuration relative to the uncompressed float baseline (host), and the "
        "accuracy measured on the device over 'inputs' held-out test images with its 95% Wilson score interval, "
        "and the fraction of inputs whose class matched the host. 'n/a' accuracy: not measured, or a synthetic "
        "stand-in dataset.",
        columns=heads,
        rows=rows,
        numeric=numeric,
        group_cols=len(heads) - 5,
        align="l" * (len(heads) - 5) + "lrrrr",
    )
