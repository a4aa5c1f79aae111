"""The live quote: each exchange's latest ticker reading, its age, and the consensus of them.

Pure functions over what the store's hot set holds (:meth:`btc_pipeline.store.Store.latest`), shared
by the dashboard and the API so that both say the same price.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from btc_pipeline.health import LatestObservation, freshness


@dataclass(frozen=True)
class ExchangeQuote:
    """One exchange's latest reading: price, the exchange's time of it, its age, its distance from the consensus."""

    source: str
    price: float
    ts: datetime
    age_s: float
    deviation_pct: float


@dataclass(frozen=True)
class Quote:
    """The consensus (median of the exchanges' latest readings) and each exchange's reading."""

    consensus: float | None
    exchanges: list[ExchangeQuote] = field(default_factory=list)
    newest: datetime | None = None

    @property
    def age_s(self) -> float | None:
        """Seconds since the newest reading, as of when the quote was made."""
        return min((q.age_s for q in self.exchanges), default=None)


def quote(latest: Iterable[LatestObservation], now: datetime, *, max_age_s: float | None = None) -> Quote:
    """The live quote from the latest observations.

    Args:
        latest: The hot set's entries (:meth:`btc_pipeline.store.Store.latest`).
        now: The current time.
        max_age_s: Leave out readings older than this (an exchange that stopped answering must
            not pull the consensus); ``None`` keeps all. Readings from the future (beyond the
            allowed clock skew) are always left out: they would freeze the quote.

    Returns:
        The consensus and the readings, by price.
    """
    readings = [
        (f.observation, f.age_s)
        for f in freshness(latest, now)
        if f.observation.kind == "tick" and (max_age_s is None or f.age_s <= max_age_s)
    ]
    if not readings:
        return Quote(consensus=None)
    median = statistics.median(o.price for o, _ in readings)
    exchanges = sorted(
        (
            ExchangeQuote(o.source, o.price, o.ts, round(age, 1), round((o.price / median - 1) * 100, 4))
            for o, age in readings
        ),
        key=lambda q: (q.price, q.source),
    )
    return Quote(consensus=median, exchanges=exchanges, newest=max(q.ts for q in exchanges))
