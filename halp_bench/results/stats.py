"""Seed statistics that say when a difference is real: the paired difference of two methods over
the seeds both were run with, and its Student-t confidence interval.

Pairing by seed removes what the seed does to both methods alike (the data order, the initial
weights, the evaluation heads), so the interval is the one of the difference itself, not of two
independent means. With fewer than two common seeds there is no interval.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from scipy import stats

CONFIDENCE = 0.95


@dataclass(frozen=True)
class Difference:
    """mean of (a - b) over `n` common seeds and its confidence interval (None when n < 2)."""

    mean: float
    n: int
    low: float | None = None
    high: float | None = None

    @property
    def significant(self) -> bool:
        """The interval excludes zero."""
        return self.low is not None and self.high is not None and (self.low > 0 or self.high < 0)


def paired_difference(a: dict[int, float], b: dict[int, float], confidence: float = CONFIDENCE) -> Difference | None:
    """a - b over the seeds both have (seed -> value); None when they share no seed."""
    seeds = sorted(set(a) & set(b))
    if not seeds:
        return None
    diffs = [a[s] - b[s] for s in seeds]
    n = len(diffs)
    mean = sum(diffs) / n
    if n < 2:
        return Difference(mean, n)
    sd = math.sqrt(sum((d - mean) ** 2 for d in diffs) / (n - 1))
    half = float(stats.t.ppf(0.5 + confidence / 2, n - 1)) * sd / math.sqrt(n)
    return Difference(mean, n, mean - half, mean + half)
