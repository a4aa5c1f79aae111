"""``BTC_DRAIN_TRIGGER=watcher`` on a stack of its own: ``btc_drain`` scheduled on an AssetWatcher of
the topic (the triggerer's ``TopicArrivalTrigger``). A message produced outside Airflow, with no task
of ours producing and so no outlet event, reaches MongoDB, and a drain run started by the watcher's
asset event carries it; the default mode (outlets) is what every other module's stack runs."""

from __future__ import annotations

import json
import shutil
import urllib.parse
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from btc_pipeline.cli.airflow_client import AirflowApiError
from btc_pipeline.config import load_settings
from btc_pipeline.schema import Observation
from btc_pipeline.store import Store
from btc_pipeline.stream import Record, produce_all
from btc_pipeline.tasks.arrival import arrivals_asset
from btc_pipeline.timeutil import parse_iso
from devstack import Stack
from devstack.config import free_ports

from .conftest import ROOT, TEST_ENV, AirflowAPI, new_producer, poll, wait_for

pytestmark = pytest.mark.integration

#: The stack's services without the dashboard and the API (nothing here reads through them).
NOT_NEEDED = ("dashboard", "api")


@pytest.fixture(scope="module")
def watcher_stack() -> Iterator[Stack]:
    ports = free_ports()
    state = (ROOT / "state" / "test-stack-watcher").resolve()
    shutil.rmtree(state, ignore_errors=True)
    stack = Stack("test", state_dir=state, ports=ports, env={**TEST_ENV, "BTC_DRAIN_TRIGGER": "watcher"})
    try:
        stack.up([s.name for s in stack.services() if s.name not in NOT_NEEDED])
        yield stack
    finally:
        stack.down(timeout_s=5, at_once=True)


def pause(airflow: AirflowAPI, dag_id: str) -> bool:
    """Pause ``dag_id``; False while the dag-processor has not parsed it yet (404). A locked SQLite
    metadata database (500 "Database error") is waited out by the client."""
    try:
        airflow.call("PATCH", f"/dags/{dag_id}", {"is_paused": True})
    except AirflowApiError as exc:
        if exc.status == 404:
            return False
        raise
    return True


def test_a_message_produced_outside_airflow_fires_the_watcher_and_is_drained(watcher_stack: Stack):
    settings = load_settings(watcher_stack.pipeline_env())
    assert settings.drain_trigger == "watcher"
    arrivals = arrivals_asset(settings)
    watched = arrivals.uri
    # after firing, the trigger skips the messages of the next quiet_s seconds (a burst fires once)
    quiet_s = arrivals.watchers[0].trigger.quiet_s
    airflow = AirflowAPI(watcher_stack)
    # nothing of ours produces: ingest and heal paused as soon as they are parsed, and a running
    # minute of ingest (its ticks) over; a paused DAG's runs stay as they are, its running tasks end
    for dag_id in ("btc_ingest", "btc_heal"):
        wait_for(lambda dag_id=dag_id: pause(airflow, dag_id), 60, f"{dag_id} to be parsed", 1)
    running = {"state": ["running", "queued", "scheduled"], "limit": 10}
    wait_for(
        lambda: not airflow.call("GET", "/dags/btc_ingest/dagRuns/~/taskInstances", query=running)["task_instances"],
        120,
        "btc_ingest's running tasks to end",
    )
    # btc_drain is scheduled on the watched asset (and its 30 s timer), not on the producers' outlet
    schedule = json.dumps(airflow.call("GET", "/dags/btc_drain/details")["asset_expression"])
    assert watched in schedule, schedule

    producer = new_producer(watcher_stack)
    first = datetime(2020, 1, 1, tzinfo=UTC) + timedelta(minutes=int(datetime.now(UTC).timestamp()) % 500_000)

    def outside_candle(i: int) -> Observation:
        """A valid candle of a minute of 2020 nobody else writes, from no task of Airflow's."""
        minute = first + timedelta(minutes=i)
        return Observation(
            "coinbase", "BTC-USD", "candle_1m", minute, 7200.0, datetime.now(UTC), "outside-airflow",
            7190.0, 7210.0, 7180.0, 7200.0, 0.5,
        )  # fmt: skip

    def watched_events_since(moment: datetime) -> list[dict[str, Any]]:
        since = urllib.parse.quote(moment.isoformat())
        events = airflow.call("GET", f"/assets/events?timestamp_gte={since}&limit=50")["asset_events"]
        return [e for e in events if e["uri"] == watched]

    # The watcher's consumer starts at the topic's end when its group first joins (what came before
    # is the drain's timer's): warm it up until it has noticed a message, as a running stack has.
    warm_up = iter(range(1, 100))
    warm_start = datetime.now(UTC)

    def noticed() -> list[dict[str, Any]] | None:
        sent = datetime.now(UTC)
        produce_all(producer, settings.topic, [Record(*outside_candle(next(warm_up)).encode())])
        return poll(lambda: watched_events_since(sent), 5, 0.5)  # None: not yet, produce another

    warmed_up = wait_for(noticed, 120, "the triggerer's watcher to notice a first message", 0)

    def quiet_since_the_last_event() -> bool:
        """The trigger fires again: its last event (recorded after it fired) is quiet_s old."""
        newest = max(parse_iso(e["timestamp"], "timestamp") for e in warmed_up + watched_events_since(warm_start))
        return (datetime.now(UTC) - newest).total_seconds() > quiet_s

    wait_for(quiet_since_the_last_event, 30, f"the trigger's quiet period ({quiet_s} s) after its last event", 0.5)

    candle = outside_candle(0)
    produced_at = datetime.now(UTC)
    produce_all(producer, settings.topic, [Record(*candle.encode())])

    (event, *_) = wait_for(
        lambda: watched_events_since(produced_at), 30, f"an asset event of {watched} after the message", 0.5
    )
    assert event["source_dag_id"] is None and event["extra"]["from_trigger"], event  # the triggerer's, no task's
    store = Store.connect(watcher_stack.mongo_uri, settings.mongo_db)
    try:
        wait_for(lambda: store.db["prices"].find_one({"_id": candle.key}), 120, "the candle in MongoDB", 0.5)
    finally:
        store.close()
    fired = (parse_iso(event["timestamp"], "timestamp") - produced_at).total_seconds()
    print(f"\nwatcher fired {fired:.1f} s after the message: {event}")
