"""Airflow for the local stack: its configuration (SQLite metadata, LocalExecutor, the tasks' connections
made from the pipeline's settings) and its four processes (API server, scheduler, DAG processor,
triggerer), ready when Airflow's health route says so."""

from __future__ import annotations

import json
import secrets
import time
import urllib.error
import urllib.request
from collections.abc import Callable

from btc_pipeline.cli.airflow_client import AirflowClient
from btc_pipeline.config import ApiSettings, Settings
from btc_pipeline.dag_ids import DAG_IDS
from btc_pipeline.stream.clients import watcher_config
from devstack.config import StackConfig, StackError
from devstack.processes import http_ok
from devstack.service import Service, Supervisor


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


def airflow_env(config: StackConfig) -> dict[str, str]:
    """Airflow configuration for the local stack (SQLite metadata, LocalExecutor)."""
    home = config.airflow_home
    secrets_file = home / "secrets.json"
    stored = json.loads(secrets_file.read_text()) if secrets_file.exists() else {}
    return {
        **config.pipeline_env(),
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(config.root / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(config.root / "plugins"),
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        # LocalExecutor forks this many workers up front (~150 MB each): the live tick stream
        # and the lingering drain hold two, a backfill's chunks get four (a week: 35 -> 16 s)
        "AIRFLOW__CORE__PARALLELISM": "6",
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{config.airflow_url}/execution/",
        "AIRFLOW__API__BASE_URL": config.airflow_url,
        "AIRFLOW__API__PORT": str(config.ports["airflow"]),
        "AIRFLOW__API__WORKERS": "1",
        "AIRFLOW__API_AUTH__JWT_SECRET": stored.get("jwt_secret", ""),
        "AIRFLOW__API__SECRET_KEY": stored.get("api_secret_key", ""),
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{config.admin_user}:admin",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(home / "passwords.json"),
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "20",
        # an unchanged DAG file is parsed again every 10 min, not every 30 s: each parse forks a
        # process that imports Airflow and the package (~0.6 s of CPU, 12 a minute for the six
        # files), which on two cores slowed everything else. An edited file is parsed at the next
        # refresh all the same (the default sort mode, modified_time, queues a file changed since
        # its last parse however recent that was).
        "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "600",
        "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK": "True",
        "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(home / "logs"),
        **airflow_connections(config.settings),
        "PYTHONPATH": str(config.root / "plugins"),
    }


def airflow_services(config: StackConfig, supervisor: Supervisor) -> list[Service]:
    """The API server (whose first start writes the secrets and migrates the database), then the
    scheduler, the DAG processor and the triggerer."""
    airflow = str(config.bin / "airflow")
    home = config.airflow_home

    def prepare() -> None:
        home.mkdir(parents=True, exist_ok=True)
        secrets_file = home / "secrets.json"
        if not secrets_file.exists():
            secrets_file.write_text(
                json.dumps({"jwt_secret": secrets.token_urlsafe(32), "api_secret_key": secrets.token_urlsafe(32)})
            )
            secrets_file.chmod(0o600)
        passwords = home / "passwords.json"
        passwords.write_text(json.dumps({config.admin_user: config.admin_password}) + "\n")
        passwords.chmod(0o600)
        supervisor.run_once("airflow-db-migrate", [airflow, "db", "migrate"], timeout_s=600, env=airflow_env(config))

    health = f"{config.airflow_url}/api/v2/monitor/health"

    def health_of(component: str) -> Callable[[], bool]:
        """Whether Airflow's health route says ``component`` is healthy."""

        def ready() -> bool:
            try:
                with urllib.request.urlopen(health, timeout=3) as response:  # noqa: S310 - local URL
                    body = json.load(response)
            except (urllib.error.URLError, OSError, ValueError):
                return False
            return bool(body.get(component, {}).get("status") == "healthy")

        return ready

    def dags_listed() -> None:
        """Wait until the DAG processor has parsed every DAG of the pipeline, so that the stack is
        ready when the UI shows them and runs can be triggered.

        Raises:
            StackError: A DAG file failed to import (the error), or they were not listed in time.
        """
        client = AirflowClient(
            ApiSettings(url=config.airflow_url, user=config.admin_user, password=config.admin_password)
        )
        client.login()
        deadline = time.monotonic() + 180
        while True:
            listed = {dag["dag_id"] for dag in client.call("GET", "/dags", query={"limit": 100})["dags"]}
            errors = client.call("GET", "/importErrors")["import_errors"]
            if errors:
                raise StackError(f"DAG import error in {errors[0]['filename']}:\n{errors[0]['stack_trace']}")
            if listed >= set(DAG_IDS):
                return
            if time.monotonic() > deadline:
                raise StackError(f"Airflow has not listed {sorted(set(DAG_IDS) - listed)} after 180 s")
            time.sleep(0.5)

    return [
        Service(
            name="airflow-api-server",
            argv=[airflow, "api-server", "--port", str(config.ports["airflow"]), "--host", "127.0.0.1"],
            ready=lambda: http_ok(health),
            prepare=prepare,
            timeout_s=240,
            ports=(config.ports["airflow"],),
        ),
        *(  # the health route names each component as its command, with "_" for "-"
            Service(
                f"airflow-{command}",
                [airflow, command],
                health_of(command.replace("-", "_")),
                timeout_s=240,
                after_ready=dags_listed if command == "dag-processor" else None,
            )
            for command in ("scheduler", "dag-processor", "triggerer")
        ),
    ]


def housekeeping_service(config: StackConfig) -> Service:
    """``btc-pipeline housekeeping --every 24``, the twin of docker compose's airflow-housekeeping:
    Airflow's task logs and run history older than BTC_AIRFLOW_RETENTION_DAYS go, once a day. Its
    log says what each pass deleted; ``housekeeping.ok`` in the Airflow home is there while the last
    pass succeeded."""
    return Service(
        name="airflow-housekeeping",
        argv=[
            *(str(config.bin / "python"), "-m", "btc_pipeline.cli", "housekeeping", "--every", "24"),
            *("--health-file", str(config.airflow_home / "housekeeping.ok")),
        ],
        ready=lambda: True,  # a pass may fail (SQLite busy beside the scheduler): the next one comes
    )
