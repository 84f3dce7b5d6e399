"""Write a Table as Markdown, LaTeX (booktabs), CSV (numbers, mean and std in separate columns)
or HTML. Hand-written emitters keep the output stable and need no template engine."""

from __future__ import annotations

import html
import re
from pathlib import Path

from harness.report.fmt import PM
from harness.report.table import Table

FORMATS = {"markdown": "md", "latex": "tex", "csv": "csv", "html": "html"}

_LATEX_SPECIAL = {
    "\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_", "{": r"\{",
    "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}", "<": r"\textless{}", ">": r"\textgreater{}",
}
_LATEX_RE = re.compile("|".join(re.escape(k) for k in _LATEX_SPECIAL))


def latex_escape(text: str) -> str:
    """Escape LaTeX specials in one pass (so '\\' is never double-escaped); '±' becomes $\\pm$."""
    out = _LATEX_RE.sub(lambda m: _LATEX_SPECIAL[m.group()], text)
    return out.replace(PM, r"$\pm$").replace("→", r"$\rightarrow$")


def to_markdown(t: Table) -> str:
    def cell(s: str) -> str:
        return s.replace("|", r"\|")

    sep = [":---" if a == "l" else "---:" for a in t.alignment()]
    lines = [f"**{t.title}.** {t.caption}", "", "| " + " | ".join(cell(c) for c in t.columns) + " |",
             "| " + " | ".join(sep) + " |"]
    lines += ["| " + " | ".join(cell(c) for c in row) + " |" for row in t.display_rows()]
    return "\n".join(lines) + "\n"


def to_latex(t: Table) -> str:
    starts = set(t.group_starts())
    body = []
    for i, row in enumerate(t.display_rows()):
        if i in starts:
            body.append(r"\midrule")
        body.append(" & ".join(latex_escape(c) for c in row) + r" \\")
    return "\n".join([
        "% requires \\usepackage{booktabs}",
        r"\begin{table}[htbp]",
        r"\centering",
        rf"\caption{{{latex_escape(t.title)}. {latex_escape(t.caption)}}}",
        rf"\label{{tab:{t.name}}}",
        r"\small",
        rf"\begin{{tabular}}{{{t.alignment()}}}",
        r"\toprule",
        " & ".join(latex_escape(c) for c in t.columns) + r" \\",
        r"\midrule",
        *body,
        r"\bottomrule",
        r"\end{tabular}",
        r"\end{table}",
        "",
    ])


def to_html(t: Table) -> str:
    align = {"l": "left", "r": "right"}
    al = t.alignment()
    head = "".join(f'<th style="text-align:{align[a]}">{html.escape(c)}</th>' for c, a in zip(t.columns, al, strict=True))
    rows = []
    for row in t.display_rows():
        tds = "".join(f'<td style="text-align:{align[a]}">{html.escape(c)}</td>' for c, a in zip(row, al, strict=True))
        rows.append(f"<tr>{tds}</tr>")
    return (
        f'<table class="harness-table" id="{html.escape(t.name)}">\n'
        f"<caption><b>{html.escape(t.title)}.</b> {html.escape(t.caption)}</caption>\n"
        f"<thead><tr>{head}</tr></thead>\n<tbody>\n" + "\n".join(rows) + "\n</tbody>\n</table>\n"
    )


def html_page(title: str, body: str) -> str:
    """A standalone page around HTML fragments (tables stay embeddable elsewhere)."""
    style = (
        "body{font-family:sans-serif;margin:2em}table{border-collapse:collapse;margin:1em 0}"
        "th,td{padding:2px 8px}thead th{border-top:2px solid #000;border-bottom:1px solid #000}"
        "tbody tr:last-child td{border-bottom:2px solid #000}caption{caption-side:top;text-align:left}"
    )
    return (
        f'<!DOCTYPE html>\n<html><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
        f"<style>{style}</style></head>\n<body>\n{body}</body></html>\n"
    )


def to_csv(t: Table) -> str:
    return t.numeric.to_csv(index=False, lineterminator="\n")


RENDERERS = {"markdown": to_markdown, "latex": to_latex, "csv": to_csv, "html": to_html}


def write_table(t: Table, out_dir: Path, formats: list[str]) -> list[Path]:
    """Write ``<out_dir>/<t.name>.<ext>`` for every requested format; returns the paths."""
    unknown = sorted(set(formats) - set(FORMATS))
    if unknown:
        raise ValueError(f"unknown format(s) {unknown}; known: {', '.join(FORMATS)}")
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for f in formats:
        p = out_dir / f"{t.name}.{FORMATS[f]}"
        text = RENDERERS[f](t)
        if f == "html":
            text = html_page(t.title, text)
        p.write_text(text, encoding="utf-8")
        paths.append(p)
    return paths
