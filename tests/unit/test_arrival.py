"""The drain's arrival watcher (``BTC_DRAIN_TRIGGER=watcher``): one event per burst, a trigger the
triggerer can rebuild, and a consumer group that never moves the drain's offsets."""

from __future__ import annotations

import asyncio
import importlib
from collections.abc import AsyncIterator

from btc_pipeline.config import load_settings
from btc_pipeline.stream import watcher_config
from btc_pipeline.tasks.arrival import TopicArrivalTrigger, arrivals_asset, watch_conn_id
from btc_pipeline.tasks.schedules import drain_asset, topic_asset


async def _messages(n: int) -> AsyncIterator[bytes]:
    for i in range(n):
        yield b'{"n": %d}' % i


def _events(trigger: TopicArrivalTrigger, n: int) -> list[dict]:
    async def collect() -> list[dict]:
        return [event.payload async for event in trigger.filter_shared_stream(_messages(n))]

    return asyncio.run(collect())


def test_a_burst_fires_once_and_counts_what_it_coalesced():
    trigger = TopicArrivalTrigger(topics=["btc-metrics"], kafka_config_id="btc_kafka_watch", quiet_s=3600)
    assert _events(trigger, 5) == [{"topics": ["btc-metrics"], "coalesced_before": 0}]


def test_without_a_quiet_period_every_message_fires():
    trigger = TopicArrivalTrigger(topics=["btc-metrics"], kafka_config_id="btc_kafka_watch", quiet_s=0)
    assert len(_events(trigger, 4)) == 4


def test_the_triggerer_can_rebuild_the_trigger_from_what_it_stores():
    trigger = TopicArrivalTrigger(topics=["b", "a"], kafka_config_id="btc_kafka_watch", quiet_s=1.5)
    classpath, kwargs = trigger.serialize()
    module, _, name = classpath.rpartition(".")
    rebuilt = getattr(importlib.import_module(module), name)(**kwargs)
    assert rebuilt.serialize() == (classpath, kwargs)
    assert kwargs["topics"] == ["a", "b"] and kwargs["quiet_s"] == 1.5
    assert rebuilt.shared_stream_key() == trigger.shared_stream_key()


def test_the_drain_is_scheduled_on_the_outlets_unless_told_to_watch():
    default = load_settings({})
    assert drain_asset(default) == topic_asset(default)
    watching = load_settings({"BTC_DRAIN_TRIGGER": "watcher", "BTC_TOPIC": "prices-x"})
    asset = drain_asset(watching)
    assert asset == arrivals_asset(watching)
    # not the producers' outlet asset: a DAG file declaring that one without the watcher would detach it
    assert asset.uri != topic_asset(watching).uri and asset.name != topic_asset(watching).name
    (watcher,) = asset.watchers
    assert watcher.trigger.topics == ["prices-x"]
    assert watcher.trigger.kafka_config_id == watch_conn_id(watching) == "btc_kafka_watch"


def test_the_watchers_connection_has_its_own_group_and_no_auto_commit():
    extra = watcher_config("127.0.0.1:9092", "btc-drain")
    assert extra["group.id"] == "btc-drain-arrivals"
    assert extra["enable.auto.commit"] == "false"
