"""Notifications on the real stack, received by a real local webhook (and SMTP) server: a price
alert from the production drain, a failed btc_ingest run and its recovery through the Airflow
notifier of the DAG, stale data and fresh again, a receiver that answers 500 before it recovers,
and an e-mail. Each delivery is also read back from btc.notifications."""

from __future__ import annotations

import re
import socket
import urllib.parse
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from btc_pipeline.alerts import Alert
from btc_pipeline.notify import events
from btc_pipeline.notify.deliver import Outbox, deliver
from btc_pipeline.notify.messages import check_message
from btc_pipeline.schema import Observation
from btc_pipeline.store import Store
from btc_pipeline.store.layout import month_partition
from btc_pipeline.stream import Record, produce_all

from .conftest import NOTIFY_PORT, new_producer, poll, run_drain, wait_for

pytestmark = pytest.mark.integration

#: Short waits between tries, so that the retry tests take a second, not seven.
FAST = {"wait_min_s": 0.1, "wait_max_s": 0.2}


def tick(price: float, ts: datetime, source: str = "coinbase") -> Observation:
    return Observation(source, "BTC-USD", "tick", ts, price, ts, "notify-test", volume=0.01)


def produce_ticks(stack: Any, topic: str, ticks: list[Observation]) -> None:
    produce_all(new_producer(stack), topic, [Record(*t.encode()) for t in ticks])


def test_a_price_crossing_is_sent_once_with_rule_price_time_and_dashboard(stack, scratch, mongo, notify_receiver):
    path = f"price-{uuid.uuid4().hex[:8]}"
    settings = scratch.model_copy(
        update={"alert_above": 90_000.0, "alert_move_pct": 0.0, "notify_price_urls": (notify_receiver.url(path),)}
    )
    db, now = mongo[settings.mongo_db], datetime.now(UTC).replace(microsecond=0)
    produce_ticks(stack, settings.topic, [tick(89_000.0, now - timedelta(seconds=20))])
    run_drain(stack, settings, db)  # remembers the price below the level
    produce_ticks(stack, settings.topic, [tick(91_234.5, now - timedelta(seconds=5))])
    outbox = Outbox()
    stats = run_drain_with(stack, settings, db, outbox)
    outbox.close(30)
    assert len(stats.alerts) == 1
    (got,) = wait_for(lambda: notify_receiver.messages(path), 30, "the price alert at the receiver", 0.2)
    text = got.body["title"] + "\n" + got.body["message"]
    assert "rose above 90,000.00" in text
    assert "BTC_ALERT_ABOVE = 90,000.00" in text
    assert "consensus price: 91,234.50 USD" in text
    assert f"at: {(now - timedelta(seconds=5)).strftime('%Y-%m-%dT%H:%M:%SZ')}" in text
    assert settings.dashboard_url in text
    # the same prices again: the alert fired once, nothing more is sent
    produce_ticks(stack, settings.topic, [tick(91_300.0, now - timedelta(seconds=2))])
    outbox = Outbox()
    assert run_drain_with(stack, settings, db, outbox).alerts == []
    outbox.close(30)
    assert len(notify_receiver.messages(path)) == 1
    (recorded,) = Store(db).recent_deliveries()
    assert (recorded["kind"], recorded["outcome"], recorded["attempts"]) == ("price_alert", "sent", 1)
    assert recorded["channel"] == f"json://127.0.0.1:{notify_receiver.port}/***"
    # marked as sent: the sweep of the next drain run finds nothing to send again
    assert events.resend_lost_alerts(Store(db), settings, datetime.now(UTC) + timedelta(minutes=10)) == []


def test_an_alert_whose_run_died_before_sending_it_is_sent_by_the_next_run_once(scratch, mongo, notify_receiver):
    """A drain killed after recording an alert, before its outbox sent it (never claimed), and one
    killed while delivering (a claim older than its lease): the next run's sweep sends both, once."""
    path = f"lost-{uuid.uuid4().hex[:8]}"
    settings = scratch.model_copy(update={"notify_price_urls": (notify_receiver.url(path),)})
    store, now = Store(mongo[settings.mongo_db]), datetime.now(UTC)
    never = Alert("above", now - timedelta(minutes=2), 91_000.0, 90_000.0, message="BTC-USD rose above 90,000.00")
    dying = Alert("below", now - timedelta(minutes=9), 79_000.0, 80_000.0, message="BTC-USD fell below 80,000.00")
    store.record_alerts([never, dying])
    assert store.claim_alerts([dying], now - timedelta(minutes=8), events.ALERT_CLAIM_LEASE) == [dying]
    assert [d.outcome for d in events.resend_lost_alerts(store, settings, now)] == ["sent", "sent"]
    titles = [m.body["title"] for m in notify_receiver.messages(path)]
    assert titles == [f"BTC-USD price alert: {a.message}" for a in (dying, never)]  # oldest first
    assert events.resend_lost_alerts(store, settings, now + timedelta(minutes=10)) == []
    # the drain's own delivery of an alert a sweep sent (a run that redid the evaluation) is skipped
    assert events.send_price_alerts(store, settings, [never]) == []
    assert len(notify_receiver.messages(path)) == 2


def run_drain_with(stack: Any, settings: Any, db: Any, outbox: Outbox) -> Any:
    """The production drain step with an outbox (run_drain without one sends nothing)."""
    from btc_pipeline.steps.drain import drain
    from btc_pipeline.stream import BatchConsumer

    from .conftest import new_consumer

    source = BatchConsumer(
        new_consumer(stack, settings.consumer_group),
        settings.topic,
        batch_size=settings.drain_batch_size,
        max_messages=settings.drain_max_messages,
        max_seconds=settings.drain_max_seconds,
        idle_s=settings.drain_idle_s,
    )
    return drain(source, new_producer(stack), Store(db), settings, "notify-test", outbox=outbox)


def test_stale_data_is_told_once_and_fresh_again_once(scratch, mongo, notify_receiver):
    path = f"stale-{uuid.uuid4().hex[:8]}"
    settings = scratch.model_copy(update={"stale_after_s": 60, "notify_stale_urls": (notify_receiver.url(path),)})
    store, now = Store(mongo[settings.mongo_db]), datetime.now(UTC)
    store.write_observations([tick(90_000.0, now - timedelta(minutes=15))], now=now)
    assert [d.outcome for d in events.check_freshness(store, settings, now)] == ["sent"]
    assert events.check_freshness(store, settings, now + timedelta(seconds=30)) == []  # still stale: quiet
    (stale,) = notify_receiver.messages(path)
    assert stale.body["title"] == "BTC-USD data is stale"
    assert "BTC_STALE_AFTER_S = 60 s" in stale.body["message"] and "15 min old" in stale.body["message"]
    store.write_observations([tick(90_100.0, now)], now=now)
    assert [d.outcome for d in events.check_freshness(store, settings, now)] == ["sent"]
    assert events.check_freshness(store, settings, now) == []
    fresh = notify_receiver.messages(path)[1]
    # stale from the newest observation's time + 60 s: 14 min before now
    assert fresh.body["title"] == "BTC-USD data fresh again after 14 min"
    assert [d["kind"] for d in store.recent_deliveries()] == ["fresh", "stale"]


def test_a_receiver_answering_500_is_retried_then_recorded(scratch, mongo, notify_receiver):
    store = Store(mongo[scratch.mongo_db])
    flaky, down = f"flaky-{uuid.uuid4().hex[:8]}", f"down-{uuid.uuid4().hex[:8]}"
    notify_receiver.fail(flaky, 2)
    notify_receiver.fail(down, 100)
    message = check_message(datetime.now(UTC))
    sent, failed = deliver(message, [notify_receiver.url(flaky), notify_receiver.url(down)], store, **FAST)
    assert (sent.outcome, sent.attempts) == ("sent", 3)
    assert [r.status for r in notify_receiver.received if r.path == f"/{flaky}"] == [500, 500, 200]
    assert (failed.outcome, failed.attempts) == ("failed", 3)
    assert "500" in failed.detail and down not in failed.detail
    recorded = {d["channel"]: d for d in store.recent_deliveries()}
    channel = f"json://127.0.0.1:{notify_receiver.port}/***"
    assert len(recorded) == 1 and recorded[channel]["outcome"] in ("sent", "failed")
    stored = list(store.db["notifications"].find({}, {"_id": 0, "outcome": 1, "attempts": 1}))
    assert sorted((d["outcome"], d["attempts"]) for d in stored) == [("failed", 3), ("sent", 3)]


def test_an_email_reaches_a_local_smtp_server(scratch, mongo):
    class Inbox:
        def __init__(self) -> None:
            self.mails: list[Any] = []

        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 - aiosmtpd's
            self.mails.append(envelope)
            return "250 OK"

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    inbox = Inbox()
    server = Controller(inbox, hostname="127.0.0.1", port=port)
    server.start()
    try:
        url = f"mailto://127.0.0.1:{port}?from=btc@example.com&to=ops@example.com&mode=insecure"
        (delivery,) = deliver(check_message(datetime.now(UTC)), [url], Store(mongo[scratch.mongo_db]), **FAST)
    finally:
        server.stop()
    assert delivery.outcome == "sent"
    (mail,) = inbox.mails
    assert mail.rcpt_tos == ["ops@example.com"]
    assert "Subject: btc-pipeline test message" in mail.content.decode()


def test_the_scheduled_drain_sends_an_alert_a_dead_run_left_unsent(mongo, notify_receiver):
    """The production btc_drain (Airflow, every 30 s) starts by sending the recorded alerts nobody
    sent: one recorded here, as a drain killed before its delivery leaves it, arrives once."""
    store, now = Store(mongo["btc"]), datetime.now(UTC)
    lost = Alert("above", now - timedelta(minutes=3), 123_456.0, 120_000.0, message=f"left {uuid.uuid4().hex[:8]}")
    store.record_alerts([lost])

    def received() -> list[Any]:
        return [m for m in notify_receiver.messages("prices") if lost.message in m.body["title"]]

    (got,) = wait_for(received, 120, "the lost alert sent by a btc_drain run", 1)
    assert "BTC_ALERT_ABOVE = 120,000.00" in got.body["message"]
    # marked as sent once delivered: no later run sends it again (tests/store/test_alert_claims.py)
    partition = mongo["btc"][month_partition("alerts", lost.ts)]
    wait_for(lambda: (partition.find_one({"_id": lost.id}) or {}).get("notified_at"), 30, "the alert marked sent", 0.5)
    assert store.unsent_alerts(datetime.now(UTC), events.RESEND_WITHIN, events.ALERT_CLAIM_LEASE) == []


def test_a_failed_run_is_sent_once_with_its_log_link_then_its_recovery(stack, airflow, mongo, notify_receiver):
    def episode() -> dict[str, Any]:
        return mongo["btc"]["notifications.state"].find_one({"_id": "dag:btc_ingest"}) or {}

    def recoveries(since: int) -> list[Any]:
        return [m for m in notify_receiver.messages("failures")[since:] if m.body["title"] == "btc_ingest recovered"]

    # A scheduled btc_ingest run that succeeds between the manual run's two task failures ends the
    # episode in between (recovered, then failing anew): then the scenario is tried again.
    for _attempt in range(3):
        # this session's earlier failures of btc_ingest (other tests break it on purpose) are an
        # episode of their own: start a new one
        mongo["btc"]["notifications.state"].delete_one({"_id": "dag:btc_ingest"})
        seen = len(notify_receiver.messages("failures"))
        run = airflow.trigger_run("btc_ingest", {"logical_date": None, "conf": {}})  # no data interval: fails
        run_id = run["dag_run_id"]
        assert airflow.wait_run("btc_ingest", run_id)["state"] == "failed"

        def this_run() -> list[Any]:
            return [m for m in notify_receiver.messages("failures")[seen:] if run_id in m.body["message"]]  # noqa: B023

        got = wait_for(this_run, 60, "the failure message of the run", 0.5)[0]
        # both of its tasks failed: the second is counted in the same episode, not sent again
        state = wait_for(
            lambda: (episode().get("count", 0) >= 2 and episode()) or recoveries(seen),  # noqa: B023
            60,
            "both failed tasks counted (or a scheduled run's recovery in between)",
            0.5,
        )
        if isinstance(state, dict):
            break
    else:
        pytest.fail("three times a scheduled run's success came between the manual run's two task failures")
    assert got.body["title"] == "btc_ingest failed"
    text = got.body["message"]
    assert "- error: KeyError: 'data_interval_start'" in text  # a manual run without a date has no interval
    task = "produce_window" if "failed task: produce_window" in text else "stream_ticks"
    assert f"failed task: {task}" in text
    link = f"{stack.airflow_url}/dags/btc_ingest/runs/{urllib.parse.quote(run_id, safe='')}/tasks/{task}"
    assert link in text
    assert state["open"] and len(this_run()) == 1
    # the next scheduled run succeeds: one recovery message
    recovered = wait_for(
        lambda: [m for m in notify_receiver.messages("failures")[seen:] if m.body["title"] == "btc_ingest recovered"],
        180,
        "the recovery message",
    )
    assert len(recovered) == 1
    failures = re.search(r"it had failed (\d+) time", recovered[0].body["message"])
    assert failures and int(failures[1]) >= 2
    assert poll(lambda: not episode().get("open"), 10, 0.5)
    assert notify_receiver.port == NOTIFY_PORT
