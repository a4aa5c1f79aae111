"""What the DAG files declare from the settings, read when a DAG file is parsed: the asset that
stands for the topic (its producers' outlet, the drain's trigger) and the retry policies.

A ``BTC_*`` variable with an unusable value makes the DAG file fail to import, with the
:class:`~btc_pipeline.config.ConfigError` message shown on the Airflow UI's import errors.
"""

from __future__ import annotations

from datetime import timedelta
from functools import cache
from typing import Any

from airflow.sdk import Asset

from btc_pipeline.config import Settings, load_settings
from btc_pipeline.tasks import arrival, hooks
from btc_pipeline.tasks.notifier import PipelineNotifier


@cache
def settings() -> Settings:
    """The settings, read once per DAG-file parse."""
    return load_settings()


def on_success(settings: Settings) -> PipelineNotifier | None:
    """``on_success_callback`` of every DAG: the recovery message after failures (see
    :mod:`~btc_pipeline.tasks.notifier`). None without a failure URL: then the scheduler asks the
    DAG processor for no callback at every run, and nothing changes."""
    return PipelineNotifier("succeeded") if settings.notify_targets("failure") else None


def history_asset(settings: Settings) -> Asset:
    """The asset of ``BTC_HISTORY_TOPIC`` (see :func:`topic_asset`): the history chunks' outlet,
    ``btc_history_drain``'s trigger."""
    topic = settings.history_topic
    return Asset(uri=f"kafka://{settings.kafka_conn_id}/{topic}", name=topic, group="kafka")


def topic_asset(settings: Settings) -> Asset:
    """The asset of ``BTC_TOPIC`` on the cluster of the ``btc_kafka`` connection.

    Tasks that produce to the topic declare it as an outlet; when one succeeds, Airflow records an
    asset event, and ``btc_drain`` (scheduled on the asset) starts at once instead of at its next
    timed run. The URI follows the Kafka provider's scheme, ``kafka://<server>/<topic>``, with the
    connection id as the server: the same DAGs run against the local broker and Redpanda.
    """
    return Asset(uri=f"kafka://{settings.kafka_conn_id}/{settings.topic}", name=settings.topic, group="kafka")


def drain_asset(settings: Settings) -> Asset:
    """What ``btc_drain`` is scheduled on, by ``BTC_DRAIN_TRIGGER``: the producers' outlet asset
    (``outlets``, the default) or the topic watched by the triggerer (``watcher``, see
    :mod:`btc_pipeline.tasks.arrival`)."""
    if settings.drain_trigger == "watcher":
        return arrival.arrivals_asset(settings)
    return topic_asset(settings)


def retry_args(retries: int, delay: timedelta, max_delay: timedelta) -> dict[str, Any]:
    """``default_args`` of a DAG: exponential retries, and the failure callbacks that record the run
    and tell the failure channels (``BTC_NOTIFY_URLS``, grouped per DAG)."""
    return {
        "on_failure_callback": [hooks.record_failed_run, PipelineNotifier("failed")],
        "retries": retries,
        "retry_delay": delay,
        "retry_exponential_backoff": True,
        "max_retry_delay": max_delay,
    }
