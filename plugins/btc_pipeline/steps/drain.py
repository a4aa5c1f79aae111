"""Drain ``btc-metrics`` into MongoDB in small batches with an exactly-once effect.

Per batch: decode and validate every message; write the valid ones idempotently on the natural
key; send the invalid ones to the dead-letter topic (original key and value, reason in headers) and
to ``btc.rejects``; only then commit the offsets, synchronously. Any failure raises before the
commit, so the next run re-reads the batch, and the idempotent write makes that harmless.

A run stores what arrives as it arrives: it ends once it has caught up with every assigned
partition and nothing new came for ``BTC_DRAIN_IDLE_S``, or at its bounds (a message count and a
duration). The price alerts are checked after the batches, at most every
:data:`ALERT_CHECK_INTERVAL_S`, so that a crossing is recorded while the run goes on; those that
fire are handed to the :class:`~btc_pipeline.notify.deliver.Outbox`, which sends them in the
background: no batch waits on a receiver.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from btc_pipeline.config import Settings
from btc_pipeline.notify import events
from btc_pipeline.notify.deliver import Outbox
from btc_pipeline.schema import Observation, SchemaError, decode
from btc_pipeline.steps.alerts import check_alerts
from btc_pipeline.store import Store, WriteResult, write_failure
from btc_pipeline.stream import BatchConsumer, ConsumedBatch, Record, dead_letter, produce_all
from btc_pipeline.stream.consume import Consumed
from btc_pipeline.timeutil import format_ts, utcnow

if TYPE_CHECKING:
    from confluent_kafka import Producer

log = logging.getLogger(__name__)

#: The shortest time between two checks of the price alerts within a run.
ALERT_CHECK_INTERVAL_S = 10.0


@dataclass
class DrainStats:
    """What a drain run did; stored in ``pipeline_runs`` and returned to XCom."""

    consumed: int = 0
    inserted: int = 0
    modified: int = 0
    unchanged: int = 0
    rejected: int = 0
    bar_minutes: int = 0
    buckets_written: int = 0
    batches: int = 0
    batch_ms: list[float] = field(default_factory=list)
    #: Of the batches' time: writing ``btc.prices``, and the read model (milliseconds, summed).
    prices_ms: float = 0.0
    read_model_ms: float = 0.0
    lag_before: int | None = None
    lag_after: int | None = None
    newest_ts: str | None = None
    ended_by: str | None = None
    alerts: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Rejection:
    """Why a consumed message could not be stored: a reason code, a detail, and the exception class
    when our code (the decoder, the store) raised rather than judged."""

    message: Consumed
    reason: str
    detail: str
    exception: str | None = None

    @classmethod
    def of_exception(cls, message: Consumed, reason: str, exc: Exception) -> Rejection:
        kind = type(exc)
        name = kind.__qualname__ if kind.__module__ == "builtins" else f"{kind.__module__}.{kind.__qualname__}"
        return cls(message, reason, f"{name}: {str(exc)[:500]}", exception=name)

    def dead_letter(self) -> Record:
        """The record for the dead-letter topic (original key and value, ``dlq.*`` headers)."""
        return dead_letter(self.message, self.reason, self.detail, exception=self.exception)


def reject_document(rejection: Rejection, rejected_at: datetime, run_id: str) -> dict[str, Any]:
    """The ``btc.rejects`` document of a bad message: where it was, why, and (the start of) what it said."""
    message = rejection.message
    value = message.value or b""
    return {
        "_id": message.where,
        "reason": rejection.reason,
        "detail": rejection.detail,
        "exception": rejection.exception,
        "topic": message.topic,
        "partition": message.partition,
        "offset": message.offset,
        "key": (message.key or b"")[:1024].decode("utf-8", "replace"),
        # keep the evidence, but not megabytes of it (the DLQ has the whole value)
        "value": value[:4096].decode("utf-8", "replace"),
        "value_bytes": len(value),
        "rejected_at": rejected_at,
        "run_id": run_id,
    }


def drain(
    source: BatchConsumer,
    dlq_producer: Producer,
    store: Store,
    settings: Settings,
    run_id: str,
    *,
    history: bool = False,
    outbox: Outbox | None = None,
) -> DrainStats:
    """Run one bounded drain: batches from ``source`` into ``store``.

    Args:
        source: The bounded consumer of ``settings.topic`` (or of ``settings.history_topic``;
            closed at the end).
        dlq_producer: An idempotent producer for the dead-letter topic.
        store: The ``btc`` database.
        settings: The dead-letter topic.
        run_id: The Airflow run id (recorded with rejects and statistics).
        history: Draining the history lane: the read model is written once per batch, with low
            priority (see :meth:`~btc_pipeline.store.Store.write_observations`).
        outbox: Where the price alerts that fire are posted (``BTC_NOTIFY_PRICE_URLS``); None: not sent.

    Returns:
        The run's statistics (the task layer records them in ``btc.pipeline_runs``).

    Raises:
        KafkaException, DeliveryError, pymongo.errors.PyMongoError: Nothing of the failed batch was
            committed; the next run re-reads it.
    """
    unchecked = False  # stored something the alerts have not looked at yet
    last_check = time.monotonic()

    def alerts() -> None:  # after the commits: an alert is no reason to read a batch again
        nonlocal unchecked, last_check
        fired = check_alerts(store, settings.alert_rules, utcnow(), stale_after_s=settings.stale_after_s)
        stats.alerts += [a.message for a in fired]
        if outbox is not None and fired:
            outbox.call(events.send_price_alerts, store, settings, fired)
        unchecked, last_check = False, time.monotonic()

    with source:
        stats = DrainStats(lag_before=source.lag())
        for batch in source.batches():
            _drain_batch(batch, source, dlq_producer, store, settings, run_id, stats, history)
            unchecked = True
            if time.monotonic() - last_check >= ALERT_CHECK_INTERVAL_S:
                alerts()
        stats.lag_after = source.lag(cached=True)
        stats.ended_by = source.ended_by
    if unchecked:
        alerts()
    return stats


def decode_batch(
    messages: Sequence[Consumed], now: datetime, max_skew_s: float
) -> tuple[list[tuple[Consumed, Observation]], list[Rejection]]:
    """Decode every message of a batch: the observations, and the messages refused with their reason.

    Whatever a message holds ends on one side or the other: a decoder that breaks on it (a bug the
    property tests did not find) refuses it as ``internal_error`` instead of stopping the drain.
    """
    valid: list[tuple[Consumed, Observation]] = []
    refused: list[Rejection] = []
    for message in messages:
        try:
            valid.append((message, decode(message.value, now=now, max_skew_s=max_skew_s)))
        except SchemaError as exc:
            refused.append(Rejection(message, exc.reason, exc.detail))
        except Exception as exc:  # noqa: BLE001 - the message's content broke our code: isolate it
            refused.append(Rejection.of_exception(message, "internal_error", exc))
    return valid, refused


def store_isolating(
    store: Store, items: Sequence[tuple[Consumed, Observation]], now: datetime, *, history: bool = False
) -> tuple[WriteResult, list[Rejection]]:
    """Write observations; when the write fails because of what it holds, find the messages to blame.

    A failure that says the store is out (:func:`~btc_pipeline.store.write_failure`) is raised:
    the run fails without a commit and the batch is read again later. Any other failure is caused by
    a message's content (the server refused a document, or our code broke on a value): the batch is
    written again in halves, down to the single messages that fail, which are returned as rejections
    (``store_refused`` when the server refused, ``internal_error`` when our code raised). Writes are
    idempotent, so the halves written again change nothing twice.

    Returns:
        The counts of what was written, and the messages that could not be.

    Raises:
        Exception: The store is out (see above).
    """
    if not items:
        return WriteResult(), []
    try:
        return store.write_observations([obs for _, obs in items], now=now, history=history), []
    except Exception as exc:  # sorted below: an outage is raised, a bad message isolated
        reason = write_failure(exc)
        if reason == "outage":
            raise
        if len(items) == 1:
            log.error("cannot store %s (%s): %r", items[0][0].where, reason, exc)
            return WriteResult(), [Rejection.of_exception(items[0][0], reason, exc)]
        log.warning("a batch of %d failed to store (%r): writing it in halves to isolate the cause", len(items), exc)
    half = len(items) // 2
    first, refused_first = store_isolating(store, items[:half], now, history=history)
    second, refused_second = store_isolating(store, items[half:], now, history=history)
    return first + second, refused_first + refused_second


def _drain_batch(
    batch: ConsumedBatch,
    source: BatchConsumer,
    dlq_producer: Producer,
    store: Store,
    settings: Settings,
    run_id: str,
    stats: DrainStats,
    history: bool,
) -> None:
    started = time.monotonic()
    now = utcnow()
    valid, rejects = decode_batch(batch.messages, now, settings.max_clock_skew_s)
    if stats.batches == 0:
        store.ensure_indexes()  # idempotent; once per run, and only when there is something to write
    result, refused = store_isolating(store, valid, now, history=history)
    rejects += refused
    for rejection in rejects:
        log.warning("rejecting %s: %s: %s", rejection.message.where, rejection.reason, rejection.detail)
    if rejects:
        produce_all(dlq_producer, settings.dlq_topic, (r.dead_letter() for r in rejects))
        store.record_rejects((reject_document(r, now, run_id) for r in rejects), day=f"{now:%Y-%m-%d}")
    # every message of the batch is now stored or dead-lettered: only then move past it
    source.commit(batch)
    stats.consumed += len(batch)
    stats.inserted += result.inserted
    stats.modified += result.modified
    stats.unchanged += result.unchanged
    stats.bar_minutes += result.minutes_changed
    stats.buckets_written += result.buckets_written
    stats.prices_ms = round(stats.prices_ms + result.prices_ms, 1)
    stats.read_model_ms = round(stats.read_model_ms + result.read_model_ms, 1)
    stats.rejected += len(rejects)
    stats.batches += 1
    stats.batch_ms.append(round((time.monotonic() - started) * 1000, 1))
    refused_at = {r.message.where for r in refused}
    stored = [obs.ts for message, obs in valid if message.where not in refused_at]
    if stored:
        newest = format_ts(max(stored))
        stats.newest_ts = max(stats.newest_ts or newest, newest)
