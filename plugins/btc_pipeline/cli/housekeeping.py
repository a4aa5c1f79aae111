"""``btc-pipeline housekeeping``: delete Airflow's task logs and run history older than
``BTC_AIRFLOW_RETENTION_DAYS`` (:mod:`btc_pipeline.housekeeping`), once or every ``--every`` hours."""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from btc_pipeline.cli.common import EXIT_INCOMPLETE, EXIT_OK, number_in
from btc_pipeline.config import Settings
from btc_pipeline.housekeeping import HousekeepingError, housekeep, log_folder, summary
from btc_pipeline.notify.deliver import deliver
from btc_pipeline.notify.messages import first_line, housekeeping_failed
from btc_pipeline.redact import redact_text
from btc_pipeline.timeutil import format_ts

COMMAND = "housekeeping"


def add_housekeeping_command(commands: Any) -> None:
    """``housekeeping [--every HOURS]``."""
    sub = commands.add_parser(
        COMMAND,
        help="delete Airflow's task logs and run history older than BTC_AIRFLOW_RETENTION_DAYS",
        description="Deletes the task log files under Airflow's log folder (AIRFLOW__LOGGING__BASE_LOG_FOLDER, "
        "else $AIRFLOW_HOME/logs) and, with `airflow db clean`, the rows of Airflow's metadata database older "
        "than BTC_AIRFLOW_RETENTION_DAYS (default 30; 0 keeps everything). Runs where Airflow runs, with its "
        "configuration (docker compose's airflow-housekeeping service does, once a day). Exit code 0: done; "
        "1: `airflow db clean` failed (the logs were pruned).",
    )
    sub.add_argument(
        "--every",
        type=number_in("hours", 1, 24 * 30),
        metavar="HOURS",
        help="run again every HOURS hours, until stopped (1 .. 720)",
    )
    sub.add_argument(
        "--health-file",
        type=Path,
        metavar="PATH",
        help="written at start and after each pass that succeeded, removed after one that failed "
        "(a health check reads it)",
    )


def run_housekeeping(
    settings: Settings,
    args: argparse.Namespace,
    out: TextIO,
    err: TextIO,
    *,
    sleep: Callable[[float], None] = time.sleep,
    passes: int | None = None,
) -> int:
    """Run ``housekeeping``; returns the exit code of the last pass.

    With ``--every``, a failed pass is reported and the next one still comes (``passes`` bounds the
    loop in tests).
    """
    done, code = 0, EXIT_OK
    if args.health_file is not None:  # healthy until a pass fails (a first pass over months takes long)
        args.health_file.write_text(f"started {format_ts(datetime.now(UTC))}\n")
    while True:
        code = _one_pass(settings, out, err)
        done += 1
        if args.health_file is not None:
            if code == EXIT_OK:
                args.health_file.write_text(f"{format_ts(datetime.now(UTC))}\n")
            else:
                args.health_file.unlink(missing_ok=True)
        if args.every is None or (passes is not None and done >= passes):
            return code
        sleep(args.every * 3600)


def _one_pass(settings: Settings, out: TextIO, err: TextIO) -> int:
    days = settings.airflow_retention_days
    try:
        report = housekeep(days, datetime.now(UTC), logs=log_folder())
    except HousekeepingError as exc:
        err.write(f"btc-pipeline housekeeping: {exc}\n")
        # to BTC_NOTIFY_FAILURE_URLS, like a failed DAG (nothing when none is set; never raises)
        error = redact_text(first_line(str(exc)))
        message = housekeeping_failed(error=error, retention_days=days, now=datetime.now(UTC))
        deliver(message, settings.notify_targets("failure"), None)
        return EXIT_INCOMPLETE
    out.write(summary(report, days) + "\n")
    out.flush()
    return EXIT_OK
