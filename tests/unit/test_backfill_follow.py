"""The backfill command follows a run of more than 100 chunks truthfully: against a real local HTTP
server that answers like Airflow's REST API (pages of at most 100 entries), the progress counts
every chunk and its minutes, a failed chunk past the 100th is found, Ctrl-C says whether the run is
still going and how to follow it, and a relative range asked again attaches to the run in progress."""

from __future__ import annotations

import io
import urllib.parse
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

import pytest

from btc_pipeline.cli.airflow_client import AirflowClient
from btc_pipeline.cli.backfill import (
    StorageWatch,
    eta,
    follow_run,
    interrupted_message,
    same_request,
)
from btc_pipeline.cli.progress import Progress
from btc_pipeline.config import ApiSettings
from btc_pipeline.timeutil import format_ts
from btc_pipeline.window import MINUTE, Window

from .local_http import JsonHandler, serving

START = datetime(2026, 1, 1, tzinfo=UTC)
CHUNKS = [Window(START + i * 60 * MINUTE, START + (i + 1) * 60 * MINUTE) for i in range(400)]
WHOLE = Window(CHUNKS[0].start, CHUNKS[-1].end)
FAILED = 317  # past the first page of 100, and of 300


class Airflow(JsonHandler):
    """A btc_backfill run of 400 mapped chunks: running for ``polls`` requests of the run, then ended."""

    polls = 0
    state = "running"
    seen: ClassVar[list[str]] = []

    def do_POST(self) -> None:  # noqa: N802 - http.server names it
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self._reply(201, {"access_token": "jwt"})

    def do_GET(self) -> None:  # noqa: N802 - http.server names it
        url = urllib.parse.urlsplit(self.path)
        query = urllib.parse.parse_qs(url.query)
        type(self).seen.append(url.path)
        if url.path.endswith("/taskInstances"):
            offset, limit = int(query["offset"][0]), min(int(query["limit"][0]), 100)
            ended = type(self).state != "running"
            page = [
                {
                    "task_id": "fetch_and_produce",
                    "map_index": i,
                    "rendered_map_index": f"{format_ts(CHUNKS[i].start)} → {format_ts(CHUNKS[i].end)}",
                    "state": ("failed" if i == FAILED else "success") if ended or i < 150 else "running",
                }
                for i in range(offset, min(offset + limit, len(CHUNKS)))
            ]
            self._reply(200, {"task_instances": page, "total_entries": len(CHUNKS)})
        elif "/xcomEntries/" in url.path:
            plan = [{"start": format_ts(c.start), "end": format_ts(c.end)} for c in CHUNKS]
            self._reply(200, {"value": plan})
        elif "/dagRuns/" in url.path:
            type(self).polls += 1
            if type(self).polls > 2 and type(self).state == "running":
                type(self).state = "failed"
            self._reply(200, {"dag_run_id": "manual__1", "state": type(self).state})
        else:
            self._reply(404, {"detail": "not here"})


@pytest.fixture
def airflow() -> Iterator[AirflowClient]:
    Airflow.polls, Airflow.state, Airflow.seen = 0, "running", []
    with serving(Airflow) as url:
        yield AirflowClient(ApiSettings(url=url, user="admin", password="admin"))


class NoStore(StorageWatch):
    """The storage side as a run with nothing stored yet would show it (no database in a unit test)."""

    def __init__(self) -> None:
        self.min_interval_s = 0.0
        self.missing = {}
        self.looked: list[int] = []

    def look(self, chunks: Any, *, force: bool = False) -> None:
        self.looked.append(len(chunks))

    def accounted(self) -> int:
        return 0


def test_a_run_of_400_chunks_is_followed_whole_and_its_failed_chunk_past_the_100th_is_found(airflow):
    stream = io.StringIO()
    storage = NoStore()
    outcome = follow_run(airflow, "manual__1", WHOLE, Progress(stream), storage, poll_s=0.01, deadline=1e12)
    assert outcome is not None and outcome.state == "failed" and len(outcome.tis) == 400
    assert outcome.failed == [CHUNKS[FAILED]] and len(outcome.succeeded) == 399
    lines = stream.getvalue().splitlines()
    assert lines[0].startswith("fetched [") and f"{150 * 60}/{400 * 60} min (150/400 chunks" in lines[0]
    assert f"{399 * 60}/{400 * 60} min (400/400 chunks" in lines[-1] and "1 chunk(s) failed" in lines[-1]
    assert storage.looked[-1] == 399  # the storage side looks at every succeeded chunk, not the first 100


def test_ctrl_c_says_whether_the_run_is_still_going_and_how_to_follow_it(airflow):
    conf = {"start": format_ts(WHOLE.start), "end": format_ts(WHOLE.end), "source": "binance", "only_missing": False}
    going = interrupted_message(airflow, "manual__1", conf)
    assert "run manual__1 is still running" in going and "/dags/btc_backfill/runs/manual__1" in going
    assert f"btc-pipeline backfill --from {conf['start']} --to {conf['end']} --source binance" in going
    Airflow.state = "success"
    ended = interrupted_message(airflow, "manual__1", conf)
    assert "has ended (success)" in ended and "btc-pipeline gaps --from" in ended and "attaches" not in ended
    assert "nothing is running" in interrupted_message(None, None, conf)
    Airflow.polls, Airflow.state = 0, "running"
    assert interrupted_message(airflow, "manual__1", {**conf, "lane": "live"}).endswith("--source binance --lane live")


def iso(ts: datetime) -> str:
    return format_ts(ts)


@pytest.mark.parametrize(
    ("shift", "age", "attaches"),
    [
        (timedelta(0), timedelta(0), True),  # the very same range
        (timedelta(minutes=3), timedelta(minutes=3), True),  # --from 365d again, 3 minutes later
        (timedelta(minutes=30), timedelta(minutes=3), False),  # shifted more than the run's age
        (-MINUTE, timedelta(minutes=3), False),  # an earlier range
    ],
)
def test_a_relative_range_asked_again_attaches_to_the_run_in_progress(shift, age, attaches):
    now = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
    run = {"start": iso(now - timedelta(days=365)), "end": iso(now), "source": None, "only_missing": False}
    asked = {**run, "start": iso(now - timedelta(days=365) + shift), "end": iso(now + shift), "lane": "history"}
    assert same_request(run, asked, now + age - age, now + age) is attaches
    assert not same_request({**run, "source": "coinbase"}, asked, now, now + age)
    assert not same_request(run, {**asked, "end": iso(now + shift + MINUTE)}, now, now + age)  # longer


def test_eta_follows_the_rate_so_far():
    assert eta(0, 100, 10) == "ETA --"
    assert eta(25, 100, 60) == "ETA 3m00s"
    assert eta(100, 100, 60) == "done"
