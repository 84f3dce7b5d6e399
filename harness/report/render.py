"""Write a Table as Markdown (tabulate), LaTeX (booktabs) and HTML (pandas Styler) or CSV (the
numeric frame: mean and std in separate columns). Only the LaTeX escaping of our cell texts ('±',
'→') and the group rules are ours."""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from tabulate import tabulate

from harness.report.fmt import PM
from harness.report.table import Table

if TYPE_CHECKING:
    import pandas as pd
    from pandas.io.formats.style import Styler

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


def caption_text(t: Table) -> str:
    """The caption every format shows: the table's caption and its notes (e.g. a 'simulated rig' line)."""
    return " ".join([t.caption, *t.notes]).strip()


def _frame(t: Table) -> pd.DataFrame:
    """Display cells with positional column labels (Table 5 repeats its '(%)' header)."""
    import pandas as pd

    return pd.DataFrame(t.display_rows(), columns=range(len(t.columns)), dtype=object)


def _styler(t: Table, cell: Callable[[str], str]) -> Styler:
    return (
        _frame(t).style.hide(axis="index").format(cell).relabel_index([cell(c) for c in t.columns], axis="columns")
    )


def to_markdown(t: Table) -> str:
    """A GitHub pipe table (tabulate) under a bold title line."""
    esc = [[c.replace("|", r"\|") for c in row] for row in t.display_rows()]
    align = ["left" if a == "l" else "right" for a in t.alignment()]
    body = tabulate(esc, headers=[c.replace("|", r"\|") for c in t.columns], tablefmt="pipe", colalign=align,
                    disable_numparse=True)  # fmt: skip
    return f"**{t.title}.** {caption_text(t)}\n\n{body}\n"


def to_latex(t: Table) -> str:
    """A booktabs table (pandas Styler), with a \\midrule where the first key column changes."""
    tex = _styler(t, latex_escape).to_latex(
        hrules=True, column_format=t.alignment(), position="htbp", position_float="centering",
        caption=f"{latex_escape(t.title)}. {latex_escape(caption_text(t))}", label=f"tab:{t.name}",
    )  # fmt: skip
    lines = tex.splitlines()
    first_body = lines.index(r"\midrule") + 1  # the header rule; body rows are one line each
    for i in sorted(set(t.group_starts()), reverse=True):
        lines.insert(first_body + i, r"\midrule")
    return "\n".join(["% requires \\usepackage{booktabs}", *lines, ""])


def to_html(t: Table) -> str:
    """An embeddable <table> (pandas Styler) with the caption and per-column alignment."""
    align = {"l": "left", "r": "right"}
    sty = _styler(t, html.escape).set_caption(f"<b>{html.escape(t.title)}.</b> {html.escape(caption_text(t))}")
    for i, a in enumerate(t.alignment()):
        sty = sty.set_properties(subset=[i], **{"text-align": align[a]})
    sty = sty.set_table_styles([{"selector": f"th.col{i}", "props": f"text-align: {align[a]}"}
                                for i, a in enumerate(t.alignment())], overwrite=False)  # fmt: skip
    return sty.set_table_attributes('class="harness-table"').to_html(table_uuid=t.name)


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
