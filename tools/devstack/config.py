"""What a local stack is made of before anything runs: its mode, ``.env``, ports, paths, URLs and the
``BTC_*`` environment its processes get; remembered in ``<state>/stack.json`` when it starts."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Self
from urllib.parse import urlsplit

from btc_pipeline.config import ConfigError, Settings, load_settings, read_env_file, url_key
from btc_pipeline.exchanges import EXCHANGES
from btc_pipeline.stream.topics import pipeline_topics
from devstack.processes import free_port

ROOT = Path(__file__).resolve().parents[2]
MODES = ("demo", "live", "test")
#: Each service family's main port: its default and the ``.env`` variable that moves it.
PORTS = {
    "airflow": (8080, "AIRFLOW_PORT"),
    "dashboard": (8501, "DASHBOARD_PORT"),
    "api": (8000, "API_PORT"),
    "kafka": (9092, "KAFKA_PORT"),
    "mongo": (27017, "MONGO_PORT"),
    "simex": (8090, "SIMEX_PORT"),
}
#: The settings a started stack keeps even if ``.env`` changes (they name its topics and database).
KEPT_SETTINGS = ("BTC_TOPIC", "BTC_DLQ_TOPIC", "BTC_MONGO_DB")


class StackError(RuntimeError):
    """A service could not be prepared or did not become ready; the message says which and why."""


def simulated_base_urls(simex_url: str) -> dict[str, str]:
    """``BTC_<NAME>_URL`` of every exchange pointed at the simulated exchange at ``simex_url``, which
    serves each one under its name, at the path of its real base URL (``/kraken/0``)."""
    return {url_key(name): f"{simex_url}/{name}{urlsplit(cls.base_url).path}" for name, cls in EXCHANGES.items()}


def free_ports() -> dict[str, int]:
    """Unused ports for every service of a stack and Kafka's controller (a test stack beside a demo)."""
    return {name: free_port() for name in (*PORTS, "kafka_controller")}


class StackConfig:
    """The configuration of the local stack of ``mode`` (``demo`` and ``test`` run the simulated exchange)
    in ``state_dir`` (default ``<root>/state``): ``.env`` of ``root`` with ``env`` over it, and ``ports``
    over its ports. The ports are fixed when it is made.

    Raises:
        StackError: An unknown mode, a line of ``.env`` that is not ``KEY=VALUE``, or a port that is not a number.
    """

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
        try:
            self.user_env = {**read_env_file(root / ".env"), **(env or {})}
        except ConfigError as exc:
            raise StackError(str(exc)) from None
        self.ports = {name: default for name, (default, _) in PORTS.items()}
        for name, (_, key) in PORTS.items():
            if key in self.user_env:
                try:
                    self.ports[name] = int(self.user_env[key])
                except ValueError:
                    raise StackError(f"{key}={self.user_env[key]!r} in .env is not a port number") from None
        self.ports.update(ports or {})
        #: The KRaft controller's port: ``ports["kafka_controller"]``, or the broker's port + 1.
        self.kafka_controller_port = self.ports.get("kafka_controller", self.ports["kafka"] + 1)
        self.kafka_bootstrap = f"127.0.0.1:{self.ports['kafka']}"
        self.mongo_uri = f"mongodb://127.0.0.1:{self.ports['mongo']}/"
        self.airflow_url, self.dashboard_url, self.api_url, self.simex_url = (
            f"http://127.0.0.1:{self.ports[name]}" for name in ("airflow", "dashboard", "api", "simex")
        )
        self.bin = Path(sys.executable).parent
        self.logs, self.pids, self.airflow_home = self.state / "logs", self.state / "pids", self.state / "airflow"
        self.kafka_libs = Path(self.user_env.get("BTC_KAFKA_LIBS", root / "state" / "kafka" / "libs"))
        self.ferretdb_bin = Path(self.user_env.get("BTC_FERRETDB_BIN", root / "state" / "bin" / "ferretdb-local"))
        # local-only defaults (the stack listens on 127.0.0.1), also for the empty values of .env.example
        self.admin_user = self.user_env.get("AIRFLOW_ADMIN_USER") or "admin"
        self.admin_password = self.user_env.get("AIRFLOW_ADMIN_PASSWORD") or "admin"

    @classmethod
    def running(cls, mode: str = "demo", *, root: Path = ROOT, state_dir: Path | None = None) -> Self:
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

    def save(self) -> None:
        """Remember this stack in ``<state>/stack.json`` for :meth:`running`."""
        self.state.mkdir(parents=True, exist_ok=True)
        kept = {k: v for k, v in self.user_env.items() if k in KEPT_SETTINGS}
        (self.state / "stack.json").write_text(json.dumps({"mode": self.mode, "ports": self.ports, "env": kept}))

    @property
    def simulated(self) -> bool:
        """Whether the exchanges are the simulated exchange's (``demo`` and ``test``)."""
        return self.mode != "live"

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
        """The topics to create (``BTC_TOPIC``, ``BTC_DLQ_TOPIC``, ``BTC_HISTORY_TOPIC``), with partitions."""
        settings = self.settings
        return pipeline_topics(settings.topic, settings.dlq_topic, settings.history_topic)

    def pipeline_env(self) -> dict[str, str]:
        """The ``BTC_*`` settings every pipeline process gets (package config, see config.py)."""
        env = {k: v for k, v in self.user_env.items() if k.startswith("BTC_")}
        env.update(BTC_KAFKA_BOOTSTRAP=self.kafka_bootstrap, BTC_MONGO_URI=self.mongo_uri)
        # the links in notifications point at this stack's own UI and dashboard, unless .env says otherwise
        env.setdefault("BTC_AIRFLOW_UI_URL", self.airflow_url)
        env.setdefault("BTC_DASHBOARD_URL", self.dashboard_url)
        if self.simulated:
            env.update(simulated_base_urls(self.simex_url))
        return env

    def pipeline_cli_env(self) -> dict[str, str]:
        """Environment for running ``btc-pipeline`` against this stack: its settings and Airflow's API."""
        return {
            **os.environ,
            **self.pipeline_env(),
            "AIRFLOW_API_URL": self.airflow_url,
            "AIRFLOW_ADMIN_USER": self.admin_user,
            "AIRFLOW_ADMIN_PASSWORD": self.admin_password,
        }
