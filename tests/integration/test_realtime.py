"""Seconds, not minutes, on the real local stack: the tickers are read at the configured cadence and
stored as they arrive; a produced message is stored without waiting for a timed drain run (the
producing task's asset event starts one, and a running one takes it at once); and a broker outage
that fails a window is healed by the first run that succeeds afterwards, exactly once.

The outage test stops the stack's Kafka and starts it again; it ends once the pipeline has healed
the outage, so the tests that follow it (in any order) meet a working stack."""

from __future__ import annotations

import itertools
import statistics
import urllib.parse
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from btc_pipeline.config import Settings
from btc_pipeline.store import Store
from btc_pipeline.timeutil import floor_minute, format_ts, to_utc
from btc_pipeline.window import MINUTE, Window
from devstack import Stack

from .conftest import AirflowAPI, assert_exact_once, assert_read_model_matches, candles, wait_drained, wait_for

pytestmark = pytest.mark.integration

EXCHANGES = ("coinbase", "kraken", "bitstamp", "binance")


def parse(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def ingest_runs(airflow: AirflowAPI, limit: int = 20) -> list[dict[str, Any]]:
    """btc_ingest's newest scheduled runs, newest first."""
    query = f"run_type=scheduled&order_by=-run_after&limit={limit}"
    return airflow.call("GET", f"/dags/btc_ingest/dagRuns?{query}")["dag_runs"]


def test_ticks_are_read_every_interval_and_stored_as_they_arrive(stack: Stack, airflow: AirflowAPI, mongo: Any):
    """A live ingest run streams every exchange's ticker every BTC_TICK_INTERVAL_S (10 s) through
    its minute; each reading is in MongoDB before the next one is taken."""
    interval = stack.settings.tick_interval_s
    runs = mongo["btc"]["pipeline_runs"]

    def streamed() -> dict[str, Any] | None:
        return runs.find_one(
            {"dag_id": "btc_ingest", "tick_stream.rounds": {"$gte": 3}, "tick_stream.skipped": None},
            sort=[("started_at", -1)],
        )

    run = wait_for(streamed, 180, "a live btc_ingest run that streamed ticks")
    stream = run["tick_stream"]
    # +10 .. +50 s for 10 s; a run whose task started late (the stack's first) skips the rounds past
    assert 3 <= stream["rounds"] <= len(range(interval, 60, interval))
    assert stream["produced"] == stream["rounds"] * len(EXCHANGES) and not stream["failed"]

    # the run's readings in MongoDB: the round with the candles, then one every interval
    window_end = parse(run["window_end"])
    prices = mongo["btc"]["prices"]

    def readings() -> dict[str, list[dict[str, Any]]] | None:
        """Each exchange's ticks of the run, once all are stored: the run is recorded when its last
        round is produced, and the drain stores that round a moment later."""
        found = {ex: list(prices.find({"kind": "tick", "source": ex, "run_id": run["run_id"]})) for ex in EXCHANGES}
        return found if all(len(docs) >= 1 + stream["rounds"] for docs in found.values()) else None

    # a new trade each read: one document each (a reading lost or merged into another times out here)
    by_exchange = wait_for(readings, 60, f"{1 + stream['rounds']} tick documents of each exchange")
    for exchange, docs in by_exchange.items():
        fetched = sorted(to_utc(d["fetched_at"]) for d in docs)
        assert len(fetched) == 1 + stream["rounds"], exchange
        spacing = [(b - a).total_seconds() for a, b in itertools.pairwise(fetched[1:])]  # the stream's rounds
        assert statistics.median(spacing) == pytest.approx(interval, abs=1.0), (exchange, spacing)
        assert (fetched[-1] - window_end).total_seconds() < 60  # all within the minute after the window
        stored_within = [(to_utc(d["first_seen_at"]) - to_utc(d["fetched_at"])).total_seconds() for d in docs]
        print(f"{exchange}: tick read -> stored {sorted(round(s, 2) for s in stored_within)} s")
        # stored as they arrive: before the next reading was taken (a 30 s schedule could not)
        assert statistics.median(stored_within) < interval, (exchange, stored_within)


def test_a_produced_chunk_starts_the_drain_at_once(stack: Stack, airflow: AirflowAPI, mongo: Any):
    """A btc_backfill chunk declares the topic's asset as its outlet: its success is an asset event
    that queues an asset-triggered btc_drain run; meanwhile the drain run in progress (it stays while
    messages arrive) has stored the chunk already. Neither waits for the 30 s timetable.

    22 days ago: no other test writes there in the stack's database (tests/integration/conftest.py)."""
    end = floor_minute(datetime.now(UTC)) - timedelta(days=22)
    window = Window(end - 5 * MINUTE, end)
    assert candles(mongo, window) == []  # what lands is the chunk's
    conf = {"start": format_ts(window.start), "end": format_ts(window.end), "source": None, "only_missing": False}
    conf["lane"] = "live"  # through btc-metrics and btc_drain (the history lane has a drain of its own)
    run = airflow.trigger_run("btc_backfill", {"logical_date": None, "conf": conf})
    assert airflow.wait_run("btc_backfill", run["dag_run_id"])["state"] == "success"
    (chunk,) = airflow.task_instances("btc_backfill", run["dag_run_id"], "fetch_and_produce")
    produced_at = parse(chunk["end_date"])

    stored = wait_for(lambda: len(candles(mongo, window)) == 5 and candles(mongo, window), 60, "the chunk's 5 candles")
    assert_exact_once(mongo, window)
    lag = max((to_utc(d["first_seen_at"]) - produced_at).total_seconds() for d in stored)
    print(f"chunk task ended -> last candle stored: {lag:.1f} s")

    def triggered_by_the_chunk() -> dict[str, Any] | None:
        """The asset-triggered drain run that carries the chunk's event, or (while a drain is running,
        max_active_runs=1) the queued asset event that will create it: queued after the event was
        recorded, so the run it creates carries the event."""
        queued = airflow.call("GET", "/dags/btc_drain/assets/queuedEvents")["queued_events"]
        if queued:
            return {"queued": queued}
        query = "run_type=asset_triggered&order_by=-run_after&limit=20"
        for drain in airflow.call("GET", f"/dags/btc_drain/dagRuns?{query}")["dag_runs"]:
            path = f"/dags/btc_drain/dagRuns/{urllib.parse.quote(drain['dag_run_id'], safe='')}/upstreamAssetEvents"
            events = airflow.call("GET", path)["asset_events"]
            if any(e["source_dag_id"] == "btc_backfill" and e["source_run_id"] == run["dag_run_id"] for e in events):
                return drain
        return None

    events = airflow.call("GET", f"/assets/events?source_run_id={urllib.parse.quote(run['dag_run_id'])}")
    # the chunk's events: one per topic it may produce to (btc-metrics, btc-metrics-history)
    assert sorted(e["source_task_id"] for e in events["asset_events"]) == ["fetch_and_produce"] * 2
    drain = wait_for(triggered_by_the_chunk, 90, "a btc_drain run (or its queued asset event) from the chunk's event")
    # who stored the candles: the run the chunk's event started, one running when the chunk ended, or
    # one that another producer's event (a live ingest's) started meanwhile: it reads whatever is in
    # the topic. Never a run of the 30 s timetable that started after the chunk.
    first_stored = min(to_utc(d["first_seen_at"]) for d in stored)

    def storing_runs() -> list[dict[str, Any]]:  # recorded when they end
        recorded = mongo["btc"]["pipeline_runs"].find({"dag_id": "btc_drain", "consumed": {"$gt": 0}})
        return [r for r in recorded if to_utc(r["started_at"]) <= first_stored <= to_utc(r["finished_at"])]

    storing = wait_for(storing_runs, 90, "the record of the drain run that stored the chunk")

    def due_with_the_chunk(run_id: str) -> bool:
        """A run of the 30 s timetable that came due as the chunk ended (within the seconds a run takes
        to be scheduled anyway): it started first by coincidence, nothing waited for it. Seen under load."""
        kind, _, due = run_id.partition("__")
        return kind == "scheduled" and parse(due) <= produced_at + timedelta(seconds=5)

    assert any(
        r["run_id"] == drain.get("dag_run_id")
        or to_utc(r["started_at"]) <= produced_at
        or r["run_id"].startswith("asset_triggered__")
        or due_with_the_chunk(r["run_id"])
        for r in storing
    ), f"stored by {[r['run_id'] for r in storing]} only, started by the timetable after the chunk"


def test_a_broker_outage_fails_a_window_and_the_next_run_heals_it_at_once(
    stack: Stack, settings: Settings, airflow: AirflowAPI, mongo: Any
):
    """Kafka stopped until a window's produce_window has failed (BTC_INGEST_RETRIES=0 in the test
    stack: a delivery timeout, no retry; the run in progress loses its tick rounds and fails too).
    The first run that succeeds afterwards backfills the failed windows' minutes itself (not the
    hourly btc_heal): afterwards every minute of the outage has exactly one candle with the
    exchange's prices, and the read model agrees with btc.prices.

    A run heals back to the last *successful* run's window, so one must exist first (this test may
    run alone, on a stack whose first run is still going)."""
    ok = wait_for(
        lambda: next((r for r in ingest_runs(airflow) if r["state"] == "success"), None),
        150,
        "a successful btc_ingest run",
    )
    stopped_at = datetime.now(UTC)
    stack.stop("kafka")
    try:

        def failed_windows() -> list[dict[str, Any]]:
            after = [r for r in ingest_runs(airflow, limit=5) if parse(r["data_interval_end"]) > stopped_at]
            return [
                r
                for r in after
                for ti in airflow.task_instances("btc_ingest", r["dag_run_id"], "produce_window")
                if ti["state"] == "failed"
            ]

        failed = wait_for(failed_windows, 150, "a window whose produce_window failed")
    finally:
        stack.up(["kafka"])
    restarted_at = datetime.now(UTC)
    first_failed = min(parse(r["data_interval_start"]) for r in failed)
    print(f"outage {stopped_at:%H:%M:%S} -> {restarted_at:%H:%M:%S}: failed windows from {first_failed:%H:%M}")

    runs = mongo["btc"]["pipeline_runs"]

    def healing_run() -> dict[str, Any] | None:
        return runs.find_one(
            {"dag_id": "btc_ingest", "healed.missing_minutes": {"$gte": 1}, "started_at": {"$gte": stopped_at}}
        )

    healer = wait_for(healing_run, 240, "the first ingest run after the outage to heal its windows")
    healed = healer["healed"]
    print(f"{healer['run_id']} healed {healed}")
    assert healed["produced"] >= 1 and healed["left"] == []
    assert parse(healed["start"]) <= first_failed
    # from two minutes before the outage, or from the last successful run's minute if that is later:
    # on a stack just started (this test first) the minutes before its first run have no run at all
    span = Window(
        max(floor_minute(stopped_at) - 2 * MINUTE, parse(ok["data_interval_start"])), parse(healer["window_end"])
    )
    wait_for(lambda: len(candles(mongo, span)) == span.minute_count, 120, f"every minute of {span} in btc.prices")
    wait_drained(stack, settings)  # a duplicate on its way (a window sent twice) has landed now
    assert_exact_once(mongo, span)
    assert assert_read_model_matches(Store(mongo["btc"]), span) > 0
