"""The alternative way for ``btc_drain`` to learn that messages arrived: an ``AssetWatcher`` on the
topic, run by Airflow's triggerer (``BTC_DRAIN_TRIGGER=watcher``).

By default (``outlets``) every task that produces to the topic declares the topic's asset as an
outlet, and its success is the asset event that starts a drain. The watcher instead reads the topic
itself, with the Kafka provider's :class:`KafkaSharedStreamTrigger` (one consumer in the triggerer,
offsets committed only after the asset event is stored), so messages produced outside Airflow start
a drain too. Both were measured with ``bench/freshness.py``; the README's "How the drain is
triggered" gives the figures and why ``outlets`` stays the default.

The watcher's consumer group is not the drain's: it reads the topic only to notice arrivals, under
the group named in its own connection (``<BTC_KAFKA_CONN_ID>_watch``), which must set
``enable.auto.commit=false`` (the provider refuses to start otherwise).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Sequence
from typing import Any

from airflow.providers.apache.kafka.triggers.shared_stream import KafkaSharedStreamTrigger
from airflow.sdk import Asset, AssetWatcher
from airflow.triggers.base import TriggerEvent

from btc_pipeline.config import Settings


def watch_conn_id(settings: Settings) -> str:
    """The Kafka connection the watcher reads through: the pipeline's, with ``_watch`` appended
    (its extra: :func:`btc_pipeline.stream.watcher_config`)."""
    return f"{settings.kafka_conn_id}_watch"


class TopicArrivalTrigger(KafkaSharedStreamTrigger):  # type: ignore[misc]
    """Fire one event when a message arrives, then at most one per ``quiet_s`` seconds.

    One asset event per message would write a metadata row per message (a week's backfill is about
    30,000) for runs that coalesce anyway. A message skipped inside the quiet period is not lost: it
    arrived at most ``quiet_s`` after one that fired, so the drain run that event starts (or the one
    running, which stays until ``BTC_DRAIN_IDLE_S`` without a message) reads it; skipped messages
    still count as handled, so the shared consumer commits past them.
    """

    def __init__(
        self,
        *,
        topics: Sequence[str],
        kafka_config_id: str = "kafka_default",
        poll_timeout: float = 1.0,
        dlq_topic: str | None = None,
        quiet_s: float = 2.0,
    ) -> None:
        super().__init__(topics=topics, kafka_config_id=kafka_config_id, poll_timeout=poll_timeout, dlq_topic=dlq_topic)
        self.quiet_s = quiet_s

    def serialize(self) -> tuple[str, dict[str, Any]]:
        _, kwargs = super().serialize()
        return f"{type(self).__module__}.{type(self).__qualname__}", {**kwargs, "quiet_s": self.quiet_s}

    async def filter_shared_stream(self, shared_stream: AsyncIterator[Any]) -> AsyncIterator[TriggerEvent]:
        """Yield an event for the first message after a quiet period; skip the rest of a burst."""
        last_fired = float("-inf")
        skipped = 0
        async for _value in shared_stream:
            now = time.monotonic()
            if now - last_fired < self.quiet_s:
                skipped += 1
                continue
            last_fired = now
            yield TriggerEvent({"topics": list(self.topics), "coalesced_before": skipped})
            skipped = 0


def arrivals_asset(settings: Settings) -> Asset:
    """The asset ``btc_drain`` is scheduled on in ``watcher`` mode: the topic, watched by the triggerer.

    A separate asset from :func:`~btc_pipeline.tasks.schedules.topic_asset` (which the producers
    declare as their outlet) on purpose: Airflow attaches watchers per asset from the DAG files it
    parses, and a file that declared the same asset without the watcher would detach it.
    """
    trigger = TopicArrivalTrigger(topics=[settings.topic], kafka_config_id=watch_conn_id(settings))
    return Asset(
        uri=f"kafka://{watch_conn_id(settings)}/{settings.topic}",
        name=f"{settings.topic}-arrivals",
        group="kafka",
        watchers=[AssetWatcher(name=f"{settings.topic}-watcher", trigger=trigger)],
    )
