"""``btc-pipeline housekeeping``: Airflow's old task logs and run history go, the rest stays. The log
pruning runs on real files; the metadata cleaning runs Airflow's own ``airflow db clean`` on a real
Airflow metadata database (SQLite, migrated here)."""

from __future__ import annotations

import io
import os
import sqlite3
import subprocess
import sys
import textwrap
from argparse import Namespace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from btc_pipeline.cli import main
from btc_pipeline.cli.housekeeping import run_housekeeping
from btc_pipeline.config import load_settings
from btc_pipeline.housekeeping import (
    DB_CLEAN_TABLES,
    HousekeepingError,
    clean_metadata,
    db_clean_command,
    deleted_rows,
    housekeep,
    log_folder,
    prune_logs,
)
from tests.unit.test_notify import Receiver

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
AIRFLOW = str(Path(sys.executable).with_name("airflow"))


def write(path: Path, age: timedelta, size: int = 10) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x" * size)
    stamp = (NOW - age).timestamp()
    os.utime(path, (stamp, stamp))
    return path


def test_old_task_logs_go_and_recent_ones_their_folders_and_links_stay(tmp_path):
    logs, outside = tmp_path / "logs", write(tmp_path / "elsewhere.txt", timedelta(days=90))
    old = write(logs / "dag_id=btc_ingest/run_id=a/task_id=t/attempt=1.log", timedelta(days=31), size=100)
    recent = write(logs / "dag_id=btc_ingest/run_id=b/task_id=t/attempt=1.log", timedelta(days=29))
    parsed = write(logs / "dag_processor/2026-10-01/btc_ingest.py.log", timedelta(days=60), size=50)
    (logs / "dag_id=btc_drain").mkdir()
    link = logs / "dag_id=btc_drain" / "link.log"
    link.symlink_to(outside)
    os.utime(link, ((NOW - timedelta(days=90)).timestamp(),) * 2, follow_symlinks=False)  # an old link
    fresh = logs / "dag_id=btc_new" / "run_id=c"  # Airflow made it for a new task's log, file not yet there
    fresh.mkdir(parents=True)
    for folder in [p for p in logs.rglob("*") if p.is_dir() and not p.is_symlink()] + [logs]:
        if not folder.is_relative_to(logs / "dag_id=btc_new"):
            os.utime(folder, ((NOW - timedelta(days=60)).timestamp(),) * 2)

    pruned = prune_logs(logs, NOW - timedelta(days=30))

    assert (pruned.files, pruned.bytes) == (2, 150)
    assert not old.exists() and not parsed.exists() and recent.exists()
    assert not (logs / "dag_id=btc_ingest/run_id=a").exists()  # left empty: removed, with its parents
    assert not (logs / "dag_processor").exists() and pruned.directories == 4
    assert link.is_symlink() and outside.exists()  # links stay, and what they point at
    assert fresh.is_dir() and logs.is_dir()  # a folder changed since the cut-off stays, empty or not


def test_a_missing_log_folder_deletes_nothing(tmp_path):
    assert prune_logs(tmp_path / "nothing-here", NOW).files == 0


@settings(max_examples=40, deadline=None)
@given(ages=st.lists(st.integers(min_value=0, max_value=100), min_size=1, max_size=12))
def test_exactly_the_files_older_than_the_cutoff_go(tmp_path_factory, ages):
    logs = tmp_path_factory.mktemp("logs")
    files = [write(logs / f"d{i % 3}" / f"f{i}.log", timedelta(days=age, hours=12)) for i, age in enumerate(ages)]
    pruned = prune_logs(logs, NOW - timedelta(days=30))
    assert [f.exists() for f in files] == [age < 30 for age in ages]
    assert pruned.files == sum(age >= 30 for age in ages)


def test_the_log_folder_is_airflows():
    assert log_folder({"AIRFLOW__LOGGING__BASE_LOG_FOLDER": "/var/log/af", "AIRFLOW_HOME": "/x"}) == Path("/var/log/af")
    assert log_folder({"AIRFLOW_HOME": "/opt/airflow"}) == Path("/opt/airflow/logs")


def test_db_clean_deletes_no_dag_nor_version_and_archives_nothing():
    argv = db_clean_command(NOW - timedelta(days=30))
    assert argv[:5] == ["airflow", "db", "clean", "--clean-before-timestamp", "2026-11-06T12:00:00Z"]
    tables = argv[argv.index("--tables") + 1].split(",")
    assert "dag_run" in tables and not {"dag", "dag_version"} & set(tables)
    assert {"--skip-archive", "--error-on-cleanup-failure", "--yes"} <= set(argv)


def test_zero_days_keeps_everything(tmp_path):  # and needs no Airflow
    old = write(tmp_path / "logs" / "a.log", timedelta(days=900))
    assert housekeep(0, NOW, logs=tmp_path / "logs", airflow="/nonexistent/airflow") is None and old.exists()


@pytest.fixture
def airflow_db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A migrated Airflow metadata database with runs of btc_ingest 40, 35 and 1 day(s) old, and a
    manual one 40 days old; Airflow's configuration points at it."""
    home = tmp_path / "airflow"
    env = {
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    subprocess.run([AIRFLOW, "db", "migrate"], check=True, capture_output=True, env=os.environ, timeout=180)
    seed = textwrap.dedent(
        """
        from datetime import datetime, timedelta, timezone
        from airflow.models.dagrun import DagRun
        from airflow.utils.session import create_session
        from airflow.utils.types import DagRunType
        now = datetime.now(timezone.utc)
        with create_session() as session:
            for days, kind in [(40, "scheduled"), (35, "scheduled"), (1, "scheduled"), (40, "manual")]:
                t = now - timedelta(days=days, minutes=kind == "manual")
                session.add(DagRun(dag_id="btc_ingest", run_id=f"{kind}__{days}", run_type=DagRunType(kind),
                                   logical_date=t, start_date=t, state="success", data_interval=(t, t)))
        """
    )
    subprocess.run([sys.executable, "-c", seed], check=True, capture_output=True, env=os.environ, timeout=120)
    return home / "airflow.db"


def run_ids(db: Path) -> list[str]:
    with sqlite3.connect(db) as conn:
        return sorted(row[0] for row in conn.execute("SELECT run_id FROM dag_run"))


def test_airflow_db_clean_deletes_the_old_runs_of_a_real_metadata_database(airflow_db):
    assert run_ids(airflow_db) == ["manual__40", "scheduled__1", "scheduled__35", "scheduled__40"]
    output = clean_metadata(datetime.now(UTC) - timedelta(days=30), airflow=AIRFLOW)
    assert run_ids(airflow_db) == ["scheduled__1"] and deleted_rows(output) == {"dag_run": 3}
    again = clean_metadata(datetime.now(UTC) - timedelta(days=30), airflow=AIRFLOW)  # nothing left to do
    assert run_ids(airflow_db) == ["scheduled__1"] and deleted_rows(again) == {}


def test_the_command_prunes_logs_cleans_the_database_and_says_what_it_did(airflow_db, tmp_path, monkeypatch):
    logs = tmp_path / "airflow-logs"
    monkeypatch.setenv("AIRFLOW__LOGGING__BASE_LOG_FOLDER", str(logs))
    old = write(logs / "dag_id=btc_ingest" / "old.log", timedelta(days=45) + (datetime.now(UTC) - NOW), size=2_000_000)
    health, out, err = tmp_path / "ok", io.StringIO(), io.StringIO()
    args = Namespace(every=None, health_file=health)
    assert run_housekeeping(load_settings({}), args, out, err) == 0, err.getvalue()
    assert not old.exists() and run_ids(airflow_db) == ["scheduled__1"] and health.exists()
    said = out.getvalue()
    assert "older than 30 day(s)" in said and "deleted 1 log file(s) (2.0 MB)" in said
    assert "metadata rows deleted by airflow db clean: dag_run 3" in said


def test_a_failed_pass_is_reported_the_health_file_removed_and_the_next_pass_still_comes(tmp_path, monkeypatch):
    monkeypatch.setenv("AIRFLOW__LOGGING__BASE_LOG_FOLDER", str(tmp_path / "logs"))
    monkeypatch.setenv("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", f"sqlite:///{tmp_path / 'no' / 'such' / 'dir' / 'x.db'}")
    health, out, err, slept = tmp_path / "ok", io.StringIO(), io.StringIO(), []
    health.write_text("an earlier pass\n")
    args = Namespace(every=24.0, health_file=health)
    assert run_housekeeping(load_settings({}), args, out, err, sleep=slept.append, passes=2) == 1
    assert slept == [86_400.0] and not health.exists()
    assert err.getvalue().count("btc-pipeline housekeeping: airflow db clean failed (exit") == 2


def test_a_failed_pass_is_sent_to_the_failure_channels_without_the_database_password(tmp_path, monkeypatch):
    receiver = Receiver(0)
    try:
        monkeypatch.setenv("AIRFLOW__LOGGING__BASE_LOG_FOLDER", str(tmp_path / "logs"))
        monkeypatch.setenv(
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", "postgresql+psycopg2://airflow:hunter2secret@127.0.0.1:1/airflow"
        )
        s = load_settings({"BTC_NOTIFY_FAILURE_URLS": receiver.url})
        args = Namespace(every=None, health_file=None)
        assert run_housekeeping(s, args, io.StringIO(), io.StringIO()) == 1
        assert receiver.statuses == [200]  # one message, to the failure channel
        (body,) = receiver.bodies
        assert "btc-pipeline housekeeping failed" in body and "airflow db clean failed" in body
        assert "hunter2secret" not in body
    finally:
        receiver.server.shutdown()
        receiver.server.server_close()


def test_outside_airflows_configuration_nothing_is_deleted_and_it_says_where_to_run(tmp_path, monkeypatch):
    for key in ("AIRFLOW_HOME", "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"):
        monkeypatch.delenv(key, raising=False)
    old = write(tmp_path / "logs" / "a.log", timedelta(days=90))
    with pytest.raises(HousekeepingError, match="docker compose exec airflow-housekeeping"):
        housekeep(30, NOW, logs=tmp_path / "logs", airflow=AIRFLOW)
    assert old.exists()


def test_a_database_airflow_never_migrated_is_an_error_not_a_clean_pass(tmp_path, monkeypatch):
    monkeypatch.setenv("AIRFLOW_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", f"sqlite:///{tmp_path / 'empty.db'}")
    with pytest.raises(HousekeepingError, match="not Airflow's metadata database"):
        clean_metadata(NOW, airflow=AIRFLOW)


def test_a_missing_airflow_is_a_clear_error():
    with pytest.raises(HousekeepingError, match="not found: run housekeeping where Airflow is installed"):
        clean_metadata(NOW, airflow="/nonexistent/airflow")


@pytest.mark.parametrize("every", ["0", "721", "daily"])
def test_a_bad_interval_is_refused_naming_the_range(every, capsys):
    with pytest.raises(SystemExit) as exited:
        main(["housekeeping", "--every", every])
    assert exited.value.code == 2 and "--every" in capsys.readouterr().err


def test_the_tables_are_ones_airflow_cleans():
    from airflow.utils.db_cleanup import config_dict

    assert set(DB_CLEAN_TABLES) <= set(config_dict)


def test_a_file_that_cannot_be_deleted_is_skipped_and_the_rest_still_goes(tmp_path, monkeypatch, caplog):
    logs = tmp_path / "logs"
    locked, free = write(logs / "locked.log", timedelta(days=90)), write(logs / "b.log", timedelta(days=90))
    unlink = Path.unlink

    def refuse(path: Path, missing_ok: bool = False) -> None:
        if path == locked:
            raise PermissionError(13, "Permission denied", str(path))
        unlink(path, missing_ok=missing_ok)

    monkeypatch.setattr(Path, "unlink", refuse)  # as for a file of another user (the tests run as root)
    assert prune_logs(logs, NOW - timedelta(days=30)).files == 1
    assert locked.exists() and not free.exists() and "cannot delete" in caplog.text
