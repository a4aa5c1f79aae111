"""The series the read model holds: a tiny registry, so that the consensus knows every exchange's
candles without listing collections (``bars.series``, one document per series)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from pymongo.database import Database

from btc_pipeline.store.inserts import insert_new
from btc_pipeline.store.layout import CONSENSUS, exchange_of, is_tick_series

REGISTRY = "bars.series"


class SeriesRegistry:
    """Which series exist (read once per instance, added to insert-first)."""

    def __init__(self, db: Database[Any]) -> None:
        self.db = db
        self._known: set[str] | None = None

    def known(self) -> set[str]:
        if self._known is None:
            self._known = {str(doc["_id"]) for doc in self.db[REGISTRY].find({}, {"_id": 1})}
        return self._known

    def remember(self, series: Iterable[str]) -> None:
        """Register the series not known yet."""
        new = sorted(set(series) - self.known() - {CONSENSUS})
        if not new:
            return
        now = datetime.now(UTC)
        insert_new(
            self.db[REGISTRY],
            [
                {
                    "_id": s,
                    "kind": "ticks" if is_tick_series(s) else "candles",
                    "exchange": exchange_of(s),
                    "since": now,
                }
                for s in new
            ],
        )
        self.known().update(new)

    def candle_series(self) -> list[str]:
        """The exchanges whose candles the read model holds."""
        return sorted(s for s in self.known() if not is_tick_series(s))
