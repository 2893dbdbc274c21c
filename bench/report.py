"""Small helpers for summarising samples and writing Markdown tables."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["Summary", "number", "ratio", "table"]


@dataclass(frozen=True)
class Summary:
    median: float
    low: float
    high: float
    runs: int

    @classmethod
    def of(cls, samples: Sequence[float]) -> Summary:
        if not samples:
            return cls(0.0, 0.0, 0.0, 0)
        return cls(statistics.median(samples), min(samples), max(samples), len(samples))


def number(value: float, digits: int = 0) -> str:
    """Thousands separators; ``digits`` decimals."""
    return f"{value:,.{digits}f}"


def ratio(measured: float, goal: float | None) -> str:
    if not goal:
        return "—"
    return f"{measured / goal:.2f}"


def table(headers: Sequence[str], rows: Sequence[Sequence[str]], align: str | None = None) -> str:
    """A Markdown table; ``align`` has one letter per column (l or r), right-aligned numbers by default."""
    align = align or "l" + "r" * (len(headers) - 1)
    rule = ["---:" if a == "r" else ":---" for a in align]
    lines = ["| " + " | ".join(headers) + " |", "| " + " | ".join(rule) + " |"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)
