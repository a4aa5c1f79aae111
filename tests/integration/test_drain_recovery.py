"""The drain dies or its database disappears between the write and the commit: after recovery
every observation is in MongoDB exactly once. Real broker, real FerretDB, real processes."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from typing import Any

import pytest
from confluent_kafka import Consumer
from pymongo import MongoClient

from btc_pipeline.config import Settings
from btc_pipeline.exchanges import build_exchange
from btc_pipeline.steps.ingest import ingest_window
from devstack import Stack

from .conftest import OLD_WINDOW, ROOT, group_lag, new_consumer, new_producer, run_drain

pytestmark = pytest.mark.integration


class CrashBeforeCommit(Consumer):  # type: ignore[misc]
    """A real consumer whose commit never happens: the task "dies" right after the MongoDB write."""

    def commit(self, *args: Any, **kwargs: Any) -> None:
        raise RuntimeError("simulated crash between the MongoDB write and the offset commit")


def fill(stack: Stack, s: Settings) -> None:
    ingest_window(OLD_WINDOW, s, [build_exchange("coinbase", s)], new_producer(stack), "r")


def first_batch_written(db: Any) -> int:
    """How many of the 10 candles the dead run wrote: its first batch, all of it or, when the
    first fetch brought only some partitions' messages, part of it (CI once saw 8)."""
    written = db["prices"].count_documents({})
    assert 1 <= written <= 10, "the run wrote its first batch before it died"
    return written


def test_exception_after_the_write_commits_nothing_and_the_rerun_is_harmless(core_stack, scratch, mongo):
    fill(core_stack, scratch)
    crashing = new_consumer(core_stack, scratch.consumer_group, CrashBeforeCommit)
    with pytest.raises(RuntimeError, match="simulated crash"):
        run_drain(core_stack, scratch, mongo[scratch.mongo_db], run_id="crash", consumer=crashing)
    written = first_batch_written(mongo[scratch.mongo_db])
    assert group_lag(core_stack, scratch) == 10  # ...but nothing committed
    stats = run_drain(core_stack, scratch, mongo[scratch.mongo_db], run_id="ok")
    assert stats.consumed == 10 and stats.inserted == 10 - written and stats.unchanged == written
    assert mongo[scratch.mongo_db]["prices"].count_documents({}) == 10
    assert group_lag(core_stack, scratch) == 0


def test_process_killed_after_the_write_then_the_next_run_lands_exactly_once(core_stack, scratch, mongo):
    fill(core_stack, scratch)
    script = textwrap.dedent(
        f"""
        import os, signal
        from confluent_kafka import Consumer, Producer
        from pymongo import MongoClient
        from btc_pipeline.config import Settings
        from btc_pipeline.steps.drain import drain
        from btc_pipeline.store import Store
        from btc_pipeline.stream import BatchConsumer, consumer_config, producer_config

        class KilledBeforeCommit(Consumer):
            def commit(self, *a, **k):
                os.kill(os.getpid(), signal.SIGKILL)

        settings = Settings(**{scratch.model_dump()!r})
        kafka = {{"bootstrap.servers": "{core_stack.kafka_bootstrap}"}}
        consumer = KilledBeforeCommit(consumer_config(kafka, settings.consumer_group))
        source = BatchConsumer(consumer, settings.topic, batch_size=50, max_messages=5000, max_seconds=20)
        store = Store(MongoClient("{core_stack.mongo_uri}", tz_aware=True)[settings.mongo_db])
        drain(source, Producer(producer_config(kafka)), store, settings, run_id="killed")
        """
    )
    proc = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, env={"PYTHONPATH": str(ROOT / "plugins")}, timeout=120, check=False
    )
    assert proc.returncode == -9, "the drain process was killed by SIGKILL inside commit()"
    written = first_batch_written(mongo[scratch.mongo_db])
    assert group_lag(core_stack, scratch) == 10
    # joins once the dead member's 10 s session expired
    stats = run_drain(core_stack, scratch, mongo[scratch.mongo_db], run_id="ok")
    assert stats.consumed == 10 and stats.inserted == 10 - written and stats.unchanged == written
    assert mongo[scratch.mongo_db]["prices"].count_documents({}) == 10
    assert group_lag(core_stack, scratch) == 0


def test_database_stopped_during_a_run_fails_it_and_the_next_run_lands_everything(core_stack, scratch, mongo):
    fill(core_stack, scratch)
    short: MongoClient[Any] = MongoClient(core_stack.mongo_uri, serverSelectionTimeoutMS=2000)
    core_stack.stop("ferretdb")
    try:
        with pytest.raises(Exception, match=r"refused|Timeout|timed out"):
            run_drain(core_stack, scratch, short[scratch.mongo_db], run_id="db-down")
        assert group_lag(core_stack, scratch) == 10  # consumed, never committed
    finally:
        core_stack.up(["ferretdb"])
    stats = run_drain(core_stack, scratch, mongo[scratch.mongo_db], run_id="ok")
    assert stats.inserted == 10 and stats.lag_after == 0
    assert mongo[scratch.mongo_db]["prices"].count_documents({}) == 10
