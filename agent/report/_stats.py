"""Small statistics for the value report: uplift with a confidence interval, percentiles.

Uplift is treated minus control. Its 95 % confidence interval (no resampling, so it is
deterministic; z = 1.95996):

- success rates: Newcombe's hybrid score interval for a difference of two proportions
  (Newcombe 1998, method 10), built from each group's Wilson interval. It stays inside
  [-1, 1] and keeps a width where every outcome of a group is alike: 15 of 15 treated
  retained against 0 of 15 control is +100 pt (+71.2 .. +100), not a certainty. (The
  Wald interval, ``uplift ± z·sqrt(p1(1-p1)/n1 + p0(1-p0)/n0)``, collapses to a point
  there.)
- mean realized value: Welch's, ``uplift ± z·sqrt(s1²/n1 + s0²/n0)`` with sample
  variances (n-1). Where both groups' values are all alike it has no width and says
  nothing: no interval.

Either group needs at least two observations, else the interval is ``None``. With small
groups the mean's normal approximation is rough; the report prints the group sizes next
to every interval.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["CI_METHOD", "Z95", "Estimate", "mean_uplift", "percentile", "rate_uplift"]

Z95 = 1.959963984540054
CI_METHOD = ("95%: Newcombe's hybrid score interval (from Wilson intervals) for a difference "
             "of success rates; Welch's normal approximation for a difference of mean "
             "realized values")


@dataclass(frozen=True)
class Estimate:
    """Treated vs control on one metric."""

    treated_n: int
    control_n: int
    treated: float | None
    control: float | None
    uplift: float | None
    ci_low: float | None
    ci_high: float | None


def _interval(uplift: float | None, se: float | None, z: float
              ) -> tuple[float | None, float | None]:
    if uplift is None or se is None:
        return None, None
    return uplift - z * se, uplift + z * se


def _wilson(successes: int, n: int, z: float) -> tuple[float, float]:
    """The Wilson score interval of a proportion."""
    p = successes / n
    shrink = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / shrink
    half = z / shrink * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return max(0.0, centre - half), min(1.0, centre + half)


def rate_uplift(treated: Sequence[bool], control: Sequence[bool], *, z: float = Z95) -> Estimate:
    """Success rate among treated minus among control, with Newcombe's interval."""
    n1, n0 = len(treated), len(control)
    p1 = sum(treated) / n1 if n1 else None
    p0 = sum(control) / n0 if n0 else None
    uplift = p1 - p0 if p1 is not None and p0 is not None else None
    if uplift is None or n1 < 2 or n0 < 2:
        return Estimate(n1, n0, p1, p0, uplift, None, None)
    assert p1 is not None and p0 is not None
    low1, high1 = _wilson(sum(treated), n1, z)
    low0, high0 = _wilson(sum(control), n0, z)
    return Estimate(n1, n0, p1, p0, uplift,
                    uplift - math.sqrt((p1 - low1) ** 2 + (high0 - p0) ** 2),
                    uplift + math.sqrt((high1 - p1) ** 2 + (p0 - low0) ** 2))


def _variance(values: Sequence[float], mean: float) -> float:
    return sum((v - mean) ** 2 for v in values) / (len(values) - 1)


def mean_uplift(treated: Sequence[float], control: Sequence[float], *, z: float = Z95
                ) -> Estimate:
    """Mean among treated minus mean among control, with its interval."""
    n1, n0 = len(treated), len(control)
    m1 = math.fsum(treated) / n1 if n1 else None
    m0 = math.fsum(control) / n0 if n0 else None
    uplift = m1 - m0 if m1 is not None and m0 is not None else None
    se = None
    if uplift is not None and n1 >= 2 and n0 >= 2:
        assert m1 is not None and m0 is not None
        # Every value alike in both groups: no spread to estimate a width from.
        se = math.sqrt(_variance(treated, m1) / n1 + _variance(control, m0) / n0) or None
    return Estimate(n1, n0, m1, m0, uplift, *_interval(uplift, se, z))


def percentile(values: Sequence[float], q: float) -> float | None:
    """The ``q``-th percentile (0-100) with linear interpolation between closest ranks
    (numpy's default); ``None`` for no values."""
    if not values:
        return None
    if not 0 <= q <= 100:
        raise ValueError("q must be within 0..100")
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)
