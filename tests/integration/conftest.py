"""The real local stack for integration tests: Kafka, FerretDB, the simulated exchange, Airflow
(api-server, scheduler, dag-processor, triggerer), the dashboard and the read API, on free ports
and in a state directory of its own, so a running `make demo` is never touched. Started once per
session by the package's own launcher and stopped (by pid) even when tests fail: the core first
(``core_stack``: Kafka, FerretDB, the simulated exchange), the rest when a test asks for ``stack``.

Every test can run alone or in any order (``pytest -p randomly``): it stores the data it reads, in a
database of its own or, in the stack's ``btc`` database, in a time range no other test writes.
btc_heal fills every hole in the last 6 h 10 min (after the first candle stored), so only tests
that want a heal keep data there. The ranges in ``btc``, relative to when each test runs (days
apart, so that modules run minutes apart never meet):

  the last 6 h 30 min   live ingest; test_realtime's broker outage; test_backfill's heal test
  [T-7d-7h, T-7h)        test_backfill: 7-day backfill
  [T-8d, T-8d+1h)        test_backfill: Ctrl-C while waiting for MongoDB
  [T-10d, T-9d+1h)       test_backfill: a failed chunk (Binance's candles only)
  [T-14d, T-12d)         test_dashboard: two days of history (Coinbase candles of made-up prices)
  [T-17d-10m, T-15d+5m)  test_backfill: without trades (T-17d), gaps (T-16d), airflow backfill create (T-15d)
  the UTC day of T-19d   test_backfill: a backfilled day's read model and `rollups rebuild`
  one minute at T-21d    test_end_to_end: a triggered past window of btc_ingest
  [T-22d-5m, T-22d)      test_realtime: a btc_backfill chunk starts the drain
"""

from __future__ import annotations

import http.server
import json
import os
import shutil
import threading
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient
from pymongo import MongoClient
from pymongo.database import Database

from btc_pipeline.bars import BAR_LENGTH
from btc_pipeline.cli.airflow_client import AirflowApiError, AirflowClient
from btc_pipeline.config import ApiSettings, Settings, load_settings
from btc_pipeline.steps.drain import DrainStats, drain
from btc_pipeline.store import CONSENSUS, Store
from btc_pipeline.store.series import SeriesRegistry
from btc_pipeline.stream import BatchConsumer, consumer_config, ensure_topics, producer_config
from btc_pipeline.timeutil import format_ts
from btc_pipeline.window import Window
from devstack import Stack
from devstack.config import free_ports
from devstack.processes import free_port, port_is_open
from simexchange.pricepath import PricePath
from tests.conftest import CORE_STACK, OWN_STACK

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "state" / "test-artifacts"
#: The port of this session's webhook receiver (:func:`notify_receiver`), known before the stack starts.
NOTIFY_PORT = free_port()
#: The test stack runs on topics of other names than the defaults, so that every part (topic
#: creation, DAGs, drain, CLI) is shown to follow BTC_TOPIC / BTC_DLQ_TOPIC.
TEST_ENV = {
    "BTC_TOPIC": "it-btc-metrics",
    "BTC_DLQ_TOPIC": "it-btc-metrics-dlq",
    # Drain runs of 30 s rather than 240 s: tests that wait for a drain run to end, or pause the
    # drain, do not wait minutes (the live stack's drain still stays while messages arrive).
    "BTC_DRAIN_MAX_SECONDS": "30",
    # No retries: a broker outage fails each window within its minute (one delivery timeout), so
    # the outage test sees failed windows healed by the next successful run without waiting the
    # default retries' ten minutes. Nothing else needs them: the simulated exchange is always ready.
    "BTC_INGEST_RETRIES": "0",
    # ... and gives up on the broker after 5 s rather than 20 (a local broker acknowledges in ms)
    "BTC_INGEST_DELIVERY_TIMEOUT_S": "5",
    # Failed runs are sent to the session's webhook receiver (:func:`notify_receiver`): the
    # failure notifier of every DAG runs as in production (test_notifications reads what arrives).
    "BTC_NOTIFY_FAILURE_URLS": f"json://127.0.0.1:{NOTIFY_PORT}/failures",
    # ... and price alerts to its /prices: no alert rule is set, so only an alert a test records
    # itself is sent (the one a run died before sending, found by btc_drain's sweep)
    "BTC_NOTIFY_PRICE_URLS": f"json://127.0.0.1:{NOTIFY_PORT}/prices",
}
#: A closed past window of ten minutes the simulated exchange serves from its history.
OLD_WINDOW = Window(datetime(2026, 3, 1, 12, 0, tzinfo=UTC), datetime(2026, 3, 1, 12, 10, tzinfo=UTC))


@pytest.fixture(scope="session")
def core_stack() -> Iterator[Stack]:
    """The worker's stack with its core only: Kafka, FerretDB and the simulated exchange (seconds to
    start). The modules of ``CORE_STACK`` (tests/conftest.py) need nothing else."""
    # BTC_TEST_STATE_DIR lets two test sessions (e.g. two developers' checkouts) run side by side;
    # each xdist worker (gw0, gw1) has a stack of its own
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    base = Path(os.environ.get("BTC_TEST_STATE_DIR", ROOT / "state" / "test-stack"))
    state = (base.with_name(f"{base.name}-{worker}") if worker else base).resolve()
    ports = free_ports()
    # a clean slate each session: the assertions count documents
    probe = Stack("test", state_dir=state, ports=ports, env=TEST_ENV)
    probe.down()
    shutil.rmtree(state, ignore_errors=True)
    stack = Stack("test", state_dir=state, ports=ports, env=TEST_ENV)
    try:
        stack.up([service.name for service in stack.stages()[0]])
        yield stack
    finally:
        # only the ports of what was started: the core-only worker never binds Airflow's, and
        # another worker's stack may have picked the same free numbers meanwhile
        started = [s for s in stack.services() if stack.pid_of(s.name) is not None]
        # the stack is wiped at the next session: its running tasks need not finish (the scheduler
        # would wait for a lingering drain or a minute of ticks)
        stopped = stack.down(timeout_s=5, at_once=True)
        leftover = [(s.name, port) for s in started for port in s.ports if port_is_open(port)]
        assert not leftover, f"ports still open after down(): {leftover} (stopped {stopped})"


@pytest.fixture(scope="session")
def stack(core_stack: Stack) -> Stack:
    """The worker's full stack: the core, then Airflow, the dashboard and the read API (stopped with
    the core)."""
    core_stack.up()
    return core_stack


@pytest.fixture(autouse=True)
def _full_stack_outside_the_core_modules(request: pytest.FixtureRequest) -> None:
    """Every test of a module on the full stacks gets the full stack, whichever fixtures it names:
    one that reads MongoDB (``mongo``, on the core) while Airflow's schedule works for it would
    otherwise wait in vain when it runs first on its worker."""
    if request.path.name not in CORE_STACK | OWN_STACK:
        request.getfixturevalue("stack")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A module on the core stack (``CORE_STACK``) runs where no full stack is started: a test of
    its that asks for the full one is a mistake in the test list, said before anything runs."""
    wrong = [item.nodeid for item in items if item.path.name in CORE_STACK and "stack" in item.fixturenames]
    if wrong:
        raise pytest.UsageError(f"these tests use the full stack, but their modules are in CORE_STACK: {wrong}")


@pytest.fixture(scope="session")
def settings(core_stack: Stack) -> Settings:
    return load_settings(core_stack.pipeline_env())


@pytest.fixture(scope="session")
def mongo(core_stack: Stack) -> Iterator[MongoClient[Any]]:
    client: MongoClient[Any] = MongoClient(core_stack.mongo_uri, tz_aware=True)
    yield client
    client.close()


@pytest.fixture
def scratch(core_stack: Stack, settings: Settings, mongo: MongoClient[Any]) -> Settings:
    """Settings with a topic, DLQ, history topic, consumer groups and database of this test's own."""
    tag = uuid.uuid4().hex[:8]
    topic, dlq, history = f"t-{tag}", f"t-{tag}-dlq", f"t-{tag}-history"
    ensure_topics(AdminClient({"bootstrap.servers": core_stack.kafka_bootstrap}), {topic: 3, dlq: 1, history: 1})
    return settings.model_copy(
        update={
            "topic": topic,
            "dlq_topic": dlq,
            "history_topic": history,
            "consumer_group": f"g-{tag}",
            "history_consumer_group": f"g-{tag}-history",
            "mongo_db": f"db_{tag}",
            "drain_max_seconds": 20.0,
            "drain_idle_s": 0.0,  # end as soon as caught up, like a one-off drain
            "drain_batch_size": 50,
        }
    )


class AirflowAPI(AirflowClient):
    """The package's REST client, logged in as the stack's admin, with test conveniences."""

    def __init__(self, stack: Stack) -> None:
        super().__init__(ApiSettings(url=stack.airflow_url, user=stack.admin_user, password=stack.admin_password))
        self.login()

    def runs(self, dag_id: str) -> list[dict[str, Any]]:
        return self.call("GET", f"/dags/{dag_id}/dagRuns?limit=100&order_by=-run_after")["dag_runs"]

    def trigger_run(self, dag_id: str, body: dict[str, Any], timeout_s: float = 60) -> dict[str, Any]:
        """POST a run of ``dag_id``; sent again while the metadata database is busy (a 500 "Database
        error": its transaction was rolled back, no run was made), which the client never does for a
        POST. A stack just started, its scheduler catching up, is that busy: seen when a test that
        triggers a run came first."""

        def triggered() -> dict[str, Any] | None:
            try:
                return self.call("POST", f"/dags/{dag_id}/dagRuns", body)  # type: ignore[no-any-return]
            except AirflowApiError as exc:
                if exc.status == 500 and "Database error" in str(exc):
                    return None
                raise

        return wait_for(triggered, timeout_s, f"Airflow to accept a run of {dag_id}", 1.0)  # type: ignore[no-any-return]

    def wait_run(self, dag_id: str, run_id: str, timeout_s: float = 240) -> dict[str, Any]:
        def finished() -> dict[str, Any] | None:
            run = self.call("GET", f"/dags/{dag_id}/dagRuns/{urllib.request.quote(run_id, safe='')}")
            return run if run["state"] in ("success", "failed") else None

        return wait_for(finished, timeout_s, f"{dag_id} run {run_id} to finish")  # type: ignore[no-any-return]


@pytest.fixture(scope="session")
def airflow(stack: Stack) -> AirflowAPI:
    return AirflowAPI(stack)


class WaitTimeoutError(AssertionError):
    """A condition a test waited for did not come true in time (a test failure, never caught by tests)."""


def poll(predicate: Callable[[], Any], timeout_s: float, interval_s: float = 2.0) -> Any | None:
    """The first truthy value of ``predicate`` within ``timeout_s``, or ``None`` when it never came:
    for a caller that does something else then (tries again, says what it saw)."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            return None
        time.sleep(interval_s)


def wait_for(predicate: Callable[[], Any], timeout_s: float, what: str, interval_s: float = 2.0) -> Any:
    """The first truthy value of ``predicate``; :class:`WaitTimeoutError` (naming ``what``) after ``timeout_s``."""
    value = poll(predicate, timeout_s, interval_s)
    if value is None:
        raise WaitTimeoutError(f"timed out after {timeout_s:.0f}s waiting for {what}")
    return value


def wait_drained(stack: Stack, settings: Settings, timeout_s: float = 120) -> None:
    """Until the stack's drain has stored, and committed, everything produced so far: its consumer
    group's lag is 0 (the drain commits after both writes, btc.prices and the read model). What a
    test waits for before it counts documents that a message still on its way could change."""
    wait_for(lambda: group_lag(stack, settings) == 0, timeout_s, "the drain to catch up (consumer lag 0)", 1.0)
    wait_for(lambda: group_lag(stack, settings, history=True) == 0, timeout_s, "the history drain to catch up", 1.0)


# --- Kafka and drain helpers shared by the test modules -----------------------------------------


def new_producer(stack: Stack, **overrides: Any) -> Producer:
    """An idempotent producer on the stack's broker (the pipeline's own settings)."""
    return Producer({**producer_config({"bootstrap.servers": stack.kafka_bootstrap}), **overrides})


def new_consumer(stack: Stack, group: str, cls: type[Consumer] = Consumer) -> Consumer:
    """A consumer of ``group`` with the pipeline's guarantees (``cls``: a subclass that fails on purpose)."""
    return cls(consumer_config({"bootstrap.servers": stack.kafka_bootstrap}, group))


def run_drain(
    stack: Stack,
    settings: Settings,
    db: Database[Any],
    *,
    run_id: str = "test",
    consumer: Consumer | None = None,
    history: bool = False,
) -> DrainStats:
    """One bounded drain of ``settings.topic`` into ``db`` with the production step (``history``:
    of ``settings.history_topic``, as ``btc_history_drain`` drains it)."""
    source = BatchConsumer(
        consumer or new_consumer(stack, settings.history_consumer_group if history else settings.consumer_group),
        settings.history_topic if history else settings.topic,
        batch_size=settings.history_batch_size if history else settings.drain_batch_size,
        max_messages=settings.drain_max_messages,
        max_seconds=settings.drain_max_seconds,
        idle_s=settings.drain_idle_s,
    )
    return drain(source, new_producer(stack), Store(db), settings, run_id, history=history)


def read_topic(stack: Stack, topic: str, expected: int, *, wait_s: float = 30.0) -> list[Any]:
    """Everything in ``topic`` (waits for ``expected`` messages, then one more second for extras)."""
    c = new_consumer(stack, f"reader-{topic}-{time.time_ns()}")
    c.subscribe([topic])
    out: list[Any] = []
    deadline = time.monotonic() + wait_s
    while len(out) < expected and time.monotonic() < deadline:
        out += [m for m in c.consume(100, timeout=1.0) if m.error() is None]
    out += [m for m in c.consume(100, timeout=1.0) if m.error() is None]  # anything beyond expected
    c.close()
    return out


def group_lag(stack: Stack, settings: Settings, *, history: bool = False) -> int:
    """The consumer group's lag on ``settings.topic`` (the history drain's on ``settings.history_topic``)."""
    from btc_pipeline.stream import consumer_lag

    c = new_consumer(stack, settings.history_consumer_group if history else settings.consumer_group)
    try:
        return consumer_lag(c, settings.history_topic if history else settings.topic)
    finally:
        c.close()


# --- the read model, recomputed independently (pandas) from btc.prices ---------------------------

#: The read model's bar sizes, as pandas resampling rules (None: the 1-minute bars themselves).
INTERVALS = {"1m": None, "5m": "5min", "1h": "1h", "1d": "1D"}


def recompute(store: Store, window: Window) -> dict[tuple[str, str], pd.DataFrame]:
    """Every series at every level, from btc.prices, with pandas (not the read model's code)."""
    docs = list(store.db["prices"].find({"ts": {"$gte": window.start, "$lt": window.end}}))
    frame = pd.DataFrame(docs)
    frame["ts"] = pd.to_datetime(frame["ts"], utc=True)
    minutes: dict[str, pd.DataFrame] = {}
    candles = frame[frame["kind"] == "candle_1m"]
    for source, group in candles.groupby("source"):
        minutes[str(source)] = (
            group.set_index("ts")[["open", "high", "low", "close", "volume"]].assign(n=1).sort_index()
        )
    grouped = candles.groupby("ts")
    consensus = grouped[["open", "high", "low", "close"]].median()
    consensus["volume"] = grouped["volume"].sum()
    consensus["n"] = grouped["source"].count()
    minutes[CONSENSUS] = consensus.sort_index()
    ticks = frame[frame["kind"] == "tick"].sort_values("ts")
    for source, group in ticks.groupby("source"):
        by_minute = group.set_index("ts")["price"].resample("1min", label="left", closed="left")
        bars = pd.DataFrame(
            {"open": by_minute.first(), "high": by_minute.max(), "low": by_minute.min(), "close": by_minute.last()}
        ).dropna()
        minutes[f"{source}-ticks"] = bars.assign(volume=None, n=1)
    out: dict[tuple[str, str], pd.DataFrame] = {}
    for series, one_minute in minutes.items():
        for interval, rule in INTERVALS.items():
            if rule is None:
                out[(series, interval)] = one_minute
                continue
            resampled = one_minute.resample(rule, label="left", closed="left")
            volume = None if series.endswith("-ticks") else resampled["volume"].sum(min_count=1)
            bars = pd.DataFrame(
                {
                    "open": resampled["open"].first(),
                    "high": resampled["high"].max(),
                    "low": resampled["low"].min(),
                    "close": resampled["close"].last(),
                    "volume": volume,
                    "n": resampled["close"].count(),
                }
            )
            out[(series, interval)] = bars[bars["n"] > 0]
    return out


def assert_read_model_matches(store: Store, window: Window) -> int:
    """Every series and level of the read model equals the recompute, for the bars that lie wholly
    inside ``window`` (a bar that sticks out also holds minutes the recompute did not read).

    Returns:
        How many bars were compared.
    """
    expected = recompute(store, window)
    compared = 0
    assert {s for s, _ in expected} - {CONSENSUS} <= SeriesRegistry(store.db).known()
    for (series, interval), whole in expected.items():
        bar = BAR_LENGTH[interval]
        want = whole[(whole.index >= pd.Timestamp(window.start)) & (whole.index + bar <= pd.Timestamp(window.end))]
        got = store.bars(series, interval, window).set_index("ts")
        got = got[got.index + bar <= pd.Timestamp(window.end)]
        assert list(got.index) == list(want.index), f"{series} {interval}: other bars than btc.prices has"
        for column in ("open", "high", "low", "close"):
            assert got[column].tolist() == pytest.approx(want[column].tolist()), f"{series} {interval} {column}"
        assert got["n"].tolist() == want["n"].astype(int).tolist(), f"{series} {interval} n"
        if not series.endswith("-ticks"):
            assert got["volume"].tolist() == pytest.approx(want["volume"].tolist()), f"{series} {interval} volume"
        compared += len(got)
    return compared


# --- candles of the stack's simulated exchange -------------------------------------------------

#: The price path the stack's simulated exchange quotes (its default seed).
STACK_PATH = PricePath(42)


def candles(mongo: Any, window: Window) -> list[dict[str, Any]]:
    query = {"kind": "candle_1m", "symbol": "BTC-USD", "ts": {"$gte": window.start, "$lt": window.end}}
    return list(mongo["btc"]["prices"].find(query))


def assert_exact_once(mongo: Any, window: Window, *, except_minutes: set[datetime] = frozenset()) -> None:
    """Every minute of ``window`` (but ``except_minutes``) has exactly one candle, with the simulated
    exchange's exact prices (served by Coinbase, the first provider, which quotes the path as is)."""
    docs = candles(mongo, window)
    by_ts: dict[datetime, list[dict[str, Any]]] = {}
    for doc in docs:
        by_ts.setdefault(doc["ts"], []).append(doc)
    expected = set(window.minutes()) - set(except_minutes)
    assert set(by_ts) == expected, (
        f"missing {sorted(expected - set(by_ts))[:5]}, extra {sorted(set(by_ts) - expected)[:5]}"
    )
    duplicated = [ts for ts, found in by_ts.items() if len(found) != 1]
    assert not duplicated, f"{len(duplicated)} minute(s) stored more than once, e.g. {duplicated[:3]}"
    for ts, (doc,) in by_ts.items():
        sim = STACK_PATH.candle(ts)
        assert doc["source"] == "coinbase"
        assert doc["_id"] == f"coinbase|BTC-USD|candle_1m|{format_ts(ts)}"
        assert (doc["open"], doc["high"], doc["low"], doc["close"], doc["price"], doc["volume"]) == (
            sim.open,
            sim.high,
            sim.low,
            sim.close,
            sim.close,
            sim.volume,
        ), ts


# --- a webhook receiver for notifications ---------------------------------------------------------


@dataclass(frozen=True)
class Received:
    """One request the receiver answered: its path, JSON body (Apprise's ``json://``: ``title``,
    ``message``, ``type``), the status it answered and when (monotonic)."""

    path: str
    body: dict[str, Any]
    status: int
    at: float


class WebhookReceiver:
    """A small HTTP server that records every POST; ``fail(path, n)`` makes it answer 500 to the
    next ``n`` requests of ``path``."""

    def __init__(self, port: int = 0) -> None:
        self.received: list[Received] = []
        self._failures: dict[str, int] = {}
        self._lock = threading.Lock()
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                try:
                    body = json.loads(raw)
                except ValueError:
                    body = {"raw": raw.decode("utf-8", "replace")}
                with receiver._lock:
                    left = receiver._failures.get(self.path, 0)
                    status = 500 if left else 200
                    receiver._failures[self.path] = max(0, left - 1)
                    receiver.received.append(Received(self.path, body, status, time.monotonic()))
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def url(self, path: str) -> str:
        """The Apprise URL of ``path`` on this receiver (``json://127.0.0.1:PORT/path``)."""
        return f"json://127.0.0.1:{self.port}/{path.lstrip('/')}"

    def fail(self, path: str, times: int) -> None:
        with self._lock:
            self._failures["/" + path.lstrip("/")] = times

    def messages(self, path: str, *, status: int = 200) -> list[Received]:
        """What arrived at ``path`` and was answered with ``status``."""
        with self._lock:
            return [r for r in self.received if r.path == "/" + path.lstrip("/") and r.status == status]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="session")
def notify_receiver() -> Iterator[WebhookReceiver]:
    """The receiver of the stack's ``BTC_NOTIFY_FAILURE_URLS`` (port :data:`NOTIFY_PORT`), and of
    any URL a test makes with :meth:`WebhookReceiver.url`."""
    receiver = WebhookReceiver(NOTIFY_PORT)
    yield receiver
    receiver.close()
