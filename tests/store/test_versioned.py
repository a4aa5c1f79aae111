"""Compare-and-set writes (store/versioned.py) and the records built on them, on a real FerretDB."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from btc_pipeline.alerts import AlertState
from btc_pipeline.bars import Bar
from btc_pipeline.store import Store, alerts, records
from btc_pipeline.store.buckets import BucketConflictError, BucketStore
from btc_pipeline.store.layout import M1
from btc_pipeline.store.locks import locked
from btc_pipeline.store.versioned import VersionConflictError, update_versioned, write_version

pytestmark = pytest.mark.integration

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def test_write_version_creates_then_replaces_only_the_version_it_read(db):
    docs = db["docs"]
    assert write_version(docs, "a", 0, {"x": 1})
    assert not write_version(docs, "a", 0, {"x": 2})  # someone created it first
    assert write_version(docs, "a", 1, {"x": 3})
    assert not write_version(docs, "a", 1, {"x": 4})  # stale: it is at version 2 now
    assert docs.find_one({"_id": "a"}) == {"_id": "a", "v": 2, "x": 3}


def test_concurrent_writers_under_the_lock_lose_no_update(db):
    counters = db["counters"]

    def increment(current: Mapping[str, Any] | None) -> dict[str, Any]:
        return {"n": int((current or {}).get("n", 0)) + 1}

    def writer() -> None:
        for _ in range(15):
            with locked(db, "counter"):
                update_versioned(counters, "c", increment)

    threads = [threading.Thread(target=writer) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert counters.find_one({"_id": "c"})["n"] == 60


def test_a_writer_that_keeps_losing_raises_with_the_key_instead_of_giving_up_silently(db):
    docs = db["docs"]
    write_version(docs, "k", 0, {"n": 0})
    tries = []

    def change_while_a_rival_wins(current: Mapping[str, Any] | None) -> dict[str, Any]:
        tries.append(current["v"])
        docs.update_one({"_id": "k"}, {"$inc": {"v": 1}})  # a rival writes between our read and write
        return {"n": 1}

    with pytest.raises(VersionConflictError, match=r"docs 'k' kept changing .* 5 attempts"):
        update_versioned(docs, "k", change_while_a_rival_wins)
    assert tries == [1, 2, 3, 4, 5]


def test_update_versioned_writes_nothing_when_the_change_is_none(db):
    assert not update_versioned(db["docs"], "k", lambda current: None)
    assert db["docs"].count_documents({}) == 0


def test_a_bucket_changed_by_another_writer_is_not_overwritten(db):
    mine, theirs = BucketStore(db), BucketStore(db)
    bar = Bar(100.0, 101.0, 99.0, 100.5, 1.0, 1)
    for store, value in ((mine, bar), (theirs, Bar(1.0, 1.0, 1.0, 1.0, 0.0, 1))):
        store.load(M1, "coinbase", T0).set(T0, value)
    mine.save_all(["1m"])
    with pytest.raises(BucketConflictError, match="created by another writer"):
        theirs.save_all(["1m"])
    assert BucketStore(db).load(M1, "coinbase", T0).get(T0) == bar


def test_reject_counts_count_each_message_once_even_when_a_batch_is_read_again(db):
    summary = db[records.REJECTS_SUMMARY]
    batch = [{"topic": "t", "partition": 0, "offset": o, "reason": r} for o, r in ((4, "bad_ts"), (5, "not_json"))]
    assert records.count_rejects(summary, batch, "2026-03-01") == 2
    assert records.count_rejects(summary, batch, "2026-03-01") == 0
    later = [{"topic": "t", "partition": 0, "offset": 6, "reason": "bad_ts"}]
    assert records.count_rejects(summary, later, "2026-03-02") == 1
    assert Store(db).reject_counts() == {"2026-03-01": {"bad_ts": 1, "not_json": 1}, "2026-03-02": {"bad_ts": 1}}


def test_the_last_runs_of_a_dag_keep_the_newest_and_a_retry_replaces_its_run(db):
    for i in range(records.KEEP_RUNS + 3):
        run = records.run_document("btc_drain", f"r{i}", T0 + timedelta(minutes=i), T0 + timedelta(minutes=i), {})
        records.record_run(db["pipeline_runs"], db[records.RUNS_LATEST], run)
    retried = records.run_document("btc_drain", "r22", T0 + timedelta(minutes=22), T0, {"state": "success"})
    records.record_run(db["pipeline_runs"], db[records.RUNS_LATEST], retried)
    kept = records.latest_runs(db[records.RUNS_LATEST])
    assert [r.run_id for r in kept] == [f"r{i}" for i in range(22, 2, -1)]
    assert kept[0].state == "success" and kept[-1].state == "unknown"


def test_the_alert_state_is_saved_only_over_the_version_it_was_read_at(db):
    _, version = alerts.load_state(db)
    assert version == 0
    first = AlertState(97_000.0, T0, {})
    assert alerts.save_state(db, first, version)
    assert not alerts.save_state(db, AlertState(1.0, T0, {}), version)
    assert alerts.load_state(db) == (first, 1)
