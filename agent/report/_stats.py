"""Small statistics for the value report: uplift with a confidence interval, percentiles.

Uplift is treated minus control. Its confidence interval uses the **normal
approximation** (no resampling, so it is deterministic):

- success rates: the unpooled (Wald) standard error of a difference of two proportions,
  ``sqrt(p1(1-p1)/n1 + p0(1-p0)/n0)``;
- mean realized value: Welch's standard error, ``sqrt(s1²/n1 + s0²/n0)`` with sample
  variances (n-1).

The interval is ``uplift ± z·se`` with z = 1.95996 for 95 %. Either group needs at least
two observations, else the interval is ``None``. With small groups or rates near 0 or 1
the approximation is rough; the report prints the group sizes next to every interval.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["CI_METHOD", "Z95", "Estimate", "mean_uplift", "percentile", "rate_uplift"]

Z95 = 1.959963984540054
CI_METHOD = ("95% normal approximation: Wald (unpooled) for a difference of success rates, "
             "Welch for a difference of mean realized values")


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


def rate_uplift(treated: Sequence[bool], control: Sequence[bool], *, z: float = Z95) -> Estimate:
    """Success rate among treated minus among control, with its interval."""
    n1, n0 = len(treated), len(control)
    p1 = sum(treated) / n1 if n1 else None
    p0 = sum(control) / n0 if n0 else None
    uplift = p1 - p0 if p1 is not None and p0 is not None else None
    se = None
    if uplift is not None and n1 >= 2 and n0 >= 2:
        assert p1 is not None and p0 is not None
        se = math.sqrt(p1 * (1 - p1) / n1 + p0 * (1 - p0) / n0)
    return Estimate(n1, n0, p1, p0, uplift, *_interval(uplift, se, z))


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
        se = math.sqrt(_variance(treated, m1) / n1 + _variance(control, m0) / n0)
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
