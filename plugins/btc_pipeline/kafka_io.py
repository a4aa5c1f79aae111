"""Kafka plumbing: producer and consumer settings we never leave to chance, delivery that is
confirmed or fails loudly, and topic creation.

The functions take plain confluent-kafka clients so that the Airflow tasks (which build them
from the ``btc_kafka`` connection through the provider's hooks), the CLI and the tests share them.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Message, Producer
from confluent_kafka.admin import AdminClient, NewTopic

log = logging.getLogger(__name__)

#: Largest message our topics accept (topic config ``max.message.bytes``) and producers send.
MAX_MESSAGE_BYTES = 2 * 1024 * 1024

#: Settings that make a producer safe for this pipeline, whatever the connection says:
#: idempotent, acknowledged by all in-sync replicas, bounded in time.
PRODUCER_GUARANTEES: dict[str, Any] = {
    "enable.idempotence": True,
    "acks": "all",
    "compression.type": "zstd",
    "linger.ms": 5,
    "message.timeout.ms": 30_000,
    # Our messages are ~300 bytes; the headroom lets the drain copy an oversized bad message
    # (up to the topic's max.message.bytes) to the DLQ instead of losing it.
    "message.max.bytes": MAX_MESSAGE_BYTES,
}

#: Settings that make a consumer commit only when we say so, and start from the beginning.
CONSUMER_GUARANTEES: dict[str, Any] = {
    "enable.auto.commit": False,
    "enable.auto.offset.store": False,
    "auto.offset.reset": "earliest",
    "isolation.level": "read_committed",
    "enable.partition.eof": True,  # lets a bounded drain stop as soon as it has caught up
    # A drain killed mid-batch holds its partitions until its session expires; keep that short so
    # the next run (30 s later) is assigned them at once.
    "session.timeout.ms": 10_000,
    "heartbeat.interval.ms": 3_000,
}


class DeliveryError(RuntimeError):
    """The broker did not acknowledge every message; nothing may be assumed delivered."""


@dataclass(frozen=True)
class Record:
    """A message to send: key, value and optional headers."""

    key: bytes
    value: bytes
    headers: tuple[tuple[str, bytes], ...] = ()


def producer_config(base: Mapping[str, Any]) -> dict[str, Any]:
    """The connection's client settings with :data:`PRODUCER_GUARANTEES` enforced on top."""
    return {**base, **PRODUCER_GUARANTEES}


def consumer_config(base: Mapping[str, Any], group_id: str) -> dict[str, Any]:
    """The connection's client settings with a group id and :data:`CONSUMER_GUARANTEES` enforced."""
    return {"group.id": group_id, **base, **CONSUMER_GUARANTEES}


def produce_all(producer: Producer, topic: str, records: Iterable[Record], *, timeout_s: float = 60.0) -> int:
    """Produce ``records`` and wait for every delivery report.

    Args:
        producer: A producer (see :func:`producer_config`).
        topic: The topic to write to.
        records: What to send.
        timeout_s: How long to wait for outstanding deliveries.

    Returns:
        The number of messages the broker acknowledged (all of them).

    Raises:
        DeliveryError: A message was refused or not acknowledged in time. The caller must treat
            the whole batch as undelivered; re-sending is safe (keys are idempotent downstream).
    """
    failures: list[str] = []
    acked = 0

    def on_delivery(err: KafkaError | None, msg: Message) -> None:
        nonlocal acked
        if err is not None:
            failures.append(f"{msg.key()!r}: {err.str()}")
        else:
            acked += 1

    sent = 0
    for record in records:
        while True:
            try:
                producer.produce(
                    topic, key=record.key, value=record.value, headers=list(record.headers), on_delivery=on_delivery
                )
                break
            except BufferError:
                producer.poll(0.5)  # local queue full: serve callbacks, then try again
            except KafkaException as exc:
                raise DeliveryError(f"cannot queue a message for {topic}: {exc}") from exc
        sent += 1
        producer.poll(0)
    remaining = producer.flush(timeout_s)
    if remaining:
        raise DeliveryError(
            f"{remaining} of {sent} message(s) to {topic} still unacknowledged after {timeout_s:.0f}s: "
            "is the broker up?"
        )
    if failures:
        shown = "; ".join(failures[:5])
        raise DeliveryError(f"{len(failures)} of {sent} message(s) to {topic} were not delivered: {shown}")
    log.info("delivered %d message(s) to %s", acked, topic)
    return acked


def ensure_topics(admin: AdminClient, topics: Mapping[str, int], *, timeout_s: float = 30.0) -> None:
    """Create the topics that do not exist yet (name -> partition count), replication 1 locally.

    Raises:
        KafkaException: The broker refused for another reason than "already exists".
    """
    futures = admin.create_topics(
        [
            NewTopic(
                name, num_partitions=parts, replication_factor=1, config={"max.message.bytes": str(MAX_MESSAGE_BYTES)}
            )
            for name, parts in topics.items()
        ],
        operation_timeout=timeout_s,
        request_timeout=timeout_s,
    )
    for name, future in futures.items():
        try:
            future.result()
            log.info("created topic %s", name)
        except KafkaException as exc:
            if exc.args and exc.args[0].code() == KafkaError.TOPIC_ALREADY_EXISTS:
                continue
            raise
