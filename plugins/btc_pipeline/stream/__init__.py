"""All Kafka: client settings we never leave to chance, produce with confirmed delivery, bounded
consumption with commits only when the caller says so, consumer lag, topics, and the dead-letter
topic read back for ``btc-pipeline dlq``.

The functions take plain confluent-kafka clients, so that the Airflow task layer (which builds
them from the ``btc_kafka`` connection through the provider's hooks), the dev stack and the tests
share them. No other part of the package calls a Kafka client.
"""

from btc_pipeline.stream.clients import consumer_config, open_producer, open_reader, producer_config, watcher_config
from btc_pipeline.stream.consume import REPLAYED_FROM, BatchConsumer, ConsumedBatch, consumer_lag, dead_letter
from btc_pipeline.stream.deadletters import (
    DeadLetter,
    DeadLetterReadError,
    distinct,
    read_dead_letters,
    replay_record,
    selected,
)
from btc_pipeline.stream.produce import DeliveryError, Record, produce_all
from btc_pipeline.stream.topics import ensure_topics

__all__ = [
    "REPLAYED_FROM",
    "BatchConsumer",
    "ConsumedBatch",
    "DeadLetter",
    "DeadLetterReadError",
    "DeliveryError",
    "Record",
    "consumer_config",
    "consumer_lag",
    "dead_letter",
    "distinct",
    "ensure_topics",
    "open_producer",
    "open_reader",
    "produce_all",
    "producer_config",
    "read_dead_letters",
    "replay_record",
    "selected",
    "watcher_config",
]
