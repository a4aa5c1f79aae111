"""The bodies of the DAGs' tasks: they get clients from Airflow connections and call the package.

Kept out of the DAG files so those stay thin and parse fast, and so the triggerer and the tests
can import them. Connections (``btc_kafka``, ``btc_mongo`` by default) are read here, inside the
tasks, never at DAG parse time.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from airflow.providers.apache.kafka.hooks.consume import KafkaConsumerHook
from airflow.providers.apache.kafka.hooks.produce import KafkaProducerHook
from airflow.providers.mongo.hooks.mongo import MongoHook
from confluent_kafka import Consumer, Producer

from btc_pipeline.config import Settings, load_settings
from btc_pipeline.drain import drain, record_drain_run
from btc_pipeline.gaps import NO_TRADE_MINUTES, record_no_trade_minutes
from btc_pipeline.ingest import ingest_window, run_document
from btc_pipeline.kafka_io import consumer_config, producer_config
from btc_pipeline.providers import build_provider
from btc_pipeline.store import PIPELINE_RUNS, record_run
from btc_pipeline.window import Window

log = logging.getLogger(__name__)


class GuaranteedProducerHook(KafkaProducerHook):  # type: ignore[misc]
    """The provider's producer hook, with idempotence and ``acks=all`` enforced on top of the connection."""

    def _get_client(self, config: dict[str, Any]) -> Producer:
        return super()._get_client(producer_config(config))


class ManualCommitConsumerHook(KafkaConsumerHook):  # type: ignore[misc]
    """The provider's consumer hook, with manual commits enforced and our group id."""

    def __init__(self, topics: list[str], group_id: str, kafka_config_id: str) -> None:
        super().__init__(topics=topics, kafka_config_id=kafka_config_id)
        self.group_id = group_id

    def _get_client(self, config: dict[str, Any]) -> Consumer:
        return super()._get_client(consumer_config(config, self.group_id))


def _mongo_db(settings: Settings) -> tuple[MongoHook, Any]:
    hook = MongoHook(mongo_conn_id=settings.mongo_conn_id)
    return hook, hook.get_conn()[settings.mongo_db]


def window_of(data_interval_start: datetime | None, data_interval_end: datetime | None) -> Window:
    """The run's data interval as a :class:`Window`.

    Raises:
        ValueError: The run has no data interval (a manual trigger without a logical date).
    """
    if data_interval_start is None or data_interval_end is None:
        raise ValueError(
            "this run has no data interval: trigger btc_ingest with a logical date "
            "(UI: 'Trigger' with a date; CLI: airflow dags trigger btc_ingest --logical-date 2026-01-01T10:00:00Z)"
        )
    return Window.of(data_interval_start, data_interval_end)


def produce_window(
    data_interval_start: datetime | None, data_interval_end: datetime | None, run_id: str
) -> dict[str, Any]:
    """Task body of ``btc_ingest.produce_window``: fetch the window and produce it to Kafka."""
    settings = load_settings()
    window = window_of(data_interval_start, data_interval_end)
    providers = [build_provider(name, settings) for name in settings.providers]
    producer = GuaranteedProducerHook(kafka_config_id=settings.kafka_conn_id).get_producer()
    # result.empty_minutes: minutes the exchange had no trades in; record_run stores them, so gap
    # checks tell them apart from holes
    return ingest_window(window, settings, providers, producer, run_id).to_dict()


def record_ingest_run(result: dict[str, Any], dag_id: str, run_id: str, started_at: datetime | None) -> None:
    """Task body of ``btc_ingest.record_run``: store the run's statistics in ``pipeline_runs``."""
    settings = load_settings()
    hook, db = _mongo_db(settings)
    with hook:
        record_run(
            db[PIPELINE_RUNS], run_document(dag_id, run_id, result, started_at or datetime.now(UTC), datetime.now(UTC))
        )
        empty = [datetime.fromisoformat(ts.replace("Z", "+00:00")) for ts in result.get("empty_minutes", [])]
        record_no_trade_minutes(db[NO_TRADE_MINUTES], result["source"], settings.symbol, empty, run_id)


def drain_topic(dag_id: str, run_id: str) -> dict[str, Any]:
    """Task body of ``btc_drain.drain``: one bounded drain of the topic into MongoDB."""
    settings = load_settings()
    started_at = datetime.now(UTC)
    consumer_hook = ManualCommitConsumerHook([settings.topic], settings.consumer_group, settings.kafka_conn_id)
    consumer: Consumer = consumer_hook.get_consumer()
    dlq_producer = GuaranteedProducerHook(kafka_config_id=settings.kafka_conn_id).get_producer()
    hook, db = _mongo_db(settings)
    with hook:
        stats = drain(consumer, dlq_producer, db, settings, run_id)
        record_drain_run(db, dag_id, run_id, stats, started_at, datetime.now(UTC))
    log.info("drain: %s", stats.to_dict())
    return stats.to_dict()
