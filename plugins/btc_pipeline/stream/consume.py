"""Bounded consumption: batches of one topic for a consumer group, committed only when the caller
says so, until caught up or a bound is reached; the group's lag; dead-letter records.

A caller (the drain) iterates :meth:`BatchConsumer.batches`, writes each batch where it belongs and
then calls :meth:`BatchConsumer.commit` with it. Nothing is committed behind its back
(:data:`~btc_pipeline.stream.clients.CONSUMER_GUARANTEES`), so a failure before the commit means
the next run reads the batch again.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass
from types import TracebackType

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, TopicPartition

from btc_pipeline.stream.produce import Record

log = logging.getLogger(__name__)

TRANSIENT_COORDINATOR_ERRORS = frozenset(
    {KafkaError.NOT_COORDINATOR, KafkaError.COORDINATOR_LOAD_IN_PROGRESS, KafkaError.COORDINATOR_NOT_AVAILABLE}
)


@dataclass(frozen=True)
class Consumed:
    """One message as read: where it came from, its key and its value (both possibly empty)."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...] = ()

    @property
    def where(self) -> str:
        """``topic|partition|offset``: unique per message, the id of its reject record."""
        return f"{self.topic}|{self.partition}|{self.offset}"


@dataclass(frozen=True)
class ConsumedBatch:
    """Messages consumed together, in partition order; committing it commits past all of them."""

    messages: tuple[Consumed, ...]

    def __len__(self) -> int:
        return len(self.messages)

    def next_offsets(self) -> list[TopicPartition]:
        """The offsets to commit: one past the last message of each partition in the batch."""
        offsets: dict[tuple[str, int], int] = {}
        for m in self.messages:
            where = (m.topic, m.partition)
            offsets[where] = max(offsets.get(where, -1), m.offset + 1)
        return [TopicPartition(t, p, o) for (t, p), o in offsets.items()]


def topic_partitions(consumer: Consumer, topic: str, timeout_s: float) -> list[int]:
    """The partition numbers of ``topic``; a ``KafkaException`` when it does not exist or the broker did not answer."""
    metadata = consumer.list_topics(topic, timeout=timeout_s)
    if topic not in metadata.topics or metadata.topics[topic].error is not None:
        raise KafkaException(f"topic {topic} does not exist or is unavailable")
    return list(metadata.topics[topic].partitions)


def partition_eof(msg: Message) -> bool:
    """Whether ``msg`` is an end-of-partition event rather than a message; a ``KafkaException`` for any other error."""
    err = msg.error()
    if err is not None and err.code() != KafkaError._PARTITION_EOF:
        raise KafkaException(err)
    return err is not None


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

    Raises:
        KafkaException: The topic does not exist, or the broker could not answer in time.
    """
    partitions = [TopicPartition(topic, p) for p in topic_partitions(consumer, topic, timeout_s)]
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


#: How long one fetch waits for messages: the most a message that arrives while the consumer
#: waits is held back before it is handed on.
POLL_TIMEOUT_S = 0.5


class BatchConsumer:
    """One bounded pass over ``topic`` for the consumer's group.

    The pass hands on what arrives as it arrives, and ends once it has caught up with every
    assigned partition and nothing new came for ``idle_s`` seconds (at once with ``idle_s=0``), or
    when a bound is reached.

    Args:
        consumer: A consumer built with :func:`~btc_pipeline.stream.clients.consumer_config`; it is
            subscribed to ``topic`` here and closed by :meth:`close` (or the ``with`` block).
        topic: The topic to read.
        batch_size: The most messages per batch.
        max_messages: The most messages in the whole pass.
        max_seconds: The longest the pass may take.
        idle_s: How long to keep waiting for new messages once caught up.
    """

    def __init__(
        self,
        consumer: Consumer,
        topic: str,
        *,
        batch_size: int,
        max_messages: int,
        max_seconds: float,
        idle_s: float = 0.0,
    ) -> None:
        self.consumer = consumer
        self.topic = topic
        self.batch_size = batch_size
        self.max_messages = max_messages
        self.max_seconds = max_seconds
        self.idle_s = idle_s
        self.consumed = 0
        #: Why the pass ended: ``caught_up``, ``idle``, ``max_messages`` or ``max_seconds``.
        self.ended_by: str | None = None

    def __enter__(self) -> BatchConsumer:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    def lag(self, *, cached: bool = False) -> int:
        """The group's lag on the topic (see :func:`consumer_lag`)."""
        return consumer_lag(self.consumer, self.topic, cached=cached)

    def batches(self) -> Iterator[ConsumedBatch]:
        """Batches of data messages as they arrive, until caught up and idle, or a bound is reached.

        Yields:
            Non-empty batches; commit each with :meth:`commit` once it is stored.

        Raises:
            KafkaException: The broker reported an error for a fetch.
        """
        self.consumer.subscribe([self.topic])
        started = last_data = time.monotonic()
        deadline = started + self.max_seconds
        at_end: set[int] = set()
        while True:
            if self.consumed >= self.max_messages:
                self.ended_by = "max_messages"
                return
            if time.monotonic() >= deadline:
                self.ended_by = "max_seconds"
                return
            want = min(self.batch_size, self.max_messages - self.consumed)
            data: list[Consumed] = []
            for msg in self.consumer.consume(num_messages=want, timeout=POLL_TIMEOUT_S):
                if partition_eof(msg):
                    at_end.add(int(msg.partition() or 0))
                else:
                    at_end.discard(int(msg.partition() or 0))
                    data.append(_consumed(msg))
            if data:
                self.consumed += len(data)
                last_data = time.monotonic()
                yield ConsumedBatch(tuple(data))
            assignment = {tp.partition for tp in self.consumer.assignment()}
            if assignment and assignment <= at_end and time.monotonic() - last_data >= self.idle_s:
                self.ended_by = "idle" if self.idle_s else "caught_up"
                return

    def commit(self, batch: ConsumedBatch) -> None:
        """Commit past ``batch``, synchronously: when this returns the broker has stored the offsets.

        Raises:
            KafkaException: The commit failed; the batch will be read again.
        """
        self.consumer.commit(offsets=batch.next_offsets(), asynchronous=False)

    def close(self) -> None:
        """Leave the group now, so that the next pass is assigned the partitions at once."""
        self.consumer.close()


def _consumed(msg: Message) -> Consumed:
    return Consumed(
        topic=str(msg.topic()),
        partition=int(msg.partition() or 0),
        offset=int(msg.offset() or 0),
        key=msg.key(),
        value=msg.value(),
        headers=message_headers(msg),
    )


def message_headers(msg: Message) -> tuple[tuple[str, bytes], ...]:
    """The headers of ``msg`` as (name, value) pairs, an absent value as empty bytes."""
    return tuple((name, value or b"") for name, value in msg.headers() or ())


#: The header of a message replayed from the DLQ (``btc-pipeline dlq replay``): where its dead
#: letter was, ``dlq-topic|partition|offset``. A replayed message that fails again keeps it.
REPLAYED_FROM = "dlq.replayed_from"


def dead_letter(message: Consumed, reason: str, detail: str, *, exception: str | None = None) -> Record:
    """The dead-letter record of a bad message: its original key and value, the reason in headers
    (``dlq.reason``, ``dlq.detail``, ``dlq.topic``, ``dlq.partition``, ``dlq.offset``; ``dlq.exception``,
    the exception class, when our code raised; and :data:`REPLAYED_FROM`, when the message was a replay)."""
    replayed = tuple((name, value) for name, value in message.headers if name == REPLAYED_FROM)
    headers: tuple[tuple[str, bytes], ...] = (
        ("dlq.reason", reason.encode()),
        ("dlq.detail", detail.encode()[:1000]),
        ("dlq.topic", message.topic.encode()),
        ("dlq.partition", str(message.partition).encode()),
        ("dlq.offset", str(message.offset).encode()),
        *replayed,
    )
    if exception is not None:
        headers += (("dlq.exception", exception.encode()),)
    return Record(key=message.key or b"", value=message.value or b"", headers=headers)
