"""The pipeline's topics: names from the settings, partitions, and creation."""

from __future__ import annotations

import logging
from collections.abc import Mapping

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient, NewTopic

log = logging.getLogger(__name__)

#: Largest message our topics accept (topic config ``max.message.bytes``) and producers send.
MAX_BROKER_MESSAGE_BYTES = 2 * 1024 * 1024
#: Partitions of the data topic (the drain's unit of parallelism and ordering) and of the DLQ.
DATA_PARTITIONS = 3
DLQ_PARTITIONS = 1
#: Partitions of the history lane's topic: one consumer drains it, in time order, so that a batch
#: holds consecutive days and the read model writes each day once.
HISTORY_PARTITIONS = 1


def pipeline_topics(topic: str, dlq_topic: str, history_topic: str) -> dict[str, int]:
    """The topics the pipeline needs, name -> partition count (``BTC_TOPIC``, ``BTC_DLQ_TOPIC``,
    ``BTC_HISTORY_TOPIC``)."""
    return {topic: DATA_PARTITIONS, dlq_topic: DLQ_PARTITIONS, history_topic: HISTORY_PARTITIONS}


def ensure_topics(admin: AdminClient, topics: Mapping[str, int], *, timeout_s: float = 30.0) -> None:
    """Create the topics that do not exist yet (name -> partition count), replication 1 locally.

    Raises:
        KafkaException: The broker refused for another reason than "already exists".
    """
    futures = admin.create_topics(
        [
            NewTopic(
                name,
                num_partitions=parts,
                replication_factor=1,
                config={"max.message.bytes": str(MAX_BROKER_MESSAGE_BYTES)},
            )
            for name, parts in topics.items()
        ],
        operation_timeout=timeout_s,
        request_timeout=timeout_s,
    )
    for name, future in futures.items():
        try:
            future.result()
            log.info("created topic %s", name)
        except KafkaException as exc:
            if exc.args and exc.args[0].code() == KafkaError.TOPIC_ALREADY_EXISTS:
                continue
            raise
