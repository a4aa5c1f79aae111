"""Failover in :func:`fetch_window` against the simulated exchange over HTTP, for every injected
fault: a transient fault is retried and the same exchange serves; a lasting one moves on to the
next exchange, which becomes the ``source``; when every exchange fails, one error lists them all."""

from __future__ import annotations

import json
import urllib.request
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from btc_pipeline.config import load_settings
from btc_pipeline.exchanges import build_exchange
from btc_pipeline.steps.ingest import AllExchangesFailedError, CandlesNotReadyError, fetch_window
from btc_pipeline.window import MINUTE, Window, floor_minute

RETRIES = 2  # three attempts per request


def requests_served(sim: str) -> dict[str, int]:
    with urllib.request.urlopen(f"{sim}/_health") as r:
        return json.load(r)["requests"]


def clients(sim: str, *names: str) -> list[Any]:
    settings = load_settings(
        {
            "BTC_COINBASE_URL": f"{sim}/coinbase",
            "BTC_KRAKEN_URL": f"{sim}/kraken/0",
            "BTC_BINANCE_URL": f"{sim}/binance",
            "BTC_BITSTAMP_URL": f"{sim}/bitstamp/api/v2",
            "BTC_HTTP_TIMEOUT_S": "0.5",
            "BTC_HTTP_RETRIES": str(RETRIES),
        }
    )
    built = [build_exchange(name, settings) for name in names]
    for p in built:
        p.http.backoff_s = 0.01  # Retry-After is still honoured as sent
    return built


def window() -> Window:
    end = floor_minute(datetime.now(UTC)) - MINUTE * 3
    return Window(end - MINUTE * 5, end)


# (first exchange, fault kind, extra fault fields, second exchange)
FAULTS = [
    ("coinbase", "429", {"retry_after": 0.05}, "kraken"),
    ("binance", "418", {"retry_after": 0.05}, "bitstamp"),
    ("kraken", "500", {}, "coinbase"),
    ("bitstamp", "503", {}, "binance"),
    ("coinbase", "timeout", {"delay_s": 0.8}, "bitstamp"),
    ("kraken", "kraken_error", {}, "binance"),
]


@pytest.mark.parametrize(("first", "kind", "extra", "second"), FAULTS)
def test_transient_fault_is_retried_and_the_same_exchange_serves(sim, faults, first, kind, extra, second):
    faults(exchange=first, kind=kind, times=RETRIES, **extra)
    before = requests_served(sim).get(first, 0)
    served_by, candles, failed = fetch_window(window(), clients(sim, first, second), now=datetime.now(UTC))
    assert served_by.name == first
    assert len(candles) == 5
    assert failed == {}
    assert requests_served(sim)[first] - before == RETRIES + 1


@pytest.mark.parametrize(("first", "kind", "extra", "second"), FAULTS)
def test_lasting_fault_fails_over_to_the_next_exchange(sim, faults, first, kind, extra, second):
    faults(exchange=first, kind=kind, times=RETRIES + 1, **extra)
    served_by, candles, failed = fetch_window(window(), clients(sim, first, second), now=datetime.now(UTC))
    assert served_by.name == second
    assert len(candles) == 5
    assert list(failed) == [first]
    assert f"gave up after {RETRIES + 1} attempts" in failed[first]


@pytest.mark.parametrize(
    ("first", "kind", "reason"),
    [
        ("coinbase", "malformed", "body is not JSON"),
        ("kraken", "malformed", "body is not JSON"),
        ("binance", "451", "restricted location"),
    ],
)
def test_non_retryable_fault_fails_over_at_once(sim, faults, first, kind, reason):
    faults(exchange=first, kind=kind, times=1)
    before = requests_served(sim).get(first, 0)
    served_by, _, failed = fetch_window(window(), clients(sim, first, "bitstamp"), now=datetime.now(UTC))
    assert served_by.name == "bitstamp"
    assert reason in failed[first]
    assert requests_served(sim)[first] - before == 1  # not retried


@pytest.mark.parametrize("kind", ["empty", "tradeless"])
def test_no_candles_for_a_just_closed_window_fails_over(sim, faults, kind):
    w = window()
    faults(exchange="coinbase", kind=kind, times=1)
    served_by, candles, failed = fetch_window(w, clients(sim, "coinbase", "kraken"), now=w.end + timedelta(seconds=30))
    assert served_by.name == "kraken" and len(candles) == 5
    assert "no candles yet" in failed["coinbase"]


def test_no_candles_anywhere_for_a_just_closed_window_asks_for_a_retry(sim, faults):
    w = window()
    faults(exchange="coinbase", kind="tradeless", times=1)
    faults(exchange="binance", kind="empty", times=1)
    with pytest.raises(CandlesNotReadyError, match="not published yet by coinbase, binance; retry later"):
        fetch_window(w, clients(sim, "coinbase", "binance"), now=w.end + timedelta(seconds=30))


def test_no_candles_for_a_settled_window_means_no_trades(sim, faults):
    """After the settle delay an empty answer is the exchange saying "no trades": it is the answer."""
    w = window()
    faults(exchange="bitstamp", kind="tradeless", times=1)
    served_by, candles, _ = fetch_window(w, clients(sim, "bitstamp", "coinbase"), now=w.end + timedelta(minutes=5))
    assert served_by.name == "bitstamp" and candles == []


def test_every_exchange_failing_gives_one_error_listing_each(sim, faults):
    faults(exchange="coinbase", kind="503", times=RETRIES + 1)
    faults(exchange="kraken", kind="kraken_error", times=RETRIES + 1)
    faults(exchange="binance", kind="451", times=1)
    faults(exchange="bitstamp", kind="malformed", times=1)
    w = window()
    with pytest.raises(AllExchangesFailedError) as info:
        fetch_window(w, clients(sim, "coinbase", "kraken", "binance", "bitstamp"), now=datetime.now(UTC))
    message = str(info.value)
    assert message.startswith(f"no exchange could serve {w}: ")
    for expected in (
        "coinbase: coinbase /products/BTC-USD/candles: HTTP 503",
        "kraken: kraken /public/OHLC: Kraken error ['EService:Unavailable']",
        "binance: binance /api/v3/klines: HTTP 451: Binance refuses requests from this restricted location",
        "bitstamp: bitstamp /ohlc/btcusd/: body is not JSON",
    ):
        assert expected in message
    assert info.value.permanent is False  # a 503 may pass: Airflow's retry is worth it


def test_only_permanent_failures_make_the_failure_permanent(sim, faults):
    """HTTP 451 and an error Kraken does not call transient will not change in a minute: the task
    layer fails such a run without retries."""
    faults(exchange="binance", kind="451", times=1)
    with pytest.raises(AllExchangesFailedError) as info:
        fetch_window(window(), clients(sim, "binance"), now=datetime.now(UTC))
    assert info.value.permanent is True
    faults(exchange="binance", kind="451", times=1)
    faults(exchange="coinbase", kind="500", times=RETRIES + 1)
    with pytest.raises(AllExchangesFailedError) as info:
        fetch_window(window(), clients(sim, "binance", "coinbase"), now=datetime.now(UTC))
    assert info.value.permanent is False


def test_kraken_beyond_its_horizon_fails_over_for_an_old_window(sim):
    end = floor_minute(datetime.now(UTC)) - timedelta(hours=13)
    old = Window(end - MINUTE * 5, end)
    served_by, candles, failed = fetch_window(old, clients(sim, "kraken", "binance"), now=datetime.now(UTC))
    assert served_by.name == "binance" and len(candles) == 5
    assert "beyond Kraken's 720-minute horizon" in failed["kraken"]
