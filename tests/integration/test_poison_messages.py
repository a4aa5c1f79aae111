"""Hostile and broken messages on the real broker and FerretDB: each one ends in the dead-letter
topic and ``btc.rejects`` with its reason, the good messages beside them are stored, the batch is
committed, and the next run starts past them (no message can stop storage for good)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from btc_pipeline.exchanges import build_exchange
from btc_pipeline.health import pipeline_health
from btc_pipeline.quotes import quote
from btc_pipeline.schema import Observation
from btc_pipeline.steps.ingest import ingest_window
from btc_pipeline.store import Store
from btc_pipeline.stream import Record, produce_all
from btc_pipeline.timeutil import format_ts

from .conftest import OLD_WINDOW as WINDOW
from .conftest import group_lag, new_producer, read_topic, run_drain

pytestmark = pytest.mark.integration


def tick(**overrides: Any) -> dict[str, Any]:
    """A good tick read just now (the module's tests run minutes after it is imported)."""
    now = datetime.now(UTC).replace(microsecond=0)
    body = {
        "v": 1,
        "source": "coinbase",
        "symbol": "BTC-USD",
        "kind": "tick",
        "ts": format_ts(now - timedelta(seconds=5)),
        "price": 97_000.5,
        "volume": 0.01,
        "fetched_at": format_ts(now),
        "run_id": "hostile",
    }
    return {**body, **overrides}


def raw(body: dict[str, Any]) -> bytes:
    return json.dumps(body).encode()


def hostile() -> dict[str, tuple[bytes, str]]:
    """Each of these stopped the drain for good, or passed into btc.latest, before they were refused."""
    return {
        "price-400-digits": (
            b'{"v":1,"source":"coinbase","symbol":"BTC-USD","kind":"tick","ts":"2026-03-01T12:00:00Z",'
            b'"price":' + b"9" * 400 + b',"fetched_at":"2026-03-01T12:00:01Z","run_id":"x"}',
            "bad_price",
        ),
        "volume-400-digits": (raw(tick(volume=10**400)), "bad_volume"),
        "deep-nesting": (b'{"v":1,"source":' + b"[" * 30_000 + b"]" * 30_000 + b"}", "not_json"),
        "year-9999": (raw(tick(ts="9999-12-31T23:59:00Z")), "future_ts"),
        "year-2096": (raw(tick(ts="2096-01-01T00:00:00Z")), "future_ts"),
        "ten-minutes-ahead": (raw(tick(ts=format_ts(datetime.now(UTC) + timedelta(minutes=10)))), "future_ts"),
        "year-1-with-offset": (raw(tick(ts="0001-01-01T00:00:00+01:00")), "bad_ts"),
        "version-true": (raw(tick(v=True)), "bad_version"),
        "candle-off-minute": (
            raw(tick(kind="candle_1m", ts="2026-03-01T12:00:30Z", open=1.0, high=1.0, low=1.0, close=97_000.5)),
            "bad_ts",
        ),
    }


def test_hostile_messages_are_dead_lettered_and_good_ones_beside_them_land(core_stack, scratch, mongo):
    cases = hostile()
    exchanges = [build_exchange("coinbase", scratch)]
    ingest_window(WINDOW, scratch, exchanges, new_producer(core_stack), "good")
    records = [Record(key=name.encode(), value=value) for name, (value, _) in cases.items()]
    good_tick = Record(key=b"good-tick", value=raw(tick()))
    produce_all(new_producer(core_stack), scratch.topic, [*records, good_tick])

    stats = run_drain(core_stack, scratch, mongo[scratch.mongo_db])
    assert stats.rejected == len(cases)
    assert stats.inserted == 10 + 1
    assert stats.lag_after == 0 and group_lag(core_stack, scratch) == 0  # committed past every one of them

    rejects = {d["key"]: d for d in mongo[scratch.mongo_db]["rejects"].find()}
    assert {key: d["reason"] for key, d in rejects.items()} == {name: reason for name, (_, reason) in cases.items()}
    dlq = {m.key().decode(): m for m in read_topic(core_stack, scratch.dlq_topic, len(cases))}
    assert set(dlq) == set(cases)
    for name, message in dlq.items():
        headers = dict(message.headers())
        assert headers["dlq.reason"].decode() == cases[name][1]
        assert message.value() == cases[name][0]

    # the live price is the good tick, not a reading from the future; health agrees
    store = Store(mongo[scratch.mongo_db])
    now = datetime.now(UTC)
    latest = store.latest()
    assert {(o.source, o.kind): o.price for o in latest}[("coinbase", "tick")] == 97_000.5
    assert quote(latest, now).consensus == 97_000.5
    report = pipeline_health(latest, [], now, stale_after_s=120)
    assert report.status == "ok" and report.age_s is not None and 0 <= report.age_s < 120

    # the next run starts past them: nothing to read again, nothing fails
    again = run_drain(core_stack, scratch, mongo[scratch.mongo_db])
    assert again.consumed == 0 and again.rejected == 0


def test_a_message_that_breaks_the_store_is_isolated_and_the_rest_of_its_batch_lands(core_stack, scratch, mongo):
    """With the plausible-time rule switched off (a skew to the end of year 9999), a tick of year 9999 passes the
    decoder and breaks the read model's bucket arithmetic (OverflowError): the batch is written in
    halves until that one message is found, dead-lettered with the exception class, and the rest
    of the batch is stored exactly once."""
    to_the_end_of_time = (datetime(9999, 12, 31, 23, 59, 30, tzinfo=UTC) - datetime.now(UTC)).total_seconds()
    reckless = scratch.model_copy(update={"max_clock_skew_s": to_the_end_of_time, "drain_batch_size": 500})
    exchanges = [build_exchange("coinbase", reckless)]
    ingest_window(WINDOW, reckless, exchanges, new_producer(core_stack), "good")
    poison = raw(tick(ts="9999-12-31T23:59:00Z"))
    produce_all(
        new_producer(core_stack), reckless.topic, [Record(key=b"poison", value=poison), Record(b"t", raw(tick()))]
    )

    stats = run_drain(core_stack, reckless, mongo[reckless.mongo_db])
    assert stats.consumed == 12 and stats.rejected == 1
    assert stats.lag_after == 0
    prices = mongo[reckless.mongo_db]["prices"]
    assert prices.count_documents({"kind": "candle_1m"}) == 10
    assert prices.count_documents({"kind": "tick", "price": 97_000.5, "ts": {"$lt": datetime(2100, 1, 1)}}) == 1

    (reject,) = mongo[reckless.mongo_db]["rejects"].find()
    assert reject["key"] == "poison" and reject["reason"] == "internal_error"
    assert reject["exception"] == "OverflowError"
    (dead,) = read_topic(core_stack, reckless.dlq_topic, 1)
    headers = dict(dead.headers())
    assert headers["dlq.reason"] == b"internal_error" and headers["dlq.exception"] == b"OverflowError"
    assert dead.value() == poison

    # every candle's bars are in the read model once: the halves written again changed nothing twice
    store = Store(mongo[reckless.mongo_db])
    bars = store.bars("coinbase", "1m", WINDOW)
    assert len(bars) == 10 and list(bars["ts"]) == list(WINDOW.minutes())


def test_a_reading_from_the_future_stored_before_the_fix_no_longer_holds_the_live_price(core_stack, scratch, mongo):
    db = mongo[scratch.mongo_db]
    future = Observation(
        source="kraken",
        symbol="BTC-USD",
        kind="tick",
        ts=datetime(2096, 1, 1, tzinfo=UTC),
        price=1.0,
        fetched_at=datetime(2026, 1, 1, tzinfo=UTC),
        run_id="old",
    )
    db["latest"].insert_one({"_id": "kraken|tick", "source": "kraken", "kind": "tick", "ts": future.ts, "price": 1.0})
    now = datetime.now(UTC)
    store = Store(db)
    assert quote(store.latest(), now).consensus is None  # the frozen reading is not taken for a price
    assert pipeline_health(store.latest(), [], now, stale_after_s=120).status == "stale"

    produce_all(new_producer(core_stack), scratch.topic, [Record(b"k", raw(tick(source="kraken", price=96_500.0)))])
    run_drain(core_stack, scratch, db)
    (entry,) = [o for o in store.latest() if (o.source, o.kind) == ("kraken", "tick")]
    assert entry.price == 96_500.0
    assert quote(store.latest(), datetime.now(UTC)).consensus == 96_500.0
