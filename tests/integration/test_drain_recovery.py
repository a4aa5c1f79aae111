"""The drain dies or its database disappears between the write and the commit: after recovery
every observation is in MongoDB exactly once. Real broker, real FerretDB, real processes."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Consumer, Producer
from pymongo import MongoClient

from btc_pipeline.config import Settings
from btc_pipeline.drain import consumer_lag, drain
from btc_pipeline.ingest import ingest_window
from btc_pipeline.kafka_io import consumer_config, producer_config
from btc_pipeline.providers import build_provider
from btc_pipeline.stack import Stack

from .test_kafka_to_mongo import WINDOW

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]


class CrashBeforeCommit(Consumer):  # type: ignore[misc]
    """A real consumer whose commit never happens: the task "dies" right after the MongoDB write."""

    def commit(self, *args: Any, **kwargs: Any) -> None:
        raise RuntimeError("simulated crash between the MongoDB write and the offset commit")


def fill(stack: Stack, s: Settings) -> None:
    ingest_window(
        WINDOW,
        s,
        [build_provider("coinbase", s)],
        Producer(producer_config({"bootstrap.servers": stack.kafka_bootstrap})),
        "r",
    )


def lag(stack: Stack, s: Settings) -> int:
    c = Consumer(consumer_config({"bootstrap.servers": stack.kafka_bootstrap}, s.consumer_group))
    try:
        return consumer_lag(c, s.topic)
    finally:
        c.close()


def drain_ok(stack: Stack, s: Settings, mongo: MongoClient[Any]):
    c = Consumer(consumer_config({"bootstrap.servers": stack.kafka_bootstrap}, s.consumer_group))
    return drain(
        c, Producer(producer_config({"bootstrap.servers": stack.kafka_bootstrap})), mongo[s.mongo_db], s, run_id="ok"
    )


def test_exception_after_the_write_commits_nothing_and_the_rerun_is_harmless(stack, scratch, mongo):
    fill(stack, scratch)
    crashing = CrashBeforeCommit(consumer_config({"bootstrap.servers": stack.kafka_bootstrap}, scratch.consumer_group))
    producer = Producer(producer_config({"bootstrap.servers": stack.kafka_bootstrap}))
    with pytest.raises(RuntimeError, match="simulated crash"):
        drain(crashing, producer, mongo[scratch.mongo_db], scratch, run_id="crash")
    assert mongo[scratch.mongo_db]["prices"].count_documents({}) == 10  # written...
    assert lag(stack, scratch) == 10  # ...but not committed
    stats = drain_ok(stack, scratch, mongo)
    assert stats.consumed == 10 and stats.upserted == 0 and stats.unchanged == 10
    assert mongo[scratch.mongo_db]["prices"].count_documents({}) == 10
    assert lag(stack, scratch) == 0


def test_process_killed_after_the_write_then_the_next_run_lands_exactly_once(stack, scratch, mongo):
    fill(stack, scratch)
    script = textwrap.dedent(
        f"""
        import os, signal
        from confluent_kafka import Consumer, Producer
        from pymongo import MongoClient
        from btc_pipeline.config import Settings
        from btc_pipeline.drain import drain
        from btc_pipeline.kafka_io import consumer_config, producer_config

        class KilledBeforeCommit(Consumer):
            def commit(self, *a, **k):
                os.kill(os.getpid(), signal.SIGKILL)

        settings = Settings(**{{**{asdict(scratch)!r}, "providers": tuple({list(scratch.providers)!r})}})
        kafka = {{"bootstrap.servers": "{stack.kafka_bootstrap}"}}
        consumer = KilledBeforeCommit(consumer_config(kafka, settings.consumer_group))
        producer = Producer(producer_config(kafka))
        drain(consumer, producer, MongoClient("{stack.mongo_uri}")[settings.mongo_db], settings, run_id="killed")
        """
    )
    proc = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, env={"PYTHONPATH": str(ROOT / "plugins")}, timeout=120, check=False
    )
    assert proc.returncode == -9, "the drain process was killed by SIGKILL inside commit()"
    assert mongo[scratch.mongo_db]["prices"].count_documents({}) == 10
    assert lag(stack, scratch) == 10
    stats = drain_ok(stack, scratch, mongo)  # joins once the dead member's 10 s session expired
    assert stats.consumed == 10
    assert mongo[scratch.mongo_db]["prices"].count_documents({}) == 10
    assert lag(stack, scratch) == 0


def test_database_stopped_during_a_run_fails_it_and_the_next_run_lands_everything(stack, scratch, mongo):
    fill(stack, scratch)
    short: MongoClient[Any] = MongoClient(stack.mongo_uri, serverSelectionTimeoutMS=2000)
    stack.stop("ferretdb")
    try:
        with pytest.raises(Exception, match=r"refused|Timeout|timed out"):
            drain(
                Consumer(consumer_config({"bootstrap.servers": stack.kafka_bootstrap}, scratch.consumer_group)),
                Producer(producer_config({"bootstrap.servers": stack.kafka_bootstrap})),
                short[scratch.mongo_db],
                scratch,
                run_id="db-down",
            )
        assert lag(stack, scratch) == 10  # consumed, never committed
    finally:
        stack.up(["ferretdb"])
    stats = drain_ok(stack, scratch, mongo)
    assert stats.upserted == 10 and stats.lag_after == 0
    assert mongo[scratch.mongo_db]["prices"].count_documents({}) == 10
