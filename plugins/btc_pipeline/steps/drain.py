"""Drain ``btc-metrics`` into MongoDB in small batches with an exactly-once effect.

Per batch: decode and validate every message; write the valid ones idempotently on the natural
key; send the invalid ones to the dead-letter topic (original key and value, reason in headers) and
to ``btc.rejects``; only then commit the offsets, synchronously. Any failure raises before the
commit, so the next run re-reads the batch, and the idempotent write makes that harmless.

A run stores what arrives as it arrives: it ends once it has caught up with every assigned
partition and nothing new came for ``BTC_DRAIN_IDLE_S``, or at its bounds (a message count and a
duration). The price alerts are checked after the batches, at most every
:data:`ALERT_CHECK_INTERVAL_S`, so that a crossing is recorded while the run goes on.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from btc_pipeline.config import Settings
from btc_pipeline.schema import Observation, SchemaError, decode
from btc_pipeline.steps.alerts import check_alerts
from btc_pipeline.stream import BatchConsumer, ConsumedBatch, dead_letter, produce_all
from btc_pipeline.stream.consume import Consumed

if TYPE_CHECKING:
    from confluent_kafka import Producer

    from btc_pipeline.store import Store

log = logging.getLogger(__name__)

#: The shortest time between two checks of the price alerts within a run.
ALERT_CHECK_INTERVAL_S = 10.0


@dataclass
class DrainStats:
    """What a drain run did; stored in ``pipeline_runs`` and returned to XCom."""

    consumed: int = 0
    upserted: int = 0
    modified: int = 0
    unchanged: int = 0
    rejected: int = 0
    bar_minutes: int = 0
    buckets_written: int = 0
    batches: int = 0
    batch_ms: list[float] = field(default_factory=list)
    lag_before: int | None = None
    lag_after: int | None = None
    newest_ts: str | None = None
    ended_by: str | None = None
    alerts: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def reject_document(message: Consumed, error: SchemaError, rejected_at: datetime, run_id: str) -> dict[str, Any]:
    """The ``btc.rejects`` document of a bad message: where it was, why, and (the start of) what it said."""
    value = message.value or b""
    return {
        "_id": message.where,
        "reason": error.reason,
        "detail": error.detail,
        "topic": message.topic,
        "partition": message.partition,
        "offset": message.offset,
        "key": (message.key or b"").decode("utf-8", "replace"),
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
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> DrainStats:
    """Run one bounded drain: batches from ``source`` into ``store``.

    Args:
        source: The bounded consumer of ``settings.topic`` (closed at the end).
        dlq_producer: An idempotent producer for the dead-letter topic.
        store: The ``btc`` database.
        settings: The dead-letter topic.
        run_id: The Airflow run id (recorded with rejects and statistics).
        clock: Current time.

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
        fired = check_alerts(store, settings.alert_rules, clock(), stale_after_s=settings.stale_after_s)
        stats.alerts += [a.message for a in fired]
        unchecked, last_check = False, time.monotonic()

    with source:
        stats = DrainStats(lag_before=source.lag())
        for batch in source.batches():
            _drain_batch(batch, source, dlq_producer, store, settings, run_id, stats, clock)
            unchecked = True
            if time.monotonic() - last_check >= ALERT_CHECK_INTERVAL_S:
                alerts()
        stats.lag_after = source.lag(cached=True)
        stats.ended_by = source.ended_by
    if unchecked:
        alerts()
    return stats


def _drain_batch(
    batch: ConsumedBatch,
    source: BatchConsumer,
    dlq_producer: Producer,
    store: Store,
    settings: Settings,
    run_id: str,
    stats: DrainStats,
    clock: Callable[[], datetime],
) -> None:
    started = time.monotonic()
    valid: list[Observation] = []
    rejects: list[tuple[Consumed, SchemaError]] = []
    now = clock()
    for message in batch.messages:
        try:
            valid.append(decode(message.value))
        except SchemaError as exc:
            log.warning("rejecting %s: %s", message.where, exc)
            rejects.append((message, exc))
    if stats.batches == 0:
        store.ensure_indexes()  # idempotent; once per run, and only when there is something to write
    result = store.write_observations(valid, now=now)
    if rejects:
        produce_all(dlq_producer, settings.dlq_topic, (dead_letter(m, e.reason, e.detail) for m, e in rejects))
        store.record_rejects((reject_document(m, e, now, run_id) for m, e in rejects), day=f"{now:%Y-%m-%d}")
    source.commit(batch)
    stats.consumed += len(batch)
    stats.upserted += result.inserted
    stats.modified += result.modified
    stats.unchanged += result.unchanged
    stats.bar_minutes += result.minutes_changed
    stats.buckets_written += result.buckets_written
    stats.rejected += len(rejects)
    stats.batches += 1
    stats.batch_ms.append(round((time.monotonic() - started) * 1000, 1))
    if valid:
        newest = max(obs.ts for obs in valid).isoformat()
        stats.newest_ts = max(stats.newest_ts or newest, newest)
