"""The CLI's Airflow REST client against a small real HTTP server that answers like Airflow's API
server: a login, and 500 "Database error" while the (SQLite) metadata database is locked."""

from __future__ import annotations

import urllib.parse
from collections.abc import Iterator
from typing import Any, ClassVar

import pytest

from btc_pipeline.cli import airflow_client
from btc_pipeline.cli.airflow_client import AirflowApiError, AirflowClient
from btc_pipeline.config import ApiSettings

from .local_http import JsonHandler, serving

#: What Airflow 3's API server answered in a test run while the scheduler held SQLite's lock.
LOCKED = {"detail": {"reason": "Database error", "statement": "hidden", "orig_error": "hidden", "message": "..."}}


class FakeAirflow(JsonHandler):
    """Answers the first ``busy`` API requests with ``status``/``answer``, then 200."""

    busy = 0
    status = 500
    answer: ClassVar[dict[str, Any]] = LOCKED
    seen: ClassVar[list[str]] = []
    bodies: ClassVar[list[str]] = []

    def _handle(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self.path == "/auth/token":
            self._reply(201, {"access_token": "jwt"})
            return
        type(self).seen.append(f"{self.command} {self.path}")
        if self.command == "POST":
            type(self).bodies.append(body.decode())
        url = urllib.parse.urlsplit(self.path)
        if url.path.endswith("/taskInstances"):  # 250 mapped instances, at most 100 a page, like Airflow
            query = urllib.parse.parse_qs(url.query)
            offset, limit = int(query["offset"][0]), min(int(query["limit"][0]), 100)
            page = [{"task_id": query["task_id"][0], "map_index": i} for i in range(offset, min(offset + limit, 250))]
            self._reply(200, {"task_instances": page, "total_entries": 250})
            return
        if type(self).busy > 0:
            type(self).busy -= 1
            self._reply(type(self).status, type(self).answer)
            return
        self._reply(200, {"dag_id": "btc_heal", "is_paused": False})

    def do_GET(self) -> None:  # noqa: N802 - http.server names it
        self._handle()

    def do_PATCH(self) -> None:  # noqa: N802 - http.server names it
        self._handle()

    def do_POST(self) -> None:  # noqa: N802 - http.server names it
        self._handle()


@pytest.fixture
def airflow(monkeypatch: pytest.MonkeyPatch) -> Iterator[AirflowClient]:
    monkeypatch.setattr(airflow_client, "BUSY_RETRIES", 3)
    monkeypatch.setattr(airflow_client, "BUSY_WAIT_S", 0.01)
    FakeAirflow.busy, FakeAirflow.status, FakeAirflow.answer, FakeAirflow.seen = 0, 500, LOCKED, []
    FakeAirflow.bodies = []
    with serving(FakeAirflow) as url:
        yield AirflowClient(ApiSettings(url=url, user="admin", password="admin"))


def test_a_busy_database_is_waited_out_for_an_idempotent_request(airflow):
    FakeAirflow.busy = 2
    assert airflow.call("PATCH", "/dags/btc_heal", {"is_paused": False})["is_paused"] is False
    assert FakeAirflow.seen == ["PATCH /api/v2/dags/btc_heal"] * 3


def test_a_database_busy_for_longer_is_the_error_it_was(airflow):
    FakeAirflow.busy = 10
    with pytest.raises(AirflowApiError, match=r"HTTP 500.*Database error") as caught:
        airflow.call("GET", "/dags/btc_heal")
    assert caught.value.status == 500 and len(FakeAirflow.seen) == 4  # the request and its 3 retries


def test_a_request_that_creates_a_run_is_never_repeated(airflow):
    FakeAirflow.busy = 1
    with pytest.raises(AirflowApiError, match="HTTP 500"):
        airflow.call("POST", "/dags/btc_backfill/dagRuns", {"logical_date": None})
    assert FakeAirflow.seen == ["POST /api/v2/dags/btc_backfill/dagRuns"]


def test_other_server_errors_are_not_retried(airflow):
    FakeAirflow.busy, FakeAirflow.answer = 1, {"detail": "Internal Server Error"}
    with pytest.raises(AirflowApiError, match="HTTP 500"):
        airflow.call("GET", "/dags/btc_heal")
    assert len(FakeAirflow.seen) == 1


def test_list_endpoints_are_read_past_airflows_page_of_100(airflow):
    instances = airflow.task_instances("btc_backfill", "manual__1", "fetch_and_produce")
    assert [ti["map_index"] for ti in instances] == list(range(250))
    assert len(FakeAirflow.seen) == 3


def test_a_trigger_that_met_a_busy_database_is_sent_again_with_the_same_run_id(airflow):
    FakeAirflow.busy = 2
    airflow.trigger("btc_backfill", {"start": "2026-01-01T00:00:00Z"})
    posts = [s for s in FakeAirflow.seen if s.startswith("POST")]
    assert posts == ["POST /api/v2/dags/btc_backfill/dagRuns"] * 3
    assert len(set(FakeAirflow.bodies)) == 1 and '"dag_run_id": "manual__' in FakeAirflow.bodies[0]
