"""``btc-pipeline backfill``: trigger (or attach to) a ``btc_backfill`` run, follow its chunks, wait
until the candles are in MongoDB, and summarise.

Ctrl-C is prompt in every phase (attaching, following the chunks, waiting for MongoDB): each
phase waits in short sleeps and bounded requests, and the command ends with exit code 130 and
says how to pick the run up again; the Airflow run itself keeps going.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, TextIO

from btc_pipeline.cli.airflow_client import TERMINAL_RUN_STATES, TERMINAL_TI_STATES, AirflowApiError, AirflowClient
from btc_pipeline.cli.common import EXIT_INCOMPLETE, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE, Context, argument_error
from btc_pipeline.cli.gaps import describe, print_report
from btc_pipeline.cli.progress import Progress, progress_bar
from btc_pipeline.config import load_api_settings
from btc_pipeline.dag_ids import BACKFILL_DAG, CHUNK_TASK, DRAIN_DAG, HISTORY_DRAIN_DAG, PLAN_TASK
from btc_pipeline.steps.backfill_plan import check_backfill_window
from btc_pipeline.steps.gaps import GapReport, MinuteRange, combine_reports, find_gaps, merge_minutes
from btc_pipeline.store import Store
from btc_pipeline.timeutil import format_ts, parse_iso, seconds_left
from btc_pipeline.window import MINUTE, RangeError, Window

#: The states of a chunk that ended without its candles.
FAILED_TI_STATES = TERMINAL_TI_STATES - {"success"}


def same_request(conf: Mapping[str, Any], asked: Mapping[str, Any], started: datetime | None, now: datetime) -> bool:
    """Whether a run's ``conf`` is the backfill ``asked`` for, asked again.

    The same parameters and range length, the range ending no earlier and at most the run's age
    (plus a minute) later: a relative range such as ``--from 365d`` resolves to a new start and
    end each time, shifted by the time since the run was triggered.

    Args:
        conf: The active run's conf.
        asked: The conf this command would trigger.
        started: When the run was queued (``None``: unknown, only the very same range matches).
        now: The current time.
    """
    if any(conf.get(k) != asked.get(k) for k in ("source", "only_missing")):
        return False
    if (conf.get("lane") or "history") != asked["lane"]:
        return False
    try:
        start, end = parse_iso(str(conf["start"]), "start"), parse_iso(str(conf["end"]), "end")
    except (KeyError, ValueError):
        return False
    want_start, want_end = parse_iso(asked["start"], "start"), parse_iso(asked["end"], "end")
    if end - start != want_end - want_start:
        return False
    shift = want_end - end
    age = (now - started) if started is not None else timedelta(0)
    return timedelta(0) <= shift <= age + timedelta(minutes=1)


def _find_or_trigger(client: AirflowClient, conf: dict[str, Any], err: TextIO) -> dict[str, Any]:
    now = datetime.now(UTC)
    for run in client.active_runs(BACKFILL_DAG):
        queued = run.get("queued_at") or run.get("start_date")
        started = parse_iso(str(queued), "queued_at") if queued else None
        if same_request(run.get("conf") or {}, conf, started, now):
            c = run.get("conf") or {}
            err.write(
                f"following the {BACKFILL_DAG} run already in progress for this range: {run['dag_run_id']} "
                f"([{c.get('start')}, {c.get('end')}))\n"
            )
            return run
    run = client.trigger(BACKFILL_DAG, conf)
    err.write(f"triggered {BACKFILL_DAG} run {run['dag_run_id']}\n")
    return run


def _preflight(client: AirflowClient, err: TextIO, lane: str) -> str | None:
    """Why a triggered run could not progress (a paused DAG), or None; warns about the rest."""
    if client.dag(BACKFILL_DAG).get("is_paused"):
        return (
            f"{BACKFILL_DAG} is paused, so a run would wait forever: unpause it in the Airflow UI or with "
            f"`airflow dags unpause {BACKFILL_DAG}`"
        )
    drain_dag = HISTORY_DRAIN_DAG if lane == "history" else DRAIN_DAG
    try:
        if client.dag(drain_dag).get("is_paused"):
            err.write(f"warning: {drain_dag} is paused: backfilled candles wait in Kafka until it runs\n")
    except AirflowApiError as exc:
        err.write(f"warning: cannot check {drain_dag}: {exc}\n")
    scheduler = client.health().get("scheduler", {}).get("status")
    if scheduler != "healthy":
        err.write(f"warning: Airflow's scheduler is {scheduler or 'unknown'}: the run stays queued until it runs\n")
    return None


def planned_chunks(client: AirflowClient, run_id: str) -> list[Window] | None:
    """The chunks the run's ``plan`` task made, in map-index order (``None``: not planned yet).

    Read from the ``plan`` task's return value, the very list the mapped task expands over,
    so chunk ``i`` is the task instance with map index ``i``.
    """
    try:
        chunks = client.xcom(BACKFILL_DAG, run_id, PLAN_TASK, "return_value")
    except AirflowApiError as exc:
        if exc.status == 404:
            return None
        raise
    if not isinstance(chunks, list):
        return None
    return [Window(parse_iso(c["start"], "start"), parse_iso(c["end"], "end")) for c in chunks]


class StorageWatch:
    """How many minutes of the range are in MongoDB, found cheaply while a backfill runs.

    The gaps before the run are known (one query of the whole range); afterwards only the chunks
    whose fetch succeeded and that still miss minutes are looked at again, each on its own range,
    at most every few seconds (three times as long as the last look took), so that following a
    year costs the store a few small reads per chunk, not a gap query of the year every second.
    """

    def __init__(self, store: Store, ctx: Context, before: GapReport, *, min_interval_s: float) -> None:
        self.store = store
        self.ctx = ctx
        self.before = before
        self.min_interval_s = min_interval_s
        self.missing: dict[Window, int] = {}  # per chunk looked at: its minutes still missing
        self.reports: dict[Window, GapReport] = {}
        self._next = 0.0

    def _missing_before(self, chunk: Window) -> int:
        return sum(
            max(0, int((min(r.end, chunk.end) - max(r.start, chunk.start)) / MINUTE)) for r in self.before.missing
        )

    def pending(self, chunks: Sequence[Window]) -> list[Window]:
        """The chunks that still miss minutes, as last seen."""
        return [c for c in chunks if self.missing.get(c, self._missing_before(c)) > 0]

    def look(self, chunks: Sequence[Window], *, force: bool = False) -> None:
        """Look again at the succeeded ``chunks`` that still miss minutes (unless looked at just now)."""
        if not force and time.monotonic() < self._next:
            return
        started = time.monotonic()
        for chunk in self.pending(chunks):
            report = find_gaps(self.store, chunk, self.ctx.settings.symbol, self.ctx.source)
            self.missing[chunk] = report.missing_minutes
            self.reports[chunk] = report
            if time.monotonic() - started > 2.0:  # the rest at the next look
                break
        took = time.monotonic() - started
        self._next = time.monotonic() + max(self.min_interval_s, 3 * took)

    def report(self) -> GapReport:
        """The gaps of the range as last seen: the chunks looked at, and the rest as before the run
        (what no succeeded chunk covers did not change by it), without a query of the whole range."""
        return combine_reports(self.before, self.reports)

    def accounted(self) -> int:
        """Minutes of the range with a candle or known to have no trades, as last seen."""
        still = self.before.missing_minutes - sum(self._missing_before(c) - n for c, n in self.missing.items())
        return self.ctx.window.minute_count - still


def eta(done: float, total: float, elapsed_s: float) -> str:
    """``ETA 2m05s`` from the rate so far (``ETA --`` before anything is done).

    Args:
        done: Units finished.
        total: Units in all.
        elapsed_s: Seconds since the work started.
    """
    if total <= 0 or done >= total:
        return "done"
    left = seconds_left(total - done, done, elapsed_s)
    if left is None:
        return "ETA --"
    return f"ETA {int(left) // 60}m{int(left) % 60:02d}s"


@dataclass
class Follow:
    """What the CLI knows of the run it follows, poll after poll, and how it ended."""

    whole: Window
    state: str = "queued"
    chunks: list[Window] | None = None
    tis: list[dict[str, Any]] = field(default_factory=list)
    fetch_started: float | None = None
    store_started: float | None = None

    def tis_in(self, states: Collection[str]) -> list[dict[str, Any]]:
        """The chunk task instances in one of ``states``."""
        return [ti for ti in self.tis if ti.get("state") in states]

    def windows(self, states: Collection[str]) -> list[Window]:
        """The windows of the chunks in one of ``states`` (by map index into the plan)."""
        selected = self.tis_in(states)
        if self.chunks is None or len(self.chunks) != len(self.tis):  # no plan read: count the whole range
            return [self.whole] if selected else []
        return [self.chunks[int(ti["map_index"])] for ti in selected]

    @property
    def succeeded(self) -> list[Window]:
        return self.windows({"success"})

    @property
    def failed(self) -> list[Window]:
        return self.windows(FAILED_TI_STATES)


def status_line(follow: Follow, storage: StorageWatch, queued_s: float) -> str:
    """The progress line: minutes fetched and minutes in MongoDB, each of the total, with an ETA."""
    if follow.state == "queued":
        slow = queued_s > 15
        return "queued" + (" (behind another backfill run, or the scheduler is busy)" if slow else "")
    if not follow.tis and follow.state == "running":
        return "planning"
    total = follow.whole.minute_count
    failed = follow.tis_in(FAILED_TI_STATES)
    fetched = sum(w.minute_count for w in follow.succeeded)
    planned = sum(w.minute_count for w in (follow.chunks or [follow.whole]))
    now = time.monotonic()
    fetch_eta = eta(fetched, planned, now - (follow.fetch_started or now))
    stored = storage.accounted()
    stored_eta = eta(stored - (total - planned), planned, now - (follow.store_started or now))
    done = len(follow.tis_in(TERMINAL_TI_STATES))
    return (
        f"fetched {progress_bar(fetched, planned, 20)} min ({done}/{len(follow.tis)} chunks, {fetch_eta})"
        f" | in MongoDB {progress_bar(stored, total, 20)} min ({stored_eta})"
        + (f" | {len(failed)} chunk(s) failed" if failed else "")
    )


def follow_run(
    client: AirflowClient,
    run_id: str,
    whole: Window,
    progress: Progress,
    storage: StorageWatch,
    *,
    poll_s: float,
    deadline: float,
) -> Follow | None:
    """Follow a backfill run until it ends: every chunk (all pages of Airflow's API), the minutes
    fetched and the minutes stored, each with an ETA.

    Args:
        client: The Airflow REST API client.
        run_id: The ``btc_backfill`` run.
        whole: The run's range (what counts as fetched if the plan cannot be read).
        progress: Where the progress line goes.
        storage: Watches the minutes in MongoDB.
        poll_s: Seconds between polls of Airflow.
        deadline: ``time.monotonic()`` value after which to give up.

    Returns:
        How the run ended, or ``None`` when the deadline came first.
    """
    queued_since = time.monotonic()
    follow = Follow(whole)
    while True:
        follow.state = str(client.run(BACKFILL_DAG, run_id)["state"])
        follow.tis = [
            ti for ti in client.task_instances(BACKFILL_DAG, run_id, CHUNK_TASK) if ti.get("map_index", -1) >= 0
        ]
        if follow.chunks is None and follow.tis:
            follow.chunks = planned_chunks(client, run_id)
        if follow.tis and follow.fetch_started is None:
            follow.fetch_started = time.monotonic()
        succeeded = follow.succeeded
        if succeeded and follow.store_started is None:
            follow.store_started = follow.fetch_started
        storage.look(succeeded)
        progress.update(status_line(follow, storage, time.monotonic() - queued_since))
        if follow.state in TERMINAL_RUN_STATES:
            return follow
        if time.monotonic() > deadline:
            return None
        time.sleep(poll_s)


def _minutes(windows: Sequence[Window]) -> set[datetime]:
    return {minute for w in windows for minute in w.minutes()}


def wait_for_data(
    storage: StorageWatch,
    outcome: Follow,
    progress: Progress,
    *,
    poll_s: float,
    deadline: float,
) -> None:
    """Wait until every minute of the succeeded chunks is stored or known to have no trades, or the
    deadline passes, looking only at the chunks that still miss minutes.

    Args:
        storage: Watches the minutes in MongoDB.
        outcome: How the run ended.
        progress: Where the progress line goes.
        poll_s: Seconds between looks (at least; longer when a look is slow).
        deadline: ``time.monotonic()`` value after which to stop waiting.
    """
    while True:
        storage.look(outcome.succeeded, force=True)
        line = status_line(outcome, storage, 0.0)
        progress.update(f"{line} | the run ended ({outcome.state}): waiting for the drain")
        if not storage.pending(outcome.succeeded) or time.monotonic() > deadline:
            return
        time.sleep(max(poll_s, storage.min_interval_s))


def _why_missing(r: MinuteRange, outcome: Follow | None) -> str:
    if outcome is None:
        return "the run did not finish within --timeout: re-run the command to keep following it"
    minutes = set(r.window.minutes())
    if minutes & _minutes(outcome.failed):
        return "its chunk failed: see the chunk's task log in the Airflow UI"
    if minutes & _minutes(outcome.succeeded):
        return "produced to Kafka but not in MongoDB yet: are btc_drain and btc_history_drain unpaused and green?"
    if outcome.state == "failed":
        return "the run failed before fetching it: see the Airflow UI"
    return "not part of the run (it had a candle when the run was planned)"


def print_summary(ctx: Context, before: GapReport, after: GapReport, outcome: Follow | None, run_url: str) -> None:
    """Print the closing summary: minutes filled, without trades, still missing and why.

    Args:
        ctx: The range and output streams.
        before: The gaps before the run.
        after: The gaps at the end.
        outcome: How the run ended (``None``: it did not finish in time).
        run_url: The run's page in the Airflow UI.
    """
    missing_before = _minutes([r.window for r in before.missing])
    missing_after = _minutes([r.window for r in after.missing])
    no_trades_after = _minutes([r.window for r in after.no_trades])
    filled = missing_before - missing_after - no_trades_after
    became_no_trades = missing_before & no_trades_after
    out = ctx.out
    state = "did not finish in time" if outcome is None else outcome.state
    chunks = "" if outcome is None else f", {len(outcome.tis)} chunk(s), {len(outcome.tis_in(FAILED_TI_STATES))} failed"
    out.write(f"{BACKFILL_DAG} run: {state}{chunks} — {run_url}\n")
    out.write(f"range [{format_ts(ctx.window.start)}, {format_ts(ctx.window.end)}): {ctx.window.minute_count} min\n")
    out.write(
        f"  filled        {len(filled):>6} minute(s) that were missing, in {len(merge_minutes(filled))} window(s)\n"
    )
    out.write(f"  present       {after.present:>6} minute(s) with a candle now\n")
    out.write(
        f"  no trades     {after.no_trade_minutes:>6} minute(s) the exchange had no trades in"
        f" ({len(became_no_trades)} found by this backfill)\n"
    )
    out.write(f"  still missing {after.missing_minutes:>6} minute(s)\n")
    for r in after.missing:
        out.write(describe(r) + f"  — {_why_missing(r, outcome)}\n")


def run_backfill(ctx: Context, connect: Callable[[], Store], args: argparse.Namespace) -> int:
    """``btc-pipeline backfill``: trigger (or join) a ``btc_backfill`` run, follow it, wait for the data, summarise.

    Args:
        ctx: The range, source, settings and output streams.
        connect: Opens the ``btc`` database (after the range was checked: a bad range needs no database).
        args: The parsed arguments (``missing``, ``no_wait``, ``timeout``, ``poll``, ``lane``).

    Returns:
        0 complete (or triggered, with ``--no-wait``), 1 minutes still missing or the run failed,
        2 a range no configured exchange can serve, 130 interrupted.
    """
    exchanges = (ctx.source,) if ctx.source else ctx.settings.exchanges
    try:
        check_backfill_window(ctx.window, exchanges, datetime.now(UTC))
    except RangeError as exc:
        ctx.err.write(f"btc-pipeline backfill: error: {argument_error(exc)}\n")
        return EXIT_USAGE
    progress = Progress(ctx.err)
    client: AirflowClient | None = None
    run_id: str | None = None
    conf: dict[str, Any] = {
        "start": format_ts(ctx.window.start),
        "end": format_ts(ctx.window.end),
        "source": ctx.source,
        "only_missing": bool(args.missing),
        "lane": args.lane,
    }
    try:
        store = connect()
        before = find_gaps(store, ctx.window, ctx.settings.symbol, ctx.source)
        if args.missing:
            print_report(before, ctx.err)
            if not before.missing:
                ctx.out.write("no holes in the range: nothing to backfill\n")
                return EXIT_OK
        client = AirflowClient(load_api_settings())
        problem = _preflight(client, ctx.err, conf["lane"])
        if problem:
            ctx.err.write(f"btc-pipeline backfill: error: {problem}\n")
            return EXIT_INCOMPLETE
        run = _find_or_trigger(client, conf, ctx.err)
        run_id = str(run["dag_run_id"])
        conf = dict(run.get("conf") or conf)
        url = client.run_url(BACKFILL_DAG, run_id)
        if args.no_wait:
            ctx.out.write(
                f"{BACKFILL_DAG} run {run_id} is {run.get('state', 'queued')}; follow it at {url}\n"
                f"follow it here with: {follow_command(conf)}\n"
            )
            return EXIT_OK
        deadline = time.monotonic() + args.timeout
        storage = StorageWatch(store, ctx, before, min_interval_s=max(args.poll, 5.0))
        outcome = follow_run(client, run_id, ctx.window, progress, storage, poll_s=args.poll, deadline=deadline)
        if outcome is not None:
            wait_for_data(storage, outcome, progress, poll_s=args.poll, deadline=deadline)
        progress.done()
        if outcome is not None:
            after = storage.report()
        else:  # the run may have stored any part of the range meanwhile
            after = find_gaps(store, ctx.window, ctx.settings.symbol, ctx.source)
    except KeyboardInterrupt:
        progress.done()
        ctx.err.write("\n" + interrupted_message(client, run_id, conf) + "\n")
        return EXIT_INTERRUPTED
    print_summary(ctx, before, after, outcome, url)
    complete = outcome is not None and outcome.state == "success" and not after.missing
    return EXIT_OK if complete else EXIT_INCOMPLETE


def follow_command(conf: Mapping[str, Any]) -> str:
    """The command that follows the run of ``conf`` (it attaches while the run is in progress)."""
    command = f"btc-pipeline backfill --from {conf['start']} --to {conf['end']}"
    if conf.get("source"):
        command += f" --source {conf['source']}"
    if conf.get("only_missing"):
        command += " --missing"
    if conf.get("lane") == "live":  # without it, the command would trigger a history-lane run instead
        command += " --lane live"
    return command


def interrupted_message(client: AirflowClient | None, run_id: str | None, conf: Mapping[str, Any]) -> str:
    """What Ctrl-C prints: the run's id and whether it is still going (asked of Airflow now), and
    how to follow it; or, before a run was found, that none was triggered by this command."""
    if client is None or run_id is None:
        return (
            "interrupted before a btc_backfill run was triggered or found: nothing is running for this command "
            "(run it again to start)"
        )
    try:
        state = str(client.run(BACKFILL_DAG, run_id)["state"])
    except (AirflowApiError, KeyboardInterrupt):
        state = "unknown (Airflow did not answer)"
    url = client.run_url(BACKFILL_DAG, run_id)
    if state in TERMINAL_RUN_STATES:
        return (
            f"interrupted: the {BACKFILL_DAG} run {run_id} has ended ({state}); see {url}\n"
            f"check the result with: btc-pipeline gaps --from {conf['start']} --to {conf['end']}"
        )
    return (
        f"interrupted: the {BACKFILL_DAG} run {run_id} is still {state} and keeps going without this command.\n"
        f"follow it in the Airflow UI: {url}\n"
        f"or here (attaches to that run while it is in progress): {follow_command(conf)}"
    )
