"""Airflow connections -> clients: the providers' Kafka and Mongo hooks with the pipeline's
guarantees enforced, handed to the stream and store code; and the few Airflow rules the task
bodies share (what a run's window is, which failures are not worth a retry)."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from airflow.providers.apache.kafka.hooks.consume import KafkaConsumerHook
from airflow.providers.apache.kafka.hooks.produce import KafkaProducerHook
from airflow.providers.mongo.hooks.mongo import MongoHook
from airflow.sdk.exceptions import AirflowFailException

from btc_pipeline.config import Settings, load_settings
from btc_pipeline.dag_ids import INGEST_DAG, PRODUCE_TASK, SUMMARIZE_TASK
from btc_pipeline.redact import redact_text
from btc_pipeline.steps.ingest import AllExchangesFailedError
from btc_pipeline.store import Store
from btc_pipeline.stream import BatchConsumer, consumer_config, producer_config
from btc_pipeline.window import Window


class GuaranteedProducerHook(KafkaProducerHook):  # type: ignore[misc]
    """The provider's producer hook, with idempotence and ``acks=all`` enforced on top of the connection."""

    def _get_client(self, config: dict[str, Any]) -> Any:
        return super()._get_client(producer_config(config))


class ManualCommitConsumerHook(KafkaConsumerHook):  # type: ignore[misc]
    """The provider's consumer hook, with manual commits enforced and our group id."""

    def __init__(self, topics: list[str], group_id: str, kafka_config_id: str) -> None:
        super().__init__(topics=topics, kafka_config_id=kafka_config_id)
        self.group_id = group_id

    def _get_client(self, config: dict[str, Any]) -> Any:
        return super()._get_client(consumer_config(config, self.group_id))


def producer(settings: Settings) -> Any:
    """An idempotent producer from the ``btc_kafka`` connection (``BTC_KAFKA_CONN_ID``)."""
    return GuaranteedProducerHook(kafka_config_id=settings.kafka_conn_id).get_producer()


def batch_consumer(settings: Settings, *, history: bool = False) -> BatchConsumer:
    """The drain's consumer of ``BTC_TOPIC`` from the ``btc_kafka`` connection: it stays while messages
    keep coming (``BTC_DRAIN_IDLE_S``), within ``BTC_DRAIN_MAX_SECONDS`` and ``BTC_DRAIN_MAX_MESSAGES``.
    With ``history``: the history drain's consumer of ``BTC_HISTORY_TOPIC`` (its own group, batches
    of ``BTC_HISTORY_BATCH_SIZE``)."""
    topic = settings.history_topic if history else settings.topic
    group = settings.history_consumer_group if history else settings.consumer_group
    hook = ManualCommitConsumerHook([topic], group, settings.kafka_conn_id)
    return BatchConsumer(
        hook.get_consumer(),
        topic,
        batch_size=settings.history_batch_size if history else settings.drain_batch_size,
        max_messages=HISTORY_DRAIN_MAX_MESSAGES if history else settings.drain_max_messages,
        max_seconds=history_drain_max_seconds(settings) if history else settings.drain_max_seconds,
        idle_s=settings.drain_idle_s,
    )


#: A history drain run stores a year (and more) in one run: a new run costs Airflow's scheduling
#: and task start, seconds each (measured: 100,000-message runs spent that five times per year).
HISTORY_DRAIN_MAX_MESSAGES = 2_000_000


def history_drain_max_seconds(settings: Settings) -> float:
    """How long one ``btc_history_drain`` run lasts at most: 15 minutes, or ``BTC_DRAIN_MAX_SECONDS``
    when longer."""
    return max(settings.drain_max_seconds, 900.0)


@contextmanager
def store(settings: Settings) -> Iterator[Store]:
    """The store of the ``btc_mongo`` connection (``BTC_MONGO_CONN_ID``), closed at the end.

    ``MongoHook`` reads its connection when it is built, so it is built here, inside the task.
    """
    with MongoHook(mongo_conn_id=settings.mongo_conn_id) as hook:
        yield Store(hook.get_conn()[settings.mongo_db])


def window_of(data_interval_start: datetime | None, data_interval_end: datetime | None) -> Window:
    """The run's data interval as a :class:`Window`.

    Raises:
        ValueError: The run has no data interval (a manual trigger without a logical date).
    """
    if data_interval_start is None or data_interval_end is None:
        raise ValueError(
            f"this run has no data interval: trigger {INGEST_DAG} with a logical date "
            f"(UI: 'Trigger' with a date; CLI: airflow dags trigger {INGEST_DAG} --logical-date 2026-01-01T10:00:00Z)"
        )
    return Window.of(data_interval_start, data_interval_end)


@contextmanager
def no_retry_when_permanent() -> Iterator[None]:
    """Fail the task without Airflow's retries when every exchange failed for good (HTTP 451, an
    unknown pair...): asking again in a minute gives the same answer and only delays the run."""
    try:
        yield
    except AllExchangesFailedError as exc:
        if exc.permanent:
            raise AirflowFailException(f"{exc} (not retried: these answers do not change by asking again)") from exc
        raise


log = logging.getLogger(__name__)

#: Tasks that record their run's outcome themselves (their summary would be lost if replaced).
RECORD_THEIR_OWN_RUN = frozenset({SUMMARIZE_TASK})


def failed_run_fields(task_id: str, error: str, produced: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The ``pipeline_runs`` fields of a failed run: the task and its error, and what the run did
    before it failed that is not lost with it: the recovery heal of ``btc_ingest``'s
    ``produce_window`` (its holes were produced to the topic whatever failed afterwards).

    Args:
        task_id: The task that failed.
        error: Its error, redacted.
        produced: ``produce_window``'s return value when it succeeded before the failure.

    Returns:
        The fields to record.
    """
    fields: dict[str, Any] = {"state": "failed", "failed_task": task_id, "error": error}
    if isinstance(produced, Mapping) and isinstance(produced.get("healed"), Mapping):
        fields["healed"] = dict(produced["healed"])
    return fields


def record_failed_run(context: Mapping[str, Any]) -> None:
    """``on_failure_callback`` of every task: record the run as failed in ``btc.pipeline_runs`` and
    the DAG's last runs (with the task and the error), so that the dashboard and the API can show a
    failure even though the run's own record task never ran. Never raises: a failing callback must
    not hide the task's failure."""
    try:
        ti, dag_run = context["ti"], context["dag_run"]
        if ti.task_id in RECORD_THEIR_OWN_RUN:
            return
        now = datetime.now(UTC)
        error = redact_text(str(context.get("exception") or ""))[:500]  # shown by the dashboard and the API
        produced = None
        if dag_run.dag_id == INGEST_DAG and ti.task_id != PRODUCE_TASK:
            produced = ti.xcom_pull(task_ids=PRODUCE_TASK)
        with store(load_settings()) as s:
            s.record_run(
                dag_run.dag_id,
                dag_run.run_id,
                started_at=dag_run.start_date or now,
                finished_at=now,
                fields=failed_run_fields(ti.task_id, error, produced),
            )
    except Exception:
        log.exception("could not record the failed run in btc.pipeline_runs")
