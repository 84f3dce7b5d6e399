"""Figures of a run with matplotlib: latency, energy and accuracy over the compression rate per
board, and flash/SRAM over model size with each board's limit drawn as a horizontal line (the
paper's Fig. 6). Each figure is written as PNG and SVG. Figures are built with
``matplotlib.figure.Figure`` (Agg canvas) instead of pyplot, so no display is needed and a
notebook's backend is left alone."""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, TypedDict

from harness.report.tables import labelled

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure

FORMATS = ("png", "svg")
_caption: list[str] = []  # set by all_plots: a note every figure carries (e.g. "simulated rig (estimates)")


def _figure(figsize: tuple[float, float]) -> Figure:
    from matplotlib.figure import Figure

    return Figure(figsize=figsize)


def _save(fig: Figure, out_dir: Path, stem: str) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    for note in _caption:
        fig.text(0.5, 1.0, note, ha="center", va="bottom", fontsize=9, color="#a00000")
    paths = []
    for ext in FORMATS:
        p = out_dir / f"{stem}.{ext}"
        fig.savefig(p, dpi=150, bbox_inches="tight")
        paths.append(p)
    return paths


def _series_label(df: pd.DataFrame) -> pd.Series:
    lab = df["_type"]
    if df["_model"].nunique() > 1:
        lab = df["_model"] + " " + lab
    return lab


class _Style(TypedDict):
    """Line2D keywords of one series (typed so ``**style`` cannot land on plot()'s own parameters)."""

    color: str
    marker: str
    linestyle: str


def _styles(series: list[str]) -> dict[str, _Style]:
    """The same colour and marker for a series in every panel; dashed lines for quantized types."""
    import matplotlib

    colors = matplotlib.rcParams["axes.prop_cycle"].by_key()["color"]
    markers = "osD^v<>ph"
    return {
        s: {"color": colors[i % len(colors)], "marker": markers[i % len(markers)],
            "linestyle": "-" if s.endswith("float") else "--"}
        for i, s in enumerate(sorted(series))
    }


def _measured(d: pd.DataFrame) -> pd.DataFrame:
    """Rows with numbers worth plotting: measured, fitting and not failed (as in the tables)."""
    ok = ~d["status"].isin(["failed", "does-not-fit"])
    if "fits" in d.columns:
        ok &= d["fits"] != 0
    return d[ok]


def metric_vs_compression(summary: pd.DataFrame, prefix: str, ylabel: str, out_dir: Path, stem: str) -> list[Path]:
    """One panel per board: mean ± std of a metric over the compression rate, a line per type."""
    d = labelled(summary)
    col = f"{prefix}_mean"
    if col not in d.columns:
        return []
    d = _measured(d[d[col].notna() & (d["n"] > 0)])
    if d.empty:
        return []
    d = d.assign(_x=d["rate"].fillna(0.0) * 100, _series=_series_label(d))
    style = _styles(list(d["_series"].unique()))
    boards = sorted(d["_system"].unique())
    fig = _figure((4.2 * len(boards), 3.4))
    axes = fig.subplots(1, len(boards), squeeze=False)
    for ax, board in zip(axes[0], boards, strict=True):
        sub = d[d["_system"] == board]
        for series, g in sub.groupby("_series", sort=True):
            g = g.sort_values("_x")
            ax.errorbar(g["_x"], g[col], yerr=g[f"{prefix}_std"].fillna(0.0), capsize=3, label=series, **style[series])
        ax.set_title(board)
        ax.set_xlabel("compression rate (% of parameters removed)")
        ax.set_ylabel(ylabel)
        if (sub[col] > 0).all() and sub[col].max() / max(sub[col].min(), 1e-30) > 50:
            ax.set_yscale("log")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    return _save(fig, out_dir, stem)


def accuracy_vs_compression(configs: pd.DataFrame, out_dir: Path, stem: str = "accuracy_vs_compression") -> list[Path]:
    """Relative accuracy over compression rate, a line per method/type (host-side, Fig. 4/5)."""
    d = labelled(configs)
    d = d[d["rel_accuracy"].notna()] if "rel_accuracy" in d.columns else d.iloc[0:0]
    if d.empty:
        return []
    d = d.assign(_x=d["rate"].fillna(0.0) * 100, _series=_series_label(d))
    d = d.drop_duplicates(["_series", "compression_id", "_x"])
    style = _styles(list(d["_series"].unique()))
    fig = _figure((5.5, 3.8))
    ax = fig.subplots()
    for series, g in d.groupby("_series", sort=True):
        g = g.sort_values("_x")
        ax.plot(g["_x"], g["rel_accuracy"] * 100, label=series, **style[series])
    ax.set_xlabel("compression rate (% of parameters removed)")
    ax.set_ylabel("accuracy relative to baseline (%)")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    return _save(fig, out_dir, stem)


def memory_vs_size(configs: pd.DataFrame, out_dir: Path, stem: str = "memory_vs_model_size") -> list[Path]:
    """Flash and SRAM (KiB) over model size (non-zero parameters), boards' limits as lines (Fig. 6)."""
    d = labelled(configs)
    size_col = "params_nonzero" if "params_nonzero" in d and d["params_nonzero"].notna().any() else "params"
    if size_col not in d.columns or d[size_col].notna().sum() == 0:
        return []
    d = d.assign(_size=d[size_col], _series=_series_label(d))
    style = _styles(list(d["_series"].unique()))
    fig = _figure((10, 3.8))
    axes = fig.subplots(1, 2)
    limit_styles = [":", "-.", (0, (5, 2)), (0, (1, 3))]
    for ax, (used, limit, name) in zip(axes, (("flash_bytes", "flash_size", "flash"), ("ram_bytes", "ram_size", "SRAM")),
                                       strict=True):
        pts = d[d[used].notna() & d["_size"].notna()]
        for series, g in pts.groupby("_series", sort=True):
            # one point per model size: the largest image over the boards (what must fit)
            g = g.groupby("_size", as_index=False)[used].max().sort_values("_size")
            ax.plot(g["_size"], g[used] / 1024, label=series, **style[series])
        nofit = pts[pts["fits"] == 0] if "fits" in pts.columns else pts.iloc[0:0]
        if len(nofit):
            ax.scatter(nofit["_size"], nofit[used] / 1024, marker="x", s=60, color="black", zorder=5,
                       label="does not fit")
        limits = d[["_system", limit]].dropna().drop_duplicates("_system")
        for i, (_, lim) in enumerate(limits.iterrows()):
            ax.axhline(lim[limit] / 1024, color="dimgray", linestyle=limit_styles[i % len(limit_styles)],
                       linewidth=1.4, label=f"{lim['_system']} limit")
        vals = pts["_size"]
        if len(vals) and vals.min() > 0 and vals.max() / vals.min() > 10:
            ax.set_xscale("log")
        if len(pts) and (pts[used] > 0).all() and not math.isclose(pts[used].max(), pts[used].min()):
            ax.set_yscale("log")
        ax.set_xlabel("model size (non-zero parameters)")
        ax.set_ylabel(f"{name} (KiB)")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    return _save(fig, out_dir, stem)


def all_plots(summary: pd.DataFrame, configs: pd.DataFrame, out_dir: Path, caption: str | None = None) -> list[Path]:
    """Every figure the report links to; figures without data are skipped. ``caption`` is
    written on every figure (the report passes "simulated rig (estimates)" when it applies)."""
    _caption[:] = [caption] if caption else []
    try:
        paths = metric_vs_compression(summary, "latency_ms", "execution time (ms)", out_dir, "latency_vs_compression")
        paths += metric_vs_compression(summary, "energy_mws", "energy per inference (mWs)", out_dir,
                                       "energy_vs_compression")
        paths += accuracy_vs_compression(configs, out_dir)
        paths += memory_vs_size(configs, out_dir)
    finally:
        _caption.clear()
    return paths
