"""What a table is before it is rendered: rows of labelled cells, each the values of one number over seeds.

A `Cell` also carries the comparison keys of the rows it averages (identity.comparison_key), so
that differences and ratios are taken only between cells whose keys agree (results/pairing.py).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from halp_bench.results.stats import Difference

MISSING = "–"
DAGGER = "†"


@dataclass(frozen=True)
class Cell:
    """One number: its values over seeds, shown as the mean (± std and the count over several seeds)."""

    values: tuple[float, ...]
    digits: int = 1
    suffix: str = ""
    dagger: bool = False
    seeds: tuple[int, ...] = ()  # the seed of each value (pairs cells of two methods)
    keys: tuple[str, ...] = ()  # the comparison keys of its rows (one, unless rows of several settings share a label)

    @property
    def mean(self) -> float:
        return sum(self.values) / len(self.values)

    @property
    def by_seed(self) -> dict[int, float]:
        return dict(zip(self.seeds, self.values))

    def text(self) -> str:
        out = f"{self.mean:.{self.digits}f}"
        if len(self.values) > 1:
            std = math.sqrt(sum((v - self.mean) ** 2 for v in self.values) / (len(self.values) - 1))
            out += f" ± {std:.{self.digits}f}"
        out += self.suffix + (DAGGER if self.dagger else "")
        return out + (f" (n={len(self.values)})" if len(self.values) > 1 else "")


@dataclass
class Table:
    name: str
    title: str
    columns: list[str]
    rows: list[tuple[str, dict[str, Any]]]  # (label, column -> Cell, DifferenceCell or text); ours first
    paper_rows: int = 0  # the last `paper_rows` rows are published numbers
    notes: list[str] = field(default_factory=list)
    bold_best: bool = True  # higher is better: bold the best of our rows in each column
    first_column: str = "method"
    text_columns: tuple[str, ...] = ()  # left-aligned columns of words, not numbers
    methods: dict[str, str] = field(default_factory=dict)  # label -> the method of its rows
    bases: dict[str, str | None] = field(default_factory=dict)  # label -> the method it is compared to (its declaration)
    ranks: dict[str, tuple] = field(default_factory=dict)  # label -> its place (declarations.Declaration.sort_key)


@dataclass(frozen=True)
class DifferenceCell:
    """A paired difference shown as '+1.2 [-0.3, +2.7] (n=5)' (the interval only from 2 seeds)."""

    difference: Difference

    def text(self) -> str:
        d = self.difference
        out = f"{d.mean:+.1f}"
        if d.low is not None and d.high is not None:
            out += f" [{d.low:+.1f}, {d.high:+.1f}]"
        return out.replace("-", "−") + f" (n={d.n})"
