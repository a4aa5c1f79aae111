"""``btc-pipeline``: find the holes in the stored 1-minute candles and fill them through Airflow.

    btc-pipeline gaps --from 2026-11-24T10:00Z --to 2026-11-24T12:00Z [--source coinbase] [--json]
    btc-pipeline backfill --from 7d [--to now] [--source coinbase] [--no-wait]
    btc-pipeline backfill --missing --since 24h
    btc-pipeline rollups rebuild --from 30d [--to now]
    btc-pipeline dlq list [--since 24h] [--reason bad_price]
    btc-pipeline dlq replay [--reason bad_price] [--since 24h] [--dry-run]
    btc-pipeline init-env [--force] [--path .env]      (``make env``: secrets for docker compose)
    btc-pipeline notify test                           (a test message to every BTC_NOTIFY_URLS channel)
    btc-pipeline housekeeping [--every 24]             (Airflow's logs and run history past retention)
    btc-pipeline check-secrets [--env-file .env]

``backfill`` triggers the ``btc_backfill`` DAG through Airflow's REST API (so every chunk is
visible, retried and logged in the UI, and the candles go through ``btc-metrics`` and the drain
like live data), follows its chunks with a progress bar, then waits until the candles are in
MongoDB by re-running the gap check. Exit codes: 0 complete, 1 still missing or failed, 2 bad
arguments or configuration, 130 interrupted (the Airflow run keeps going).

The CLI never imports Airflow itself (it talks to its REST API), so it starts fast, and ``--help``
works anywhere. Everything it writes to stderr goes through :func:`btc_pipeline.redact.redact_text`:
a URI's password is never shown.
"""

from __future__ import annotations

import argparse
import signal
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from btc_pipeline.cli.common import (
    EXIT_INCOMPLETE,
    EXIT_INTERRUPTED,
    EXIT_USAGE,
    Context,
    argument_error,
    number_in,
    redacted,
)
from btc_pipeline.cli.env import SECRET_COMMANDS, add_secret_commands, run_secret_command
from btc_pipeline.cli.housekeeping import COMMAND as HOUSEKEEPING_COMMAND
from btc_pipeline.cli.housekeeping import add_housekeeping_command, run_housekeeping
from btc_pipeline.cli.notify import COMMAND as NOTIFY_COMMAND
from btc_pipeline.cli.notify import add_notify_command, run_notify
from btc_pipeline.config import KNOWN_EXCHANGES, ConfigError, load_settings
from btc_pipeline.errors import BtcPipelineError
from btc_pipeline.redact import redact_text
from btc_pipeline.timeutil import TIME_HELP, floor_minute, parse_time
from btc_pipeline.window import RangeError, checked_range

__all__ = ["build_parser", "main"]


def _time_arg(now: datetime) -> Any:
    def parse(text: str) -> datetime:
        try:
            return parse_time(text, now=now)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    return parse


def _examples(text: str) -> int:
    if not text.isdigit() or int(text) > 100:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of examples in 0 .. 100")
    return int(text)


#: ``--timeout`` and ``--poll``: 1 s .. a week.
_seconds = number_in("seconds", 1, 7 * 86_400)


def _add_range(sub: argparse.ArgumentParser, times: Any, *, source: bool = True) -> None:
    """``--from``/``--since``, ``--to`` and (with ``source``) ``--source``."""
    start = sub.add_mutually_exclusive_group(required=True)
    start.add_argument("--from", dest="start", type=times, metavar="T1", help="range start (inclusive). " + TIME_HELP)
    start.add_argument("--since", dest="start", type=times, metavar="T1", help="same as --from, e.g. --since 24h")
    sub.add_argument(
        "--to",
        dest="end",
        type=times,
        metavar="T2",
        help="range end (exclusive); default: now (last closed minute)",
    )
    if source:
        sub.add_argument(
            "--source",
            choices=KNOWN_EXCHANGES,
            help="only this exchange's candles (backfill: fetch from it only); default: any exchange "
            "(backfill: BTC_EXCHANGES in failover order)",
        )


def _add_dlq_filters(sub: argparse.ArgumentParser, times: Any) -> None:
    """``--reason``, ``--since`` and ``--examples`` of the dlq commands."""
    sub.add_argument("--reason", help="only dead letters of this reason (dlq.reason: bad_price, future_ts, ...)")
    sub.add_argument("--since", type=times, metavar="T", help="only those dead-lettered at or after T. " + TIME_HELP)
    sub.add_argument(
        "--examples", type=_examples, default=3, metavar="N", help="newest examples shown per reason (default 3)"
    )


def _add_gaps(commands: Any, times: Any) -> None:
    """``gaps``: the minutes without a candle."""
    gaps = commands.add_parser(
        "gaps",
        help="list the minutes without a candle, merged into ranges",
        description="List the minutes without a 1-minute candle (read from the read model's 1-minute bars), "
        "merged into ranges, telling apart minutes an exchange said it had no trades in from real holes. "
        "Exit code 0: no holes, 1: holes found, 2: bad arguments.",
        epilog="Times: " + TIME_HELP + ".",
    )
    _add_range(gaps, times)
    gaps.add_argument("--json", action="store_true", help="print the report as JSON")


def _add_backfill(commands: Any, times: Any) -> None:
    """``backfill``: fill a range through Airflow."""
    backfill = commands.add_parser(
        "backfill",
        help="fill a range (or its holes) through Airflow's btc_backfill DAG",
        description="Trigger the btc_backfill DAG for a range, follow its chunks, and wait until the candles are in "
        "MongoDB. Safe to re-run (same keys, one document each) and to interrupt (the Airflow run keeps going). "
        "Exit code 0: complete, 1: minutes still missing or the run failed, 2: bad arguments, 130: interrupted.",
        epilog="Times: " + TIME_HELP + ".",
    )
    _add_range(backfill, times)
    backfill.add_argument(
        "--missing", action="store_true", help="fill only the holes `gaps` finds (skips minutes without trades)"
    )
    backfill.add_argument("--no-wait", action="store_true", help="trigger the run and return at once")
    backfill.add_argument(
        "--timeout",
        type=_seconds,
        default=1800.0,
        metavar="SECONDS",
        help="how long to wait for the run and the data (default 1800)",
    )
    backfill.add_argument("--poll", type=_seconds, default=1.0, metavar="SECONDS", help=argparse.SUPPRESS)
    backfill.add_argument(
        "--lane",
        choices=("history", "live"),
        default="history",
        help="history (default): large chunks through btc-metrics-history and btc_history_drain, never in front "
        "of live data; live: chunks of a day through btc-metrics and btc_drain (the path before the history lane)",
    )


def _add_rollups(commands: Any, times: Any) -> None:
    """``rollups rebuild``: the read model from ``btc.prices``."""
    rollups = commands.add_parser(
        "rollups",
        help="maintain the read model (bars of every level, the consensus)",
        description="The read model holds the bars the dashboard, the API and gaps read; the drain keeps it.",
    )
    actions = rollups.add_subparsers(dest="action", required=True, metavar="{rebuild}")
    rebuild = actions.add_parser(
        "rebuild",
        help="rebuild the read model of a range from btc.prices",
        description="Rebuild the 1-minute, 5-minute, hourly and daily bars of every series, the consensus and "
        "the no-trade partitions of a range from btc.prices: after a bulk import into btc.prices or a change of "
        "the read model. Idempotent, safe while btc_drain runs (it merges, never removes a bar). On FerretDB it "
        "reads all of btc.prices once (a year of history: a few minutes).",
        epilog="Times: " + TIME_HELP + ".",
    )
    _add_range(rebuild, times, source=False)
    rebuild.add_argument(
        "--exact",
        action="store_true",
        help="make the range's candle bars exactly what btc.prices holds (bars of deleted candles go too); "
        "pause btc_drain meanwhile",
    )


def _add_dlq(commands: Any, times: Any) -> None:
    """``dlq list|replay``: the dead letters."""
    dlq = commands.add_parser(
        "dlq",
        help="inspect and replay dead letters (messages the drain could not store)",
        description="Read the dead-letter topic (BTC_DLQ_TOPIC) from its beginning, without a consumer group: it "
        "holds every message the drain could not store, with its original key and value and the reason in "
        "headers (btc.rejects holds the same with the start of each value). Exit code 0: done, 1: Kafka did not "
        "answer or a replayed message was not acknowledged, 2: bad arguments.",
    )
    dlq_actions = dlq.add_subparsers(dest="action", required=True, metavar="{list,replay}")

    _add_dlq_filters(
        dlq_actions.add_parser(
            "list",
            help="count the dead letters by reason and show the newest of each",
            description="Count the dead letters by reason (first and last dead-lettered) and show the newest of "
            "each: key, where it came from, the detail and the start of its value.",
            epilog="Times: " + TIME_HELP + ".",
        ),
        times,
    )
    replay = dlq_actions.add_parser(
        "replay",
        help="re-produce dead letters to the data topic after a fix",
        description="Produce the selected dead letters to BTC_TOPIC with their original key and value (each once), "
        "confirmed by the broker, and a dlq.replayed_from header naming the dead letter; btc_drain stores them "
        "at its next run, and one that fails again returns to the DLQ with that header. Safe to repeat: keys "
        "are natural and the drain upserts on them.",
        epilog="Times: " + TIME_HELP + ".",
    )
    _add_dlq_filters(replay, times)
    replay.add_argument("--dry-run", action="store_true", help="say what would be replayed; produce nothing")


def build_parser(now: datetime) -> argparse.ArgumentParser:
    """The argument parser of ``btc-pipeline``.

    Args:
        now: The current time, against which relative times such as ``2h`` are resolved.

    Returns:
        The parser; a bad argument makes it exit with code 2 and a message naming the argument.
    """
    parser = argparse.ArgumentParser(
        prog="btc-pipeline",
        description="Find and fill holes in the 1-minute BTC-USD candles stored in MongoDB (btc.prices), "
        "maintain the read model, and inspect and replay dead letters.",
        epilog=(
            "Times: " + TIME_HELP + ". Ranges are [--from, --to): --to is exclusive and at most the end of the "
            "last closed minute. MongoDB comes from BTC_MONGO_URI / BTC_MONGO_DB; Kafka from BTC_KAFKA_BOOTSTRAP, "
            "BTC_TOPIC, BTC_DLQ_TOPIC; Airflow from AIRFLOW_API_URL "
            "(default http://127.0.0.1:${AIRFLOW_PORT:-8080}), AIRFLOW_ADMIN_USER, AIRFLOW_ADMIN_PASSWORD."
        ),
    )
    commands = parser.add_subparsers(
        dest="command", required=True, metavar="{gaps,backfill,rollups,dlq,notify,housekeeping,init-env,check-secrets}"
    )
    times = _time_arg(now)
    for add in (_add_gaps, _add_backfill, _add_rollups, _add_dlq):
        add(commands, times)
    add_notify_command(commands)
    add_housekeeping_command(commands)
    add_secret_commands(commands)
    return parser


def interrupt_on_signals() -> None:
    """Make SIGINT (Ctrl-C) and SIGTERM raise :class:`KeyboardInterrupt` in every phase.

    A process started in the background by a shell without job control (a script, a CI runner)
    inherits SIGINT as *ignored*, and Python then leaves it ignored: the following phases would
    not notice Ctrl-C at all. Interrupting the CLI is always safe (the Airflow run keeps going),
    so it takes both signals back.
    """

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt(signal.Signals(signum).name)

    signal.signal(signal.SIGINT, interrupt)
    signal.signal(signal.SIGTERM, interrupt)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``btc-pipeline`` console script.

    Args:
        argv: Arguments without the program name (``sys.argv[1:]`` when omitted).

    Returns:
        The exit code: 0 complete, 1 still missing / failed, 2 bad arguments, 130 interrupted.
    """
    interrupt_on_signals()
    now = datetime.now(UTC)
    parser = build_parser(now)
    args = parser.parse_args(argv)
    err = redacted(sys.stderr)
    if args.command in SECRET_COMMANDS:
        return run_secret_command(args, sys.stdout, err)
    window = None
    if "start" in args:  # the commands of a range: --to after --from, and no later than the last closed minute
        try:
            end = args.end if args.end is not None else floor_minute(now)
            window = checked_range(args.start, end, latest=floor_minute(now))
        except RangeError as exc:
            parser.exit(EXIT_USAGE, f"{parser.prog} {args.command}: error: {argument_error(exc)}\n")
    try:
        settings = load_settings()
    except ConfigError as exc:
        parser.exit(EXIT_USAGE, redact_text(f"{parser.prog}: configuration error: {exc}\n"))
    from btc_pipeline.store import Store

    opened: list[Store] = []

    def connect() -> Store:
        opened.append(Store.connect(settings.mongo_uri, settings.mongo_db))
        return opened[-1]

    try:
        if args.command == NOTIFY_COMMAND:
            return run_notify(settings, args, sys.stdout, err)
        if args.command == HOUSEKEEPING_COMMAND:
            return run_housekeeping(settings, args, sys.stdout, err)
        if window is None:  # dlq, the one command here without a range
            from btc_pipeline.cli.dlq import run_dlq

            return run_dlq(settings, args, sys.stdout, err)
        ctx = Context(window=window, source=getattr(args, "source", None), settings=settings, out=sys.stdout, err=err)
        if args.command == "gaps":
            from btc_pipeline.cli.gaps import run_gaps

            return run_gaps(ctx, connect(), args.json)
        if args.command == "rollups":
            from btc_pipeline.cli.rollups import run_rebuild

            return run_rebuild(ctx, connect(), exact=args.exact)
        from btc_pipeline.cli.backfill import run_backfill

        return run_backfill(ctx, connect, args)
    except ConfigError as exc:
        err.write(f"{parser.prog}: configuration error: {exc}\n")
        return EXIT_USAGE
    except KeyboardInterrupt:
        err.write("\ninterrupted\n")
        return EXIT_INTERRUPTED
    except BtcPipelineError as exc:  # unreachable MongoDB / Airflow, refused credentials, ...: said plainly
        err.write(f"{parser.prog} {args.command}: error: {exc}\n")
        return EXIT_INCOMPLETE
    finally:
        for store in opened:
            store.close()
