"""The dashboard's pure transforms (on the real 1-minute series) and its behaviour when MongoDB is
unreachable (Streamlit's AppTest runs the real app script)."""

from __future__ import annotations

import csv
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest

from btc_pipeline.bars import pick_resample_rule, resample_candles
from devstack.processes import free_port

APP = Path(__file__).resolve().parents[2] / "dashboard" / "app.py"


@pytest.fixture
def bitstamp_minutes(realdata) -> pd.DataFrame:
    with (realdata / "series/bitstamp_btcusd_1min_2025-01-07_slice.csv").open() as f:
        rows = list(csv.DictReader(f))
    return pd.DataFrame(
        {
            "source": "bitstamp",
            "ts": [datetime.fromtimestamp(int(r["timestamp"]), UTC) for r in rows],
            **{k: [float(r[k]) for r in rows] for k in ("open", "high", "low", "close", "volume")},
        }
    )


def test_resample_to_5_minutes_keeps_ohlc_semantics(bitstamp_minutes):
    bars = resample_candles(bitstamp_minutes, "5min")
    first_five = bitstamp_minutes[bitstamp_minutes["ts"] < bars["ts"].iloc[1]]
    assert bars["open"].iloc[0] == first_five["open"].iloc[0]
    assert bars["close"].iloc[0] == first_five["close"].iloc[-1]
    assert bars["high"].iloc[0] == first_five["high"].max()
    assert bars["low"].iloc[0] == first_five["low"].min()
    assert bars["volume"].sum() == pytest.approx(bitstamp_minutes["volume"].sum())
    assert all(ts.minute % 5 == 0 for ts in bars["ts"])


def test_resample_drops_empty_buckets():
    t = datetime(2026, 1, 1, tzinfo=UTC)
    frame = pd.DataFrame(
        {
            "source": "x",
            "ts": [t, t + timedelta(minutes=30)],
            "open": [1.0, 2.0],
            "high": [1.0, 2.0],
            "low": [1.0, 2.0],
            "close": [1.0, 2.0],
            "volume": [1.0, 1.0],
        }
    )
    assert len(resample_candles(frame, "5min")) == 2


@pytest.mark.parametrize(
    ("span", "rule"),
    [
        (timedelta(hours=1), "1min"),
        (timedelta(hours=6), "1min"),
        (timedelta(hours=24), "5min"),
        (timedelta(days=7), "1h"),
    ],
)
def test_bar_size_follows_the_range(span, rule):
    assert pick_resample_rule(span) == rule


def test_app_says_clearly_when_mongodb_is_unreachable(monkeypatch):
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("BTC_MONGO_URI", f"mongodb://127.0.0.1:{free_port()}/")
    app = AppTest.from_file(str(APP), default_timeout=30).run()
    assert not app.exception
    errors = [e.value for e in app.error]
    assert any("MongoDB is not reachable" in e for e in errors), errors


def test_app_refuses_a_bad_configuration(monkeypatch):
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("BTC_DASHBOARD_REFRESH_S", "often")
    app = AppTest.from_file(str(APP), default_timeout=30).run()
    assert any("BTC_DASHBOARD_REFRESH_S" in e.value for e in app.error)
