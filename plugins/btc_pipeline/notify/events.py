"""The pipeline's events turned into messages for their channels: price alerts, failed and
recovered DAGs, data gone stale and fresh again. Each function is a no-op (no read, no write, no
message) when its topic has no URL, so a pipeline without ``BTC_NOTIFY_URLS`` runs as before.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from btc_pipeline.alerts import Alert
from btc_pipeline.config import Settings
from btc_pipeline.health import pipeline_health
from btc_pipeline.notify import episodes, messages
from btc_pipeline.notify.deliver import WORST_SEND_S, Delivery, deliver

if TYPE_CHECKING:
    from btc_pipeline.store import Store

log = logging.getLogger(__name__)

#: The episode of the data's freshness.
DATA_KEY = "data"
#: The shortest time a claim to send an alert holds (:func:`alert_claim_lease`).
ALERT_CLAIM_LEASE = timedelta(minutes=5)
#: How far back :func:`resend_lost_alerts` looks: an older alert is not news any more.
RESEND_WITHIN = timedelta(hours=1)


def dag_key(dag_id: str) -> str:
    """The episode of a DAG's failures."""
    return f"dag:{dag_id}"


def alert_claim_lease(channels: int) -> timedelta:
    """How long a claim to send one alert to ``channels`` URLs holds: twice the longest its delivery
    can take (:data:`~btc_pipeline.notify.deliver.WORST_SEND_S` per URL, one after the other), and at
    least :data:`ALERT_CLAIM_LEASE`. A claim older than this was left by a run that died, so the
    alert is sent again; a live sender is never overtaken, however many URLs there are."""
    return max(ALERT_CLAIM_LEASE, timedelta(seconds=2 * channels * WORST_SEND_S))


def send_price_alerts(store: Store, settings: Settings, fired: Sequence[Alert]) -> list[Delivery]:
    """Send the recorded alerts ``fired`` to ``BTC_NOTIFY_PRICE_URLS``, each once: an alert another
    run sends or has sent is skipped (:meth:`~btc_pipeline.store.Store.claim_alerts`), and each is
    marked sent after its delivery, whatever the outcome (the delivery records say it). Each alert is
    claimed just before its own delivery, so a lease covers one delivery, not a queue of them."""
    urls = settings.notify_targets("price")
    if not urls or not fired:
        return []
    lease, deliveries = alert_claim_lease(len(urls)), []
    for alert in fired:
        if store.claim_alerts([alert], datetime.now(UTC), lease):
            deliveries += deliver(messages.price_alert(alert, settings.dashboard_url), urls, store)
            store.mark_alert_notified(alert, datetime.now(UTC))
    return deliveries


def resend_lost_alerts(store: Store, settings: Settings, now: datetime) -> list[Delivery]:
    """Send the alerts of the last :data:`RESEND_WITHIN` that no run sent: the run that recorded one
    died before its delivery (``btc_drain`` calls this as it starts)."""
    urls = settings.notify_targets("price")
    if not urls:
        return []
    lease = alert_claim_lease(len(urls))
    # the window covers two leases: with many URLs an alert's dead claim still expires inside it
    lost = store.unsent_alerts(now, max(RESEND_WITHIN, 2 * lease), lease)
    if lost:
        log.warning("%d price alert(s) recorded but never sent: sending them now", len(lost))
    return send_price_alerts(store, settings, lost[::-1])


def task_failed(
    store: Store,
    settings: Settings,
    *,
    dag_id: str,
    run_id: str,
    task_id: str,
    error: str,
    now: datetime,
    map_index: int = -1,
    try_number: int = 0,
) -> list[Delivery]:
    """A task of ``dag_id`` failed for good: say so if it starts a failing spell, or remind once
    ``BTC_NOTIFY_REPEAT_MIN`` has passed since the last message; else only count it."""
    urls = settings.notify_targets("failure")
    if not urls:
        return []
    repeat = timedelta(minutes=settings.notify_repeat_min)
    said, state = store.update_episode(dag_key(dag_id), lambda ep: _with_state(episodes.report(ep, now, repeat)))
    if said is None:
        log.info("%s failed again (%d since %s): no message until the reminder", dag_id, state.count, state.since)
        return []
    log_url = messages.task_log_url(settings.airflow_ui_url, dag_id, run_id, task_id, map_index, try_number)
    message = messages.run_failed(
        dag_id=dag_id,
        run_id=run_id,
        task_id=task_id,
        error=error,
        log_url=log_url,
        failures=state.count,
        since=state.since or now,
        reminder=said == "reminder",
    )
    return deliver(message, urls, store)


def run_succeeded(store: Store, settings: Settings, *, dag_id: str, run_id: str, now: datetime) -> list[Delivery]:
    """A run of ``dag_id`` succeeded: when it was failing, say that it recovered (once)."""
    urls = settings.notify_targets("failure")
    ended = _end(store, dag_key(dag_id)) if urls else None
    if ended is None or ended.since is None:
        return []
    message = messages.run_recovered(dag_id=dag_id, run_id=run_id, since=ended.since, now=now, failures=ended.count)
    return deliver(message, urls, store)


def check_freshness(store: Store, settings: Settings, now: datetime) -> list[Delivery]:
    """Compare the newest stored observation with ``BTC_STALE_AFTER_S`` (:func:`btc_pipeline.health.pipeline_health`):
    one message when the data goes stale, one when it is fresh again, nothing in between."""
    urls = settings.notify_targets("stale")
    if not urls:
        return []
    health = pipeline_health(store.latest(), [], now, settings.stale_after_s)
    if health.status == "stale":
        began = None if health.newest is None else health.newest + timedelta(seconds=settings.stale_after_s)
        said, _ = store.update_episode(DATA_KEY, lambda ep: _with_state(episodes.report(ep, now, None, since=began)))
        if said != "first":
            return []
        message = messages.data_stale(
            newest=health.newest,
            age_s=health.age_s,
            stale_after_s=settings.stale_after_s,
            dashboard_url=settings.dashboard_url,
        )
        return deliver(message, urls, store)
    ended = _end(store, DATA_KEY)
    if ended is None or ended.since is None:
        return []
    message = messages.data_fresh(
        since=ended.since, now=now, newest=health.newest, dashboard_url=settings.dashboard_url
    )
    return deliver(message, urls, store)


def _with_state(
    result: tuple[episodes.Say | None, episodes.Episode],
) -> tuple[tuple[episodes.Say | None, episodes.Episode], episodes.Episode]:
    said, after = result
    return (said, after), after


def _end(store: Store, key: str) -> episodes.Episode | None:
    """Close the episode of ``key``: the one that ended (say so once), or ``None`` when none was open."""
    if not store.episode(key).open:  # the usual case: one small read
        return None
    before = store.update_episode(key, lambda episode: (episode, episodes.Episode()))
    return before if before.open else None
