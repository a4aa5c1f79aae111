"""Airflow's own history kept to a window: ``btc-pipeline housekeeping``.

A pipeline on a minute schedule makes Airflow write about 6,000 task log files and 3,000 run
records a day; left alone they fill the disk and slow the metadata database over months. This
deletes what is older than ``BTC_AIRFLOW_RETENTION_DAYS`` (0: keep everything): the task log files
under Airflow's log folder, and the old rows of its metadata database through Airflow's own
``airflow db clean``. Airflow 3 lets no task reach its metadata database (the task runner blocks
the connection), so this runs beside Airflow, not in a DAG: the ``airflow-housekeeping`` service of
docker compose and the local stack's process of that name, each a pass at start, then once a day.
"""

from __future__ import annotations

import logging
import os
import re
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from btc_pipeline.errors import BtcPipelineError
from btc_pipeline.timeutil import format_ts

log = logging.getLogger(__name__)

#: The metadata tables whose old rows ``airflow db clean`` deletes (a run's task instances, XComs
#: and task history go with it). Not ``dag`` nor ``dag_version``: a DAG that still runs keeps its
#: rows, and deleting old versions meets task instances' foreign keys (apache/airflow#63703).
DB_CLEAN_TABLES = (
    "dag_run",
    "task_instance",
    "task_instance_history",
    "task_reschedule",
    "xcom",
    "asset_event",
    "log",
    "job",
    "import_error",
)
#: Rows deleted per transaction: short locks beside a running scheduler (on SQLite, a lock).
DB_CLEAN_BATCH = 1000
#: The longest ``airflow db clean`` may take.
DB_CLEAN_TIMEOUT_S = 1800


class HousekeepingError(BtcPipelineError, RuntimeError):
    """``airflow db clean`` failed; the message has the end of its output."""


@dataclass(frozen=True)
class Pruned:
    """What :func:`prune_logs` deleted."""

    files: int = 0
    bytes: int = 0
    directories: int = 0


def check_airflow_environment(environ: Mapping[str, str] = os.environ) -> None:
    """Refuse to run where Airflow's configuration is not: ``airflow db clean`` would clean a fresh
    default database in ``~/airflow`` and say it succeeded.

    Raises:
        HousekeepingError: Neither ``AIRFLOW_HOME`` nor ``AIRFLOW__DATABASE__SQL_ALCHEMY_CONN`` is set.
    """
    if not (environ.get("AIRFLOW_HOME") or environ.get("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN")):
        raise HousekeepingError(
            "Airflow's configuration is not set here (AIRFLOW_HOME, AIRFLOW__DATABASE__SQL_ALCHEMY_CONN): run it "
            "where Airflow runs, e.g. `docker compose exec airflow-housekeeping btc-pipeline housekeeping`"
        )


def log_folder(environ: Mapping[str, str] = os.environ) -> Path:
    """Airflow's log folder, as Airflow finds it: ``AIRFLOW__LOGGING__BASE_LOG_FOLDER``, else
    ``$AIRFLOW_HOME/logs`` (``~/airflow/logs`` when neither is set)."""
    if folder := environ.get("AIRFLOW__LOGGING__BASE_LOG_FOLDER"):
        return Path(folder)
    return Path(environ.get("AIRFLOW_HOME") or Path.home() / "airflow") / "logs"


def prune_logs(root: Path, cutoff: datetime) -> Pruned:
    """Delete the files under ``root`` last written before ``cutoff``, then the directories left empty.

    Symbolic links are neither followed nor deleted, nothing outside ``root`` is touched, and ``root``
    and the folders changed since ``cutoff`` stay. A file that goes away meanwhile (Airflow rotating
    it), or that cannot be deleted (logged), is skipped.

    Args:
        root: Airflow's log folder (:func:`log_folder`); a missing folder deletes nothing.
        cutoff: Files whose last change is older are deleted.
    """
    if not root.is_dir():
        return Pruned()
    limit, files, size, old_folders = cutoff.timestamp(), 0, 0, []
    for folder, _, names in os.walk(root, followlinks=False):
        # a folder goes only if it was old before this pass (read before its files go): one Airflow
        # has just made for a new task's log (it makes the folder, then the file) stays however empty
        if Path(folder) != root and Path(folder).lstat().st_mtime < limit:
            old_folders.append(folder)
        for name in names:
            path = Path(folder, name)
            try:
                stat = path.lstat()
                if path.is_symlink() or stat.st_mtime >= limit:
                    continue
                path.unlink()
            except FileNotFoundError:
                continue
            except OSError as exc:  # not ours to delete (another user's file): the rest still goes
                log.warning("cannot delete %s: %s", path, exc)
                continue
            files, size = files + 1, size + stat.st_size
    directories = 0
    for folder in reversed(old_folders):  # a walk lists a folder before its subfolders: these go first
        try:
            Path(folder).rmdir()  # only when empty
            directories += 1
        except OSError:
            pass
    return Pruned(files, size, directories)


def airflow_executable() -> str:
    """Airflow's command: beside this Python (a virtualenv's ``bin/``), else ``airflow`` on the PATH."""
    beside = Path(sys.executable).with_name("airflow")
    return str(beside) if beside.exists() else "airflow"


def db_clean_command(cutoff: datetime, airflow: str = "airflow") -> list[str]:
    """The ``airflow db clean`` command that deletes the rows of :data:`DB_CLEAN_TABLES` older than ``cutoff``."""
    return [
        airflow,
        *("db", "clean", "--clean-before-timestamp", format_ts(cutoff)),
        *("--tables", ",".join(DB_CLEAN_TABLES), "--batch-size", str(DB_CLEAN_BATCH)),
        *("--skip-archive", "--error-on-cleanup-failure", "--yes"),
    ]


def clean_metadata(cutoff: datetime, *, airflow: str = "airflow") -> str:
    """Run :func:`db_clean_command`; returns its output.

    Raises:
        HousekeepingError: The command is missing, timed out or failed (with the end of its output).
    """
    argv = db_clean_command(cutoff, airflow)
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=DB_CLEAN_TIMEOUT_S, check=False)
    except FileNotFoundError:
        raise HousekeepingError(f"{airflow!r} not found: run housekeeping where Airflow is installed") from None
    except subprocess.TimeoutExpired:
        raise HousekeepingError(f"airflow db clean did not end within {DB_CLEAN_TIMEOUT_S} s") from None
    output = (done.stdout or "") + (done.stderr or "")
    if done.returncode != 0:
        raise HousekeepingError(f"airflow db clean failed (exit {done.returncode}): ...{output[-1500:]}")
    if "Table dag_run not found" in output:  # exit 0 all the same: a database Airflow never migrated
        raise HousekeepingError("airflow db clean found no dag_run table: this is not Airflow's metadata database")
    return output


#: How ``airflow db clean`` names each table it checks, then what it found there.
_CHECKED = re.compile(r"^Checking table (\w+)\s*$\s*^Found (\d+) rows meeting deletion criteria", re.MULTILINE)


def deleted_rows(output: str) -> dict[str, int]:
    """The rows ``airflow db clean`` deleted per table, read from its output (tables with none left out)."""
    return {table: int(found) for table, found in _CHECKED.findall(output) if int(found)}


@dataclass(frozen=True)
class Report:
    """One housekeeping pass: its cut-off, the log files deleted, and ``airflow db clean``'s output."""

    cutoff: datetime
    logs: Pruned
    db_output: str


def housekeep(retention_days: int, now: datetime, *, logs: Path, airflow: str | None = None) -> Report | None:
    """Delete Airflow's task logs and run history older than ``retention_days`` (``None``: 0, kept).

    The log files go first: they are most of the disk, and need no database.

    Raises:
        HousekeepingError: Airflow's configuration is not set (nothing deleted), or ``airflow db
            clean`` failed (the logs were pruned already).
    """
    if retention_days == 0:
        return None
    check_airflow_environment()
    cutoff = now - timedelta(days=retention_days)
    pruned = prune_logs(logs, cutoff)
    log.info("deleted %d Airflow log file(s), %d bytes, older than %s", pruned.files, pruned.bytes, format_ts(cutoff))
    return Report(cutoff, pruned, clean_metadata(cutoff, airflow=airflow or airflow_executable()))


def summary(report: Report | None, retention_days: int) -> str:
    """What ``btc-pipeline housekeeping`` prints after a pass."""
    if report is None:
        return "BTC_AIRFLOW_RETENTION_DAYS=0: Airflow's logs and run history are kept; nothing deleted"
    rows = deleted_rows(report.db_output)
    deleted = ", ".join(f"{table} {count:,}" for table, count in sorted(rows.items())) or "none"
    return (
        f"older than {retention_days} day(s) (before {format_ts(report.cutoff)}): deleted {report.logs.files} "
        f"log file(s) ({report.logs.bytes / 1e6:.1f} MB) and {report.logs.directories} empty folder(s); "
        f"metadata rows deleted by airflow db clean: {deleted}"
    )
