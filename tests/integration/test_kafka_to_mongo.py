"""Ingest and drain on the real broker and the real MongoDB-protocol database (FerretDB), with the
production code; each test has its own topic, group and database."""

from __future__ import annotations

import json
import threading
from typing import Any

import pytest
from pymongo import MongoClient

from btc_pipeline.exchanges import build_exchange
from btc_pipeline.steps.ingest import ingest_window
from btc_pipeline.store import Store
from btc_pipeline.stream import DeliveryError, Record, produce_all
from btc_pipeline.window import Window
from devstack.processes import free_port
from simexchange.pricepath import PricePath

from .conftest import OLD_WINDOW as WINDOW
from .conftest import group_lag, new_producer, poll, read_topic, run_drain

pytestmark = pytest.mark.integration


def test_same_window_twice_gives_identical_messages_and_one_document_each(core_stack, scratch, mongo):
    exchanges = [build_exchange("coinbase", scratch)]
    first = ingest_window(WINDOW, scratch, exchanges, new_producer(core_stack), "run-1")
    second = ingest_window(WINDOW, scratch, exchanges, new_producer(core_stack), "run-2")
    assert first.candles == second.candles == 10
    assert first.ticks == second.ticks == 0  # an old window gets no "now" ticker

    messages = read_topic(core_stack, scratch.topic, 20)
    by_run: dict[str, dict[bytes, tuple[Any, ...]]] = {"run-1": {}, "run-2": {}}
    for m in messages:
        body = json.loads(m.value())
        by_run[body["run_id"]][m.key()] = (
            body["ts"],
            body["open"],
            body["high"],
            body["low"],
            body["close"],
            body["volume"],
        )
    assert by_run["run-1"] == by_run["run-2"]
    assert len(by_run["run-1"]) == 10

    stats = run_drain(core_stack, scratch, mongo[scratch.mongo_db])
    assert stats.consumed == 20
    prices = mongo[scratch.mongo_db]["prices"]
    assert prices.count_documents({}) == 10
    expected = PricePath(42).candle(WINDOW.start)
    doc = prices.find_one({"ts": WINDOW.start})
    assert (doc["open"], doc["high"], doc["low"], doc["close"]) == (
        expected.open,
        expected.high,
        expected.low,
        expected.close,
    )
    assert doc["_id"] == "coinbase|BTC-USD|candle_1m|2026-03-01T12:00:00Z"
    assert stats.lag_after == 0


def test_replayed_batch_and_duplicate_keys_never_duplicate(core_stack, scratch, mongo):
    exchanges = [build_exchange("coinbase", scratch)]
    ingest_window(WINDOW, scratch, exchanges, new_producer(core_stack), "run-1")
    run_drain(core_stack, scratch, mongo[scratch.mongo_db])
    # replay: same messages again, and the whole topic re-read by a new group
    ingest_window(WINDOW, scratch, exchanges, new_producer(core_stack), "run-1")
    again = run_drain(core_stack, scratch, mongo[scratch.mongo_db])
    assert again.consumed == 10 and again.inserted == 0
    rewound = scratch.model_copy(update={"consumer_group": scratch.consumer_group + "-rewound"})
    replay = run_drain(core_stack, rewound, mongo[scratch.mongo_db])
    assert replay.consumed == 20 and replay.inserted == 0
    assert mongo[scratch.mongo_db]["prices"].count_documents({}) == 10


MALFORMED = {
    "not_json": b"this is not json",
    "not_object": b"[1,2,3]",
    "missing_field": json.dumps({"v": 1, "kind": "tick"}).encode(),
    "wrong_type": json.dumps(
        {
            "v": 1,
            "source": "coinbase",
            "symbol": "BTC-USD",
            "kind": "tick",
            "ts": "2026-03-01T12:00:00Z",
            "price": "100",
            "fetched_at": "2026-03-01T12:00:01Z",
            "run_id": "x",
        }
    ).encode(),
    "bad_price": b'{"v":1,"source":"coinbase","symbol":"BTC-USD","kind":"tick",'
    b'"ts":"2026-03-01T12:00:00Z","price":NaN}',
    "bad_ts": json.dumps(
        {
            "v": 1,
            "source": "coinbase",
            "symbol": "BTC-USD",
            "kind": "tick",
            "ts": "2026-03-01 12:00",
            "price": 100.0,
            "fetched_at": "2026-03-01T12:00:01Z",
            "run_id": "x",
        }
    ).encode(),
    "bad_version": json.dumps({"v": 9}).encode(),
    "too_large": b'{"pad":"' + b"x" * 1_000_000 + b'"}',
    "empty": b"",
}


def test_malformed_messages_go_to_dlq_and_rejects_while_good_ones_land(core_stack, scratch, mongo):
    exchanges = [build_exchange("coinbase", scratch)]
    ingest_window(WINDOW, scratch, exchanges, new_producer(core_stack), "good")
    produce_all(
        new_producer(core_stack),
        scratch.topic,
        [Record(key=f"bad-{name}".encode(), value=value) for name, value in MALFORMED.items()],
    )
    stats = run_drain(core_stack, scratch, mongo[scratch.mongo_db])
    assert stats.inserted == 10
    assert stats.rejected == len(MALFORMED)

    rejects = {d["key"]: d for d in mongo[scratch.mongo_db]["rejects"].find()}
    assert {k: d["reason"] for k, d in rejects.items()} == {f"bad-{name}": name for name in MALFORMED}
    assert all(d["topic"] == scratch.topic and d["offset"] >= 0 and d["detail"] for d in rejects.values())

    dlq = read_topic(core_stack, scratch.dlq_topic, len(MALFORMED))
    assert len(dlq) == len(MALFORMED)
    for m in dlq:
        headers = dict(m.headers())
        assert headers["dlq.reason"].decode() == m.key().decode().removeprefix("bad-")
        assert headers["dlq.topic"].decode() == scratch.topic
        assert m.value() == MALFORMED[m.key().decode().removeprefix("bad-")]  # the original bytes, untouched
    assert stats.lag_after == 0

    # counted by reason, once each: a second group reading the whole topic again counts nothing more
    store = Store(mongo[scratch.mongo_db])
    (counts,) = store.reject_counts().values()
    assert counts == dict.fromkeys(MALFORMED, 1)
    run_drain(
        core_stack,
        scratch.model_copy(update={"consumer_group": scratch.consumer_group + "-again"}),
        mongo[scratch.mongo_db],
    )
    assert list(store.reject_counts().values()) == [counts]


def test_unreachable_database_fails_the_drain_and_commits_nothing(core_stack, scratch, mongo):
    exchanges = [build_exchange("coinbase", scratch)]
    ingest_window(WINDOW, scratch, exchanges, new_producer(core_stack), "r")
    dead: MongoClient[Any] = MongoClient(f"mongodb://127.0.0.1:{free_port()}/", serverSelectionTimeoutMS=1000)
    with pytest.raises(Exception, match=r"refused|Timeout|timed out"):
        run_drain(core_stack, scratch, dead[scratch.mongo_db], run_id="t")
    assert group_lag(core_stack, scratch) == 10  # nothing committed
    stats = run_drain(core_stack, scratch, mongo[scratch.mongo_db])
    assert stats.inserted == 10 and stats.lag_after == 0


def new_producer_at(bootstrap: str) -> Any:
    from confluent_kafka import Producer

    from btc_pipeline.stream import producer_config

    return Producer({**producer_config({"bootstrap.servers": bootstrap}), "message.timeout.ms": 3000})


def test_a_broker_that_is_down_fails_the_produce():
    dead = new_producer_at(f"127.0.0.1:{free_port()}")
    with pytest.raises(DeliveryError, match=r"not delivered|unacknowledged"):
        produce_all(dead, "btc-metrics", [Record(key=b"k", value=b"v")], timeout_s=10)


def test_a_drain_that_stays_stores_what_arrives_while_it_runs_and_ends_when_idle(core_stack, scratch, mongo):
    """With BTC_DRAIN_IDLE_S, a drain run does not end when it has caught up: a message produced
    a moment later is stored by the same run, and the run ends once nothing came for that long."""
    window = list(WINDOW.minutes())
    exchanges = [build_exchange("coinbase", scratch)]
    ingest_window(Window(window[0], window[2]), scratch, exchanges, new_producer(core_stack), "early")
    prices = mongo[scratch.mongo_db]["prices"]

    def produce_once_the_early_ones_are_stored() -> None:
        """The late candles, produced while the drain waits idle after storing the early ones."""
        if poll(lambda: prices.count_documents({"run_id": "early"}) == 2, 30, 0.1):
            ingest_window(Window(window[2], window[5]), scratch, exchanges, new_producer(core_stack), "late")

    late = threading.Thread(target=produce_once_the_early_ones_are_stored, daemon=True)
    late.start()
    try:
        stats = run_drain(core_stack, scratch.model_copy(update={"drain_idle_s": 6.0}), mongo[scratch.mongo_db])
    finally:
        late.join()
    assert stats.consumed == 5 and stats.inserted == 5 and stats.ended_by == "idle"
    assert stats.batches >= 2  # the early candles, then the late ones when they came
    assert prices.count_documents({"run_id": "late"}) == 3
    assert group_lag(core_stack, scratch) == 0


def test_a_history_chunk_travels_its_own_lane_and_is_stored_once_when_read_again(core_stack, scratch, mongo):
    """Two days fetched in the history lane land in the history topic only (the live topic stays
    empty), are drained in one large batch with the read model written a day at a time, and a second
    drain that reads the same messages again (a new group: every offset re-delivered) changes nothing;
    the read model then equals a rebuild of the range."""
    from datetime import timedelta

    from btc_pipeline.steps.backfill import backfill_chunk

    store = Store(mongo[scratch.mongo_db])
    days = Window(WINDOW.start - timedelta(days=2), WINDOW.start)
    exchanges = [build_exchange("coinbase", scratch)]
    chunk = backfill_chunk(days, scratch, exchanges, new_producer(core_stack), store, "hist-1", lane="history")
    assert chunk.produced == days.minute_count and chunk.requests == 10  # 2,880 minutes, 300 a request
    assert group_lag(core_stack, scratch) == 0  # the live topic holds nothing: its (new) group has nothing to read

    first = run_drain(core_stack, scratch, mongo[scratch.mongo_db], history=True)
    assert (first.consumed, first.inserted) == (days.minute_count, days.minute_count)
    assert first.consumed / first.batches >= 1000  # large batches (as fetched: up to BTC_HISTORY_BATCH_SIZE)
    assert first.read_model_ms > 0 and first.prices_ms > 0
    again = scratch.model_copy(update={"history_consumer_group": scratch.history_consumer_group + "-again"})
    second = run_drain(core_stack, again, mongo[scratch.mongo_db], history=True)
    assert (second.consumed, second.inserted, second.modified, second.bar_minutes) == (days.minute_count, 0, 0, 0)
    prices = mongo[scratch.mongo_db]["prices"]
    assert prices.count_documents({}) == days.minute_count  # one document per minute
    rebuilt = store.rebuild_read_model(days)
    assert (rebuilt.minutes_changed, rebuilt.buckets_written) == (0, 0)
    assert len(store.bars("coinbase", "1m", days)) == days.minute_count
