"""``btc-pipeline backfill``: trigger (or attach to) a ``btc_backfill`` run, follow its chunks, wait
until the candles are in MongoDB, and summarise.

Ctrl-C is prompt in every phase (attaching, following the chunks, waiting for MongoDB): each
phase waits in short sleeps and bounded requests, and the command ends with exit code 130 and
says how to pick the run up again; the Airflow run itself keeps going.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TextIO

from btc_pipeline.cli.airflow_client import TERMINAL_RUN_STATES, TERMINAL_TI_STATES, AirflowApiError, AirflowClient
from btc_pipeline.cli.common import ARGUMENT_OF_BOUND, EXIT_INCOMPLETE, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE, Context
from btc_pipeline.cli.gaps import describe, print_report
from btc_pipeline.cli.progress import Progress, progress_bar
from btc_pipeline.config import load_api_settings
from btc_pipeline.dag_ids import BACKFILL_DAG, CHUNK_TASK, DRAIN_DAG, PLAN_TASK
from btc_pipeline.steps.backfill_plan import check_backfill_window
from btc_pipeline.steps.gaps import GapReport, MinuteRange, find_gaps, merge_minutes
from btc_pipeline.store import Store
from btc_pipeline.timeutil import format_ts, parse_iso
from btc_pipeline.window import RangeError, Window

#: How the range checks' ``bound`` reads as a command-line argument.


def _find_or_trigger(client: AirflowClient, conf: dict[str, Any], err: TextIO) -> dict[str, Any]:
    for run in client.active_runs(BACKFILL_DAG):
        if run.get("conf") == conf:
            err.write(f"following the {BACKFILL_DAG} run already in progress for this range: {run['dag_run_id']}\n")
            return run
    run = client.trigger(BACKFILL_DAG, conf)
    err.write(f"triggered {BACKFILL_DAG} run {run['dag_run_id']}\n")
    return run


def _preflight(client: AirflowClient, err: TextIO) -> str | None:
    """Why a triggered run could not progress (a paused DAG), or None; warns about the rest."""
    if client.dag(BACKFILL_DAG).get("is_paused"):
        return (
            f"{BACKFILL_DAG} is paused, so a run would wait forever: unpause it in the Airflow UI or with "
            f"`airflow dags unpause {BACKFILL_DAG}`"
        )
    try:
        if client.dag(DRAIN_DAG).get("is_paused"):
            err.write(f"warning: {DRAIN_DAG} is paused: backfilled candles wait in btc-metrics until it runs\n")
    except AirflowApiError as exc:
        err.write(f"warning: cannot check {DRAIN_DAG}: {exc}\n")
    scheduler = client.health().get("scheduler", {}).get("status")
    if scheduler != "healthy":
        err.write(f"warning: Airflow's scheduler is {scheduler or 'unknown'}: the run stays queued until it runs\n")
    return None


@dataclass
class RunOutcome:
    """How a backfill run ended: its state and its chunks (by window) that succeeded or failed."""

    state: str
    chunks: int
    succeeded: list[Window]
    failed: list[Window]
    failed_labels: list[str]


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


def follow_run(
    client: AirflowClient, run_id: str, whole: Window, progress: Progress, *, poll_s: float, deadline: float
) -> RunOutcome | None:
    """Follow a backfill run's mapped chunks with a progress bar until the run ends.

    Args:
        client: The Airflow REST API client.
        run_id: The ``btc_backfill`` run.
        whole: The run's range (what counts as fetched if the plan cannot be read).
        progress: Where the progress bar goes.
        poll_s: Seconds between polls.
        deadline: ``time.monotonic()`` value after which to give up.

    Returns:
        How the run ended, or ``None`` when the deadline came first.
    """
    queued_since = time.monotonic()
    chunks: list[Window] | None = None
    while True:
        run = client.run(BACKFILL_DAG, run_id)
        tis = [ti for ti in client.task_instances(BACKFILL_DAG, run_id, CHUNK_TASK) if ti.get("map_index", -1) >= 0]
        if chunks is None and tis:
            chunks = planned_chunks(client, run_id)
        finished = [ti for ti in tis if ti.get("state") in TERMINAL_TI_STATES]
        failed = [ti for ti in finished if ti.get("state") != "success"]
        state = str(run["state"])
        if state == "queued":
            slow = time.monotonic() - queued_since > 15
            status = "queued" + (" (behind another backfill run, or the scheduler is busy)" if slow else "")
        elif not tis and state == "running":
            status = "planning"
        else:
            status = state + (f", {len(failed)} failed" if failed else "")
        progress.update(f"chunks {progress_bar(len(finished), len(tis))} {status}")
        if state in TERMINAL_RUN_STATES:
            succeeded = [ti for ti in finished if ti.get("state") == "success"]
            return RunOutcome(
                state=state,
                chunks=len(tis),
                succeeded=_chunk_windows(succeeded, chunks, len(tis), whole),
                failed=_chunk_windows(failed, chunks, len(tis), whole),
                failed_labels=[str(ti.get("rendered_map_index") or ti.get("map_index")) for ti in failed],
            )
        if time.monotonic() > deadline:
            return None
        time.sleep(poll_s)


def _chunk_windows(
    selected: Sequence[dict[str, Any]], chunks: list[Window] | None, mapped: int, whole: Window
) -> list[Window]:
    """The windows of the selected chunk task instances (by map index into the plan)."""
    if chunks is None or len(chunks) != mapped:  # the plan could not be read: count the whole range
        return [whole] if selected else []
    return [chunks[int(ti["map_index"])] for ti in selected]


def _minutes(windows: Sequence[Window]) -> set[datetime]:
    return {minute for w in windows for minute in w.minutes()}


def wait_for_data(
    store: Store,
    ctx: Context,
    succeeded: Sequence[Window],
    progress: Progress,
    *,
    poll_s: float,
    deadline: float,
) -> GapReport:
    """Re-run the gap check until every minute of the succeeded chunks is stored or known to have
    no trades, or the deadline passes.

    Args:
        store: The ``btc`` database.
        ctx: The range, source and settings.
        succeeded: The windows of the chunks that succeeded.
        progress: Where the progress bar goes.
        poll_s: Seconds between checks.
        deadline: ``time.monotonic()`` value after which to stop waiting.

    Returns:
        The last gap report.
    """
    expected = _minutes(succeeded)
    total = ctx.window.minute_count
    while True:
        report = find_gaps(store, ctx.window, ctx.settings.symbol, ctx.source)
        accounted = report.present + report.no_trade_minutes
        progress.update(f"in MongoDB {progress_bar(accounted, total)} minutes")
        waiting = _minutes([r.window for r in report.missing]) & expected
        if not waiting or time.monotonic() > deadline:
            return report
        time.sleep(poll_s)


def _why_missing(r: MinuteRange, outcome: RunOutcome | None) -> str:
    if outcome is None:
        return "the run did not finish within --timeout: re-run the command to keep following it"
    minutes = set(r.window.minutes())
    if minutes & _minutes(outcome.failed):
        return "its chunk failed: see the chunk's task log in the Airflow UI"
    if minutes & _minutes(outcome.succeeded):
        return "produced to btc-metrics but not in MongoDB yet: is btc_drain unpaused and green?"
    if outcome.state == "failed":
        return "the run failed before fetching it: see the Airflow UI"
    return "not part of the run (it had a candle when the run was planned)"


def print_summary(ctx: Context, before: GapReport, after: GapReport, outcome: RunOutcome | None, run_url: str) -> None:
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
    chunks = "" if outcome is None else f", {outcome.chunks} chunk(s), {len(outcome.failed_labels)} failed"
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
        args: The parsed arguments (``missing``, ``no_wait``, ``timeout``, ``poll``).

    Returns:
        0 complete (or triggered, with ``--no-wait``), 1 minutes still missing or the run failed,
        2 a range no configured exchange can serve, 130 interrupted.
    """
    exchanges = (ctx.source,) if ctx.source else ctx.settings.exchanges
    try:
        check_backfill_window(ctx.window, exchanges, datetime.now(UTC))
    except RangeError as exc:
        ctx.err.write(f"btc-pipeline backfill: error: argument {ARGUMENT_OF_BOUND[exc.bound]}: {exc}\n")
        return EXIT_USAGE
    progress = Progress(ctx.err)
    run_id: str | None = None
    url = ""
    try:
        store = connect()
        before = find_gaps(store, ctx.window, ctx.settings.symbol, ctx.source)
        if args.missing:
            print_report(before, ctx.err)
            if not before.missing:
                ctx.out.write("no holes in the range: nothing to backfill\n")
                return EXIT_OK
        client = AirflowClient(load_api_settings())
        problem = _preflight(client, ctx.err)
        if problem:
            ctx.err.write(f"btc-pipeline backfill: error: {problem}\n")
            return EXIT_INCOMPLETE
        conf = {
            "start": format_ts(ctx.window.start),
            "end": format_ts(ctx.window.end),
            "source": ctx.source,
            "only_missing": bool(args.missing),
        }
        run = _find_or_trigger(client, conf, ctx.err)
        run_id = str(run["dag_run_id"])
        url = client.run_url(BACKFILL_DAG, run_id)
        if args.no_wait:
            ctx.out.write(
                f"{BACKFILL_DAG} run {run_id} is {run.get('state', 'queued')}; follow it at {url}\n"
                f"check the result with: btc-pipeline gaps --from {conf['start']} --to {conf['end']}"
                + (f" --source {ctx.source}" if ctx.source else "")
                + "\n"
            )
            return EXIT_OK
        deadline = time.monotonic() + args.timeout
        outcome = follow_run(client, run_id, ctx.window, progress, poll_s=args.poll, deadline=deadline)
        progress.done()
        after = before
        if outcome is not None:
            after = wait_for_data(store, ctx, outcome.succeeded, progress, poll_s=args.poll, deadline=deadline)
            progress.done()
        else:
            after = find_gaps(store, ctx.window, ctx.settings.symbol, ctx.source)
    except KeyboardInterrupt:
        progress.done()
        if run_id is None:
            ctx.err.write(
                "\ninterrupted before following a run: a btc_backfill run triggered just now keeps going; "
                "run the same command again to attach to it\n"
            )
        else:
            ctx.err.write(
                f"\ninterrupted: the Airflow run {run_id} keeps going ({url}).\n"
                "Run the same command again to follow it (it attaches to the run in progress), "
                "or check later with `btc-pipeline gaps`.\n"
            )
        return EXIT_INTERRUPTED
    print_summary(ctx, before, after, outcome, url)
    complete = outcome is not None and outcome.state == "success" and not after.missing
    return EXIT_OK if complete else EXIT_INCOMPLETE
