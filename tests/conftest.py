"""Shared test set-up. Airflow reads its configuration at import time, so a throw-away
AIRFLOW_HOME is set here, before any test module imports airflow."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
REALDATA = ROOT.parent / "shared" / "realdata"
if not REALDATA.exists():  # CI clones next to shared/; allow an explicit override
    REALDATA = Path(os.environ.get("BTC_REALDATA", REALDATA))

_airflow_home = Path(tempfile.mkdtemp(prefix="btc-test-airflow-"))
os.environ.setdefault("AIRFLOW_HOME", str(_airflow_home))
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
os.environ.setdefault("AIRFLOW__CORE__DAGS_FOLDER", str(ROOT / "dags"))
os.environ.setdefault("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", f"sqlite:///{_airflow_home / 'airflow.db'}")


@pytest.fixture(scope="session")
def realdata() -> Path:
    if not (REALDATA / "captures").is_dir():
        pytest.fail(f"real exchange captures not found at {REALDATA}; set BTC_REALDATA to shared/realdata")
    return REALDATA
