"""The read model on the real MongoDB-protocol database (FerretDB): after live-like ingest, a
backfill, re-deliveries of changed and stale candles, a drain that died between its two writes,
and a rebuild from scratch, every bar of every series and level equals a recompute from
``btc.prices`` done independently here with pandas. Each test has a database of its own."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd
import pytest
from pymongo import MongoClient

from btc_pipeline.schema import Observation
from btc_pipeline.store import CONSENSUS, Store
from btc_pipeline.store.prices import collapse, insert_observations
from btc_pipeline.store.series import SeriesRegistry
from btc_pipeline.window import MINUTE, Window
from simexchange.market import PRICE_OFFSET_BPS
from simexchange.pricepath import PricePath

from .conftest import INTERVALS, assert_read_model_matches

pytestmark = pytest.mark.integration

DAY0 = datetime(2026, 6, 1, tzinfo=UTC)
SPAN = Window(DAY0, DAY0 + timedelta(days=2))
PATH = PricePath(7)


@pytest.fixture
def store(mongo: MongoClient[Any]) -> Iterator[Store]:
    name = f"rm_{uuid.uuid4().hex[:8]}"  # not `random`: pytest-randomly seeds it alike for every test
    yield Store(mongo[name])
    mongo.drop_database(name)


def candle(source: str, ts: datetime, fetched: datetime, *, bump: float = 0.0) -> Observation:
    c = PATH.candle(ts)
    k = 1 + PRICE_OFFSET_BPS.get(source, 0.0) / 10_000
    o, h, lo, cl = (round(v * k + bump, 2) for v in (c.open, c.high, c.low, c.close))
    h, lo = max(h, o, cl), min(lo, o, cl)
    return Observation(source, "BTC-USD", "candle_1m", ts, cl, fetched, "t", o, h, lo, cl, c.volume)


def tick(source: str, ts: datetime) -> Observation:
    price = round(PATH.price_at(ts) * (1 + PRICE_OFFSET_BPS[source] / 10_000), 2)
    return Observation(source, "BTC-USD", "tick", ts, price, ts + timedelta(seconds=1), "t", volume=0.001)


def live(start: datetime, minutes: int) -> list[Observation]:
    """What btc_ingest sends: one Coinbase candle a minute, and each exchange's ticker every 10 s."""
    out: list[Observation] = []
    for m in range(minutes):
        ts = start + MINUTE * m
        out.append(candle("coinbase", ts, ts + timedelta(seconds=65)))
        for second in range(0, 60, 10):
            out += [tick(x, ts + timedelta(seconds=second + 1)) for x in PRICE_OFFSET_BPS]
    return out


def write(store: Store, observations: list[Observation], batch: int = 200) -> None:
    for i in range(0, len(observations), batch):
        store.write_observations(observations[i : i + batch])


# --- the scenarios ----------------------------------------------------------------------------


def test_live_ingest_then_a_backfill_then_redeliveries(store: Store):
    write(store, live(DAY0 + timedelta(hours=20), 180))  # 20:00 -> 23:00, across no day boundary
    assert assert_read_model_matches(store, SPAN) > 0

    # a backfill from Kraken: an earlier, disjoint hour and one overlapping Coinbase's minutes
    backfill = [candle("kraken", DAY0 + timedelta(hours=18) + MINUTE * m, DAY0 + timedelta(days=3)) for m in range(60)]
    backfill += [candle("kraken", DAY0 + timedelta(hours=21) + MINUTE * m, DAY0 + timedelta(days=3)) for m in range(60)]
    write(store, backfill, batch=500)
    assert_read_model_matches(store, SPAN)
    overlap = store.bars(CONSENSUS, "1m", Window(DAY0 + timedelta(hours=21), DAY0 + timedelta(hours=22)))
    assert set(overlap["n"]) == {2}  # the median of two exchanges there

    # re-deliveries: the same messages again, a newer fetch with other values, an older fetch with other values
    again = store.write_observations(backfill[:100])
    assert (again.inserted, again.modified, again.minutes_changed) == (0, 0, 0)
    corrected_at = DAY0 + timedelta(hours=20, minutes=5)
    newer = [candle("coinbase", corrected_at + MINUTE * m, DAY0 + timedelta(days=4), bump=7.0) for m in range(20)]
    stale = [candle("coinbase", corrected_at + MINUTE * m, DAY0, bump=-9.0) for m in range(20, 40)]
    result = store.write_observations(newer + stale)
    assert (result.inserted, result.modified, result.unchanged) == (0, 20, 20)
    assert_read_model_matches(store, SPAN)
    doc = store.db["prices"].find_one({"_id": newer[0].key})
    assert doc["close"] == newer[0].close  # btc.prices took the newer fetch, and so did the read model
    assert store.db["prices"].find_one({"_id": stale[0].key})["close"] != stale[0].close


def test_a_drain_that_died_between_its_two_writes_is_caught_up_by_the_redelivery(store: Store):
    batch = live(DAY0 + timedelta(hours=3), 30)
    write(store, batch[: len(batch) // 2])
    # the second half reached btc.prices, then the drain died before the read model (offsets not committed)
    rest = batch[len(batch) // 2 :]
    insert_observations(store.db["prices"], collapse(rest), datetime.now(UTC))
    newer = candle("coinbase", DAY0 + timedelta(hours=3, minutes=25), DAY0 + timedelta(days=5), bump=3.0)
    store.write_observations([*rest, newer])  # the re-delivery, plus a correction of a minute the model did not know
    assert_read_model_matches(store, SPAN)
    assert store.db["prices"].find_one({"_id": newer.key})["close"] == newer.close


def test_a_rebuild_from_scratch_gives_the_same_read_model(store: Store):
    write(store, live(DAY0 + timedelta(hours=23), 90))  # across midnight: two days, two 1m collections
    write(
        store, [candle("bitstamp", DAY0 + timedelta(hours=23, minutes=m), DAY0 + timedelta(days=2)) for m in range(30)]
    )
    before = {(s, i): store.bars(s, i, SPAN) for s in [*SeriesRegistry(store.db).known(), CONSENSUS] for i in INTERVALS}
    dropped = [name for name in store.db.list_collection_names() if name.startswith(("bars.", "no_trades."))]
    assert len(dropped) > 10
    for name in dropped:
        store.db.drop_collection(name)
    assert store.bars(CONSENSUS, "1m", SPAN).empty
    seen: list[tuple[str, int, int | None]] = []
    summary = store.rebuild_read_model(SPAN, progress=lambda phase, done, total: seen.append((phase, done, total)))
    assert summary.scanned == store.db["prices"].count_documents({}) and summary.days == 2
    assert seen[-1] == ("write", 2, 2)
    for key, frame in before.items():
        pd.testing.assert_frame_equal(store.bars(*key, SPAN), frame, check_exact=False, obj=str(key))
    assert_read_model_matches(store, SPAN)
    again = store.rebuild_read_model(SPAN)  # idempotent: nothing left to change
    assert again.minutes_changed == 0 and again.buckets_written == 0


def test_the_latest_entries_and_the_first_candle(store: Store):
    batch = live(DAY0 + timedelta(hours=12), 10)
    write(store, list(reversed(batch)))  # the newest first: older observations never replace newer ones
    latest = {(o.source, o.kind): o for o in store.latest()}
    assert set(latest) == {(x, "tick") for x in PRICE_OFFSET_BPS} | {("coinbase", "candle_1m")}
    assert latest[("coinbase", "candle_1m")].ts == DAY0 + timedelta(hours=12, minutes=9)
    newest_tick = max(o.ts for o in batch if o.kind == "tick" and o.source == "kraken")
    assert latest[("kraken", "tick")].ts == newest_tick
    assert store.first_candle() == DAY0 + timedelta(hours=12)
    write(store, [candle("coinbase", DAY0 + timedelta(hours=1, minutes=30), DAY0 + timedelta(days=1))])
    assert store.first_candle() == DAY0 + timedelta(hours=1, minutes=30)


def test_a_source_that_cannot_name_a_series_stays_in_prices_only(store: Store):
    odd = replace(candle("coinbase", DAY0, DAY0 + MINUTE), source="Weird.Exchange")
    result = store.write_observations([odd])
    assert result.inserted == 1 and result.minutes_changed == 0
    assert (
        SeriesRegistry(store.db).known() == set()
        and store.db["prices"].count_documents({"source": "Weird.Exchange"}) == 1
    )


def test_retention_deletes_old_raw_ticks_and_keeps_candles_and_bars(store: Store):
    write(store, live(DAY0 + timedelta(hours=6), 20))
    bars_before = store.bars("kraken-ticks", "1m", SPAN)
    cutoff = DAY0 + timedelta(hours=6, minutes=10)
    ticks_before = store.db["prices"].count_documents({"kind": "tick", "ts": {"$lt": cutoff}})
    assert store.expire_ticks(cutoff) == ticks_before > 0
    assert store.db["prices"].count_documents({"kind": "tick", "ts": {"$lt": cutoff}}) == 0
    assert store.db["prices"].count_documents({"kind": "candle_1m"}) == 20
    pd.testing.assert_frame_equal(store.bars("kraken-ticks", "1m", SPAN), bars_before)
    assert store.rebuild_read_model(SPAN).minutes_changed == 0  # a rebuild keeps the bars of expired ticks
    pd.testing.assert_frame_equal(store.bars("kraken-ticks", "1m", SPAN), bars_before)


def test_an_exact_rebuild_follows_candles_deleted_from_prices(store: Store):
    write(store, live(DAY0 + timedelta(hours=9), 30))
    write(store, [candle("kraken", DAY0 + timedelta(hours=9, minutes=m), DAY0 + timedelta(days=1)) for m in range(10)])
    hole = Window(DAY0 + timedelta(hours=9, minutes=5), DAY0 + timedelta(hours=9, minutes=8))
    store.db["prices"].delete_many({"kind": "candle_1m", "ts": {"$gte": hole.start, "$lt": hole.end}})
    assert store.rebuild_read_model(SPAN).minutes_changed == 0  # merging never removes a bar
    assert len(store.bars(CONSENSUS, "1m", hole)) == 3
    exact = store.rebuild_read_model(Window(hole.start, hole.end), exact=True)
    assert exact.minutes_changed == 6  # coinbase's and kraken's three minutes
    assert store.bars(CONSENSUS, "1m", hole).empty
    assert_read_model_matches(store, SPAN)


def test_concurrent_writers_lose_no_bar(store: Store):
    """Two writers (a drain and a rebuild, say) updating the same buckets at once: FerretDB's
    compare-and-set alone loses updates (measured), the writer lock does not."""
    import threading

    start = DAY0 + timedelta(hours=15)
    halves = [
        [candle("coinbase", start + MINUTE * m, DAY0 + timedelta(days=1)) for m in range(0, 60, 2)],
        [candle("coinbase", start + MINUTE * m, DAY0 + timedelta(days=1)) for m in range(1, 60, 2)],
    ]
    errors: list[BaseException] = []

    def writer(batch: list[Observation]) -> None:
        try:
            for obs in batch:  # one minute per write: as many races as possible
                Store(store.db).write_observations([obs])
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(half,)) for half in halves]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert len(store.bars("coinbase", "1m", Window(start, start + timedelta(hours=1)))) == 60
    assert store.bars(CONSENSUS, "1h", Window(start, start + timedelta(hours=1)))["n"].tolist() == [60]
    assert_read_model_matches(store, SPAN)
