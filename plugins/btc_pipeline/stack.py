"""The local stack without Docker: real Kafka (KRaft), FerretDB on SQLite, Airflow, the dashboard
and (for ``demo``/``test``) the simulated exchange, each a process of its own.

Used by ``make up`` / ``make demo`` / ``make down`` and by the integration-test fixtures::

    python -m btc_pipeline.stack up --mode demo     # start what is not running, wait until ready
    python -m btc_pipeline.stack status
    python -m btc_pipeline.stack down               # stop what this stack started, by pid

Each service is started in its own session (process group) with its output in
``<state>/logs/<name>.log`` and its pid in ``<state>/pids/<name>.pid`` (with the process start
time, so a recycled pid is never mistaken for ours). ``up`` is idempotent: a service that is
already running and healthy is left alone. When a service does not become ready in time, ``up``
raises :class:`StackError` naming it, with the tail of its log.

Binaries come from the project's own set-up (``make setup``): Kafka jars in
``state/kafka/libs`` (Maven Central), ``state/bin/ferretdb-local`` (go build), the Python venv.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import logging
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger("btc_pipeline.stack")

ROOT = Path(__file__).resolve().parents[2]
MODES = ("demo", "live", "test")
TOPIC_PARTITIONS = {"btc-metrics": 3, "btc-metrics-dlq": 1}
DEFAULT_PORTS = {"airflow": 8080, "dashboard": 8501, "kafka": 9092, "mongo": 27017, "simex": 8090}
PORT_ENV = {
    "airflow": "AIRFLOW_PORT",
    "dashboard": "DASHBOARD_PORT",
    "kafka": "KAFKA_PORT",
    "mongo": "MONGO_PORT",
    "simex": "SIMEX_PORT",
}


class StackError(RuntimeError):
    """A service could not be prepared or did not become ready; the message says which and why."""


def read_env_file(path: Path) -> dict[str, str]:
    """Parse a ``.env`` file (``KEY=VALUE`` lines, ``#`` comments, optional quotes).

    Raises:
        StackError: A line is not ``KEY=VALUE``.
    """
    values: dict[str, str] = {}
    if not path.exists():
        return values
    for number, raw in enumerate(path.read_text().splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("export "):
            line = line[len("export ") :]
        key, sep, value = line.partition("=")
        if not sep or not key.strip().isidentifier():
            raise StackError(f"{path}:{number}: expected KEY=VALUE, got {raw!r}")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[key.strip()] = value
    return values


def port_is_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def free_port() -> int:
    """An unused TCP port on 127.0.0.1 (for test stacks that must not collide with a demo)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def http_ok(url: str, timeout: float = 2.0) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 - local URLs only
            return bool(200 <= response.status < 300)
    except (urllib.error.URLError, OSError, ValueError):
        return False


def _proc_start_time(pid: int) -> str | None:
    """The start time of a live process (None if gone or a zombie waiting to be reaped)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    if len(fields) < 20:
        return None
    if fields[0] in ("Z", "X"):
        # A zombie leader may still have live threads (and open sockets) while a multi-threaded
        # process (a JVM, a threaded server) exits: gone only when it is the last task left.
        try:
            if len(os.listdir(f"/proc/{pid}/task")) <= 1:
                return None
        except OSError:
            return None
    return fields[19]


@dataclass
class Service:
    """One long-running process of the stack."""

    name: str
    argv: list[str]
    ready: Callable[[], bool]
    timeout_s: float = 120.0
    port: int | None = None
    env: dict[str, str] = field(default_factory=dict)
    prepare: Callable[[], None] | None = None
    after_ready: Callable[[], None] | None = None


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
        self.admin_user = self.user_env.get("AIRFLOW_ADMIN_USER", "admin")
        self.admin_password = self.user_env.get("AIRFLOW_ADMIN_PASSWORD", "admin")

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
    def mongo_uri(self) -> str:
        return f"mongodb://127.0.0.1:{self.ports['mongo']}/"

    @property
    def airflow_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['airflow']}"

    @property
    def dashboard_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['dashboard']}"

    @property
    def simex_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['simex']}"

    # --- environment ----------------------------------------------------------------------------
    def pipeline_env(self) -> dict[str, str]:
        """The ``BTC_*`` settings every pipeline process gets (package config, see config.py)."""
        env = {k: v for k, v in self.user_env.items() if k.startswith("BTC_")}
        env.update(BTC_KAFKA_BOOTSTRAP=self.kafka_bootstrap, BTC_MONGO_URI=self.mongo_uri)
        if self.mode in ("demo", "test"):
            env.update(
                BTC_COINBASE_URL=f"{self.simex_url}/coinbase",
                BTC_KRAKEN_URL=f"{self.simex_url}/kraken/0",
                BTC_BINANCE_URL=f"{self.simex_url}/binance",
                BTC_BITSTAMP_URL=f"{self.simex_url}/bitstamp/api/v2",
            )
        return env

    def airflow_env(self) -> dict[str, str]:
        """Airflow configuration for the local stack (SQLite metadata, LocalExecutor)."""
        secrets_file = self.airflow_home / "secrets.json"
        stored = json.loads(secrets_file.read_text()) if secrets_file.exists() else {}
        kafka_conn = {"conn_type": "kafka", "extra": {"bootstrap.servers": self.kafka_bootstrap}}
        mongo_conn = {"conn_type": "mongo", "host": "127.0.0.1", "port": self.ports["mongo"], "schema": "btc"}
        return {
            **self.pipeline_env(),
            "AIRFLOW_HOME": str(self.airflow_home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(self.root / "dags"),
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(self.root / "plugins"),
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
            "AIRFLOW__CORE__PARALLELISM": "4",
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
            "AIRFLOW_CONN_BTC_KAFKA": json.dumps(kafka_conn),
            "AIRFLOW_CONN_BTC_MONGO": json.dumps(mongo_conn),
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
            port, controller = self.ports["kafka"], self.ports.get("kafka_controller", self.ports["kafka"] + 1)
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
                cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
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

            from btc_pipeline.kafka_io import ensure_topics

            ensure_topics(AdminClient({"bootstrap.servers": self.kafka_bootstrap}), TOPIC_PARTITIONS)

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
            port=self.ports["kafka"],
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
            port=self.ports["mongo"],
            timeout_s=60,
            prepare=prepare,
        )

    def _simex(self) -> Service:
        return Service(
            name="simexchange",
            argv=[sys.executable, "-m", "btc_pipeline.simexchange.server", "--port", str(self.ports["simex"])],
            ready=lambda: http_ok(f"{self.simex_url}/_health"),
            port=self.ports["simex"],
            timeout_s=30,
            env={"PYTHONPATH": str(self.root / "plugins")},
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
                port=self.ports["airflow"],
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
            port=self.ports["dashboard"],
            timeout_s=90,
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
        pidfile = self.pids / f"{name}.pid"
        try:
            pid_text, start = pidfile.read_text().split()
            pid = int(pid_text)
        except (OSError, ValueError):
            return None
        if _proc_start_time(pid) != start:
            pidfile.unlink(missing_ok=True)
            return None
        return pid

    def start(self, service: Service) -> None:
        """Start ``service`` unless it runs already, and wait until it is ready.

        Raises:
            StackError: Its port is taken by a process we did not start, it exited, or it did not
                become ready within its timeout (the message has the tail of its log).
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
        if service.port is not None and port_is_open(service.port):
            raise StackError(
                f"port {service.port} for {service.name} is in use by a process this stack did not start; "
                f"stop it or set {PORT_ENV.get(service.name, 'the port')} in .env"
            )
        if service.prepare:
            service.prepare()
        self.logs.mkdir(parents=True, exist_ok=True)
        self.pids.mkdir(parents=True, exist_ok=True)
        logfile = self.logs / f"{service.name}.log"
        log.info("starting %s (log: %s)", service.name, logfile)
        with logfile.open("ab") as out:
            proc = subprocess.Popen(
                service.argv,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=self._env_for(service),
                cwd=self.state,
                start_new_session=True,
            )
        (self.pids / f"{service.name}.pid").write_text(f"{proc.pid} {_proc_start_time(proc.pid)}\n")
        deadline = time.monotonic() + service.timeout_s
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                (self.pids / f"{service.name}.pid").unlink(missing_ok=True)
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
        """Stop our process ``name`` (its whole process group): SIGTERM, then SIGKILL after ``timeout_s``."""
        pid = self.pid_of(name)
        if pid is None:
            return False
        log.info("stopping %s (pid %d)", name, pid)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and _proc_start_time(pid) is not None:
            _reap(pid)
            time.sleep(0.1)
        if _proc_start_time(pid) is not None:
            log.warning("%s did not stop in %.0fs; killing", name, timeout_s)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
            _reap(pid)
        (self.pids / f"{name}.pid").unlink(missing_ok=True)
        return True

    def up(self, only: Sequence[str] | None = None) -> None:
        """Start every service (or those named in ``only``) in order."""
        for service in self.services():
            if only is None or service.name in only:
                self.start(service)

    def down(self) -> list[str]:
        """Stop every service this stack started, in reverse order; returns the names stopped."""
        names = [s.name for s in self.services()]
        if self.pids.exists():  # also whatever an earlier mode of this state dir started
            names += [p.stem for p in self.pids.glob("*.pid") if p.stem not in names]
        return [name for name in reversed(names) if self.stop(name)]

    def status(self) -> dict[str, str]:
        result = {}
        for service in self.services():
            pid = self.pid_of(service.name)
            result[service.name] = (
                "stopped" if pid is None else f"pid {pid} " + ("ready" if service.ready() else "NOT READY")
            )
        return result

    def summary(self) -> str:
        lines = [
            f"btc-pipeline local stack ({self.mode}) is up:",
            f"  Airflow UI   {self.airflow_url}   user {self.admin_user!r}, "
            "password: AIRFLOW_ADMIN_PASSWORD in .env (default 'admin')",
            f"  Dashboard    {self.dashboard_url}",
            f"  Kafka        {self.kafka_bootstrap}   topics btc-metrics, btc-metrics-dlq",
            f"  MongoDB      {self.mongo_uri}   (FerretDB on SQLite) database btc",
        ]
        if self.mode != "live":
            lines.append(f"  Exchange sim {self.simex_url}   (prices are simulated)")
        lines.append(f"  Logs         {self.logs}/   stop with `make down`")
        return "\n".join(lines)


def _reap(pid: int) -> None:
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m btc_pipeline.stack", description="Run the local btc-pipeline stack without Docker."
    )
    parser.add_argument("command", choices=["up", "down", "status"])
    parser.add_argument("--mode", choices=MODES, default="demo", help="demo: simulated exchange; live: real exchanges")
    parser.add_argument("--only", nargs="*", help="service names to start (default: all)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    try:
        stack = Stack(args.mode)
        if args.command == "up":
            stack.up(args.only)
            print(stack.summary())
        elif args.command == "down":
            stopped = stack.down()
            print(f"stopped: {', '.join(stopped) if stopped else 'nothing was running'}")
        else:
            for name, state in stack.status().items():
                print(f"{name:24s} {state}")
    except StackError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
