"""The statistics the benchmarks print, computed one way in all of them (a module, not a benchmark:
``bench/run.py`` skips names starting with ``_``)."""

from __future__ import annotations

import statistics
from collections.abc import Sequence


def percentile(values: Sequence[float], q: int) -> float:
    """The ``q``-th percentile of ``values``, interpolated between the closest ranks (the
    "inclusive" method: the 0th is the minimum, the 100th the maximum); NaN when there are none."""
    if not values:
        return float("nan")
    if len(values) == 1:
        return float(values[0])
    if q <= 0:
        return float(min(values))
    if q >= 100:
        return float(max(values))
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


def spread(values: Sequence[float]) -> dict[str, float]:
    """How many, the median and the 95th percentile."""
    return {"n": len(values), "p50": percentile(values, 50), "p95": percentile(values, 95)}
