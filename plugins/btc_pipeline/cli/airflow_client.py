"""A small client of Airflow 3's REST API for the ``btc-pipeline`` CLI (standard library only, so the
CLI starts fast and never imports Airflow itself).

It logs in with ``POST /auth/token`` (the simple auth manager's user and password) and sends the
JWT as a bearer token. Every failure is an :class:`AirflowApiError` that says what to check.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from typing import Any

from btc_pipeline.config import ApiSettings

TERMINAL_TI_STATES = frozenset({"success", "failed", "skipped", "upstream_failed", "removed"})
TERMINAL_RUN_STATES = frozenset({"success", "failed"})
#: Requests that may be sent again: reading, and setting a field to a value (Airflow's PATCH with
#: ``update_mask``). A POST that creates a run is never repeated.
IDEMPOTENT = frozenset({"GET", "PATCH", "PUT", "DELETE"})
#: Waits before the retries of an idempotent request that met a busy metadata database: with SQLite
#: (the local stack) Airflow answers 500 "Database error" while its scheduler holds the write lock.
BUSY_RETRY_S = (0.5, 1.0, 2.0, 4.0)


class AirflowApiError(RuntimeError):
    """Airflow's REST API could not be reached or refused a request; the message says what to check."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class AirflowClient:
    """Airflow REST API v2, logged in as the configured user."""

    def __init__(self, settings: ApiSettings, *, timeout_s: float = 20.0) -> None:
        self.base = settings.url.rstrip("/")
        self.timeout_s = timeout_s
        self._settings = settings
        self._token: str | None = None

    def _request(self, method: str, url: str, body: Any = None, headers: Mapping[str, str] | None = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(  # noqa: S310 - the URL is the configured Airflow API
            url, data=data, method=method, headers={"Content-Type": "application/json", **(headers or {})}
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as response:  # noqa: S310
                raw = response.read()
        except urllib.error.HTTPError as exc:
            detail = exc.read()[:300].decode("utf-8", "replace")
            raise AirflowApiError(f"{method} {url}: HTTP {exc.code}: {detail}", exc.code) from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise AirflowApiError(
                f"cannot reach Airflow at {self.base} ({reason}): is the stack up? "
                "Set AIRFLOW_API_URL (or AIRFLOW_PORT) to its address"
            ) from None
        return json.loads(raw) if raw else None

    def login(self) -> None:
        """Get a JWT with the configured user and password.

        Raises:
            AirflowApiError: Airflow is unreachable or refused the credentials.
        """
        body = {"username": self._settings.user, "password": self._settings.password}
        try:
            answer = self._request("POST", f"{self.base}/auth/token", body)
        except AirflowApiError as exc:
            if exc.status in (401, 403):
                raise AirflowApiError(
                    f"Airflow at {self.base} refused user {self._settings.user!r}: "
                    "set AIRFLOW_ADMIN_USER and AIRFLOW_ADMIN_PASSWORD",
                    exc.status,
                ) from None
            raise
        self._token = str(answer["access_token"])

    def call(self, method: str, path: str, body: Any = None, query: Mapping[str, Any] | None = None) -> Any:
        """Call ``/api/v2{path}`` (logging in first if needed) and return the decoded JSON.

        Args:
            method: HTTP method.
            path: Path below ``/api/v2``, already quoted.
            body: JSON body.
            query: Query parameters (a list value repeats the parameter).

        Returns:
            The decoded answer.

        Raises:
            AirflowApiError: The request failed.
        """
        if self._token is None:
            self.login()
        url = f"{self.base}/api/v2{path}"
        if query:
            url += "?" + urllib.parse.urlencode(query, doseq=True)
        waits = iter(BUSY_RETRY_S if method.upper() in IDEMPOTENT else ())
        while True:
            try:
                return self._request(method, url, body, {"Authorization": f"Bearer {self._token}"})
            except AirflowApiError as exc:
                wait = next(waits, None) if _database_busy(exc) else None
                if wait is None:
                    raise
                time.sleep(wait)

    def dag(self, dag_id: str) -> dict[str, Any]:
        """The DAG's details (``is_paused`` ...).

        Raises:
            AirflowApiError: Unknown DAG (not parsed yet?) or another failure.
        """
        try:
            return dict(self.call("GET", f"/dags/{_quote(dag_id)}"))
        except AirflowApiError as exc:
            if exc.status == 404:
                raise AirflowApiError(
                    f"Airflow at {self.base} has no DAG {dag_id!r}: is dags/{dag_id}.py in its dags folder "
                    "and parsed (check the UI's import errors)?",
                    404,
                ) from None
            raise

    def health(self) -> dict[str, Any]:
        """``/api/v2/monitor/health``."""
        return dict(self.call("GET", "/monitor/health"))

    def trigger(self, dag_id: str, conf: Mapping[str, Any]) -> dict[str, Any]:
        """Trigger a run without a logical date, with ``conf``."""
        return dict(self.call("POST", f"/dags/{_quote(dag_id)}/dagRuns", {"logical_date": None, "conf": dict(conf)}))

    def run(self, dag_id: str, run_id: str) -> dict[str, Any]:
        """One run."""
        return dict(self.call("GET", f"/dags/{_quote(dag_id)}/dagRuns/{_quote(run_id)}"))

    def active_runs(self, dag_id: str) -> list[dict[str, Any]]:
        """The queued and running runs of ``dag_id``."""
        answer = self.call(
            "GET", f"/dags/{_quote(dag_id)}/dagRuns", query={"state": ["queued", "running"], "limit": 100}
        )
        return list(answer["dag_runs"])

    def task_instances(self, dag_id: str, run_id: str, task_id: str) -> list[dict[str, Any]]:
        """The task instances of ``task_id`` in a run (one per mapped index)."""
        answer = self.call(
            "GET",
            f"/dags/{_quote(dag_id)}/dagRuns/{_quote(run_id)}/taskInstances",
            query={"task_id": task_id, "limit": 1000},
        )
        return list(answer["task_instances"])

    def xcom(self, dag_id: str, run_id: str, task_id: str, key: str, map_index: int = -1) -> Any:
        """The value of an XCom entry as stored (JSON).

        Raises:
            AirflowApiError: Not found (404: the task has not pushed it yet) or another failure.
        """
        path = (
            f"/dags/{_quote(dag_id)}/dagRuns/{_quote(run_id)}/taskInstances/{_quote(task_id)}/xcomEntries/{_quote(key)}"
        )
        return self.call("GET", path, query={"map_index": map_index})["value"]

    def run_url(self, dag_id: str, run_id: str) -> str:
        """The run's page in the Airflow UI."""
        return f"{self.base}/dags/{_quote(dag_id)}/runs/{_quote(run_id)}"


def _quote(part: str) -> str:
    return urllib.parse.quote(part, safe="")


def _database_busy(exc: AirflowApiError) -> bool:
    """Airflow's answer while its metadata database is busy (SQLite locked), or while it restarts."""
    return exc.status == 503 or (exc.status == 500 and "Database error" in str(exc))
