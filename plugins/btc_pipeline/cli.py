"""``btc-pipeline``: find the holes in the stored 1-minute candles and fill them through Airflow.

    btc-pipeline gaps --from 2026-11-24T10:00Z --to 2026-11-24T12:00Z [--source coinbase] [--json]
    btc-pipeline backfill --from 7d [--to now] [--source coinbase] [--no-wait]
    btc-pipeline backfill --missing --since 24h

``backfill`` triggers the ``btc_backfill`` DAG through Airflow's REST API (so every chunk is
visible, retried and logged in the UI, and the candles go through ``btc-metrics`` and the drain
like live data), follows its chunks with a progress bar, then waits until the candles are in
MongoDB by re-running the gap check. Exit codes: 0 complete, 1 still missing or failed, 2 bad
arguments or configuration, 130 interrupted (the Airflow run keeps going).

This module imports neither Airflow nor the database and Kafka clients at import time: the CLI
starts fast, and ``--help`` works anywhere.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, TextIO

from btc_pipeline.airflow_api import TERMINAL_RUN_STATES, TERMINAL_TI_STATES, AirflowClient
from btc_pipeline.config import KNOWN_PROVIDERS, ConfigError, Settings, load_api_settings, load_settings
from btc_pipeline.schema import format_ts
from btc_pipeline.window import Window, floor_minute

if TYPE_CHECKING:
    from pymongo.database import Database

    from btc_pipeline.gaps import GapReport, MinuteRange

BACKFILL_DAG = "btc_backfill"
CHUNK_TASK = "fetch_and_produce"
EXIT_OK, EXIT_INCOMPLETE, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130

RELATIVE = re.compile(r"(\d+)\s*([mhd])")
UNITS = {"m": timedelta(minutes=1), "h": timedelta(hours=1), "d": timedelta(days=1)}
#: Nothing BTC is older than the genesis block.
EARLIEST = datetime(2009, 1, 3, tzinfo=UTC)

TIME_HELP = (
    "ISO-8601 (2026-11-24T10:00Z, 2026-11-24T11:00+01:00; without an offset = UTC), "
    "'now', or an age: 90m, 2h, 3d (= now minus that); floored to the minute"
)


class RangeArgumentError(ValueError):
    """An argument cannot be used; ``argument`` names it (``--to``)."""

    def __init__(self, argument: str, message: str) -> None:
        super().__init__(f"argument {argument}: {message}")
        self.argument = argument


def parse_time(text: str, *, now: datetime) -> datetime:
    """Read a time argument: ISO-8601, ``now``, or a relative age (``90m``, ``2h``, ``3d``).

    Args:
        text: The argument as typed.
        now: The current time (aware).

    Returns:
        The instant in UTC, floored to the minute (ages count back from ``now``).

    Raises:
        ValueError: ``text`` is none of those forms, or before 2009-01-03 (no BTC then).
    """
    value = text.strip()
    if value.lower() == "now":
        return floor_minute(now)
    relative = RELATIVE.fullmatch(value.lower())
    if relative:
        amount, unit = int(relative.group(1)), relative.group(2)
        try:
            ts = now - UNITS[unit] * amount
        except OverflowError:
            raise ValueError(f"{text!r} reaches back before BTC existed (2009-01-03)") from None
    else:
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            raise ValueError(
                f"{text!r} is not a time: use ISO-8601 such as 2026-11-24T10:00:00Z (no offset = UTC), "
                "'now', or an age such as 90m, 2h, 3d"
            ) from None
        ts = parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed
    if ts < EARLIEST:
        raise ValueError(f"{text!r} is before 2009-01-03: BTC did not trade then")
    return floor_minute(ts)


def resolve_range(start: datetime, end: datetime, now: datetime) -> Window:
    """Check a ``[--from, --to)`` range: ``--to`` after ``--from``, and no later than the last closed minute.

    Args:
        start: ``--from``, floored to the minute.
        end: ``--to``, floored to the minute (exclusive).
        now: The current time.

    Returns:
        The range as a window.

    Raises:
        RangeArgumentError: The range is empty or ends in the future; the message names the argument.
    """
    last = floor_minute(now)
    if end > last:
        raise RangeArgumentError(
            "--to",
            f"{format_ts(end)} is in the future: the last closed minute ends at {format_ts(last)} "
            "(use --to now, or leave --to out)",
        )
    if end <= start:
        raise RangeArgumentError(
            "--to", f"{format_ts(end)} must be after --from {format_ts(start)} (the range is [--from, --to))"
        )
    return Window(start, end)


def progress_bar(done: int, total: int, width: int = 30) -> str:
    """A text progress bar such as ``[#######.......] 3/9``.

    Args:
        done: Units finished.
        total: Units in all.
        width: Characters between the brackets.

    Returns:
        The bar.
    """
    filled = 0 if total <= 0 else round(width * min(max(done, 0), total) / total)
    return f"[{'#' * filled}{'.' * (width - filled)}] {done}/{total}"


class Progress:
    """One status line on stderr: rewritten in place on a terminal, a new line per change otherwise."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.tty = stream.isatty()
        self.last = ""

    def update(self, text: str) -> None:
        if text == self.last:
            return
        if self.tty:
            self.stream.write("\r\x1b[2K" + text)
        else:
            self.stream.write(text + "\n")
        self.stream.flush()
        self.last = text

    def done(self) -> None:
        if self.tty and self.last:
            self.stream.write("\n")
            self.stream.flush()
        self.last = ""


# --- argument parsing ------------------------------------------------------------------------


def _time_arg(now: datetime) -> Any:
    def parse(text: str) -> datetime:
        try:
            return parse_time(text, now=now)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    return parse


def _positive_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not 1 <= value <= 7 * 86_400:
        raise argparse.ArgumentTypeError(f"{text} is out of range: 1 .. 604800 seconds")
    return value


def build_parser(now: datetime) -> argparse.ArgumentParser:
    """The argument parser of ``btc-pipeline``.

    Args:
        now: The current time, against which relative times such as ``2h`` are resolved.

    Returns:
        The parser; a bad argument makes it exit with code 2 and a message naming the argument.
    """
    parser = argparse.ArgumentParser(
        prog="btc-pipeline",
        description="Find and fill holes in the 1-minute BTC-USD candles stored in MongoDB (btc.prices).",
        epilog=(
            "Times: " + TIME_HELP + ". Ranges are [--from, --to): --to is exclusive and at most the end of the "
            "last closed minute. MongoDB comes from BTC_MONGO_URI / BTC_MONGO_DB; Airflow from AIRFLOW_API_URL "
            "(default http://127.0.0.1:${AIRFLOW_PORT:-8080}), AIRFLOW_ADMIN_USER, AIRFLOW_ADMIN_PASSWORD."
        ),
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="{gaps,backfill}")
    times = _time_arg(now)

    def add_range(sub: argparse.ArgumentParser, *, required: bool) -> None:
        start = sub.add_mutually_exclusive_group(required=required)
        start.add_argument(
            "--from", dest="start", type=times, metavar="T1", help="range start (inclusive). " + TIME_HELP
        )
        start.add_argument("--since", dest="start", type=times, metavar="T1", help="same as --from, e.g. --since 24h")
        sub.add_argument(
            "--to",
            dest="end",
            type=times,
            metavar="T2",
            help="range end (exclusive); default: now (last closed minute)",
        )
        sub.add_argument(
            "--source",
            choices=KNOWN_PROVIDERS,
            help="only this exchange's candles (backfill: fetch from it only); default: any exchange "
            "(backfill: BTC_PROVIDERS in failover order)",
        )

    gaps = commands.add_parser(
        "gaps",
        help="list the minutes without a candle, merged into ranges",
        description="List the 1-minute windows without a candle in btc.prices, merged into ranges, telling apart "
        "minutes an exchange said it had no trades in from real holes. Exit code 0: no holes, 1: holes found, "
        "2: bad arguments.",
        epilog="Times: " + TIME_HELP + ".",
    )
    add_range(gaps, required=True)
    gaps.add_argument("--json", action="store_true", help="print the report as JSON")

    backfill = commands.add_parser(
        "backfill",
        help="fill a range (or its holes) through Airflow's btc_backfill DAG",
        description="Trigger the btc_backfill DAG for a range, follow its chunks, and wait until the candles are in "
        "MongoDB. Safe to re-run (same keys, one document each) and to interrupt (the Airflow run keeps going). "
        "Exit code 0: complete, 1: minutes still missing or the run failed, 2: bad arguments, 130: interrupted.",
        epilog="Times: " + TIME_HELP + ".",
    )
    add_range(backfill, required=True)
    backfill.add_argument(
        "--missing", action="store_true", help="fill only the holes `gaps` finds (skips minutes without trades)"
    )
    backfill.add_argument("--no-wait", action="store_true", help="trigger the run and return at once")
    backfill.add_argument(
        "--timeout",
        type=_positive_seconds,
        default=1800.0,
        metavar="SECONDS",
        help="how long to wait for the run and the data (default 1800)",
    )
    backfill.add_argument("--poll", type=_positive_seconds, default=3.0, metavar="SECONDS", help=argparse.SUPPRESS)
    return parser


@dataclass(frozen=True)
class Context:
    """What every command needs: the range, the settings, the output streams and the clock."""

    window: Window
    source: str | None
    settings: Settings
    out: TextIO
    err: TextIO


# --- gaps --------------------------------------------------------------------------------------


def _connect(settings: Settings) -> Database[Any]:
    from pymongo import MongoClient
    from pymongo.errors import PyMongoError

    client: MongoClient[Any] = MongoClient(settings.mongo_uri, tz_aware=True, serverSelectionTimeoutMS=5000)
    try:
        client.admin.command("ping")
    except PyMongoError as exc:
        raise RuntimeError(
            f"cannot reach MongoDB at {settings.mongo_uri} ({exc.__class__.__name__}): is the stack up? "
            "Set BTC_MONGO_URI to its address"
        ) from None
    return client[settings.mongo_db]


def _describe(r: MinuteRange) -> str:
    what = "MISSING  " if r.status == "missing" else "NO TRADES"
    why = f"  ({', '.join(r.sources)} said no trades)" if r.status == "no_trades" else ""
    return f"  {what} {format_ts(r.start)} → {format_ts(r.end)}  {r.minutes:>6} min{why}"


def print_report(report: GapReport, out: TextIO) -> None:
    """Print a gap report for people: one line per range, then the totals.

    Args:
        report: The gaps of a range.
        out: Where to write.
    """
    who = report.source or "any exchange"
    out.write(
        f"btc.prices 1-minute candles [{format_ts(report.window.start)}, {format_ts(report.window.end)}) "
        f"from {who}: {report.window.minute_count} minute(s)\n"
    )
    for r in report.ranges:
        out.write(_describe(r) + "\n")
    out.write(
        f"present {report.present}, missing {report.missing_minutes} in {len(report.missing)} range(s), "
        f"no trades {report.no_trade_minutes} (the exchange said so)\n"
    )


def run_gaps(ctx: Context, as_json: bool) -> int:
    """``btc-pipeline gaps``: print the gaps of the range.

    Args:
        ctx: The range, source, settings and output streams.
        as_json: Print the report as JSON instead of text.

    Returns:
        0 when the range has no hole (minutes without trades are not holes), 1 otherwise.
    """
    from btc_pipeline.gaps import find_gaps

    report = find_gaps(_connect(ctx.settings), ctx.window, ctx.settings.symbol, ctx.source)
    if as_json:
        ctx.out.write(json.dumps(report.to_dict(), indent=2) + "\n")
    else:
        print_report(report, ctx.out)
    return EXIT_OK if not report.missing else EXIT_INCOMPLETE


# --- backfill ----------------------------------------------------------------------------------


def _chunk_window(label: str | None) -> Window | None:
    """The window of a chunk from its task's rendered map index (``start → end``)."""
    if not label or "→" not in label:
        return None
    start, _, end = label.partition("→")
    try:
        return Window(
            datetime.fromisoformat(start.strip().replace("Z", "+00:00")),
            datetime.fromisoformat(end.strip().replace("Z", "+00:00")),
        )
    except ValueError:
        return None


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
        if client.dag("btc_drain").get("is_paused"):
            err.write("warning: btc_drain is paused: backfilled candles wait in btc-metrics until it runs\n")
    except RuntimeError as exc:
        err.write(f"warning: cannot check btc_drain: {exc}\n")
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


def follow_run(
    client: AirflowClient, run_id: str, whole: Window, progress: Progress, *, poll_s: float, deadline: float
) -> RunOutcome | None:
    """Follow a backfill run's mapped chunks with a progress bar until the run ends.

    A chunk's window is read from its task instance's name (the rendered map index); should one be
    unreadable, the whole range counts as fetched by the succeeded chunks (the wait then covers it all).

    Args:
        client: The Airflow REST API client.
        run_id: The ``btc_backfill`` run.
        whole: The run's range.
        progress: Where the progress bar goes.
        poll_s: Seconds between polls.
        deadline: ``time.monotonic()`` value after which to give up.

    Returns:
        How the run ended, or ``None`` when the deadline came first.
    """
    queued_since = time.monotonic()
    while True:
        run = client.run(BACKFILL_DAG, run_id)
        tis = [ti for ti in client.task_instances(BACKFILL_DAG, run_id, CHUNK_TASK) if ti.get("map_index", -1) >= 0]
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
            succeeded_windows = _windows(succeeded)
            if len(succeeded_windows) < len(succeeded):
                succeeded_windows = [whole]
            return RunOutcome(
                state=state,
                chunks=len(tis),
                succeeded=succeeded_windows,
                failed=_windows(failed),
                failed_labels=[str(ti.get("rendered_map_index") or ti.get("map_index")) for ti in failed],
            )
        if time.monotonic() > deadline:
            return None
        time.sleep(poll_s)


def _windows(tis: Sequence[dict[str, Any]]) -> list[Window]:
    return [w for w in (_chunk_window(ti.get("rendered_map_index")) for ti in tis) if w is not None]


def _minutes(windows: Sequence[Window]) -> set[datetime]:
    return {minute for w in windows for minute in w.minutes()}


def wait_for_data(
    db: Database[Any],
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
        db: The ``btc`` database.
        ctx: The range, source and settings.
        succeeded: The windows of the chunks that succeeded.
        progress: Where the progress bar goes.
        poll_s: Seconds between checks.
        deadline: ``time.monotonic()`` value after which to stop waiting.

    Returns:
        The last gap report.
    """
    from btc_pipeline.gaps import find_gaps

    expected = _minutes(succeeded)
    total = ctx.window.minute_count
    while True:
        report = find_gaps(db, ctx.window, ctx.settings.symbol, ctx.source)
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


def print_summary(
    ctx: Context,
    before: GapReport,
    after: GapReport,
    outcome: RunOutcome | None,
    run_url: str,
) -> None:
    """Print the closing summary: minutes filled, without trades, still missing and why.

    Args:
        ctx: The range and output streams.
        before: The gaps before the run.
        after: The gaps at the end.
        outcome: How the run ended (``None``: it did not finish in time).
        run_url: The run's page in the Airflow UI.
    """
    from btc_pipeline.gaps import merge_minutes

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
        out.write(_describe(r) + f"  — {_why_missing(r, outcome)}\n")


def run_backfill(ctx: Context, args: argparse.Namespace) -> int:
    """``btc-pipeline backfill``: trigger (or join) a ``btc_backfill`` run, follow it, wait for the data, summarise.

    Args:
        ctx: The range, source, settings and output streams.
        args: The parsed arguments (``missing``, ``no_wait``, ``timeout``, ``poll``).

    Returns:
        0 complete (or triggered, with ``--no-wait``), 1 minutes still missing or the run failed,
        2 a range no configured exchange can serve, 130 interrupted.
    """
    from btc_pipeline.backfill import check_backfill_window
    from btc_pipeline.gaps import find_gaps

    providers = (ctx.source,) if ctx.source else ctx.settings.providers
    try:
        check_backfill_window(ctx.window, providers, datetime.now(UTC))
    except ValueError as exc:
        ctx.err.write(f"btc-pipeline backfill: error: argument --from: {exc}\n")
        return EXIT_USAGE
    db = _connect(ctx.settings)
    before = find_gaps(db, ctx.window, ctx.settings.symbol, ctx.source)
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
    progress = Progress(ctx.err)
    deadline = time.monotonic() + args.timeout
    try:
        outcome = follow_run(client, run_id, ctx.window, progress, poll_s=args.poll, deadline=deadline)
        progress.done()
        after = before
        if outcome is not None:
            after = wait_for_data(db, ctx, outcome.succeeded, progress, poll_s=args.poll, deadline=deadline)
            progress.done()
    except KeyboardInterrupt:
        progress.done()
        ctx.err.write(
            f"\ninterrupted: the Airflow run {run_id} keeps going ({url}).\n"
            "Run the same command again to follow it (it attaches to the run in progress), "
            "or check later with `btc-pipeline gaps`.\n"
        )
        return EXIT_INTERRUPTED
    if outcome is None:
        after = find_gaps(db, ctx.window, ctx.settings.symbol, ctx.source)
    print_summary(ctx, before, after, outcome, url)
    complete = outcome is not None and outcome.state == "success" and not after.missing
    return EXIT_OK if complete else EXIT_INCOMPLETE


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``btc-pipeline`` console script.

    Args:
        argv: Arguments without the program name (``sys.argv[1:]`` when omitted).

    Returns:
        The exit code: 0 complete, 1 still missing / failed, 2 bad arguments, 130 interrupted.
    """
    now = datetime.now(UTC)
    parser = build_parser(now)
    args = parser.parse_args(argv)
    try:
        window = resolve_range(args.start, args.end if args.end is not None else floor_minute(now), now)
    except RangeArgumentError as exc:
        parser.exit(EXIT_USAGE, f"{parser.prog} {args.command}: error: {exc}\n")
    try:
        settings = load_settings()
    except ConfigError as exc:
        parser.exit(EXIT_USAGE, f"{parser.prog}: configuration error: {exc}\n")
    ctx = Context(window=window, source=args.source, settings=settings, out=sys.stdout, err=sys.stderr)
    from pymongo.errors import PyMongoError

    try:
        if args.command == "gaps":
            return run_gaps(ctx, args.json)
        return run_backfill(ctx, args)
    except ConfigError as exc:
        sys.stderr.write(f"{parser.prog}: configuration error: {exc}\n")
        return EXIT_USAGE
    except KeyboardInterrupt:
        sys.stderr.write("\ninterrupted\n")
        return EXIT_INTERRUPTED
    except (RuntimeError, PyMongoError) as exc:  # unreachable MongoDB / Airflow, refused credentials
        sys.stderr.write(f"{parser.prog} {args.command}: error: {exc}\n")
        return EXIT_INCOMPLETE


if __name__ == "__main__":  # pragma: no cover - `python -m btc_pipeline.cli`
    sys.exit(main())
