"""The local-stack launcher's own behaviour, with small real processes (no services needed)."""

from __future__ import annotations

import socket
import sys
import time

import psutil
import pytest

from btc_pipeline.config import load_settings
from devstack.config import StackError
from devstack.history import history_on_start
from devstack.processes import free_port, port_is_open
from devstack.service import Service
from devstack.stack import Stack


def test_a_bad_env_file_line_is_a_clear_error_naming_file_and_line(tmp_path):
    (tmp_path / ".env").write_text("A=1\nthis is not an assignment\n")
    with pytest.raises(StackError, match=r"\.env:2: expected KEY=VALUE"):
        Stack("demo", root=tmp_path, state_dir=tmp_path / "state")


def test_bad_port_in_env_is_a_clear_error(tmp_path):
    (tmp_path / ".env").write_text("AIRFLOW_PORT=eighty\n")
    with pytest.raises(StackError, match=r"AIRFLOW_PORT='eighty' in \.env is not a port number"):
        Stack("demo", root=tmp_path, state_dir=tmp_path / "state")


def test_env_file_ports_apply(tmp_path):
    (tmp_path / ".env").write_text("AIRFLOW_PORT=18080\nDASHBOARD_PORT=18501\nAPI_PORT=18000\n")
    stack = Stack("demo", root=tmp_path, state_dir=tmp_path / "state")
    assert stack.airflow_url.endswith(":18080") and stack.dashboard_url.endswith(":18501")
    assert stack.api_url == "http://127.0.0.1:18000"
    assert stack.airflow_env()["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == "http://127.0.0.1:18080/execution/"


def test_the_tasks_connections_come_from_the_settings_the_api_dashboard_and_cli_read(tmp_path):
    from airflow.models.connection import Connection
    from pymongo.uri_parser import parse_uri

    env_file = "MONGO_PORT=27999\nKAFKA_PORT=19092\nBTC_MONGO_DB=prices\nBTC_KAFKA_CONN_ID=kafka_x\n"
    (tmp_path / ".env").write_text(env_file)
    env = Stack("demo", root=tmp_path, state_dir=tmp_path / "state").airflow_env()
    settings = load_settings(env)
    mongo = Connection.from_json(env["AIRFLOW_CONN_BTC_MONGO"], conn_id=settings.mongo_conn_id)
    assert [(mongo.host, mongo.port)] == parse_uri(settings.mongo_uri)["nodelist"] == [("127.0.0.1", 27999)]
    assert mongo.schema == settings.mongo_db == "prices"
    kafka = Connection.from_json(env["AIRFLOW_CONN_KAFKA_X"], conn_id=settings.kafka_conn_id)
    assert kafka.extra_dejson["bootstrap.servers"] == settings.kafka_bootstrap == "127.0.0.1:19092"
    watcher = Connection.from_json(env["AIRFLOW_CONN_KAFKA_X_WATCH"], conn_id="kafka_x_watch")
    assert watcher.extra_dejson["bootstrap.servers"] == settings.kafka_bootstrap


def test_services_start_in_stages_after_what_they_need(tmp_path):
    """Broker, database and simulator first; the Airflow API server (which migrates the metadata
    database) with the readers of the database; Airflow's components last, as they report their
    health through the API server, with the housekeeping of its logs and run history (not on a test
    stack)."""
    stack = Stack("demo", root=tmp_path, state_dir=tmp_path / "state", ports={"api": 18001})
    assert [[s.name for s in stage] for stage in stack.stages()] == [
        ["kafka", "ferretdb", "simexchange"],
        ["airflow-api-server", "dashboard", "api"],
        ["airflow-scheduler", "airflow-dag-processor", "airflow-triggerer", "airflow-housekeeping"],
    ]
    assert [s.name for s in stack.services()] == [s.name for stage in stack.stages() for s in stage]
    test = Stack("test", root=tmp_path, state_dir=tmp_path / "test", ports={"api": 18002})
    assert "airflow-housekeeping" not in [s.name for s in test.services()]


def test_the_housekeeping_runs_daily_with_airflows_configuration(tmp_path):
    stack = Stack("live", root=tmp_path, state_dir=tmp_path / "state", ports={"api": 18001})
    (keeper,) = [s for s in stack.services() if s.name == "airflow-housekeeping"]
    assert keeper.argv[1:6] == ["-m", "btc_pipeline.cli", "housekeeping", "--every", "24"]
    env = stack.supervisor.env_for(keeper)  # Airflow's, as the scheduler gets it: its database and logs
    assert (
        env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].startswith("sqlite:///")
        and "AIRFLOW__LOGGING__BASE_LOG_FOLDER" in env
    )


def test_the_read_api_is_ready_on_its_liveness_route(tmp_path):
    stack = Stack("demo", root=tmp_path, state_dir=tmp_path / "state", ports={"api": 18001})
    (api,) = [s for s in stack.services() if s.name == "api"]
    assert api.argv[0].endswith("/uvicorn") and "btc_pipeline.api.app:create_app" in api.argv
    assert api.argv[api.argv.index("--port") + 1] == "18001" and api.ports == (18001,)
    assert api.env["PYTHONPATH"] == str(tmp_path / "plugins")
    assert "API          http://127.0.0.1:18001/docs" in stack.summary()


def test_unknown_mode_is_refused(tmp_path):
    with pytest.raises(StackError, match="unknown mode"):
        Stack("prod", root=tmp_path)


def test_demo_points_every_exchange_at_the_simulator_and_live_does_not(tmp_path):
    demo = Stack("demo", root=tmp_path, state_dir=tmp_path / "s").pipeline_env()
    live = Stack("live", root=tmp_path, state_dir=tmp_path / "s").pipeline_env()
    for key in ("BTC_COINBASE_URL", "BTC_KRAKEN_URL", "BTC_BINANCE_URL", "BTC_BITSTAMP_URL"):
        assert demo[key].startswith("http://127.0.0.1:")
        assert key not in live


def stack_at(tmp_path) -> Stack:
    return Stack("test", root=tmp_path, state_dir=tmp_path / "state")


def test_a_service_that_exits_is_reported_with_its_log(tmp_path):
    stack = stack_at(tmp_path)
    svc = Service(
        name="broken",
        argv=[sys.executable, "-c", "import sys; print('boom: missing config'); sys.exit(3)"],
        ready=lambda: False,
        timeout_s=20,
    )
    with pytest.raises(StackError, match=r"(?s)broken exited with code 3.*boom: missing config"):
        stack.start(svc)
    assert stack.pid_of("broken") is None


def test_a_service_that_never_gets_ready_is_stopped_and_reported(tmp_path):
    stack = stack_at(tmp_path)
    svc = Service(
        name="sleepy",
        argv=[sys.executable, "-c", "import time; print('still booting', flush=True); time.sleep(600)"],
        ready=lambda: False,
        timeout_s=2,
    )
    with pytest.raises(StackError, match=r"(?s)sleepy not ready after 2s.*still booting"):
        stack.start(svc)
    assert stack.pid_of("sleepy") is None  # stopped, not left behind


def test_start_is_idempotent_and_stop_frees_the_port(tmp_path):
    stack = stack_at(tmp_path)
    port = free_port()
    svc = Service(
        name="web",
        argv=[sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"],
        ready=lambda: port_is_open(port),
        ports=(port,),
        timeout_s=20,
    )
    try:
        stack.start(svc)
        pid = stack.pid_of("web")
        assert pid
        stack.start(svc)  # already running and healthy: nothing new
        assert stack.pid_of("web") == pid
    finally:
        assert stack.stop("web")
    assert not port_is_open(port)
    assert stack.stop("web") is False  # nothing left to stop


def test_a_port_held_by_someone_else_is_refused(tmp_path):
    stack = stack_at(tmp_path)
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        svc = Service(name="kafka", argv=["true"], ready=lambda: True, ports=(port,))
        with pytest.raises(StackError, match=f"port {port} for kafka is in use by a process this stack did not start"):
            stack.start(svc)


def test_the_kafka_controller_port_is_checked_too(tmp_path):
    """Kafka listens on two ports; a busy controller port is a clear error, not a readiness timeout."""
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        controller = held.getsockname()[1]
        # the broker port free too, whatever runs here (a `make demo` holds 9092)
        ports = {"kafka": free_port(), "kafka_controller": controller}
        stack = Stack("test", root=tmp_path, state_dir=tmp_path / "state", ports=ports)
        with pytest.raises(StackError, match=f"port {controller} for kafka is in use.*KAFKA_PORT"):
            stack.start(stack.services()[0])


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


@pytest.mark.parametrize("escape", ["own-session", "orphaned"])
def test_stop_also_stops_what_the_service_started(tmp_path, escape):
    """A child in a session of its own (not reached by the group's signal), or one whose parent already
    exited (an orphan of the group), is stopped with the service."""
    stack = stack_at(tmp_path)
    pidfile = tmp_path / "child.pid"
    spawn = (
        "import os, subprocess, sys, time\n"
        f"child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)'], "
        f"start_new_session={escape == 'own-session'!r})\n"
        f"open({str(pidfile)!r}, 'w').write(str(child.pid))\n"
        + ("time.sleep(600)\n" if escape == "own-session" else "time.sleep(1)\n")
    )
    svc = Service(name="parent", argv=[sys.executable, "-c", spawn], ready=pidfile.exists, timeout_s=20)
    stack.start(svc)
    child = int(pidfile.read_text())
    try:
        assert _alive(child)
        if escape == "orphaned":  # the service's own process exits; its child lives on in the group
            deadline = time.monotonic() + 10
            while stack.pid_of("parent") is not None and time.monotonic() < deadline:
                time.sleep(0.1)
            assert stack.pid_of("parent") is None and _alive(child)
        assert stack.stop("parent", timeout_s=5)
        assert not _alive(child), f"{escape} child {child} outlived stop()"
        assert stack.stop("parent") is False
    finally:
        if _alive(child):
            psutil.Process(child).kill()


@pytest.mark.parametrize(
    ("first", "expected"),
    [
        # a fresh demo: nothing stored, or only what the first live run stored before the stack was ready
        (None, ("2026-11-25T12:00", "2026-11-26T12:00")),
        ("2026-11-26T11:58", ("2026-11-25T12:00", "2026-11-26T11:58")),
        # a demo restarted after 2 h: the older 22 h are filled
        ("2026-11-26T10:00", ("2026-11-25T12:00", "2026-11-26T10:00")),
        # history reaches the seed's start or further: nothing to do
        ("2026-11-25T12:00", None),
        ("2026-11-11T00:00", None),
    ],
)
def test_the_demo_seeds_what_is_missing_of_the_last_day(first, expected):
    from datetime import UTC, datetime

    from devstack.history import history_to_seed

    def at(text: str) -> datetime:
        return datetime.fromisoformat(text).replace(tzinfo=UTC)

    seed = history_to_seed(None if first is None else at(first), at("2026-11-26T12:00:41"), 24)
    assert (None if seed is None else (seed.start, seed.end)) == (
        None if expected is None else (at(expected[0]), at(expected[1]))
    )


def test_a_kafka_cluster_id_never_looks_like_an_option(monkeypatch):
    """A random id starting with "-" made kafka-storage fail with "--cluster-id: expected one
    argument" (1 in 64 fresh states); the id is drawn again, as Kafka's own random-uuid does."""
    import uuid

    from devstack import kafka

    ids = iter([uuid.UUID(bytes=b"\xfb" + b"\x00" * 15), uuid.UUID(int=1)])  # the first encodes as "-w..."
    monkeypatch.setattr(kafka.uuid, "uuid4", lambda: next(ids))
    cluster_id = kafka.kafka_cluster_id()
    assert not cluster_id.startswith("-") and len(cluster_id) == 22


def test_down_at_once_signals_every_service_before_killing_any(tmp_path):
    """A test stack's teardown: every service gets its SIGTERM at once, so services that ignore it
    cost the timeout once, not once each. Each of these two ignores SIGTERM and, when it gets one,
    watches for the other's: one after the other, the first is killed before the second is signalled."""
    stack = stack_at(tmp_path)
    script = (
        "import os, signal, sys, time\n"
        f"me, other, d = sys.argv[1], sys.argv[2], {str(tmp_path)!r}\n"
        "def term(*_):\n"
        "    open(os.path.join(d, 'term-' + me), 'w').close()\n"
        "    deadline = time.monotonic() + 2.5\n"
        "    while time.monotonic() < deadline:\n"
        "        if os.path.exists(os.path.join(d, 'term-' + other)):\n"
        "            open(os.path.join(d, 'saw-' + me), 'w').close()\n"
        "            return\n"
        "        time.sleep(0.02)\n"
        "signal.signal(signal.SIGTERM, term)\n"
        "open(os.path.join(d, 'up-' + me), 'w').close()\n"
        "while True:\n"
        "    time.sleep(1)\n"
    )
    for me, other in (("a", "b"), ("b", "a")):
        up = tmp_path / f"up-{me}"
        stack.start(Service(name=me, argv=[sys.executable, "-c", script, me, other], ready=up.exists, timeout_s=20))
    pids = [stack.pid_of(name) for name in ("a", "b")]
    assert stack.down(timeout_s=3, at_once=True) == ["b", "a"]  # reverse start order, both were running
    assert (tmp_path / "saw-a").exists() and (tmp_path / "saw-b").exists(), "one was killed before the other's SIGTERM"
    assert not any(pid is not None and _alive(pid) for pid in pids)


@pytest.mark.parametrize(
    ("mode", "value", "hours"),
    [
        ("demo", None, 24),
        ("live", None, 0),
        ("live", "7d", 168),
        ("demo", "0", 0),
        ("demo", "", 24),
        ("demo", "90m", 1.5),
    ],
)
def test_the_history_loaded_on_first_start_follows_the_setting_then_the_mode(tmp_path, mode, value, hours):
    from datetime import timedelta

    env = {} if value is None else {"BTC_HISTORY_ON_START": value}
    stack = Stack(mode, state_dir=tmp_path, env=env)
    assert history_on_start(stack) == timedelta(hours=hours)


def test_a_history_setting_that_is_no_age_is_refused_with_its_name(tmp_path):
    with pytest.raises(StackError, match="BTC_HISTORY_ON_START"):
        history_on_start(Stack("demo", state_dir=tmp_path, env={"BTC_HISTORY_ON_START": "a year"}))
