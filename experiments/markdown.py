"""GitHub-flavoured Markdown tables: one renderer for results.md (experiments/face_expression/tables.py), the
analyses section and the TTC report (experiments/ttc/report.py).

A table is a list of :class:`Column` (header, field, format) over rows that are mappings; the
renderer writes the header line, the ``|---|`` line and one line per row, nothing else.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

#: the cell of a missing or non-finite number
MISSING = "-"


def mean_std(mean: float | None, std: float | None = None) -> str:
    """``12.34 ± 0.56`` (``12.34`` without a finite std; :data:`MISSING` without a finite mean)."""
    if mean is None or not _finite(mean):
        return MISSING
    return f"{mean:.2f} ± {std:.2f}" if std is not None and _finite(std) else f"{mean:.2f}"


def _finite(value) -> bool:
    try:
        return math.isfinite(value)
    except TypeError:
        return False


@dataclass(frozen=True)
class Column:
    """One column: ``header``; the row's ``field``; how the cell is written.

    ``format`` is ``"mean_std"`` (:func:`mean_std` of the field and the row's ``std`` field, a
    percentage with two decimals), ``"text"`` (``str``), a format string such as ``"{:.1f}"``, or a
    callable of the value.
    """

    header: str
    field: str
    format: str | Callable[[object], str] = "mean_std"
    std: str | None = None

    def cell(self, row: Mapping) -> str:
        value = row.get(self.field, math.nan)
        if self.format == "mean_std":
            return mean_std(value, row.get(self.std) if self.std else None)
        if self.format == "text":
            return str(value)
        if callable(self.format):
            return self.format(value)
        return self.format.format(value)


def table(columns: Sequence[Column], rows: Iterable[Mapping]) -> list[str]:
    """The lines of a Markdown table of ``rows`` (header, separator, one line per row)."""
    lines = ["| " + " | ".join(c.header for c in columns) + " |", "|" + "|".join("---" for _ in columns) + "|"]
    lines += ["| " + " | ".join(c.cell(row) for c in columns) + " |" for row in rows]
    return lines


def frame_table(frame, floatfmt: str = "{:.1f}") -> str:
    """A Markdown table of every column of a DataFrame: floats with ``floatfmt``, None/NaN empty."""
    import numpy as np

    def cell(value) -> str:
        if value is None or (isinstance(value, float) and np.isnan(value)):
            return ""
        if isinstance(value, (float, np.floating)):
            return floatfmt.format(value)
        return str(value)

    columns = [Column(str(name), str(i), cell) for i, name in enumerate(frame.columns)]
    rows = [{str(i): v for i, v in enumerate(values)} for values in frame.itertuples(index=False)]
    return "\n".join(table(columns, rows))
