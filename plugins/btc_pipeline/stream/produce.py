"""Produce with confirmed delivery: every message acknowledged by the broker, or an error."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass

from confluent_kafka import KafkaError, KafkaException, Message, Producer

from btc_pipeline.errors import BtcPipelineError

log = logging.getLogger(__name__)


class DeliveryError(BtcPipelineError, RuntimeError):
    """The broker did not acknowledge every message; nothing may be assumed delivered."""


@dataclass(frozen=True)
class Record:
    """A message to send: key, value and optional headers."""

    key: bytes
    value: bytes
    headers: tuple[tuple[str, bytes], ...] = ()


def produce_all(producer: Producer, topic: str, records: Iterable[Record], *, timeout_s: float = 60.0) -> int:
    """Produce ``records`` and wait for every delivery report.

    Args:
        producer: A producer (see :func:`btc_pipeline.stream.clients.producer_config`).
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
    queued = producer.flush(timeout_s)
    if queued:
        # flush() counts everything the producer still holds, earlier calls' messages included
        # (a tick stream reuses its producer round after round): report this call's own
        pending = sent - acked - len(failures)
        earlier = queued - pending
        raise DeliveryError(
            f"{pending} of {sent} message(s) to {topic} still unacknowledged after {timeout_s:.0f}s"
            + (f" (and {earlier} of earlier sends)" if earlier > 0 else "")
            + ": is the broker up?"
        )
    if failures:
        shown = "; ".join(failures[:5])
        raise DeliveryError(f"{len(failures)} of {sent} message(s) to {topic} were not delivered: {shown}")
    log.info("delivered %d message(s) to %s", acked, topic)
    return acked
