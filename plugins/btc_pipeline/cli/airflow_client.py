"""A small client of Airflow 3's REST API for the ``btc-pipeline`` CLI, on ``requests`` with
``tenacity`` for the retries (both dependencies anyway; the CLI never imports Airflow itself, so it
starts fast). The official ``apache-airflow-client`` was tried on the same calls: its generated
models took 2.8 s to import, against 0.2 s here, and it still needs the login and the busy-database
retries written around it (docs/decisions/airflow-client.md).

It logs in with ``POST /auth/token`` (the simple auth manager's user and password) and sends the
JWT as a bearer token. List endpoints are read page by page (Airflow caps a page at 100 entries
whatever ``limit`` asks). Every failure is an :class:`AirflowApiError` that says what to check.
"""

from __future__ import annotations

import urllib.parse
import uuid
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

import requests
from tenacity import Retrying, retry_if_exception, stop_after_attempt, wait_exponential

from btc_pipeline.config import ApiSettings
from btc_pipeline.errors import BtcPipelineError

TERMINAL_TI_STATES = frozenset({"success", "failed", "skipped", "upstream_failed", "removed"})
TERMINAL_RUN_STATES = frozenset({"success", "failed"})
#: Requests that may be sent again: reading, and setting a field to a value (Airflow's PATCH with
#: ``update_mask``). A POST that creates a run is never repeated.
IDEMPOTENT = frozenset({"GET", "PATCH", "PUT", "DELETE"})
#: Retries of an idempotent request that met a busy metadata database (with SQLite, the local
#: stack's, Airflow answers 500 "Database error" while its scheduler holds the write lock), waiting
#: 0.5, 1, 2, 4 s: :data:`BUSY_WAIT_S` doubled each time.
BUSY_RETRIES = 4
BUSY_WAIT_S = 0.5
#: The most entries Airflow returns per page.
PAGE_SIZE = 100


class AirflowApiError(BtcPipelineError, RuntimeError):
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
        self._session = requests.Session()

    def _request(self, method: str, url: str, body: Any = None, query: Mapping[str, Any] | None = None) -> Any:
        try:
            response = self._session.request(method, url, json=body, params=query, timeout=self.timeout_s)
        except requests.RequestException as exc:
            raise AirflowApiError(
                f"cannot reach Airflow at {self.base} ({exc.__class__.__name__}): is the stack up? "
                "Set AIRFLOW_API_URL (or AIRFLOW_PORT) to its address"
            ) from None
        if not response.ok:
            detail = response.text[:300]
            raise AirflowApiError(f"{method} {url}: HTTP {response.status_code}: {detail}", response.status_code)
        return response.json() if response.content else None

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
        self._session.headers["Authorization"] = f"Bearer {answer['access_token']}"

    def call(self, method: str, path: str, body: Any = None, query: Mapping[str, Any] | None = None) -> Any:
        """Call ``/api/v2{path}`` (logging in first if needed) and return the decoded JSON.

        An idempotent request that meets a busy metadata database is sent again, up to
        :data:`BUSY_RETRIES` times with doubling waits; a POST never is.

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
        if "Authorization" not in self._session.headers:
            self.login()
        retries = BUSY_RETRIES if method.upper() in IDEMPOTENT else 0
        return _while_busy(retries)(self._request, method, f"{self.base}/api/v2{path}", body, query)

    def pages(self, path: str, field: str, query: Mapping[str, Any] | None = None) -> Iterator[dict[str, Any]]:
        """Every entry of a list endpoint, page by page (``field`` names the list in each answer).

        Raises:
            AirflowApiError: A request failed.
        """
        offset = 0
        while True:
            answer = self.call("GET", path, query={**(query or {}), "limit": PAGE_SIZE, "offset": offset})
            entries = list(answer[field])
            yield from entries
            offset += len(entries)
            if not entries or offset >= int(answer.get("total_entries", offset)):
                return

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
        """Trigger a run without a logical date, with ``conf``.

        The run id is chosen here, so that the request can be sent again while Airflow's metadata
        database is busy: a second POST of the same id cannot make a second run (Airflow answers
        409, and the run is read instead).

        Raises:
            AirflowApiError: The run could not be created.
        """
        run_id = f"manual__{datetime.now(UTC).isoformat()}__{uuid.uuid4().hex[:6]}"
        body = {"dag_run_id": run_id, "logical_date": None, "conf": dict(conf)}
        try:
            return dict(_while_busy(BUSY_RETRIES)(self.call, "POST", f"/dags/{_quote(dag_id)}/dagRuns", body))
        except AirflowApiError as exc:
            if exc.status != 409:
                raise
            return self.run(dag_id, run_id)  # an earlier attempt created it

    def run(self, dag_id: str, run_id: str) -> dict[str, Any]:
        """One run."""
        return dict(self.call("GET", f"/dags/{_quote(dag_id)}/dagRuns/{_quote(run_id)}"))

    def active_runs(self, dag_id: str) -> list[dict[str, Any]]:
        """The queued and running runs of ``dag_id``."""
        return list(self.pages(f"/dags/{_quote(dag_id)}/dagRuns", "dag_runs", {"state": ["queued", "running"]}))

    def task_instances(self, dag_id: str, run_id: str, task_id: str) -> list[dict[str, Any]]:
        """The task instances of ``task_id`` in a run (one per mapped index, all pages)."""
        path = f"/dags/{_quote(dag_id)}/dagRuns/{_quote(run_id)}/taskInstances"
        return list(self.pages(path, "task_instances", {"task_id": task_id}))

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


def _while_busy(retries: int) -> Retrying:
    """Calls a request again, up to ``retries`` times with doubling waits, while Airflow's metadata
    database is busy; then the last error is raised."""
    return Retrying(
        retry=retry_if_exception(_database_busy),
        stop=stop_after_attempt(retries + 1),
        wait=wait_exponential(multiplier=BUSY_WAIT_S, min=BUSY_WAIT_S),
        reraise=True,
    )


def _database_busy(exc: BaseException) -> bool:
    """Airflow's answer while its metadata database is busy (SQLite locked), or while it restarts."""
    return isinstance(exc, AirflowApiError) and (
        exc.status == 503 or (exc.status == 500 and "Database error" in str(exc))
    )
