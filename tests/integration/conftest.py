"""The real local stack for integration tests: Kafka, FerretDB, the simulated exchange, Airflow
(api-server, scheduler, dag-processor, triggerer) and the dashboard, on free ports and in a state
directory of its own, so a running `make demo` is never touched. Started once per session by the
package's own launcher and stopped (by pid) even when tests fail."""

from __future__ import annotations

import os
import shutil
import time
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka.admin import AdminClient
from pymongo import MongoClient

from btc_pipeline.airflow_api import AirflowClient
from btc_pipeline.config import ApiSettings, Settings, load_settings
from btc_pipeline.kafka_io import ensure_topics
from btc_pipeline.stack import Stack, free_port, port_is_open

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "state" / "test-artifacts"


@pytest.fixture(scope="session")
def stack() -> Iterator[Stack]:
    # BTC_TEST_STATE_DIR lets two test sessions (e.g. two developers' checkouts) run side by side
    state = Path(os.environ.get("BTC_TEST_STATE_DIR", ROOT / "state" / "test-stack")).resolve()
    ports = {name: free_port() for name in ("airflow", "dashboard", "kafka", "kafka_controller", "mongo", "simex")}
    # a clean slate each session: the assertions count documents
    probe = Stack("test", state_dir=state, ports=ports)
    probe.down()
    shutil.rmtree(state, ignore_errors=True)
    stack = Stack("test", state_dir=state, ports=ports)
    try:
        stack.up()
        yield stack
    finally:
        stopped = stack.down()
        leftover = [name for name, port in ports.items() if port_is_open(port)]
        assert not leftover, f"ports still open after down(): {leftover} (stopped {stopped})"


@pytest.fixture(scope="session")
def settings(stack: Stack) -> Settings:
    return load_settings(stack.pipeline_env())


@pytest.fixture(scope="session")
def mongo(stack: Stack) -> Iterator[MongoClient[Any]]:
    client: MongoClient[Any] = MongoClient(stack.mongo_uri, tz_aware=True)
    yield client
    client.close()


@pytest.fixture
def scratch(stack: Stack, settings: Settings, mongo: MongoClient[Any]) -> Settings:
    """Settings with a topic, DLQ, consumer group and database of this test's own."""
    tag = uuid.uuid4().hex[:8]
    topic, dlq = f"t-{tag}", f"t-{tag}-dlq"
    ensure_topics(AdminClient({"bootstrap.servers": stack.kafka_bootstrap}), {topic: 3, dlq: 1})
    return replace(
        settings,
        topic=topic,
        dlq_topic=dlq,
        consumer_group=f"g-{tag}",
        mongo_db=f"db_{tag}",
        drain_max_seconds=20.0,
        drain_batch_size=50,
    )


class AirflowAPI(AirflowClient):
    """The package's REST client, logged in as the stack's admin, with test conveniences."""

    def __init__(self, stack: Stack) -> None:
        super().__init__(ApiSettings(url=stack.airflow_url, user=stack.admin_user, password=stack.admin_password))
        self.login()

    def runs(self, dag_id: str) -> list[dict[str, Any]]:
        return self.call("GET", f"/dags/{dag_id}/dagRuns?limit=100&order_by=-run_after")["dag_runs"]

    def wait_run(self, dag_id: str, run_id: str, timeout_s: float = 240) -> dict[str, Any]:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            run = self.call("GET", f"/dags/{dag_id}/dagRuns/{urllib.request.quote(run_id, safe='')}")
            if run["state"] in ("success", "failed"):
                return run
            time.sleep(2)
        raise AssertionError(f"{dag_id} run {run_id} not finished after {timeout_s}s")


@pytest.fixture(scope="session")
def airflow(stack: Stack) -> AirflowAPI:
    return AirflowAPI(stack)


def wait_for(predicate: Any, timeout_s: float, what: str, interval_s: float = 2.0) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval_s)
    raise AssertionError(f"timed out after {timeout_s:.0f}s waiting for {what}")
