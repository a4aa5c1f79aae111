"""Producer and consumer settings the pipeline enforces on top of whatever a connection says."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from confluent_kafka import Consumer, Producer

from btc_pipeline.stream.topics import MAX_BROKER_MESSAGE_BYTES

#: Settings that make a producer safe for this pipeline: idempotent, acknowledged by all in-sync
#: replicas, bounded in time.
PRODUCER_GUARANTEES: dict[str, Any] = {
    "enable.idempotence": True,
    "acks": "all",
    "compression.type": "zstd",
    "linger.ms": 5,
    "message.timeout.ms": 30_000,
    # Our messages are ~300 bytes; the headroom lets the drain copy an oversized bad message
    # (up to the topic's max.message.bytes) to the DLQ instead of losing it.
    "message.max.bytes": MAX_BROKER_MESSAGE_BYTES,
}

#: Settings that make a consumer commit only when we say so, and start from the beginning.
CONSUMER_GUARANTEES: dict[str, Any] = {
    "enable.auto.commit": False,
    "enable.auto.offset.store": False,
    "auto.offset.reset": "earliest",
    "isolation.level": "read_committed",
    "enable.partition.eof": True,  # lets a bounded drain stop as soon as it has caught up
    # A drain killed mid-batch holds its partitions until its session expires; keep that short so
    # the next run is assigned them at once.
    "session.timeout.ms": 10_000,
    "heartbeat.interval.ms": 3_000,
}


#: Settings of a reader that goes through a topic on its own: partitions assigned with explicit
#: offsets, never a group member (librdkafka still wants a ``group.id``), nothing ever committed.
READER_GUARANTEES: dict[str, Any] = {
    "group.id": "btc-pipeline-reader",
    "enable.auto.commit": False,
    "enable.auto.offset.store": False,
    "isolation.level": "read_committed",
    "enable.partition.eof": True,  # a bounded read knows at once when a partition is done
}


def producer_config(base: Mapping[str, Any]) -> dict[str, Any]:
    """The connection's client settings with :data:`PRODUCER_GUARANTEES` enforced on top."""
    return {**base, **PRODUCER_GUARANTEES}


def consumer_config(base: Mapping[str, Any], group_id: str) -> dict[str, Any]:
    """The connection's client settings with a group id and :data:`CONSUMER_GUARANTEES` enforced."""
    return {"group.id": group_id, **base, **CONSUMER_GUARANTEES}


def watcher_config(bootstrap: str, consumer_group: str) -> dict[str, str]:
    """The Kafka connection extra of the drain's arrival watcher (``BTC_DRAIN_TRIGGER=watcher``).

    Its own group (``<consumer_group>-arrivals``), never the drain's, so noticing a message does
    not move the drain's offsets; auto-commit off, as the provider's shared-stream trigger demands
    (it commits only after the asset event is stored); ``latest``: only new arrivals are news.
    """
    return {
        "bootstrap.servers": bootstrap,
        "group.id": f"{consumer_group}-arrivals",
        "enable.auto.commit": "false",
        "auto.offset.reset": "latest",
    }


#: A command-line client's connection settings: librdkafka's own log lines (a failed connection
#: twenty times a second) stay out of the terminal; the error the command reports says it once.
QUIET = {"log_level": 2}


def open_reader(bootstrap: str) -> Consumer:
    """A reader (:data:`READER_GUARANTEES`) of the broker at ``bootstrap``: for the CLI, which has no
    Airflow connection (the tasks build their clients from ``btc_kafka``)."""
    return Consumer({"bootstrap.servers": bootstrap, **QUIET, **READER_GUARANTEES})


def open_producer(bootstrap: str) -> Producer:
    """An idempotent producer (:func:`producer_config`) to the broker at ``bootstrap``, for the CLI."""
    return Producer(producer_config({"bootstrap.servers": bootstrap, **QUIET}))
