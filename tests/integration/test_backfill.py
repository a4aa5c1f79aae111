"""Backfill, gaps and healing on the real local stack: Airflow's own `airflow backfill create`, the
`btc-pipeline` console script (run as a subprocess, like a user would), the btc_backfill and btc_heal
DAGs, and minutes without trades told apart from holes. Every candle is checked against the
simulated exchange's price path, once each.

The time ranges of the tests are disjoint (relative to the module's start, T) and each test stores
the data it reads itself, so that any test runs alone or in any order. Only the heal test keeps data
within btc_heal's reach, the last 6 h 10 min (BTC_HEAL_HORIZON_MINUTES, 360, before its 10-minute
lag), and just before it: a heal run, hourly or the heal test's, fills every hole there.
  [N-6h30m, N-3h10m)       btc_heal: fills the holes it finds, skips 3 minutes without trades (N: the
                           test's own start, as the heal's reach follows the clock)
  [T-7d-7h, T-7h)          CLI: 7-day backfill
  [T-8d, T-8d+1h)          CLI: Ctrl-C while waiting for MongoDB
  [T-10d, +1500m)          CLI: one of two chunks fails
  [T-15d, +5m)             airflow backfill create (5 windows of btc_ingest)
  [T-16d, +3h)             CLI: 3-hour backfill, deleted windows found by `gaps` and restored by `backfill --missing`
  [T-17d-10m, T-17d+13m)   CLI: minutes without trades (the 3 from T-17d)
  the UTC day of T-19d     CLI: a backfilled day's read model equals a recompute; `rollups rebuild` restores it
The other modules' ranges in the stack's database are listed in tests/integration/conftest.py.
"""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from btc_pipeline.bars import BAR_LENGTH
from btc_pipeline.config import Settings
from btc_pipeline.schema import format_ts
from btc_pipeline.store import CONSENSUS, Store
from btc_pipeline.window import MINUTE, Window, floor_minute
from devstack import Stack

from .conftest import (
    INTERVALS,
    ROOT,
    AirflowAPI,
    assert_exact_once,
    assert_read_model_matches,
    candles,
    poll,
    wait_drained,
    wait_for,
)

pytestmark = pytest.mark.integration

CLI = ROOT / ".venv" / "bin" / "btc-pipeline"
#: How long `airflow backfill create` is run again while SQLite says "database is locked" (5 tries
#: were too few on a loaded machine, right after another test's day of backfill)
LOCKED_RETRY_S = 120


@dataclass(frozen=True)
class Result:
    code: int
    out: str
    err: str
    seconds: float


@pytest.fixture(scope="module")
def t0() -> datetime:
    return floor_minute(datetime.now(UTC))


@pytest.fixture(scope="module")
def cli_env(stack: Stack) -> dict[str, str]:
    return stack.pipeline_cli_env()


@pytest.fixture(scope="module")
def run_cli(cli_env: dict[str, str]) -> Any:
    def run(*args: str, timeout_s: float = 300) -> Result:
        started = time.monotonic()
        proc = subprocess.run(
            [str(CLI), *args], env=cli_env, capture_output=True, text=True, timeout=timeout_s, check=False
        )
        result = Result(proc.returncode, proc.stdout, proc.stderr, time.monotonic() - started)
        print(f"\n$ btc-pipeline {' '.join(args)}  -> exit {result.code} in {result.seconds:.1f}s\n{proc.stdout}")
        return result

    return run


def iso(ts: datetime) -> str:
    return format_ts(ts)


def parse(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def delete_minutes(mongo: Any, window: Window) -> int:
    """Make a hole: delete the window's candles from btc.prices, then rebuild its read model exactly
    (what an operator does after deleting data; the read model is what `gaps` reads)."""
    query = {"kind": "candle_1m", "ts": {"$gte": window.start, "$lt": window.end}}
    present = sorted(doc["ts"] for doc in mongo["btc"]["prices"].find(query, {"ts": 1}))
    deleted = int(mongo["btc"]["prices"].delete_many(query).deleted_count)
    # a flake seen once: delete_many reported 0 for minutes stored a moment before; say which
    assert deleted == len(present), f"{window}: {len(present)} candle(s) found {present[:3]}, {deleted} deleted"
    rebuilt = Store(mongo["btc"]).rebuild_read_model(window, exact=True)
    assert rebuilt.minutes_changed >= deleted, rebuilt
    return deleted


def set_paused(airflow: AirflowAPI, dag_id: str, paused: bool) -> None:
    assert airflow.call("PATCH", f"/dags/{dag_id}?update_mask=is_paused", {"is_paused": paused})["is_paused"] is paused


def active_runs(
    airflow: AirflowAPI, dag_id: str, states: tuple[str, ...] = ("queued", "running")
) -> list[dict[str, Any]]:
    query = "&".join(f"state={state}" for state in states)
    return airflow.call("GET", f"/dags/{dag_id}/dagRuns?{query}&limit=100")["dag_runs"]


@dataclass(frozen=True)
class Background:
    """The CLI running in the background: its process, and the lines of its stderr so far (a thread reads them)."""

    proc: subprocess.Popen[str]
    lines: list[str]
    reader: threading.Thread


def start_interruptible(env: dict[str, str], *args: str) -> Background:
    """Start the CLI as a CI runner would: in the background with SIGINT *ignored* (bash without job
    control does that), so the CLI must take SIGINT back itself to honour Ctrl-C."""
    proc = subprocess.Popen(
        [str(CLI), *args],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN),
    )
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(iter(proc.stderr.readline, "")), daemon=True)  # type: ignore[union-attr]
    reader.start()
    return Background(proc, lines, reader)


def interrupt(cli: Background) -> str:
    """Ctrl-C: the CLI ends within seconds with exit code 130; returns what it wrote to stderr."""
    started = time.monotonic()
    cli.proc.send_signal(signal.SIGINT)
    try:
        cli.proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        cli.proc.kill()
        pytest.fail(f"still running 10 s after SIGINT; stderr so far:\n{''.join(cli.lines)}")
    cli.reader.join(timeout=10)  # it ends at the pipe's end: every line the CLI wrote is in
    assert not cli.reader.is_alive(), "the CLI's stderr was still open 10 s after it ended"
    err = "".join(cli.lines)
    assert cli.proc.returncode == 130, err
    print(f"\nCtrl-C honoured in {time.monotonic() - started:.1f}s")
    return err


def fetching_candles(airflow: AirflowAPI) -> list[dict[str, Any]]:
    """Task instances that may request candles now: btc_ingest's produce_window (its other tasks read
    only tickers) and any btc_heal task, queued to or running on the executor. Scheduled or
    up-for-retry ones of a paused DAG stay so until it is resumed (the scheduler does not queue
    them): they never meet a fault, which is cleared before the resume."""
    states = "&".join(f"state={s}" for s in ("queued", "running"))
    ingest = f"/dags/btc_ingest/dagRuns/~/taskInstances?task_id=produce_window&{states}&limit=100"
    heal = f"/dags/btc_heal/dagRuns/~/taskInstances?{states}&limit=100"
    return airflow.call("GET", ingest)["task_instances"] + airflow.call("GET", heal)["task_instances"]


@contextmanager
def exchange_to_ourselves(stack: Stack, airflow: AirflowAPI) -> Iterator[None]:
    """Pause btc_ingest and btc_heal (their candle requests would take a candle fault injected into
    the stack's simulated exchange) until none of theirs is in progress; clear the faults and resume
    after. Faults are scoped to candle paths, so the tick streams still running leave them alone."""
    for dag_id in ("btc_ingest", "btc_heal"):
        set_paused(airflow, dag_id, True)
    try:
        wait_for(
            lambda: not fetching_candles(airflow),
            180,
            "btc_ingest and btc_heal to finish their candle requests in progress",
        )
        yield
    finally:
        fault(stack.simex_url, "DELETE")
        for dag_id in ("btc_ingest", "btc_heal"):
            set_paused(airflow, dag_id, False)


def fault(sim_url: str, method: str, body: dict[str, Any] | None = None) -> None:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(f"{sim_url}/_control/faults", data=data, method=method)
    urllib.request.urlopen(req, timeout=10).read()


# --- plain Airflow ------------------------------------------------------------------------------


def test_airflow_backfill_create_through_make_airflow_fills_a_5_minute_window(
    stack: Stack, settings: Settings, airflow: AirflowAPI, mongo: Any, t0
):
    # 5 windows: each is a DAG run of 3 tasks on the stack's SQLite metadata, beside live ingest;
    # older than any heal reaches, so that nothing but these runs can fill them
    window = Window(t0 - timedelta(days=15), t0 - timedelta(days=15) + timedelta(minutes=5))
    assert candles(mongo, window) == []
    # what `make airflow ARGS="backfill create ..."` runs, pointed at this test's stack;
    # --to-date is inclusive and names the last window's logical date (= its start)
    argv = [
        *(str(ROOT / ".venv" / "bin" / "python"), "-m", "devstack", "--state-dir", str(stack.state), "airflow", "--"),
        *("backfill", "create", "--dag-id", "btc_ingest"),
        *("--from-date", iso(window.start), "--to-date", iso(window.end - MINUTE)),
    ]
    env = {**os.environ, "PYTHONPATH": str(ROOT / "tools")}
    started = time.monotonic()
    # a busy scheduler (another test's backfill still being drained) meets the command's writes more
    wait_drained(stack, settings)
    give_up = time.monotonic() + LOCKED_RETRY_S
    for attempt in itertools.count(1):
        proc = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=180, check=False)
        # SQLite metadata: a write that meets the scheduler's write fails at once with "database is
        # locked" (SQLite's deadlock rule, not the busy timeout); Airflow removes the partial backfill
        # so that the user can run the command again, which is what a user does.
        if proc.returncode == 0 or "database is locked" not in proc.stderr or time.monotonic() > give_up:
            break
        print(f"\nairflow backfill create, attempt {attempt}: database is locked; again")
        time.sleep(2)  # between a user's attempts (no condition to wait for: the scheduler writes all the time)
    assert proc.returncode == 0, proc.stderr[-3000:]

    query = (
        f"/dags/btc_ingest/dagRuns?run_type=backfill&limit=100"
        f"&logical_date_gte={urllib.parse.quote(iso(window.start))}&logical_date_lt={urllib.parse.quote(iso(window.end))}"
    )

    def all_done() -> list[dict[str, Any]] | None:
        runs = airflow.call("GET", query)["dag_runs"]
        return runs if len(runs) == 5 and all(r["state"] in ("success", "failed") for r in runs) else None

    runs = poll(all_done, 240, interval_s=3)
    if runs is None:
        pytest.fail(
            f"the 5 backfill runs of btc_ingest not finished after 240 s:\n{runs_and_task_instances(airflow, query)}"
        )
    assert sorted(r["state"] for r in runs) == ["success"] * 5
    assert sorted(r["data_interval_start"].replace("Z", "+00:00") for r in runs) == [
        m.isoformat() for m in window.minutes()
    ]
    wait_for(lambda: len(candles(mongo, window)) == 5, 120, "the 5 candles in btc.prices")
    print(f"\nairflow backfill create, 5 windows: {time.monotonic() - started:.1f}s until all in MongoDB")
    assert_exact_once(mongo, window)
    # no tick for old windows; every run recorded, with no minute without trades
    assert (
        mongo["btc"]["prices"].count_documents({"kind": "tick", "run_id": {"$in": [r["dag_run_id"] for r in runs]}})
        == 0
    )
    recorded = list(mongo["btc"]["pipeline_runs"].find({"run_id": {"$in": [r["dag_run_id"] for r in runs]}}))
    assert len(recorded) == 5 and all(doc["empty_minutes"] == [] and doc["candles"] == 1 for doc in recorded)
    wait_drained(stack, settings)
    assert assert_read_model_matches(Store(mongo["btc"]), window) >= 10  # Coinbase's 1-minute bars and their consensus


def runs_and_task_instances(airflow: AirflowAPI, query: str) -> str:
    """What the runs were doing when a wait timed out: each run's state and its tasks' states, tries
    and times (shown with the failure)."""
    out = []
    for run in airflow.call("GET", query)["dag_runs"]:
        out.append(f"{run['dag_run_id']}: {run['state']} queued {run.get('queued_at')} start {run.get('start_date')}")
        path = f"/dags/btc_ingest/dagRuns/{urllib.parse.quote(run['dag_run_id'], safe='')}/taskInstances"
        out += [
            f"  {ti['task_id']}: {ti['state']} try {ti['try_number']} "
            f"queued {ti.get('queued_when')} start {ti.get('start_date')} end {ti.get('end_date')}"
            for ti in airflow.call("GET", path)["task_instances"]
        ]
    return "\n".join(out)


# --- the btc-pipeline CLI ----------------------------------------------------------------------


def test_gaps_finds_deleted_windows_and_backfill_restores_them(
    stack: Stack, settings: Settings, run_cli, mongo: Any, t0
):
    window = Window(t0 - timedelta(days=16), t0 - timedelta(days=16) + timedelta(hours=3))
    three_hours = run_cli("backfill", "--from", iso(window.start), "--to", iso(window.end))
    print(f"3-hour backfill (180 candles) via the CLI: {three_hours.seconds:.1f}s wall")
    assert three_hours.code == 0, three_hours.err
    assert "filled           180 minute(s) that were missing, in 1 window(s)" in three_hours.out
    assert "fetched [" in three_hours.err and "(1/1 chunks" in three_hours.err  # the progress line
    assert "in MongoDB [" in three_hours.err and "180/180 min" in three_hours.err
    assert_exact_once(mongo, window)

    holes = [
        Window(window.start + timedelta(minutes=40), window.start + timedelta(minutes=47)),
        Window(window.start + timedelta(minutes=100), window.start + timedelta(minutes=101)),
    ]
    assert [delete_minutes(mongo, hole) for hole in holes] == [7, 1]

    found = run_cli("gaps", "--from", iso(window.start), "--to", iso(window.end), "--json")
    assert found.code == 1  # holes found
    report = json.loads(found.out)
    assert (report["present"], report["missing_minutes"], report["no_trade_minutes"]) == (172, 8, 0)
    assert [(r["start"], r["end"], r["status"]) for r in report["ranges"]] == [
        (iso(h.start), iso(h.end), "missing") for h in holes
    ]
    text = run_cli("gaps", "--from", iso(window.start), "--to", iso(window.end))
    assert f"MISSING   {iso(holes[0].start)} → {iso(holes[0].end)}       7 min" in text.out

    refill = run_cli("backfill", "--missing", "--since", iso(window.start), "--to", iso(window.end))
    assert refill.code == 0, refill.err
    assert "filled             8 minute(s) that were missing, in 2 window(s)" in refill.out
    assert "still missing      0" in refill.out
    assert_exact_once(mongo, window)
    again = run_cli("gaps", "--from", iso(window.start), "--to", iso(window.end))
    assert again.code == 0 and "missing 0 in 0 range(s)" in again.out

    nothing = run_cli("backfill", "--missing", "--since", iso(window.start), "--to", iso(window.end))
    assert nothing.code == 0 and "nothing to backfill" in nothing.out
    wait_drained(stack, settings)
    assert assert_read_model_matches(Store(mongo["btc"]), window) > 0  # after the deletes and the refill too


def test_minutes_without_trades_are_recorded_and_not_reported_as_holes(
    stack: Stack, airflow: AirflowAPI, run_cli, mongo: Any, t0
):
    """The simulated Coinbase answers one candle request without rows (`tradeless`), as Coinbase does
    for minutes without trades. btc_ingest and btc_heal are paused meanwhile: their requests to the
    shared simulated exchange would take the injected fault."""
    quiet = Window(t0 - timedelta(days=17), t0 - timedelta(days=17) + timedelta(minutes=3))
    around = Window(quiet.start - timedelta(minutes=10), quiet.end + timedelta(minutes=10))
    stored = run_cli("backfill", "--from", iso(around.start), "--to", iso(around.end))
    assert stored.code == 0, stored.err
    with exchange_to_ourselves(stack, airflow):
        assert delete_minutes(mongo, quiet) == 3
        fault(stack.simex_url, "POST", {"exchange": "coinbase", "kind": "tradeless", "times": 1, "path": "candles"})
        result = run_cli("backfill", "--missing", "--from", iso(around.start), "--to", iso(around.end))
    assert result.code == 0, result.err  # complete: no hole left, only minutes without trades
    assert "no trades          3 minute(s) the exchange had no trades in (3 found by this backfill)" in result.out
    assert "still missing      0" in result.out

    report = run_cli("gaps", "--from", iso(around.start), "--to", iso(around.end), "--json")
    assert report.code == 0
    assert json.loads(report.out)["ranges"] == [
        {"start": iso(quiet.start), "end": iso(quiet.end), "minutes": 3, "status": "no_trades", "sources": ["coinbase"]}
    ]
    text = run_cli("gaps", "--from", iso(around.start), "--to", iso(around.end), "--source", "coinbase")
    assert "NO TRADES" in text.out and "(coinbase said no trades)" in text.out
    stored = list(mongo["btc"]["no_trade_minutes"].find({"ts": {"$gte": quiet.start, "$lt": quiet.end}}))
    assert sorted(doc["_id"] for doc in stored) == [f"coinbase|BTC-USD|{iso(m)}" for m in quiet.minutes()]
    # as another exchange, Kraken did not say so: for `--source kraken` these are holes like any other
    kraken = run_cli("gaps", "--from", iso(quiet.start), "--to", iso(quiet.end), "--source", "kraken", "--json")
    assert kraken.code == 1 and json.loads(kraken.out)["missing_minutes"] == 3


def test_an_ingest_run_records_the_minutes_its_exchange_had_no_trades_in(
    stack: Stack, scratch: Any, mongo: Any, sim: str, monkeypatch: pytest.MonkeyPatch, t0
):
    """btc_ingest's task bodies with the real hooks (connections from the stack's environment), a
    scratch topic and database, and an exchange of this test's own that answers `tradeless`."""
    env = stack.airflow_env()
    for key, value in {
        **stack.pipeline_env(),
        "AIRFLOW_CONN_BTC_KAFKA": env["AIRFLOW_CONN_BTC_KAFKA"],
        "AIRFLOW_CONN_BTC_MONGO": env["AIRFLOW_CONN_BTC_MONGO"],
        "BTC_EXCHANGES": "coinbase",
        "BTC_COINBASE_URL": f"{sim}/coinbase",
        "BTC_TOPIC": scratch.topic,
        "BTC_DLQ_TOPIC": scratch.dlq_topic,
        "BTC_MONGO_DB": scratch.mongo_db,
    }.items():
        monkeypatch.setenv(key, value)
    from btc_pipeline.tasks import ingest as ingest_tasks

    fault(sim, "POST", {"exchange": "coinbase", "kind": "tradeless", "times": 1})
    quiet, busy = t0 - timedelta(minutes=30), t0 - timedelta(minutes=29)
    results = {}
    for start, run_id in ((quiet, "ingest-quiet"), (busy, "ingest-busy")):
        results[run_id] = ingest_tasks.produce_window(start, start + MINUTE, run_id)
        ingest_tasks.record_ingest_run(results[run_id], "btc_ingest", run_id, None)
    assert results["ingest-quiet"]["empty_minutes"] == [iso(quiet)]
    assert results["ingest-quiet"]["source"] == "coinbase" and results["ingest-quiet"]["candles"] == 0
    assert results["ingest-busy"]["empty_minutes"] == [] and results["ingest-busy"]["candles"] == 1
    db = mongo[scratch.mongo_db]
    assert [doc["_id"] for doc in db["no_trade_minutes"].find()] == [f"coinbase|BTC-USD|{iso(quiet)}"]
    assert db["pipeline_runs"].find_one({"_id": "btc_ingest|ingest-quiet"})["empty_minutes"] == [iso(quiet)]

    from btc_pipeline.steps.gaps import find_gaps

    report = find_gaps(Store(db), Window(quiet, busy + MINUTE), "BTC-USD")
    # the busy minute's candle is in the scratch topic, not drained here: a hole, unlike the quiet one
    assert [(r.start, r.end, r.status, r.sources) for r in report.ranges] == [
        (quiet, busy, "no_trades", ("coinbase",)),
        (busy, busy + MINUTE, "missing", ()),
    ]


# --- the heal DAG -------------------------------------------------------------------------------


def test_the_heal_dag_fills_the_holes_it_finds_and_skips_minutes_without_trades(
    stack: Stack, settings: Settings, airflow: AirflowAPI, run_cli, mongo: Any
):
    """A span backfilled, then a hole of 7 minutes deleted and 3 minutes made minutes without trades
    (their candles deleted, Coinbase's no-trade report recorded as a backfill records it): a btc_heal
    run fills the hole, and every other hole in its reach, and leaves the 3 minutes alone.

    The span starts before the heal's reach (360 minutes before its 10-minute lag, 20 minutes to
    spare), so that every hole the heal finds lies after the 3 minutes: a heal chunk fetches the
    minutes between the holes it covers too, and the simulated exchange, which has trades in every
    minute, would answer for them. Timed from this test's start, not the module's."""
    now = floor_minute(datetime.now(UTC))
    span = Window(now - timedelta(hours=6, minutes=30), now - timedelta(hours=3, minutes=10))
    quiet = Window(now - timedelta(hours=3, minutes=36), now - timedelta(hours=3, minutes=33))
    hole = Window(now - timedelta(hours=3, minutes=30), now - timedelta(hours=3, minutes=23))
    stored = run_cli("backfill", "--from", iso(span.start), "--to", iso(span.end))
    assert stored.code == 0, stored.err
    # do not race the hourly run: a scheduled run due soon is let through first (the scheduler
    # creates it, which moves the DAG's next run on, then it ends), so that ours finds the holes
    due = airflow.call("GET", "/dags/btc_heal").get("next_dagrun_run_after")
    if due and (parse(due) - datetime.now(UTC)).total_seconds() < 90:
        wait_for(
            lambda: airflow.call("GET", "/dags/btc_heal").get("next_dagrun_run_after") != due,
            180,
            f"the scheduler to create btc_heal's run due at {due}",
        )
    wait_for(lambda: not active_runs(airflow, "btc_heal"), 180, "btc_heal runs in progress to finish")
    assert delete_minutes(mongo, hole) == 7
    assert delete_minutes(mongo, quiet) == 3
    reported = Store(mongo["btc"]).record_no_trade_minutes(
        "coinbase", "BTC-USD", list(quiet.minutes()), "heal-test", reported_at=datetime.now(UTC)
    )
    assert reported == 3

    run = airflow.trigger_run("btc_heal", {"logical_date": None, "conf": {}})
    finished = airflow.wait_run("btc_heal", run["dag_run_id"], timeout_s=240)
    assert finished["state"] == "success"
    summary = mongo["btc"]["pipeline_runs"].find_one({"_id": f"btc_heal|{run['dag_run_id']}"})
    assert summary is not None, "the heal run recorded no summary"
    print(f"\nheal run summary: {summary}")
    healed = Window(parse(summary["window_start"]), parse(summary["window_end"]))
    assert healed.start <= hole.start and hole.end <= healed.end
    assert healed.minute_count <= 360 and summary["horizon_minutes"] == 360
    assert summary["gaps_missing_minutes"] >= 7 and summary["produced"] == summary["gaps_missing_minutes"]
    assert summary["gaps_no_trade_minutes"] == 3 and summary["chunks_failed"] == []

    wait_for(lambda: len(candles(mongo, hole)) == 7, 120, "the healed minutes in btc.prices")
    wait_drained(stack, settings)
    assert_exact_once(mongo, span, except_minutes=set(quiet.minutes()))
    assert assert_read_model_matches(Store(mongo["btc"]), span) > 0

    def healed_report() -> dict[str, Any] | None:
        result = run_cli("gaps", "--from", iso(healed.start), "--to", iso(healed.end), "--json", timeout_s=60)
        report = json.loads(result.out)
        return report if result.code == 0 and report["missing_minutes"] == 0 else None

    report = wait_for(healed_report, 120, "no hole left in the healed range", interval_s=5)
    assert report["no_trade_minutes"] == 3  # skipped, not refetched: still without a candle


# --- a week -------------------------------------------------------------------------------------


def test_a_seven_day_backfill_completes_without_duplicates_or_holes(run_cli, cli_env, mongo: Any, t0):
    """`--no-wait` returns at once; the same command run again follows the run in progress and can
    be interrupted (the run goes on); run once more, it ends when the week is complete, once each."""
    week = Window(t0 - timedelta(days=7, hours=7), t0 - timedelta(hours=7))
    args = ("backfill", "--from", iso(week.start), "--to", iso(week.end))
    started = time.monotonic()
    queued = run_cli(*args, "--no-wait")
    assert queued.code == 0 and queued.seconds < 15, queued.err
    assert "follow it at http://" in queued.out and "triggered btc_backfill run" in queued.err

    follower = start_interruptible(cli_env, *args)
    wait_for(lambda: any("following the" in line for line in follower.lines), 60, "the follower", interval_s=0.5)
    err = interrupt(follower)
    assert "following the btc_backfill run already in progress" in err  # attached, did not trigger another
    run_id = err.split("following the btc_backfill run already in progress for this range: ")[1].split()[0]
    # Ctrl-C names the run and says whether it still goes (a week takes seconds: it may be over)
    assert f"the btc_backfill run {run_id} is still" in err or f"the btc_backfill run {run_id} has ended" in err
    assert f"btc-pipeline backfill --from {iso(week.start)} --to {iso(week.end)}" in err or "has ended" in err

    done = run_cli(*args, timeout_s=900)
    wall = time.monotonic() - started
    print(f"7-day backfill (10,080 candles) via the CLI: {wall:.1f}s wall from the first trigger")
    assert done.code == 0, done.err
    assert "1 chunk(s), 0 failed" in done.out  # the history lane: chunks of up to 15 days
    assert "present        10080 minute(s)" in done.out and "still missing      0" in done.out
    assert_exact_once(mongo, week)
    summaries = list(mongo["btc"]["pipeline_runs"].find({"dag_id": "btc_backfill", "window_start": iso(week.start)}))
    assert summaries and all((d["chunks"], d["requests"], d["produced"]) == (1, 34, 10_080) for d in summaries)
    assert all(d["lane"] == "history" for d in summaries)
    # what the dashboard's history-loading line reads: the load, recorded by plan and summarize
    load = mongo["btc"]["history.loads"].find_one({"_id": summaries[-1]["run_id"]})
    assert load is not None and (load["state"], load["planned_minutes"]) == ("success", 10_080)


def test_ctrl_c_while_waiting_for_mongodb_is_prompt(airflow: AirflowAPI, cli_env, mongo: Any, t0):
    """btc_history_drain paused: the run succeeds but its candles never land, so the CLI waits for
    MongoDB; Ctrl-C says the run has ended and how to check the result."""
    hour = Window(t0 - timedelta(days=8), t0 - timedelta(days=8) + timedelta(hours=1))
    set_paused(airflow, "btc_history_drain", True)
    try:  # a drain run in progress would store the hour (it stays while messages arrive); a queued
        # one (asset-triggered, waiting for it) does not start while the DAG is paused
        wait_for(
            lambda: not active_runs(airflow, "btc_history_drain", ("running",)),
            180,
            "the btc_history_drain run in progress to end",
        )
        waiter = start_interruptible(cli_env, "backfill", "--from", iso(hour.start), "--to", iso(hour.end))
        wait_for(
            lambda: any("waiting for the drain" in line for line in waiter.lines),
            180,
            "the wait for MongoDB",
            interval_s=0.5,
        )
        err = interrupt(waiter)
        assert "has ended (success)" in err and "warning: btc_history_drain is paused" in err
        assert f"btc-pipeline gaps --from {iso(hour.start)} --to {iso(hour.end)}" in err
    finally:
        set_paused(airflow, "btc_history_drain", False)
    # the run went on without the CLI; resumed, the drain stores what it produced, once
    wait_for(lambda: len(candles(mongo, hour)) == hour.minute_count, 180, "the hour in btc.prices once resumed")
    assert_exact_once(mongo, hour)


def test_a_failed_chunk_fails_the_run_and_the_summary_says_which(
    stack: Stack, settings: Settings, airflow: AirflowAPI, run_cli, mongo: Any, t0
):
    """Binance answers one of the two chunk requests with HTTP 451 (restricted location): that chunk
    fails at once (a 451 is not retried), the other lands, and the run, its summary in
    pipeline_runs and the CLI all say which chunk failed and what is still missing."""
    span = Window(t0 - timedelta(days=10), t0 - timedelta(days=10) + timedelta(minutes=1500))
    with exchange_to_ourselves(stack, airflow):
        fault(stack.simex_url, "POST", {"exchange": "binance", "kind": "451", "times": 1, "path": "klines"})
        args = ("--source", "binance", "--lane", "live", "--from", iso(span.start), "--to", iso(span.end))
        result = run_cli("backfill", *args)  # the live lane: chunks of a day, so two chunks here
    assert result.code == 1, result.err
    assert "btc_backfill run: failed, 2 chunk(s), 1 failed" in result.out
    assert "its chunk failed: see the chunk's task log" in result.out
    summary = mongo["btc"]["pipeline_runs"].find_one({"dag_id": "btc_backfill", "window_start": iso(span.start)})
    assert summary is not None and summary["chunks"] == 2 and summary["chunks_done"] == 1
    (failed_label,) = summary["chunks_failed"]
    failed = Window(*(parse(part.strip()) for part in failed_label.split("→")))
    assert failed.minute_count in (1000, 500)
    landed = Window(span.start, failed.start) if failed.start > span.start else Window(failed.end, span.end)
    query = {"kind": "candle_1m", "source": "binance", "ts": {"$gte": span.start, "$lt": span.end}}
    assert {d["ts"] for d in mongo["btc"]["prices"].find(query)} == set(landed.minutes())
    assert f"still missing {failed.minute_count:>6} minute(s)" in result.out
    wait_drained(stack, settings)
    assert assert_read_model_matches(Store(mongo["btc"]), span) > 0  # the landed chunk's bars, nothing of the other


def test_a_backfilled_days_read_model_equals_a_recompute_and_a_rebuild_restores_it(
    stack: Stack, settings: Settings, run_cli, mongo: Any, t0
):
    """A day backfilled through the CLI: its read model equals a recompute from btc.prices at every
    level; dropping its 1-minute bars and running `btc-pipeline rollups rebuild` restores them, and
    running it again changes nothing. (The other tests check their own ranges' read model.)"""
    start = (t0 - timedelta(days=19)).replace(hour=0, minute=0)
    day = Window(start, start + timedelta(days=1))
    filled = run_cli("backfill", "--from", iso(day.start), "--to", iso(day.end), timeout_s=600)
    assert filled.code == 0, filled.err
    wait_drained(stack, settings)
    store = Store(mongo["btc"])
    bars_of_a_series = sum(
        (day.end - day.start) // BAR_LENGTH[interval] for interval in INTERVALS
    )  # 1440 + 288 + 24 + 1
    assert assert_read_model_matches(store, day) == 2 * bars_of_a_series  # Coinbase's and the consensus
    for series in (CONSENSUS, "coinbase"):
        mongo["btc"].drop_collection(f"bars.1m.{series}.{day.start:%Y-%m-%d}")
    assert store.bars(CONSENSUS, "1m", day).empty
    result = run_cli("rollups", "rebuild", "--from", iso(day.start), "--to", iso(day.end), timeout_s=600)
    assert result.code == 0, result.err
    assert "reading btc.prices" in result.err and "writing bars [" in result.err
    assert assert_read_model_matches(store, day) == 2 * bars_of_a_series
    again = run_cli("rollups", "rebuild", "--from", iso(day.start), "--to", iso(day.end), timeout_s=600)
    assert again.code == 0 and "changed              0 minute bar(s)" in again.out, again.out
