"""Shared test set-up. Airflow reads its configuration at import time, so a throw-away
AIRFLOW_HOME is set here, before any test module imports airflow."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import threading
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
#: Real exchange response bodies and a real BTC/USD minute series (see its PROVENANCE.md).
REALDATA = ROOT / "tests" / "fixtures" / "realdata"

_airflow_home = Path(tempfile.mkdtemp(prefix="btc-test-airflow-"))
os.environ.setdefault("AIRFLOW_HOME", str(_airflow_home))
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
os.environ.setdefault("AIRFLOW__CORE__DAGS_FOLDER", str(ROOT / "dags"))
os.environ.setdefault("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", f"sqlite:///{_airflow_home / 'airflow.db'}")


def pytest_runtest_setup(item: pytest.Item) -> None:
    """On an xdist worker, the tests without services run at a lower CPU priority
    (:data:`LOWER_PRIORITY`, for the rest of the worker's life): the stacks' services, started at the
    normal one, and the tests that wait on them go first on two cores, and these take the CPU left
    over. The stack workers run their integration modules first (see
    :func:`pytest_xdist_make_scheduler`), so only their last tests run lowered, and the worker
    without a full stack gets the :data:`OWN_STACK` and :data:`CORE_STACK` modules before any such
    test."""
    if not os.environ.get("PYTEST_XDIST_WORKER") or item.get_closest_marker("integration") is not None:
        return
    if os.getpriority(os.PRIO_PROCESS, 0) < LOWER_PRIORITY:
        os.setpriority(os.PRIO_PROCESS, 0, LOWER_PRIORITY)


#: The niceness of the tests without services on an xdist worker.
LOWER_PRIORITY = 10


def pytest_unconfigure(config: pytest.Config) -> None:
    """The throw-away AIRFLOW_HOME goes with the session (each xdist worker made its own)."""
    shutil.rmtree(_airflow_home, ignore_errors=True)


#: `make test` runs pytest-xdist workers (``TEST_WORKERS``, 3): the integration modules that need
#: Airflow go to at most :data:`MAX_STACKS` of them, each starting a full stack of its own; the third
#: runs the modules of :data:`OWN_STACK` and :data:`CORE_STACK`, then the tests without services. The
#: stacks' tests wait on Airflow's minute schedule, so two stacks halve the wall time on two cores; a
#: third full stack made it longer (10 min 48 s against 10 min 18 s: the CPU saturated). Each
#: integration module runs whole on one worker (its stack's start-up is paid once), in collection
#: order: file order, or shuffled with ``pytest -p randomly`` (no test builds on another's data). The
#: full stacks' modules are shared out by these durations (seconds, from ``make test`` JUnit reports,
#: ``tools/test_durations.py``; stack start-up included), longest first, each to the stack with the
#: least so far. A module missing here counts as 60 s.
MODULE_SECONDS = {
    "test_backfill.py": 385,
    "test_realtime.py": 178,
    "test_api_stack.py": 122,
    "test_notifications.py": 94,
    "test_dashboard.py": 85,
    "test_end_to_end.py": 37,
}

#: The most full stacks a test run starts (one per worker that gets their modules).
MAX_STACKS = 2
#: Integration modules that start what they need themselves and use no shared stack (the drain
#: watcher's full stack, 86 s; the read API's FerretDB): each is a unit of work like a test without
#: services, so it runs on the worker without a full stack, not beside one that would idle meanwhile.
OWN_STACK = frozenset({"test_drain_watcher.py", "test_api.py"})
#: Integration modules that need only the stack's core, Kafka, FerretDB and the simulated exchange
#: (the ``core_stack`` fixture, never ``stack``): one unit of work, on the worker without a full
#: stack, which starts that core alone in seconds. tests/integration/conftest.py refuses a test of
#: theirs that asks for the full stack.
CORE_STACK = frozenset(
    {
        "test_kafka_to_mongo.py",
        "test_poison_messages.py",
        "test_dlq_cli.py",
        "test_drain_recovery.py",
        "test_hostile_exchanges.py",
        "test_ingest_failover.py",
        "test_read_model.py",
    }
)


def shared_stack_modules() -> list[str]:
    """The integration modules the full stacks share (neither :data:`OWN_STACK` nor :data:`CORE_STACK`)."""
    return sorted(
        p.name for p in (ROOT / "tests" / "integration").glob("test_*.py") if p.name not in OWN_STACK | CORE_STACK
    )


#: Dates a user can type that Python's ``datetime`` cannot take through window arithmetic (year 1
#: or 9999 with an offset, a range in year 9999, a far future): the read API answers each with a
#: 422 naming the parameter (path, query, parameter). Issue 19.
EXTREME_DATE_QUERIES = [
    ("/v1/candles", {"from": "0001-01-01T00:00:00+01:00"}, "from"),
    ("/v1/candles", {"to": "9999-12-31T23:59:00-01:00"}, "to"),
    ("/v1/candles", {"from": "9999-12-30T00:00Z", "to": "9999-12-31T23:59Z"}, "from"),
    ("/v1/candles", {"interval": "1d", "from": "9999-12-31T23:59:59.999999Z"}, "from"),
    ("/v1/candles", {"interval": "1h", "from": "2100-01-01T00:00Z", "to": "2100-01-02T00:00Z"}, "from"),
    ("/v1/gaps", {"from": "0001-01-01T00:00:00+01:00"}, "from"),
    ("/v1/gaps", {"to": "9999-12-31T23:59:00-01:00"}, "to"),
    ("/v1/gaps", {"from": "9999-12-30T00:00Z", "to": "9999-12-31T23:59Z"}, "to"),
    ("/v1/gaps", {"from": "9999-12-31T23:59Z"}, "from"),
]


def stacks_of_modules(modules: list[str], stacks: int) -> dict[str, int]:
    """Which stack (0 .. ``stacks``-1) runs each integration module: longest first, to the least
    loaded stack (ties: the lower number).

    >>> stacks_of_modules(["test_backfill.py", "test_realtime.py", "test_api.py", "test_x.py"], 2)
    {'test_backfill.py': 0, 'test_realtime.py': 1, 'test_x.py': 1, 'test_api.py': 1}
    """
    load = [0] * max(stacks, 1)
    out = {}
    for module in sorted(modules, key=lambda m: (-MODULE_SECONDS.get(m, 60), m)):
        stack = load.index(min(load))
        out[module] = stack
        load[stack] += MODULE_SECONDS.get(module, 60)
    return out


def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """Schedule by stack: the integration modules of each stack as one unit of work (sent whole to
    one worker, in collection order), every other test on its own. Units go out largest first, one
    per worker, and a worker asks for more only when nearly done, so with more workers than stacks
    the tests without services run on the others. (xdist's ``loadgroup`` would do this from
    markers, but it renames node ids in a way pytest 9.2 no longer honours.)"""
    from xdist.scheduler import LoadScopeScheduling

    modules = shared_stack_modules()
    workers = int(config.getoption("numprocesses") or 1)
    stack_of = stacks_of_modules(modules, min(workers, MAX_STACKS))

    class StackScheduling(LoadScopeScheduling):  # type: ignore[misc]
        def _assign_work_unit(self, node: Any) -> None:
            # the full stacks go out first, one per worker; the units with services of their own
            # (own-, core) only to a worker without a full stack, before its tests without
            # services, whatever the collection order (-p randomly): it starts those services
            # before it lowers its priority (pytest_runtest_setup). A stack worker asks for more
            # while its last (long) tests still run, so it gets tests without services.
            queue = list(self.workqueue)
            stacks = [scope for scope in queue if scope.startswith("stack-")]
            served = [scope for scope in queue if scope.startswith(("own-", "core"))]
            plain = [scope for scope in queue if scope not in stacks and scope not in served]
            has_stack = any(scope.startswith("stack-") for scope in self.assigned_work.get(node, {}))
            first = (stacks or (plain if has_stack else served) or served or plain)[0]
            self.workqueue.move_to_end(first, last=False)
            super()._assign_work_unit(node)

        def _split_scope(self, nodeid: str) -> str:
            path = nodeid.split("::", 1)[0]
            module = path.rsplit("/", 1)[-1]
            if path.startswith("tests/integration/") and module in OWN_STACK:
                return f"own-{module}"
            if path.startswith("tests/integration/") and module in CORE_STACK:
                return "core"
            if path.startswith("tests/integration/"):
                return f"stack-{stack_of.get(module, 0)}"
            return nodeid

    return StackScheduling(config, log)


@pytest.fixture(scope="session")
def realdata() -> Path:
    assert (REALDATA / "captures").is_dir(), f"real exchange captures missing from {REALDATA}"
    return REALDATA


@pytest.fixture(scope="session")
def bitstamp_minutes(realdata: Path) -> Any:
    """The real Bitstamp minute series as a frame of bars: ``ts`` (UTC), open, high, low, close, volume."""
    import pandas as pd

    frame = pd.read_csv(realdata / "series/bitstamp_btcusd_1min_2025-01-07_slice.csv")
    frame.insert(0, "ts", pd.to_datetime(frame.pop("timestamp"), unit="s", utc=True))
    return frame.astype(dict.fromkeys(("open", "high", "low", "close", "volume"), float))


@contextmanager
def simulated_exchange(seed: int = 42) -> Iterator[str]:
    """The project's simulated exchange, in-process on a free port; yields its base URL."""
    from simexchange.server import serve

    server = serve("127.0.0.1", 0, seed=seed)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def post_fault(url: str, **fault: Any) -> None:
    """Queue a fault on the simulated exchange at ``url`` (see its control endpoint)."""
    request = urllib.request.Request(f"{url}/_control/faults", data=json.dumps(fault).encode(), method="POST")
    urllib.request.urlopen(request).read()


def clear_faults(url: str) -> None:
    urllib.request.urlopen(urllib.request.Request(f"{url}/_control/faults", method="DELETE")).read()


def request_times(url: str, exchange: str) -> list[float]:
    """When the simulated exchange at ``url`` received each request for ``exchange`` (oldest first)."""
    with urllib.request.urlopen(f"{url}/_control/requests?exchange={exchange}") as response:
        return [float(r["time"]) for r in json.load(response)]


def forget_requests(url: str) -> None:
    urllib.request.urlopen(urllib.request.Request(f"{url}/_control/requests", method="DELETE")).read()


@pytest.fixture(scope="module")
def sim() -> Iterator[str]:
    """A simulated exchange of the test module's own."""
    with simulated_exchange() as url:
        yield url


@pytest.fixture
def faults(sim: str) -> Iterator[Callable[..., None]]:
    """``faults(exchange=..., kind=..., ...)`` queues a fault; all are cleared after the test."""
    forget_requests(sim)
    yield lambda **fault: post_fault(sim, **fault)
    clear_faults(sim)
