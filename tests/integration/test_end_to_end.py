"""The whole product on the real local stack: Airflow's scheduler runs btc_ingest and btc_drain,
prices reach MongoDB exactly as the (simulated) exchange published them, and the dashboard shows
them in a real headless Chromium."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from devstack import Stack
from simexchange.pricepath import PricePath

from .conftest import TEST_ENV, AirflowAPI, wait_for

pytestmark = pytest.mark.integration


def parse(ts: str) -> datetime:
    return datetime.fromisoformat(ts.replace("Z", "+00:00"))


def test_every_service_is_up_and_up_is_idempotent(stack: Stack):
    before = {name: stack.pid_of(name) for name in stack.status()}
    assert all(before.values()), before
    started = time.monotonic()
    stack.up()  # a second `up` finds everything healthy and starts nothing
    assert time.monotonic() - started < 30
    assert {name: stack.pid_of(name) for name in stack.status()} == before


def test_the_stack_creates_and_uses_the_configured_topic_names(stack: Stack):
    from confluent_kafka.admin import AdminClient

    topics = AdminClient({"bootstrap.servers": stack.kafka_bootstrap}).list_topics(timeout=10).topics
    assert TEST_ENV["BTC_TOPIC"] in topics and TEST_ENV["BTC_DLQ_TOPIC"] in topics
    assert len(topics[TEST_ENV["BTC_TOPIC"]].partitions) == 3
    assert "btc-metrics" not in topics  # nothing fell back to the default name (auto-creation is off)
    assert stack.settings.topic == TEST_ENV["BTC_TOPIC"]


def test_scheduled_runs_bring_exact_prices_into_mongodb(stack: Stack, airflow: AirflowAPI, mongo: Any):
    """No trigger: the scheduler itself runs both DAGs every minute / 30 s, on the renamed topics."""
    prices = mongo["btc"]["prices"]

    def landed_window() -> dict[str, Any] | None:
        for run in airflow.runs("btc_ingest"):
            if run["state"] == "success" and run["run_type"] == "scheduled":
                start = parse(run["data_interval_start"])
                if prices.find_one({"kind": "candle_1m", "ts": start}):
                    return run
        return None

    run = wait_for(landed_window, 240, "a scheduled btc_ingest window to reach btc.prices via btc_drain")
    start = parse(run["data_interval_start"])
    assert parse(run["data_interval_end"]) - start == timedelta(minutes=1)
    doc = prices.find_one({"kind": "candle_1m", "ts": start})
    expected = PricePath(42).candle(start)
    assert (doc["open"], doc["high"], doc["low"], doc["close"], doc["volume"]) == (
        expected.open,
        expected.high,
        expected.low,
        expected.close,
        expected.volume,
    )
    assert doc["source"] == "coinbase" and doc["run_id"] == run["dag_run_id"]
    assert prices.count_documents({"kind": "tick"}) >= 1
    wait_for(lambda: [r for r in airflow.runs("btc_drain") if r["state"] == "success"], 60, "a green btc_drain run")
    runs = mongo["btc"]["pipeline_runs"]
    assert runs.find_one({"dag_id": "btc_ingest", "run_id": run["dag_run_id"], "candles": 1})
    assert runs.find_one({"dag_id": "btc_drain", "consumed": {"$gt": 0}})


def test_a_triggered_past_window_is_ingested_from_the_exchange_history(stack: Stack, airflow: AirflowAPI, mongo: Any):
    """21 days ago: beyond any heal's reach, and no other test writes there in the stack's database
    (tests/integration/conftest.py), so the candle that lands is this run's."""
    logical = (datetime.now(UTC) - timedelta(days=21)).replace(second=0, microsecond=0)
    around = {"$gte": logical - timedelta(minutes=1), "$lte": logical + timedelta(minutes=1)}
    assert mongo["btc"]["prices"].count_documents({"kind": "candle_1m", "ts": around}) == 0
    run = airflow.trigger_run("btc_ingest", {"logical_date": logical.isoformat().replace("+00:00", "Z"), "conf": {}})
    start, end = parse(run["data_interval_start"]), parse(run["data_interval_end"])
    assert end - start == timedelta(minutes=1)
    finished = airflow.wait_run("btc_ingest", run["dag_run_id"])
    assert finished["state"] == "success"
    doc = wait_for(
        lambda: mongo["btc"]["prices"].find_one({"kind": "candle_1m", "ts": start}), 120, f"the candle of {start}"
    )
    assert doc["close"] == PricePath(42).candle(start).close and doc["run_id"] == run["dag_run_id"]
    # an old window carries no "now" tick
    assert mongo["btc"]["prices"].count_documents({"kind": "tick", "run_id": run["dag_run_id"]}) == 0


def test_a_failed_run_is_recorded_with_its_task_and_error(stack: Stack, airflow: AirflowAPI, mongo: Any):
    """A run whose task fails never reaches its own record task: the failure callback records it,
    so the dashboard and the API can show it among the DAG's last runs."""
    from btc_pipeline.health import RunRecord
    from btc_pipeline.store import Store

    conf = {"start": "2026-01-02T00:00:00Z", "end": "2026-01-01T00:00:00Z", "source": None, "only_missing": False}
    run = airflow.trigger_run("btc_backfill", {"logical_date": None, "conf": conf})
    assert airflow.wait_run("btc_backfill", run["dag_run_id"])["state"] == "failed"
    store = Store(mongo["btc"])

    def recorded() -> RunRecord | None:
        return next((r for r in store.recent_runs() if r.run_id == run["dag_run_id"]), None)

    entry = wait_for(recorded, 60, "the failed run among the last runs")
    assert entry.dag_id == "btc_backfill" and entry.state == "failed"
    assert entry.failed_task == "find_gaps" and entry.error is not None and "is not before the end" in entry.error
    assert mongo["btc"]["pipeline_runs"].find_one({"_id": f"btc_backfill|{run['dag_run_id']}"})["state"] == "failed"
