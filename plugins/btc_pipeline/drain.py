"""Drain ``btc-metrics`` into MongoDB in small batches with an exactly-once effect.

Per batch: decode and validate every message; upsert the valid ones with one unordered bulk
write on the natural key; send the invalid ones to the dead-letter topic (original key and value,
reason in headers) and to ``btc.rejects``; only then commit the offsets, synchronously. Any failure
raises before the commit, so the next run re-reads the batch, and the upsert makes that harmless.

A run is bounded by a message count and a duration, and ends early once it has caught up with
every assigned partition.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, Producer, TopicPartition
from pymongo.database import Database

from btc_pipeline.config import Settings
from btc_pipeline.kafka_io import Record, produce_all
from btc_pipeline.schema import Observation, SchemaError, decode
from btc_pipeline.store import PIPELINE_RUNS, PRICES, REJECTS, ensure_indexes, record_rejects, record_run, upsert_prices

log = logging.getLogger(__name__)

TRANSIENT_COORDINATOR_ERRORS = frozenset(
    {KafkaError.NOT_COORDINATOR, KafkaError.COORDINATOR_LOAD_IN_PROGRESS, KafkaError.COORDINATOR_NOT_AVAILABLE}
)


@dataclass
class DrainStats:
    """What a drain run did; stored in ``pipeline_runs`` and returned to XCom."""

    consumed: int = 0
    upserted: int = 0
    modified: int = 0
    unchanged: int = 0
    rejected: int = 0
    batches: int = 0
    batch_ms: list[float] = field(default_factory=list)
    lag_before: int | None = None
    lag_after: int | None = None
    newest_ts: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def consumer_lag(consumer: Consumer, topic: str, *, timeout_s: float = 10.0, cached: bool = False) -> int:
    """Messages in ``topic`` not yet committed by the consumer's group (all partitions).

    Args:
        consumer: A consumer of the group.
        topic: The topic.
        timeout_s: Bound on each broker query.
        cached: Use the high watermarks the consumer learnt from its fetches where it has them
            (after a drain: no extra broker round trip per partition).

    Returns:
        The lag, summed over the topic's partitions.
    """
    metadata = consumer.list_topics(topic, timeout=timeout_s)
    if topic not in metadata.topics or metadata.topics[topic].error is not None:
        raise KafkaException(f"topic {topic} does not exist or is unavailable")
    partitions = [TopicPartition(topic, p) for p in metadata.topics[topic].partitions]
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            committed = consumer.committed(partitions, timeout=timeout_s)
            break
        except KafkaException as exc:
            # a broker that just (re)started is still loading its group coordinator
            if exc.args[0].code() not in TRANSIENT_COORDINATOR_ERRORS or time.monotonic() > deadline:
                raise
            time.sleep(0.5)
    lag = 0
    for tp in committed:
        where = TopicPartition(topic, tp.partition)
        low, high = consumer.get_watermark_offsets(where, cached=True) if cached else (-1, -1)
        if high < 0 or (tp.offset < 0 and low < 0):
            low, high = consumer.get_watermark_offsets(where, timeout=timeout_s)
        position = tp.offset if tp.offset >= 0 else low
        lag += max(high - position, 0)
    return lag


def reject_record(
    msg: Message, error: SchemaError, rejected_at: datetime, run_id: str
) -> tuple[Record, dict[str, Any]]:
    """The DLQ record (original key/value, reason in headers) and the ``rejects`` document of a bad message."""
    where = f"{msg.topic()}|{msg.partition()}|{msg.offset()}"
    headers = (
        ("dlq.reason", error.reason.encode()),
        ("dlq.detail", error.detail.encode()[:1000]),
        ("dlq.topic", str(msg.topic()).encode()),
        ("dlq.partition", str(msg.partition()).encode()),
        ("dlq.offset", str(msg.offset()).encode()),
    )
    value = msg.value() or b""
    key = msg.key() or b""
    doc = {
        "_id": where,
        "reason": error.reason,
        "detail": error.detail,
        "topic": msg.topic(),
        "partition": msg.partition(),
        "offset": msg.offset(),
        "key": key.decode("utf-8", "replace"),
        # keep the evidence, but not megabytes of it
        "value": value[:4096].decode("utf-8", "replace"),
        "value_bytes": len(value),
        "rejected_at": rejected_at,
        "run_id": run_id,
    }
    return Record(key=key, value=value, headers=headers), doc


def drain(
    consumer: Consumer,
    dlq_producer: Producer,
    db: Database[Any],
    settings: Settings,
    run_id: str,
    *,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> DrainStats:
    """Run one bounded drain: batches from ``settings.topic`` into ``db``.

    Args:
        consumer: A consumer built with :func:`btc_pipeline.kafka_io.consumer_config` (it is
            (re)subscribed to ``settings.topic`` here, and closed at the end).
        dlq_producer: An idempotent producer for the dead-letter topic.
        db: The ``btc`` database.
        settings: Batch size and the run's bounds.
        run_id: The Airflow run id (recorded with rejects and statistics).
        clock: Current time.

    Returns:
        The run's statistics (also written to ``pipeline_runs`` by :func:`record_drain_run`).

    Raises:
        KafkaException, DeliveryError, pymongo.errors.PyMongoError: Nothing of the failed batch was
            committed; the next run re-reads it.
    """
    stats = DrainStats(lag_before=consumer_lag(consumer, settings.topic))
    consumer.subscribe([settings.topic])
    deadline = time.monotonic() + settings.drain_max_seconds
    at_end: set[int] = set()
    try:
        while stats.consumed < settings.drain_max_messages and time.monotonic() < deadline:
            want = min(settings.drain_batch_size, settings.drain_max_messages - stats.consumed)
            messages = consumer.consume(num_messages=want, timeout=1.0)
            data = [m for m in messages if _is_data(m, at_end)]
            if data:
                for m in data:
                    at_end.discard(m.partition())
                _process_batch(data, consumer, dlq_producer, db, settings, run_id, stats, clock)
            assignment = {tp.partition for tp in consumer.assignment()}
            if assignment and assignment <= at_end:
                break  # caught up with every assigned partition
        stats.lag_after = consumer_lag(consumer, settings.topic, cached=True)
    finally:
        consumer.close()  # leave the group now, so the next run is assigned at once
    return stats


def _is_data(msg: Message, at_end: set[int]) -> bool:
    err = msg.error()
    if err is None:
        return True
    if err.code() == KafkaError._PARTITION_EOF:
        at_end.add(msg.partition())
        return False
    raise KafkaException(err)


def _process_batch(
    messages: Sequence[Message],
    consumer: Consumer,
    dlq_producer: Producer,
    db: Database[Any],
    settings: Settings,
    run_id: str,
    stats: DrainStats,
    clock: Callable[[], datetime],
) -> None:
    started = time.monotonic()
    valid: list[Observation] = []
    rejects: list[tuple[Record, dict[str, Any]]] = []
    now = clock()
    for msg in messages:
        try:
            valid.append(decode(msg.value()))
        except SchemaError as exc:
            log.warning("rejecting %s[%d]@%d: %s", msg.topic(), msg.partition(), msg.offset(), exc)
            rejects.append(reject_record(msg, exc, now, run_id))
    if stats.batches == 0:
        ensure_indexes(db)  # idempotent; once per run, and only when there is something to write
    result = upsert_prices(db[PRICES], valid, now=now)
    if rejects:
        produce_all(dlq_producer, settings.dlq_topic, (record for record, _ in rejects))
        record_rejects(db[REJECTS], (doc for _, doc in rejects))
    offsets: dict[tuple[str, int], int] = {}
    for msg in messages:
        where = (str(msg.topic()), int(msg.partition() or 0))
        offsets[where] = max(offsets.get(where, -1), int(msg.offset() or 0) + 1)
    consumer.commit(offsets=[TopicPartition(t, p, o) for (t, p), o in offsets.items()], asynchronous=False)
    stats.consumed += len(messages)
    stats.upserted += result.inserted
    stats.modified += result.modified
    stats.unchanged += result.unchanged
    stats.rejected += len(rejects)
    stats.batches += 1
    stats.batch_ms.append(round((time.monotonic() - started) * 1000, 1))
    if valid:
        newest = max(obs.ts for obs in valid).isoformat()
        stats.newest_ts = max(stats.newest_ts or newest, newest)


def record_drain_run(
    db: Database[Any], dag_id: str, run_id: str, stats: DrainStats, started_at: datetime, finished_at: datetime
) -> None:
    """Write the ``pipeline_runs`` document of a drain run."""
    record_run(
        db[PIPELINE_RUNS],
        {
            "_id": f"{dag_id}|{run_id}",
            "dag_id": dag_id,
            "run_id": run_id,
            "started_at": started_at,
            "finished_at": finished_at,
            **stats.to_dict(),
        },
    )
