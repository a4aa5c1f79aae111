"""The history lane's write path on a real FerretDB: a large batch written with ``history=True``
(read model a day at a time, buckets read a collection at a time, new buckets inserted in bulk)
leaves the same read model as the live path's small batches, a rebuild of the range changes
nothing, a batch written again changes nothing, and a low-priority writer lets a waiting live
writer take the read model's lock first."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from btc_pipeline.schema import Observation
from btc_pipeline.store import CONSENSUS, Store
from btc_pipeline.store.layout import LEVELS
from btc_pipeline.store.locks import LOCKS, locked
from btc_pipeline.window import MINUTE, Window

pytestmark = pytest.mark.integration

DAY0 = datetime(2025, 3, 1, 22, 0, tzinfo=UTC)  # across two midnights
SPAN = Window(DAY0, DAY0 + timedelta(days=2, hours=3))


def candles(source: str, offset: float, fetched: datetime) -> list[Observation]:
    out = []
    for i in range(SPAN.minute_count):
        if source == "binance" and i % 7 == 3:
            continue  # minutes one exchange has no candle in: the consensus is the other's
        p = 90_000 + (i % 400) + offset
        ts = SPAN.start + MINUTE * i
        out.append(Observation(source, "BTC-USD", "candle_1m", ts, p + 1, fetched, "h", p, p + 2, p - 1, p + 1, 0.5))
    return out


def bars_of(store: Store) -> dict[tuple[str, str], Any]:
    return {(s, i): store.bars(s, i, SPAN) for s in ["coinbase", "binance", CONSENSUS] for i in LEVELS}


def test_a_history_batch_leaves_the_read_model_the_live_path_and_a_rebuild_leave(ferretdb):
    fetched = datetime(2025, 6, 1, tzinfo=UTC)
    observations = candles("coinbase", 0, fetched) + candles("binance", 5, fetched)
    live, history = Store(ferretdb["hist_live"]), Store(ferretdb["hist_bulk"])
    try:
        for i in range(0, len(observations), 500):
            live.write_observations(observations[i : i + 500])
        result = history.write_observations(observations, history=True)
        assert result.inserted == len(observations)
        expected, got = bars_of(live), bars_of(history)
        for key, frame in expected.items():
            assert len(frame) > 0, key
            assert got[key].equals(frame), key
        again = history.write_observations(observations, history=True)  # a batch read again
        assert (again.inserted, again.minutes_changed, again.buckets_written) == (0, 0, 0)
        rebuilt = history.rebuild_read_model(SPAN)
        assert (rebuilt.minutes_changed, rebuilt.buckets_written) == (0, 0)  # equals a rebuild of the range
    finally:
        ferretdb.drop_database("hist_live")
        ferretdb.drop_database("hist_bulk")


def test_a_low_priority_writer_lets_a_waiting_writer_go_first(db):
    order: list[str] = []
    with locked(db, "bars"):  # a history day being written
        live = threading.Thread(target=lambda: _take(db, "live", order, low_priority=False))
        live.start()
        deadline = time.monotonic() + 10
        while db[LOCKS].find_one({"_id": "bars.wanted"}) is None:  # the live writer says it waits
            assert time.monotonic() < deadline, "the waiting writer never marked that it waits"
            time.sleep(0.01)
        history = threading.Thread(target=lambda: _take(db, "history", order, low_priority=True))
        history.start()
    live.join(10)
    history.join(10)
    assert order == ["live", "history"]


def _take(db: Any, who: str, order: list[str], *, low_priority: bool) -> None:
    with locked(db, "bars", low_priority=low_priority):
        order.append(who)
        time.sleep(0.05)
