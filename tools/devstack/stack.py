"""The local stack without Docker: real Kafka (KRaft), FerretDB on SQLite, Airflow, the dashboard,
the read API and (for ``demo``/``test``) the simulated exchange, each a process of its own.

Used by ``make up`` / ``make demo`` / ``make down`` (``python -m devstack``, see ``__main__``) and
by the integration-test fixtures.

Each service is started in its own session (process group) with its output in
``<state>/logs/<name>.log`` and its pid in ``<state>/pids/<name>.pid`` (with the process start
time, so a recycled pid is never mistaken for ours); see :mod:`devstack.processes`. ``up`` is
idempotent: a service that is already running and healthy is left alone. When a service does not
become ready in time, ``up`` raises :class:`StackError` naming it, with the tail of its log.

Binaries come from the project's own set-up (``make setup``): Kafka jars in
``state/kafka/libs`` (Maven Central), ``state/bin/ferretdb-local`` (go build), the Python venv.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import secrets
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

from btc_pipeline import config
from btc_pipeline.config import ConfigError, Settings, load_settings, url_key
from btc_pipeline.exchanges import EXCHANGES
from btc_pipeline.redact import redact_uri
from btc_pipeline.stream.clients import watcher_config
from btc_pipeline.stream.topics import pipeline_topics
from btc_pipeline.timeutil import format_ts
from btc_pipeline.window import Window, floor_minute
from devstack.processes import PidFile, free_port, group_members, http_ok, port_is_open, stop_tree

__all__ = ["MODES", "Service", "Stack", "StackError", "free_port", "http_ok", "port_is_open", "read_env_file"]

log = logging.getLogger("devstack")

ROOT = Path(__file__).resolve().parents[2]
TOOLS = ROOT / "tools"
MODES = ("demo", "live", "test")
DEFAULT_PORTS = {"airflow": 8080, "dashboard": 8501, "api": 8000, "kafka": 9092, "mongo": 27017, "simex": 8090}
PORT_ENV = {
    "airflow": "AIRFLOW_PORT",
    "dashboard": "DASHBOARD_PORT",
    "api": "API_PORT",
    "kafka": "KAFKA_PORT",
    "mongo": "MONGO_PORT",
    "simex": "SIMEX_PORT",
}


def history_to_seed(first: datetime | None, now: datetime, hours: float) -> Window | None:
    """What ``make demo`` backfills on start: the part of the last ``hours`` before the first stored
    candle, or ``None`` when the history already reaches that far back.

    The first live ``btc_ingest`` run may store a candle before the stack is ready, so "no candle
    yet" is not the test of a first start; "less history than the seed" is.

    Args:
        first: The oldest stored candle's minute (``None``: nothing stored).
        now: The current time.
        hours: How much history the demo shows from the start.
    """
    start = floor_minute(now) - timedelta(hours=hours)
    end = floor_minute(now) if first is None else min(first, floor_minute(now))
    return Window(start, end) if end > start else None


class StackError(RuntimeError):
    """A service could not be prepared or did not become ready; the message says which and why."""


def read_env_file(path: Path) -> dict[str, str]:
    """Read a ``.env`` file (:func:`btc_pipeline.config.read_env_file`).

    Raises:
        StackError: A line is not ``KEY=VALUE``; the message names the file and the line.
    """
    try:
        return config.read_env_file(path)
    except ConfigError as exc:
        raise StackError(str(exc)) from None


@dataclass
class Service:
    """One long-running process of the stack."""

    name: str
    argv: list[str]
    ready: Callable[[], bool]
    timeout_s: float = 120.0
    #: The ports it listens on (checked to be free before it starts); the first one is its main port.
    ports: tuple[int, ...] = ()
    env: dict[str, str] = field(default_factory=dict)
    cwd: Path | None = None
    prepare: Callable[[], None] | None = None
    after_ready: Callable[[], None] | None = None


def simulated_base_urls(simex_url: str) -> dict[str, str]:
    """``BTC_<NAME>_URL`` of every exchange pointed at the simulated exchange at ``simex_url``, which
    serves each one under its name, at the path of its real base URL (``/kraken/0``)."""
    return {url_key(name): f"{simex_url}/{name}{urlsplit(cls.base_url).path}" for name, cls in EXCHANGES.items()}


def airflow_connections(settings: Settings) -> dict[str, str]:
    """The ``AIRFLOW_CONN_*`` variables of the tasks' connections, made from the same settings the
    API, the dashboard and the CLI read: ``BTC_MONGO_CONN_ID`` from ``BTC_MONGO_URI`` and
    ``BTC_MONGO_DB``, ``BTC_KAFKA_CONN_ID`` (and the arrival watcher's) from ``BTC_KAFKA_BOOTSTRAP``.
    (docker compose writes its own from the same ``.env`` values; tests/test_compose.py checks them.)"""
    from pymongo.uri_parser import parse_uri

    mongo = parse_uri(settings.mongo_uri)
    (host, port), *_ = mongo["nodelist"]
    kafka = {"bootstrap.servers": settings.kafka_bootstrap}
    connections = {
        settings.kafka_conn_id: {"conn_type": "kafka", "extra": kafka},
        f"{settings.kafka_conn_id}_watch": {  # read by the drain's arrival watcher only (BTC_DRAIN_TRIGGER=watcher)
            "conn_type": "kafka",
            "extra": watcher_config(settings.kafka_bootstrap, settings.consumer_group),
        },
        settings.mongo_conn_id: {"conn_type": "mongo", "host": host, "port": port, "schema": settings.mongo_db},
    }
    return {f"AIRFLOW_CONN_{conn_id.upper()}": json.dumps(conn) for conn_id, conn in connections.items()}


def kafka_cluster_id() -> str:
    """A random KRaft cluster id, as ``kafka-storage random-uuid`` makes it: URL-safe base64 of a
    UUID that does not start with ``-`` (the tool's argument parser would take it for an option)."""
    while True:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cluster_id.startswith("-"):
            return cluster_id


class Stack:
    """The local stack rooted at ``state_dir``. See the module docstring."""

    def __init__(
        self,
        mode: str = "demo",
        *,
        root: Path = ROOT,
        state_dir: Path | None = None,
        ports: Mapping[str, int] | None = None,
        env: Mapping[str, str] | None = None,
    ) -> None:
        if mode not in MODES:
            raise StackError(f"unknown mode {mode!r}; expected one of {MODES}")
        self.mode = mode
        self.root = root
        self.state = (state_dir or root / "state").resolve()
        file_env = read_env_file(root / ".env")
        self.user_env = {**file_env, **(env or {})}
        self.ports = dict(DEFAULT_PORTS)
        for name, key in PORT_ENV.items():
            if key in self.user_env:
                try:
                    self.ports[name] = int(self.user_env[key])
                except ValueError:
                    raise StackError(f"{key}={self.user_env[key]!r} in .env is not a port number") from None
        self.ports.update(ports or {})
        self.bin = Path(sys.executable).parent
        # local-only defaults (the stack listens on 127.0.0.1), also for the empty values of .env.example
        self.admin_user = self.user_env.get("AIRFLOW_ADMIN_USER") or "admin"
        self.admin_password = self.user_env.get("AIRFLOW_ADMIN_PASSWORD") or "admin"

    # --- paths ----------------------------------------------------------------------------------
    @property
    def logs(self) -> Path:
        return self.state / "logs"

    @property
    def pids(self) -> Path:
        return self.state / "pids"

    @property
    def kafka_libs(self) -> Path:
        return Path(self.user_env.get("BTC_KAFKA_LIBS", self.root / "state" / "kafka" / "libs"))

    @property
    def ferretdb_bin(self) -> Path:
        return Path(self.user_env.get("BTC_FERRETDB_BIN", self.root / "state" / "bin" / "ferretdb-local"))

    @property
    def airflow_home(self) -> Path:
        return self.state / "airflow"

    @property
    def kafka_bootstrap(self) -> str:
        return f"127.0.0.1:{self.ports['kafka']}"

    @property
    def kafka_controller_port(self) -> int:
        """The KRaft controller's port: ``ports["kafka_controller"]``, or the broker's port + 1."""
        return self.ports.get("kafka_controller", self.ports["kafka"] + 1)

    @property
    def settings(self) -> Settings:
        """The pipeline's settings as this stack's processes see them.

        Raises:
            StackError: A ``BTC_*`` value in ``.env`` is invalid.
        """
        try:
            return load_settings(self.pipeline_env())
        except ConfigError as exc:
            raise StackError(f"invalid setting in .env: {exc}") from None

    @property
    def topics(self) -> dict[str, int]:
        """The topics to create (``BTC_TOPIC``, ``BTC_DLQ_TOPIC``) with their partition counts."""
        settings = self.settings
        return pipeline_topics(settings.topic, settings.dlq_topic, settings.history_topic)

    @property
    def mongo_uri(self) -> str:
        return f"mongodb://127.0.0.1:{self.ports['mongo']}/"

    @property
    def airflow_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['airflow']}"

    @property
    def dashboard_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['dashboard']}"

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['api']}"

    @property
    def simex_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['simex']}"

    # --- environment ----------------------------------------------------------------------------
    def pipeline_env(self) -> dict[str, str]:
        """The ``BTC_*`` settings every pipeline process gets (package config, see config.py)."""
        env = {k: v for k, v in self.user_env.items() if k.startswith("BTC_")}
        env.update(BTC_KAFKA_BOOTSTRAP=self.kafka_bootstrap, BTC_MONGO_URI=self.mongo_uri)
        if self.mode in ("demo", "test"):
            env.update(simulated_base_urls(self.simex_url))
        return env

    def airflow_env(self) -> dict[str, str]:
        """Airflow configuration for the local stack (SQLite metadata, LocalExecutor)."""
        secrets_file = self.airflow_home / "secrets.json"
        stored = json.loads(secrets_file.read_text()) if secrets_file.exists() else {}
        return {
            **self.pipeline_env(),
            "AIRFLOW_HOME": str(self.airflow_home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(self.root / "dags"),
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(self.root / "plugins"),
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
            # LocalExecutor forks this many workers up front (~150 MB each): the live tick stream
            # and the lingering drain hold two, a backfill's chunks get four (a week: 35 -> 16 s)
            "AIRFLOW__CORE__PARALLELISM": "6",
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{self.airflow_home / 'airflow.db'}",
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.airflow_url}/execution/",
            "AIRFLOW__API__BASE_URL": self.airflow_url,
            "AIRFLOW__API__PORT": str(self.ports["airflow"]),
            "AIRFLOW__API__WORKERS": "1",
            "AIRFLOW__API_AUTH__JWT_SECRET": stored.get("jwt_secret", ""),
            "AIRFLOW__API__SECRET_KEY": stored.get("api_secret_key", ""),
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{self.admin_user}:admin",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(self.airflow_home / "passwords.json"),
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "20",
            "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "30",
            "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK": "True",
            "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(self.airflow_home / "logs"),
            **airflow_connections(self.settings),
            "PYTHONPATH": str(self.root / "plugins"),
        }

    def cli_env(self) -> dict[str, str]:
        """Environment for running ``airflow`` CLI commands against this stack."""
        return {**os.environ, **self.airflow_env()}

    # --- services -------------------------------------------------------------------------------
    def services(self) -> list[Service]:
        """All services of this mode, in start order."""
        services = [self._kafka(), self._ferretdb()]
        if self.mode in ("demo", "test"):
            services.append(self._simex())
        services += self._airflow()
        services.append(self._dashboard())
        services.append(self._api())
        return services

    def _kafka(self) -> Service:
        data = self.state / "kafka" / "data"
        config = self.state / "kafka" / "server.properties"
        log4j = self.state / "kafka" / "log4j2.properties"

        def prepare() -> None:
            if not any(self.kafka_libs.glob("kafka_2.13-*.jar")):
                raise StackError(f"Kafka jars missing in {self.kafka_libs}: run `make setup` (mvn, Maven Central)")
            if not shutil.which("java"):
                raise StackError("java not found on PATH: install a JRE 17+ (Debian: openjdk-17-jre-headless)")
            config.parent.mkdir(parents=True, exist_ok=True)
            port, controller = self.ports["kafka"], self.kafka_controller_port
            config.write_text(
                "\n".join(
                    [
                        "process.roles=broker,controller",
                        "node.id=1",
                        f"controller.quorum.bootstrap.servers=127.0.0.1:{controller}",
                        f"listeners=PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller}",
                        f"advertised.listeners=PLAINTEXT://127.0.0.1:{port}",
                        "controller.listener.names=CONTROLLER",
                        "listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
                        "inter.broker.listener.name=PLAINTEXT",
                        f"log.dirs={data}",
                        "num.partitions=1",
                        "auto.create.topics.enable=false",
                        "offsets.topic.replication.factor=1",
                        "offsets.topic.num.partitions=3",
                        "transaction.state.log.replication.factor=1",
                        "transaction.state.log.min.isr=1",
                        "share.coordinator.state.topic.replication.factor=1",
                        "share.coordinator.state.topic.min.isr=1",
                        "group.initial.rebalance.delay.ms=0",
                        "log.retention.hours=168",
                        "",
                    ]
                )
            )
            log4j.write_text(
                "rootLogger.level=WARN\nrootLogger.appenderRef.stdout.ref=STDOUT\n"
                "appender.stdout.type=Console\nappender.stdout.name=STDOUT\n"
                "appender.stdout.layout.type=PatternLayout\nappender.stdout.layout.pattern=[%d] %p %m (%c)%n\n"
                "logger.kafka.name=kafka\nlogger.kafka.level=INFO\n"
            )
            if not (data / "meta.properties").exists():
                cluster_id = kafka_cluster_id()
                self._run_once(
                    "kafka-format",
                    [
                        "java",
                        "-cp",
                        f"{self.kafka_libs}/*",
                        f"-Dlog4j2.configurationFile={log4j}",
                        "kafka.tools.StorageTool",
                        "format",
                        "-t",
                        cluster_id,
                        "-c",
                        str(config),
                        "--standalone",
                    ],
                    timeout_s=120,
                )

        def after_ready() -> None:
            from confluent_kafka.admin import AdminClient

            from btc_pipeline.stream import ensure_topics

            ensure_topics(AdminClient({"bootstrap.servers": self.kafka_bootstrap}), self.topics)

        return Service(
            name="kafka",
            argv=[
                "java",
                "-Xms256m",
                "-Xmx768m",
                "-cp",
                f"{self.kafka_libs}/*",
                f"-Dlog4j2.configurationFile={log4j}",
                "kafka.Kafka",
                str(config),
            ],
            ready=self._kafka_ready,
            ports=(self.ports["kafka"], self.kafka_controller_port),
            timeout_s=120,
            prepare=prepare,
            after_ready=after_ready,
        )

    def _kafka_ready(self) -> bool:
        if not port_is_open(self.ports["kafka"]):
            return False
        from confluent_kafka.admin import AdminClient

        try:
            AdminClient({"bootstrap.servers": self.kafka_bootstrap}).list_topics(timeout=3)
            return True
        except Exception:  # noqa: BLE001 - any failure just means "not ready yet"
            return False

    def _ferretdb(self) -> Service:
        def prepare() -> None:
            if not self.ferretdb_bin.exists():
                raise StackError(f"{self.ferretdb_bin} missing: run `make setup` (go build of tools/ferretdb)")

        def ready() -> bool:
            if not port_is_open(self.ports["mongo"]):
                return False
            from pymongo import MongoClient
            from pymongo.errors import PyMongoError

            try:
                client: MongoClient[dict[str, object]]
                with MongoClient(self.mongo_uri, serverSelectionTimeoutMS=2000) as client:
                    client.admin.command("ping")
                return True
            except PyMongoError:
                return False

        return Service(
            name="ferretdb",
            argv=[
                str(self.ferretdb_bin),
                "-listen-addr",
                f"127.0.0.1:{self.ports['mongo']}",
                "-data-dir",
                str(self.state / "ferretdb"),
            ],
            ready=ready,
            ports=(self.ports["mongo"],),
            timeout_s=60,
            prepare=prepare,
        )

    def _simex(self) -> Service:
        return Service(
            name="simexchange",
            argv=[sys.executable, "-m", "simexchange", "--port", str(self.ports["simex"])],
            ready=lambda: http_ok(f"{self.simex_url}/_health"),
            ports=(self.ports["simex"],),
            timeout_s=30,
            env={"PYTHONPATH": os.pathsep.join([str(self.root / "tools"), str(self.root / "plugins")])},
        )

    def _airflow(self) -> list[Service]:
        airflow = str(self.bin / "airflow")

        def prepare() -> None:
            self.airflow_home.mkdir(parents=True, exist_ok=True)
            secrets_file = self.airflow_home / "secrets.json"
            if not secrets_file.exists():
                secrets_file.write_text(
                    json.dumps({"jwt_secret": secrets.token_urlsafe(32), "api_secret_key": secrets.token_urlsafe(32)})
                )
                secrets_file.chmod(0o600)
            passwords = self.airflow_home / "passwords.json"
            passwords.write_text(json.dumps({self.admin_user: self.admin_password}) + "\n")
            passwords.chmod(0o600)
            self._run_once("airflow-db-migrate", [airflow, "db", "migrate"], timeout_s=600, env=self.airflow_env())

        def health_of(component: str) -> Callable[[], bool]:
            def ready() -> bool:
                try:
                    with urllib.request.urlopen(f"{self.airflow_url}/api/v2/monitor/health", timeout=3) as r:  # noqa: S310
                        body = json.load(r)
                except (urllib.error.URLError, OSError, ValueError):
                    return False
                return bool(body.get(component, {}).get("status") == "healthy")

            return ready

        return [
            Service(
                name="airflow-api-server",
                argv=[airflow, "api-server", "--port", str(self.ports["airflow"]), "--host", "127.0.0.1"],
                ready=lambda: http_ok(f"{self.airflow_url}/api/v2/monitor/health"),
                prepare=prepare,
                timeout_s=240,
                ports=(self.ports["airflow"],),
            ),
            *(
                Service(name=f"airflow-{command}", argv=[airflow, command], ready=health_of(component), timeout_s=240)
                for command, component in (
                    ("scheduler", "scheduler"),
                    ("dag-processor", "dag_processor"),
                    ("triggerer", "triggerer"),
                )
            ),
        ]

    def _dashboard(self) -> Service:
        return Service(
            name="dashboard",
            argv=[
                str(self.bin / "streamlit"),
                "run",
                str(self.root / "dashboard" / "app.py"),
                "--server.port",
                str(self.ports["dashboard"]),
                "--server.address",
                "127.0.0.1",
                "--server.headless",
                "true",
                "--browser.gatherUsageStats",
                "false",
            ],
            ready=lambda: http_ok(f"{self.dashboard_url}/_stcore/health"),
            ports=(self.ports["dashboard"],),
            timeout_s=90,
            env={"PYTHONPATH": str(self.root / "plugins")},
            cwd=self.root / "dashboard",  # its .streamlit/config.toml (theme, no Deploy toolbar)
        )

    def _api(self) -> Service:
        return Service(
            name="api",
            argv=[
                str(self.bin / "uvicorn"),
                "--factory",
                "btc_pipeline.api.app:create_app",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.ports["api"]),
            ],
            # /livez answers whenever the server runs; /v1/health is 503 until the data is fresh
            ready=lambda: http_ok(f"{self.api_url}/livez"),
            ports=(self.ports["api"],),
            timeout_s=60,
            env={"PYTHONPATH": str(self.root / "plugins")},
        )

    # --- process control ------------------------------------------------------------------------
    def _env_for(self, service: Service) -> dict[str, str]:
        base = self.airflow_env() if service.name.startswith("airflow") else self.pipeline_env()
        return {**os.environ, **base, **service.env}

    def _run_once(
        self, name: str, argv: Sequence[str], *, timeout_s: float, env: Mapping[str, str] | None = None
    ) -> None:
        self.logs.mkdir(parents=True, exist_ok=True)
        logfile = self.logs / f"{name}.log"
        log.info("running %s", name)
        with logfile.open("ab") as out:
            try:
                proc = subprocess.run(
                    argv,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    timeout=timeout_s,
                    env={**os.environ, **(env or {})},
                    check=False,
                )
            except subprocess.TimeoutExpired:
                raise StackError(
                    f"{name} did not finish in {timeout_s:.0f}s; log tail:\n{self.tail(logfile)}"
                ) from None
        if proc.returncode != 0:
            raise StackError(f"{name} failed with exit code {proc.returncode}; log tail:\n{self.tail(logfile)}")

    @staticmethod
    def tail(path: Path, lines: int = 30) -> str:
        try:
            return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return f"(no log at {path})"

    def pid_of(self, name: str) -> int | None:
        """The pid of our running process ``name``, or None (stale pid files are removed)."""
        return PidFile(self.pids, name).running_pid()

    def start(self, service: Service) -> None:
        """Start ``service`` unless it runs already, and wait until it is ready.

        Raises:
            StackError: One of its ports is taken by a process we did not start, it exited, or it did
                not become ready within its timeout (the message has the tail of its log).
        """
        if self.pid_of(service.name) is not None:
            if service.ready():
                log.info("%s already running", service.name)
                if service.after_ready:
                    service.after_ready()
                return
            raise StackError(
                f"{service.name} is running (pid {self.pid_of(service.name)}) but not healthy; run `make down` first"
            )
        for port in service.ports:
            if port_is_open(port):
                setting = PORT_ENV.get(service.name, PORT_ENV.get(service.name.split("-")[0], "the port"))
                raise StackError(
                    f"port {port} for {service.name} is in use by a process this stack did not start; "
                    f"stop it or set {setting} in .env"
                )
        if service.prepare:
            service.prepare()
        self.logs.mkdir(parents=True, exist_ok=True)
        logfile = self.logs / f"{service.name}.log"
        log.info("starting %s (log: %s)", service.name, logfile)
        pidfile = PidFile(self.pids, service.name)
        with logfile.open("ab") as out:
            proc = subprocess.Popen(
                service.argv,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=self._env_for(service),
                cwd=service.cwd or self.state,
                start_new_session=True,
            )
        pidfile.write(proc.pid)
        deadline = time.monotonic() + service.timeout_s
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                pidfile.remove()
                raise StackError(f"{service.name} exited with code {proc.returncode}; log tail:\n{self.tail(logfile)}")
            if service.ready():
                log.info("%s ready", service.name)
                if service.after_ready:
                    service.after_ready()
                return
            time.sleep(1)
        self.stop(service.name, timeout_s=10)  # leave nothing half-started behind
        raise StackError(f"{service.name} not ready after {service.timeout_s:.0f}s; log tail:\n{self.tail(logfile)}")

    def stop(self, name: str, *, timeout_s: float = 30.0) -> bool:
        """Stop our process ``name`` with its process group and descendants (SIGTERM, then SIGKILL).

        Returns:
            False when it was not running.
        """
        pidfile = PidFile(self.pids, name)
        recorded = pidfile.recorded()
        if recorded is None:
            return False
        pid = recorded[0]
        if pidfile.running_pid() is None and not group_members(pid):
            pidfile.remove()  # gone, and nothing it started is left
            return False
        stop_tree(pid, timeout_s=timeout_s, name=name)  # also when only its orphans are left
        pidfile.remove()
        return True

    @classmethod
    def running(cls, mode: str = "demo", *, root: Path = ROOT, state_dir: Path | None = None) -> Stack:
        """The stack last started in ``state_dir`` (its mode, ports and topic settings), else a new one.

        ``make down``, ``make status`` and ``make airflow`` use it, so that they reach the stack as it
        was started even if ``.env`` changed since, or when a test started it on other ports.
        """
        state = (state_dir or root / "state").resolve()
        try:
            saved = json.loads((state / "stack.json").read_text())
        except (OSError, ValueError):
            return cls(mode, root=root, state_dir=state)
        return cls(saved["mode"], root=root, state_dir=state, ports=saved["ports"], env=saved.get("env", {}))

    def up(self, only: Sequence[str] | None = None) -> None:
        """Start every service (or those named in ``only``) in order."""
        self.state.mkdir(parents=True, exist_ok=True)
        overrides = {k: v for k, v in self.user_env.items() if k in ("BTC_TOPIC", "BTC_DLQ_TOPIC", "BTC_MONGO_DB")}
        (self.state / "stack.json").write_text(json.dumps({"mode": self.mode, "ports": self.ports, "env": overrides}))
        for service in self.services():
            if only is None or service.name in only:
                self.start(service)

    def history_on_start(self) -> timedelta:
        """How much history the first start loads: ``BTC_HISTORY_ON_START`` when set (``0``: none),
        else 24 hours for ``make demo`` and none for ``make up`` (live exchanges' rate limits)."""
        configured = self.settings.history_on_start
        if configured is not None:
            return configured
        return timedelta(hours=24) if self.mode == "demo" else timedelta(0)

    def seed_history(self, *, hours: float | None = None, wait_s: float = 90.0) -> str:
        """When the stored history is shorter than ``hours`` (default :meth:`history_on_start`; a
        first start), backfill what is missing of the last ``hours`` from the exchanges through the
        normal path (``btc-pipeline backfill`` -> ``btc_backfill`` -> the history lane -> drain), so
        that the dashboard has history to show within a minute. ``make demo`` and ``make up`` do this.

        Returns:
            What was done, for the summary.

        Raises:
            StackError: The backfill could not be triggered (Airflow never listed the DAG).
        """
        from btc_pipeline.store import Store, StoreError

        try:
            store = Store.connect(self.mongo_uri, self.settings.mongo_db)
            first = store.first_candle()
            store.close()
        except StoreError as exc:
            raise StackError(f"cannot check for history: {exc}") from None
        if hours is None:
            hours = self.history_on_start() / timedelta(hours=1)
        if hours <= 0:
            return "none loaded (BTC_HISTORY_ON_START)"
        seed = history_to_seed(first, datetime.now(UTC), hours)
        if seed is None:
            return f"history since {first:%Y-%m-%d %H:%M} UTC kept"
        env = {
            **os.environ,
            **self.pipeline_env(),
            "AIRFLOW_API_URL": self.airflow_url,
            "AIRFLOW_ADMIN_USER": self.admin_user,
            "AIRFLOW_ADMIN_PASSWORD": self.admin_password,
        }
        span = ["--from", format_ts(seed.start), "--to", format_ts(seed.end)]
        argv = [str(self.bin / "btc-pipeline"), "backfill", "--missing", *span, "--no-wait"]
        deadline = time.monotonic() + wait_s
        while True:  # the dag-processor may not have parsed btc_backfill yet
            proc = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120, check=False)
            if proc.returncode == 0:
                log.info("seeded: %s", proc.stdout.strip().splitlines()[0] if proc.stdout else "")
                return (
                    f"backfilling {format_ts(seed.start)} -> {format_ts(seed.end)} from the exchanges "
                    "(a btc_backfill run; see the Airflow UI)"
                )
            if time.monotonic() > deadline:
                raise StackError(f"could not start the first backfill: {proc.stderr.strip()[-500:]}")
            time.sleep(3)

    def down(self, *, timeout_s: float = 30.0, at_once: bool = False) -> list[str]:
        """Stop every service this stack started, in reverse order; returns the names stopped.

        Args:
            timeout_s: How long each service gets after SIGTERM before it is killed (the scheduler
                waits for its running tasks; a test stack about to be wiped need not).
            at_once: Stop them all at the same time, not one after the other (a test stack about
                to be wiped needs no orderly shutdown; one after the other takes 15-20 s).
        """
        names = [s.name for s in self.services()]
        if self.pids.exists():  # also whatever an earlier mode of this state dir started
            names += [p.stem for p in self.pids.glob("*.pid") if p.stem not in names]
        order = list(reversed(names))
        if not at_once:
            return [name for name in order if self.stop(name, timeout_s=timeout_s)]
        with ThreadPoolExecutor(max_workers=max(len(order), 1)) as pool:
            stopped = list(pool.map(lambda name: self.stop(name, timeout_s=timeout_s), order))
        return [name for name, was_running in zip(order, stopped, strict=True) if was_running]

    def status(self) -> dict[str, str]:
        result = {}
        for service in self.services():
            pid = self.pid_of(service.name)
            result[service.name] = (
                "stopped" if pid is None else f"pid {pid} " + ("ready" if service.ready() else "NOT READY")
            )
        return result

    def summary(self) -> str:
        """What ``make demo`` / ``make up`` print when the stack is ready: URLs and where things are."""
        lines = [
            f"btc-pipeline local stack ({self.mode}) is up:",
            f"  Airflow UI   {self.airflow_url}   user {self.admin_user!r}, "
            "password: AIRFLOW_ADMIN_PASSWORD in .env ('admin' when it is empty)",
            f"  Dashboard    {self.dashboard_url}",
            f"  API          {self.api_url}/docs   (read API: /v1/prices/latest, /v1/candles, /v1/health, /metrics)",
            f"  Kafka        {self.kafka_bootstrap}   topics {', '.join(self.topics)}",
            f"  MongoDB      {redact_uri(self.mongo_uri)}   (FerretDB on SQLite) database {self.settings.mongo_db}",
        ]
        if self.mode != "live":
            lines.append(f"  Exchange sim {self.simex_url}   (prices are simulated)")
        lines.append(f"  Logs         {self.logs}/   stop with `make down`")
        return "\n".join(lines)
