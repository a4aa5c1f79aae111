"""A known password set in the configuration appears nowhere: not on the CLI's stderr (the real
``btc-pipeline`` entry point, nothing listening), not in what the task code raises and logs, not in
a StoreError, not in a configuration error. The dashboard's page is checked in a real browser by
tests/integration/test_dashboard_secrets.py."""

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import sys
import traceback
from pathlib import Path

import pytest

from btc_pipeline.config import ConfigError, load_settings
from btc_pipeline.store import Store, StoreError

# imported before any test, since importing Airflow configures logging (caplog's handler would go)
from btc_pipeline.tasks import hooks
from btc_pipeline.tasks.drain import drain_topic

BIN = Path(sys.executable).parent
#: Long and random-looking, so that it cannot appear by chance.
PASSWORD = "Kq7-pw_3xZr9Tn2Lm5Vb8"


def closed_port() -> int:
    """A port nobody listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def port() -> int:
    return closed_port()


def unreachable_uri(port: int) -> str:
    return f"mongodb://btc:{PASSWORD}@127.0.0.1:{port}/?authSource=admin"


#: URIs with the password that a user can set: valid but unreachable, with a wrong scheme (Airflow's
#: connection type is `mongo`), malformed (an unescaped @ in the password), with a bad port.
def uris(port: int) -> dict[str, str]:
    return {
        "unreachable": unreachable_uri(port),
        "airflow-scheme": f"mongo://btc:{PASSWORD}@127.0.0.1:{port}/btc",
        "unescaped-at": f"mongodb://btc:{PASSWORD}@x@127.0.0.1:{port}/",
        "bad-port": f"mongodb://btc:{PASSWORD}@127.0.0.1:port/",
    }


@pytest.mark.parametrize("case", ["unreachable", "airflow-scheme", "unescaped-at", "bad-port"])
def test_the_cli_never_prints_the_password(port: int, case: str) -> None:
    env = {**os.environ, "BTC_MONGO_URI": uris(port)[case]}
    result = subprocess.run(
        [str(BIN / "btc-pipeline"), "gaps", "--since", "1h"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode in (1, 2), result.stderr  # refused or unreachable, never a success
    assert "BTC_MONGO_URI" in result.stderr or "MongoDB" in result.stderr, result.stderr
    assert PASSWORD not in result.stderr + result.stdout
    assert "Traceback" not in result.stderr, result.stderr
    if case == "unreachable":  # still says where it tried
        assert f"cannot reach MongoDB at mongodb://btc:***@127.0.0.1:{port}/?authSource=admin" in result.stderr


def test_a_configuration_error_masks_the_password(port: int) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings({"BTC_MONGO_URI": uris(port)["airflow-scheme"]})
    assert "BTC_MONGO_URI='mongo://btc:***@" in str(caught.value) and PASSWORD not in str(caught.value)
    assert PASSWORD not in repr(load_settings({"BTC_MONGO_URI": unreachable_uri(port)}))


@pytest.mark.parametrize("case", ["unreachable", "unescaped-at", "bad-port"])
def test_store_errors_mask_the_password(port: int, case: str) -> None:
    with pytest.raises(StoreError) as caught:
        Store.lazy(uris(port)[case], "btc", timeout_ms=100).latest()
    shown = "".join(traceback.format_exception(caught.value))
    assert PASSWORD not in shown


def task_log(run: object, caplog: pytest.LogCaptureFixture) -> str:
    """What a task's log holds when ``run`` fails: the records it logged, and the traceback Airflow
    writes for the exception."""
    assert callable(run)
    with caplog.at_level(logging.DEBUG):
        try:
            run()
        except Exception as exc:
            logging.getLogger("btc_pipeline.tasks").exception("Task failed with exception")  # as Airflow logs it
            assert PASSWORD not in "".join(traceback.format_exception(exc))
        else:
            pytest.fail("the task did not fail")
    assert "Task failed with exception" in caplog.text, "the log was not captured"
    return caplog.text


def test_task_code_with_a_misconfigured_uri_logs_no_password(
    port: int, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Every task body starts with load_settings(): a BTC_MONGO_URI with the wrong scheme fails it."""
    monkeypatch.setenv("BTC_MONGO_URI", uris(port)["airflow-scheme"])
    assert PASSWORD not in task_log(lambda: drain_topic("btc_drain", "manual__test"), caplog)


def test_task_code_with_an_unreachable_database_logs_no_password(
    port: int, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The task layer's store, from an Airflow connection holding the password, with nothing listening."""
    conn = {
        "conn_type": "mongo",
        "host": "127.0.0.1",
        "port": port,
        "login": "btc",
        "password": PASSWORD,
        "schema": "btc",
        "extra": {"authSource": "admin", "serverSelectionTimeoutMS": 200},
    }
    monkeypatch.setenv("AIRFLOW_CONN_BTC_MONGO", json.dumps(conn))
    monkeypatch.setenv("BTC_MONGO_URI", unreachable_uri(port))

    def read_latest() -> None:
        with hooks.store(load_settings()) as store:
            store.latest()

    assert PASSWORD not in task_log(read_latest, caplog)
