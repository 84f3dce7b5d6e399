"""A formatted table independent of its output format: display cells for Markdown/LaTeX/HTML
and the numeric frame behind them for CSV (so nobody has to parse "12.3 ± 0.4" back)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd


@dataclass
class Table:
    name: str  # file stem and LaTeX label, e.g. "table3"
    title: str
    caption: str
    columns: list[str]
    rows: list[list[str]]
    numeric: pd.DataFrame
    group_cols: int = 0  # leading key columns whose repeats are blanked, as in the paper
    align: str = ""  # one of l/r per column; default: keys left, values right
    notes: list[str] = field(default_factory=list)

    def alignment(self) -> str:
        if self.align:
            return self.align
        return "l" * self.group_cols + "r" * (len(self.columns) - self.group_cols)

    def display_rows(self) -> list[list[str]]:
        """Rows with a group key blanked where it repeats the row above (and so do keys left of it)."""
        out: list[list[str]] = []
        prev: list[str] | None = None
        for row in self.rows:
            shown = list(row)
            for i in range(self.group_cols):
                if prev is not None and row[: i + 1] == prev[: i + 1]:
                    shown[i] = ""
            out.append(shown)
            prev = row
        return out

    def to_frame(self) -> pd.DataFrame:
        """The displayed table as a DataFrame of strings (numbers: see ``numeric``)."""
        import pandas as pd

        return pd.DataFrame(self.display_rows(), columns=self.columns)

    def to_markdown(self) -> str:
        from harness.report.render import to_markdown

        return to_markdown(self)

    def to_latex(self) -> str:
        from harness.report.render import to_latex

        return to_latex(self)

    def _repr_html_(self) -> str:  # rendered by Jupyter
        from harness.report.render import to_html

        return to_html(self)

    def group_starts(self) -> list[int]:
        """Indices of rows where the first key column changes (LaTeX puts a rule there)."""
        return [i for i in range(1, len(self.rows)) if self.group_cols and self.rows[i][0] != self.rows[i - 1][0]]
