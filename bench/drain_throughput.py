"""Drain throughput: messages/s from a Kafka topic into MongoDB, ``btc_pipeline.steps.drain`` against
the naive baseline seen in peer projects (auto-commit, one ``insert_one`` per message), measured
in the same run on the same real broker and database (a private Kafka + FerretDB stack).

    .venv/bin/python bench/drain_throughput.py [--messages 20000]

Prints both figures and the ratio. Nothing is asserted: timings vary with the machine.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient
from pymongo import MongoClient

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "plugins"), str(ROOT / "tools")]

from btc_pipeline.config import load_settings  # noqa: E402
from btc_pipeline.schema import Observation  # noqa: E402
from btc_pipeline.steps.drain import drain  # noqa: E402
from btc_pipeline.store import Store  # noqa: E402
from btc_pipeline.stream import (  # noqa: E402
    BatchConsumer,
    Record,
    consumer_config,
    ensure_topics,
    produce_all,
    producer_config,
)
from devstack import Stack  # noqa: E402
from devstack.config import free_ports  # noqa: E402


def observations(n: int) -> list[Record]:
    start = datetime(2025, 1, 1, tzinfo=UTC)
    fetched = datetime(2025, 6, 1, tzinfo=UTC)
    out = []
    for i in range(n):
        price = 90_000 + (i % 500)
        obs = Observation(
            source="coinbase",
            symbol="BTC-USD",
            kind="candle_1m",
            ts=start + timedelta(minutes=i),
            price=price + 1.0,
            open=float(price),
            high=price + 2.0,
            low=price - 1.0,
            close=price + 1.0,
            volume=0.5,
            fetched_at=fetched,
            run_id="bench",
        )
        out.append(Record(*obs.encode()))
    return out


def baseline(bootstrap: str, topic: str, mongo: MongoClient[Any], n: int) -> float:
    """What peer projects do: auto-commit on, one insert_one per message, no batching."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": "bench-baseline",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": True,
        }
    )
    started = time.perf_counter()  # like ours: from subscribe (group join included) to the last write
    consumer.subscribe([topic])
    collection = mongo["bench_baseline"]["prices"]
    done = 0
    while done < n:
        msg = consumer.poll(1.0)
        if msg is None or msg.error():
            continue
        doc = json.loads(msg.value())
        doc["ts"] = datetime.fromisoformat(doc["ts"])
        collection.insert_one(doc)
        done += 1
    elapsed = time.perf_counter() - started
    consumer.close()
    return n / elapsed


def ours(bootstrap: str, topic: str, mongo: MongoClient[Any], n: int) -> float:
    settings = load_settings({}).model_copy(
        update={
            "topic": topic,
            "dlq_topic": topic + "-dlq",
            "consumer_group": "bench-drain",
            "mongo_db": "bench_drain",
            "drain_max_messages": n,
            "drain_max_seconds": 600,
            "drain_batch_size": 1000,
        }
    )
    consumer = Consumer(consumer_config({"bootstrap.servers": bootstrap}, settings.consumer_group))
    source = BatchConsumer(consumer, topic, batch_size=1000, max_messages=n, max_seconds=600)
    producer = Producer(producer_config({"bootstrap.servers": bootstrap}))
    started = time.perf_counter()
    stats = drain(source, producer, Store(mongo[settings.mongo_db]), settings, run_id="bench")
    elapsed = time.perf_counter() - started
    assert stats.inserted == n, stats
    print(
        f"  (drain: {stats.batches} batches, {sum(stats.batch_ms) / 1000:.2f} s in batch processing, "
        f"{elapsed:.2f} s in all)"
    )
    return n / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--messages", type=int, default=20000)
    args = parser.parse_args()
    state = ROOT / "state" / "bench-stack"
    shutil.rmtree(state, ignore_errors=True)
    stack = Stack("test", state_dir=state, ports=free_ports())
    try:
        stack.up(["kafka", "ferretdb"])
        topic = "bench-metrics"
        ensure_topics(AdminClient({"bootstrap.servers": stack.kafka_bootstrap}), {topic: 3, topic + "-dlq": 1})
        produce_all(
            Producer(producer_config({"bootstrap.servers": stack.kafka_bootstrap})), topic, observations(args.messages)
        )
        mongo: MongoClient[Any] = MongoClient(stack.mongo_uri)
        base = baseline(stack.kafka_bootstrap, topic, mongo, args.messages)
        fast = ours(stack.kafka_bootstrap, topic, mongo, args.messages)
        print(f"drain throughput, {args.messages} messages, Kafka {stack.kafka_bootstrap} -> FerretDB (SQLite)")
        print(f"  baseline (auto-commit, insert_one per message): {base:10.0f} msg/s")
        print(f"  btc_pipeline drain (bulk insert, sync commit):  {fast:10.0f} msg/s")
        print(f"  ratio: {fast / base:.1f}x")
    finally:
        stack.down()


if __name__ == "__main__":
    main()
