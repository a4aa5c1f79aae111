"""``btc-pipeline dlq list`` and ``dlq replay``, run as a user runs them (the console script in a
subprocess), against the real broker and FerretDB of the test stack; the dead letters come from
the production drain, each test on a topic, DLQ and database of its own."""

from __future__ import annotations

import os
import subprocess
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import pytest
from pymongo import MongoClient

from btc_pipeline.config import Settings
from btc_pipeline.exchanges import build_exchange
from btc_pipeline.schema import Observation
from btc_pipeline.steps.ingest import ingest_window
from btc_pipeline.store import Store
from btc_pipeline.stream import REPLAYED_FROM, Record, dead_letter, produce_all
from btc_pipeline.stream.consume import Consumed
from btc_pipeline.window import MINUTE, Window
from devstack import Stack

from .conftest import OLD_WINDOW, ROOT, STACK_PATH, assert_read_model_matches, new_producer, read_topic, run_drain

pytestmark = pytest.mark.integration

CLI = ROOT / ".venv" / "bin" / "btc-pipeline"
#: Bad messages the drain dead-letters, by key: their reasons as decode gives them.
BAD = {
    b"bad-1": (b"this is not json", "not_json"),
    b"bad-2": (b"{not json either", "not_json"),
    b"bad-3": (b"[1,2,3]", "not_object"),
    b"bad-4": (
        b'{"v":1,"source":"coinbase","symbol":"BTC-USD","kind":"tick","ts":"2026-03-01T12:00:00Z","price":NaN}',
        "bad_price",
    ),
}


@dataclass(frozen=True)
class Result:
    code: int
    out: str
    err: str


def dlq(stack: Stack, settings: Settings, *args: str) -> Result:
    """``btc-pipeline dlq ...`` with the environment pointing at the stack and this test's topics."""
    env = {
        **os.environ,
        **stack.pipeline_env(),
        "BTC_TOPIC": settings.topic,
        "BTC_DLQ_TOPIC": settings.dlq_topic,
        "BTC_MONGO_DB": settings.mongo_db,
    }
    proc = subprocess.run([str(CLI), "dlq", *args], env=env, capture_output=True, text=True, timeout=120, check=False)
    print(f"\n$ btc-pipeline dlq {' '.join(args)}  -> exit {proc.returncode}\n{proc.stdout}{proc.stderr}")
    return Result(proc.returncode, proc.stdout, proc.stderr)


def reason_counts(out: str) -> dict[str, int]:
    """The table of ``dlq list`` / ``replay``: reason -> count."""
    rows = [line.split() for line in out.splitlines() if line.startswith("  ")]
    return {row[0]: int(row[1].replace(",", "")) for row in rows if len(row) == 4 and row[1][0].isdigit()}


def candles_of(minutes: list[datetime]) -> list[Observation]:
    """The simulated exchange's Coinbase candles of ``minutes``, as the ingest makes them."""
    out = []
    for ts in minutes:
        c = STACK_PATH.candle(ts)
        fetched = ts + timedelta(seconds=70)
        out.append(
            Observation(
                "coinbase", "BTC-USD", "candle_1m", ts, c.close, fetched, "r", c.open, c.high, c.low, c.close, c.volume
            )
        )
    return out


def refused_letters(topic: str, observations: list[Observation]) -> list[Record]:
    """Dead letters of ``observations`` read from ``topic``, as the drain makes them when the store
    refused a write (a cause that a fix removes: what a replay is for)."""
    return [
        dead_letter(Consumed(topic, 0, 1000 + i, *obs.encode()), "store_refused", "write refused")
        for i, obs in enumerate(observations)
    ]


def drain_bad_messages(stack: Stack, settings: Settings, mongo: MongoClient[Any]) -> None:
    """Ten good candles and the :data:`BAD` messages through the production drain."""
    ingest_window(OLD_WINDOW, settings, [build_exchange("coinbase", settings)], new_producer(stack), "good")
    produce_all(new_producer(stack), settings.topic, [Record(key=k, value=v) for k, (v, _) in BAD.items()])
    stats = run_drain(stack, settings, mongo[settings.mongo_db])
    assert (stats.inserted, stats.rejected) == (10, len(BAD))


def test_list_counts_the_drains_dead_letters_by_reason_with_examples(core_stack, scratch, mongo):
    drain_bad_messages(core_stack, scratch, mongo)
    expected = Counter(reason for _, reason in BAD.values())
    rejects = Counter(d["reason"] for d in mongo[scratch.mongo_db]["rejects"].find())
    assert rejects == expected  # the drain's other record of them

    listed = dlq(core_stack, scratch, "list")
    assert listed.code == 0, listed.err
    assert listed.out.startswith(f"{scratch.dlq_topic}: {len(BAD)} dead letter(s); {len(BAD)} shown\n")
    assert reason_counts(listed.out) == expected
    for key, (value, reason) in BAD.items():
        assert f"  {reason}  offset 0:" in listed.out
        assert f"key     {key.decode()}   from {scratch.topic}|" in listed.out
        assert f"    value   {value.decode()[:60]}" in listed.out

    one = dlq(core_stack, scratch, "list", "--reason", "not_json", "--examples", "1")
    assert one.code == 0 and reason_counts(one.out) == {"not_json": 2}
    assert one.out.count("offset 0:") == 1 and one.out.count("key     bad-") == 1

    later = dlq(core_stack, scratch, "list", "--since", "2099-01-01T00:00Z")
    assert later.code == 0 and reason_counts(later.out) == {}
    assert "0 shown dead-lettered since 2099-01-01T00:00:00Z (reasons in the DLQ: not_json 2" in later.out
    assert reason_counts(dlq(core_stack, scratch, "list", "--since", "1h").out) == expected


def test_replay_reproduces_dead_letters_once_and_a_second_replay_stores_no_duplicate(core_stack, scratch, mongo):
    drain_bad_messages(core_stack, scratch, mongo)
    # good candles of another window, dead-lettered as the drain does for a cause since fixed (a
    # store that refused them): the dead letters a replay is for
    minutes = [OLD_WINDOW.end + MINUTE * i for i in range(3)]
    good = candles_of(minutes)
    refused = refused_letters(scratch.topic, good)
    produce_all(new_producer(core_stack), scratch.dlq_topic, refused)
    prices = mongo[scratch.mongo_db]["prices"]
    assert prices.count_documents({"ts": {"$in": minutes}}) == 0

    dry = dlq(core_stack, scratch, "replay", "--reason", "store_refused", "--dry-run")
    assert dry.code == 0, dry.err
    assert "3 would be replayed (dry run: nothing produced) with reason store_refused" in dry.out
    assert reason_counts(dry.out) == {"store_refused": 3}
    assert len(read_topic(core_stack, scratch.topic, 14)) == 14  # 10 good, 4 bad: nothing replayed

    replayed = dlq(core_stack, scratch, "replay", "--reason", "store_refused")
    assert replayed.code == 0, replayed.err
    assert f"3 replayed to {scratch.topic} with reason store_refused" in replayed.out
    topic = read_topic(core_stack, scratch.topic, 17)
    replays = {m.key(): (m.value(), dict(m.headers() or [])) for m in topic if REPLAYED_FROM in dict(m.headers() or [])}
    assert {k: v for k, (v, _) in replays.items()} == {r.key: r.value for r in refused}  # original key and value
    assert sorted(h[REPLAYED_FROM] for _, h in replays.values()) == [
        f"{scratch.dlq_topic}|0|{o}".encode() for o in range(len(BAD), len(BAD) + 3)
    ]
    stored = run_drain(core_stack, scratch, mongo[scratch.mongo_db])
    assert (stored.consumed, stored.inserted, stored.rejected) == (3, 3, 0)

    again = dlq(core_stack, scratch, "replay", "--reason", "store_refused")
    assert again.code == 0 and reason_counts(again.out) == {"store_refused": 3}
    assert run_drain(core_stack, scratch, mongo[scratch.mongo_db]).inserted == 0
    docs = list(prices.find({"ts": {"$in": minutes}}))
    assert sorted(d["_id"] for d in docs) == sorted(obs.key for obs in good)  # once each
    assert [(d["open"], d["close"]) for d in sorted(docs, key=lambda d: d["ts"])] == [(o.open, o.close) for o in good]
    assert prices.count_documents({}) == 13

    # a replay that fails again is dead-lettered again, marked; replaying it again sends it once
    bad = dlq(core_stack, scratch, "replay", "--reason", "not_json")
    assert bad.code == 0 and reason_counts(bad.out) == {"not_json": 2}
    assert run_drain(core_stack, scratch, mongo[scratch.mongo_db]).rejected == 2
    listed = dlq(core_stack, scratch, "list", "--reason", "not_json")
    assert reason_counts(listed.out) == {"not_json": 4}
    assert listed.out.count("replay  of the dead letter at " + scratch.dlq_topic) == 2
    assert reason_counts(dlq(core_stack, scratch, "replay", "--reason", "not_json", "--dry-run").out) == {"not_json": 2}
    assert dlq(core_stack, scratch, "replay", "--reason", "nothing_like_it").code == 0


def test_a_history_lane_dead_letter_is_replayed_to_the_live_topic_and_stored_the_same_way(core_stack, scratch, mongo):
    """The history drain dead-letters what it cannot store, naming its own topic; a replay sends
    history letters to BTC_TOPIC, where the live drain stores them under the same keys, with the read
    model a recompute gives, and the history lane bringing the same candles again adds nothing."""
    db = mongo[scratch.mongo_db]
    produce_all(new_producer(core_stack), scratch.history_topic, [Record(key=b"hist-bad", value=b"not json at all")])
    stats = run_drain(core_stack, scratch, db, history=True)
    assert (stats.inserted, stats.rejected) == (0, 1)
    (letter,) = read_topic(core_stack, scratch.dlq_topic, 1)
    assert dict(letter.headers())["dlq.topic"] == scratch.history_topic.encode()

    minutes = [OLD_WINDOW.end + MINUTE * (20 + i) for i in range(3)]
    good = candles_of(minutes)
    produce_all(new_producer(core_stack), scratch.dlq_topic, refused_letters(scratch.history_topic, good))
    listed = dlq(core_stack, scratch, "list")
    assert reason_counts(listed.out) == {"not_json": 1, "store_refused": 3}
    assert f"from {scratch.history_topic}|0|" in listed.out
    replayed = dlq(core_stack, scratch, "replay", "--reason", "store_refused")
    assert replayed.code == 0 and f"3 replayed to {scratch.topic} with reason store_refused" in replayed.out

    assert run_drain(core_stack, scratch, db).inserted == 3  # the live drain
    docs = list(db["prices"].find({"ts": {"$in": minutes}}))
    assert sorted(d["_id"] for d in docs) == sorted(obs.key for obs in good)
    window = Window(minutes[0], minutes[-1] + MINUTE)
    assert assert_read_model_matches(Store(db), window) > 0
    produce_all(new_producer(core_stack), scratch.history_topic, [Record(*obs.encode()) for obs in good])
    assert run_drain(core_stack, scratch, db, history=True).inserted == 0
    assert db["prices"].count_documents({"ts": {"$in": minutes}}) == 3
    assert assert_read_model_matches(Store(db), window) > 0
