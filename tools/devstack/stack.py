"""The local stack without Docker: real Kafka (KRaft), FerretDB on SQLite, Airflow, the dashboard, the
read API and (for ``demo``/``test``) the simulated exchange, each a process of its own.

Used by ``make up`` / ``make demo`` / ``make down`` (``python -m devstack``, see ``__main__``) and by
the integration-test fixtures. A :class:`Stack` is its configuration (:mod:`devstack.config`) and the
services of its mode (a module per family: ``kafka``, ``ferretdb``, ``airflow``, ``web``), which a
:class:`~devstack.service.Supervisor` starts and stops.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import cached_property

from btc_pipeline.redact import redact_uri
from devstack.airflow import airflow_env, airflow_services, housekeeping_service
from devstack.config import StackConfig
from devstack.ferretdb import ferretdb_service
from devstack.kafka import kafka_service
from devstack.service import Service, Supervisor
from devstack.web import api_service, dashboard_service, simex_service


class Stack(StackConfig):
    """The local stack in ``state_dir``: its configuration (:class:`~devstack.config.StackConfig`, which
    takes the arguments) and its services."""

    @cached_property
    def supervisor(self) -> Supervisor:
        """Starts and stops this stack's services."""
        return Supervisor(self.logs, self.pids, self.state, self._env_for)

    def start(self, service: Service) -> None:
        """Start ``service`` unless it runs already, and wait until it is ready (:meth:`Supervisor.start`)."""
        self.supervisor.start(service)

    def stop(self, name: str, *, timeout_s: float = 30.0) -> bool:
        """Stop our process ``name`` and what it started; False when it was not running (:meth:`Supervisor.stop`)."""
        return self.supervisor.stop(name, timeout_s=timeout_s)

    def pid_of(self, name: str) -> int | None:
        """The pid of our running process ``name``, or None."""
        return self.supervisor.pid_of(name)

    def airflow_env(self) -> dict[str, str]:
        """Airflow configuration for the local stack (:func:`devstack.airflow.airflow_env`)."""
        return airflow_env(self)

    def _env_for(self, service: Service) -> dict[str, str]:
        return self.airflow_env() if service.name.startswith("airflow") else self.pipeline_env()

    def stages(self) -> list[list[Service]]:
        """The services of this mode in start stages: a stage's services start at the same time, once
        the stage before is ready. Only Airflow's components wait for another service (its API server,
        which migrates the metadata database first). A test stack runs no housekeeping (its runs are
        minutes old, and `airflow db clean` would contend with the tests for SQLite)."""
        api_server, *components = airflow_services(self, self.supervisor)
        if self.mode != "test":
            components.append(housekeeping_service(self))
        return [
            [
                kafka_service(self, self.supervisor),
                ferretdb_service(self),
                *([simex_service(self)] if self.simulated else []),
            ],
            [api_server, dashboard_service(self), api_service(self)],
            components,
        ]

    def services(self) -> list[Service]:
        """All services of this mode, in start order."""
        return [service for stage in self.stages() for service in stage]

    def up(self, only: Sequence[str] | None = None) -> None:
        """Start every service (or those named in ``only``), a stage at a time (:meth:`stages`).

        Raises:
            StackError: A service did not start (the others of its stage were given their chance).
        """
        self.save()
        for stage in self.stages():
            chosen = [service for service in stage if only is None or service.name in only]
            with ThreadPoolExecutor(max_workers=max(len(chosen), 1)) as pool:
                list(pool.map(self.start, chosen))

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
        """Each service's state: ``stopped``, or its pid and whether it is ready."""
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
        if self.simulated:
            lines.append(f"  Exchange sim {self.simex_url}   (prices are simulated)")
        lines.append(f"  Logs         {self.logs}/   stop with `make down`")
        return "\n".join(lines)
