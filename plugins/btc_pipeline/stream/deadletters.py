"""The dead-letter topic read back: one bounded pass from its beginning to the end it had when the
pass began (partitions assigned with explicit offsets: no consumer group, nothing committed), what
each dead letter says, and the record that replays one to the data topic.

The DLQ holds every message the drain could not store, even while MongoDB was down, so it is the
source of ``btc-pipeline dlq list`` and ``dlq replay``. Replaying is safe to repeat: keys are
natural and the drain upserts on them.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

from confluent_kafka import TIMESTAMP_NOT_AVAILABLE, Consumer, KafkaError, KafkaException, Message, TopicPartition

from btc_pipeline.errors import BtcPipelineError
from btc_pipeline.stream.consume import REPLAYED_FROM, message_headers, partition_eof, topic_partitions
from btc_pipeline.stream.produce import Record

#: Messages per fetch of a pass.
FETCH_MESSAGES = 500


class DeadLetterReadError(BtcPipelineError, RuntimeError):
    """The DLQ could not be read: the broker did not answer, the topic does not exist, or a fetch
    failed. The message says which."""


@dataclass(frozen=True)
class DeadLetter:
    """One message of the DLQ: where it is, when it was dead-lettered, the original key and value,
    and the ``dlq.*`` headers the drain gave it (see :func:`~btc_pipeline.stream.consume.dead_letter`)."""

    topic: str
    partition: int
    offset: int
    at: datetime | None
    key: bytes
    value: bytes
    headers: tuple[tuple[str, bytes], ...] = ()

    def header(self, name: str) -> str:
        """The text of header ``name`` ("" when absent)."""
        return next((v.decode("utf-8", "replace") for k, v in self.headers if k == name), "")

    @property
    def reason(self) -> str:
        """Why it was dead-lettered (``dlq.reason``; ``unknown`` without one)."""
        return self.header("dlq.reason") or "unknown"

    @property
    def origin(self) -> str:
        """``topic|partition|offset`` of the original message (the id of its ``btc.rejects`` record)."""
        return "|".join(self.header(f"dlq.{part}") for part in ("topic", "partition", "offset"))

    @property
    def where(self) -> str:
        """``topic|partition|offset`` of this dead letter."""
        return f"{self.topic}|{self.partition}|{self.offset}"


def selected(letter: DeadLetter, *, reason: str | None = None, since: datetime | None = None) -> bool:
    """Whether ``letter`` has ``reason`` (any when ``None``) and was dead-lettered at or after ``since``
    (any time when ``None``; a letter without a timestamp is never after ``since``)."""
    if reason is not None and letter.reason != reason:
        return False
    return since is None or (letter.at is not None and letter.at >= since)


def replay_record(letter: DeadLetter) -> Record:
    """The record that replays ``letter`` to the data topic: its original key and value, and the
    :data:`~btc_pipeline.stream.consume.REPLAYED_FROM` header naming the dead letter."""
    return Record(key=letter.key, value=letter.value, headers=((REPLAYED_FROM, letter.where.encode()),))


def distinct(letters: Iterable[DeadLetter]) -> Iterator[DeadLetter]:
    """``letters`` without repeats of a key and value seen before (a message dead-lettered again
    after a replay is in the DLQ twice; replaying it once is enough)."""
    seen: set[tuple[bytes, bytes]] = set()
    for letter in letters:
        fingerprint = (letter.key, hashlib.sha256(letter.value).digest())  # values may be megabytes
        if fingerprint not in seen:
            seen.add(fingerprint)
            yield letter


def read_dead_letters(consumer: Consumer, topic: str, *, timeout_s: float = 30.0) -> Iterator[DeadLetter]:
    """Every message of ``topic`` from its beginning up to its end when the pass began, in
    partition order. Nothing is committed; the caller closes ``consumer``.

    Args:
        consumer: A reader (see :func:`~btc_pipeline.stream.clients.open_reader`).
        topic: The DLQ (``BTC_DLQ_TOPIC``).
        timeout_s: Bound on each broker query, and on a wait for the next message.

    Yields:
        The dead letters.

    Raises:
        DeadLetterReadError: The topic does not exist, the broker did not answer in time, or a fetch failed.
    """
    try:
        yield from _read(consumer, topic, timeout_s)
    except KafkaException as exc:
        error = exc.args[0] if exc.args else exc
        raise DeadLetterReadError(f"{error.str() if isinstance(error, KafkaError) else error}") from exc


def _read(consumer: Consumer, topic: str, timeout_s: float) -> Iterator[DeadLetter]:
    ends: dict[int, int] = {}
    starts = []
    for partition in topic_partitions(consumer, topic, timeout_s):
        low, high = consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=timeout_s)
        if high > low:
            ends[partition] = high
            starts.append(TopicPartition(topic, partition, low))
    if not starts:
        return
    consumer.assign(starts)
    waited_since = time.monotonic()
    while ends:
        messages = consumer.consume(num_messages=FETCH_MESSAGES, timeout=0.5)
        if messages:
            waited_since = time.monotonic()
        elif time.monotonic() - waited_since > timeout_s:
            raise KafkaException(f"no message of {topic} for {timeout_s:.0f} s, with {sum(ends.values())} to read")
        for msg in messages:
            partition = int(msg.partition() or 0)
            if partition not in ends or _at_end(msg, ends[partition]):
                ends.pop(partition, None)
                continue
            yield _dead_letter(msg)
            if int(msg.offset() or 0) >= ends[partition] - 1:
                del ends[partition]


def _at_end(msg: Message, end: int) -> bool:
    """Whether ``msg`` marks the end of its partition's pass (an end-of-partition event, or a
    message that arrived after the pass began)."""
    return partition_eof(msg) or int(msg.offset() or 0) >= end


def _dead_letter(msg: Message) -> DeadLetter:
    kind, ms = msg.timestamp()
    return DeadLetter(
        topic=str(msg.topic()),
        partition=int(msg.partition() or 0),
        offset=int(msg.offset() or 0),
        at=None if kind == TIMESTAMP_NOT_AVAILABLE else datetime.fromtimestamp(ms / 1000, UTC),
        key=msg.key() or b"",
        value=msg.value() or b"",
        headers=message_headers(msg),
    )
