"""What a benchmark hands back: tables to print and figures for the summary.

A `Figure` is one measured value beside its baseline from the same run, so the ratio holds
up on a noisy machine even when the absolute numbers move.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Table:
    title: str
    columns: Sequence[str]
    rows: Sequence[Sequence[str]]
    notes: Sequence[str] = ()
    # Leading columns that hold names (left-aligned); the rest hold numbers.
    text_columns: int = 1

    def _line(self, cells: Sequence[str], widths: Sequence[int]) -> str:
        return " | ".join(
            c.ljust(w) if i < self.text_columns else c.rjust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ).rstrip()

    def render(self) -> str:
        widths = [len(c) for c in self.columns]
        for row in self.rows:
            widths = [max(w, len(cell)) for w, cell in zip(widths, row, strict=True)]
        lines = [self.title]
        lines.append(self._line(self.columns, widths))
        lines.append("-+-".join("-" * w for w in widths))
        lines += [self._line(row, widths) for row in self.rows]
        lines += [f"  {note}" for note in self.notes]
        return "\n".join(lines)


@dataclass(frozen=True, slots=True)
class Figure:
    """One summary line: `value` of the system, `baseline` of the raw thing, both in `unit`."""

    benchmark: str
    what: str
    value: float
    unit: str
    baseline_what: str = ""
    baseline: float | None = None
    target: str = ""
    # None: the figure has no target (context only).
    met: bool | None = None

    @property
    def ratio(self) -> float | None:
        if self.baseline is None or self.baseline == 0:
            return None
        return self.value / self.baseline


@dataclass(slots=True)
class Result:
    tables: list[Table] = field(default_factory=list)
    figures: list[Figure] = field(default_factory=list)


def fmt(value: float | None, unit: str = "") -> str:
    if value is None:
        return "-"
    if abs(value) >= 100:
        text = f"{value:,.0f}"
    elif abs(value) >= 10:
        text = f"{value:.1f}"
    else:
        text = f"{value:.2f}"
    return f"{text} {unit}".rstrip()


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100), linear between closest ranks."""
    if not values:
        raise ValueError("no values")
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[min(98, max(0, int(q) - 1))]


def summary(figures: Sequence[Figure]) -> Table:
    rows = []
    for f in figures:
        met = "-" if f.met is None else ("yes" if f.met else "NO")
        rows.append(
            [
                f.benchmark,
                f.what,
                fmt(f.value, f.unit),
                f"{fmt(f.baseline, f.unit)} ({f.baseline_what})" if f.baseline_what else "-",
                "-" if f.ratio is None else f"{f.ratio:.2f}",
                f.target or "-",
                met,
            ]
        )
    return Table(
        "summary (ratio = value / baseline, both measured in this run)",
        ["benchmark", "figure", "value", "baseline", "ratio", "target", "met"],
        rows,
        text_columns=2,
    )
