"""Producer and consumer settings the pipeline enforces on top of whatever a connection says."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from btc_pipeline.stream.topics import MAX_MESSAGE_BYTES

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
    # the next run is assigned them at once.
    "session.timeout.ms": 10_000,
    "heartbeat.interval.ms": 3_000,
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
