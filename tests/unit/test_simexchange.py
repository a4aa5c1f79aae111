"""The simulated exchange: deterministic, realistic, and faithful to Coinbase's shapes and faults.
The server runs in-process on a free port; the production client talks to it over HTTP."""

from __future__ import annotations

import csv
import itertools
import math
import statistics
import threading
import urllib.request
from datetime import UTC, datetime, timedelta

import pytest

from btc_pipeline.config import load_settings
from btc_pipeline.exchanges import ExchangeError, build_exchange
from btc_pipeline.exchanges.http import HttpClient
from btc_pipeline.window import Window
from simexchange.pricepath import PricePath
from tests.conftest import request_times

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def provider(sim, **env):
    return build_exchange(
        "coinbase", load_settings({"BTC_COINBASE_URL": f"{sim}/coinbase", "BTC_HTTP_TIMEOUT_S": "1", **env})
    )


def test_same_seed_same_candles_any_window():
    a, b = PricePath(7), PricePath(7)
    assert a.candles(T0, T0 + timedelta(minutes=5)) == b.candles(T0, T0 + timedelta(minutes=5))
    assert a.candle(T0) != PricePath(8).candle(T0)
    # continuity across a day boundary (the bridge lands on the next day's anchor)
    midnight = datetime(2026, 3, 2, tzinfo=UTC)
    assert a.candle(midnight).open == a.candle(midnight - timedelta(minutes=1)).close or math.isclose(
        a.candle(midnight).open, a.candle(midnight - timedelta(minutes=1)).close, rel_tol=1e-3
    )


def test_a_fresh_path_read_by_several_threads_at_once_is_the_same_path():
    """A fresh server's first requests come together (an ingest reads four tickers in parallel):
    the daily walk they extend at once must come out as when one thread extends it (CI once saw a
    stack quote every price 1.8 bps off the tests' path)."""
    day = datetime(2026, 11, 27, 7, 46, tzinfo=UTC)
    want = PricePath(42).candle(day)
    for _ in range(5):
        path, got, start = PricePath(42), [], threading.Barrier(8)
        threads = [threading.Thread(target=read_together, args=(start, path, day, got)) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert got == [want] * 8


def read_together(start: threading.Barrier, path: PricePath, day: datetime, got: list[object]) -> None:
    start.wait()
    got.append(path.candle(day))


def test_volatility_is_close_to_the_real_bitstamp_series(realdata):
    with (realdata / "series/bitstamp_btcusd_1min_2025-01-07_slice.csv").open() as f:
        closes = [float(r["close"]) for r in csv.DictReader(f)]
    real = statistics.pstdev(math.log(b / a) for a, b in itertools.pairwise(closes))
    sim_closes = [c.close for c in PricePath(42).candles(T0, T0 + timedelta(days=1))]
    simulated = statistics.pstdev(math.log(b / a) for a, b in itertools.pairwise(sim_closes))
    assert 0.5 < simulated / real < 2.0


def test_candles_round_trip_through_the_production_client(sim):
    window = Window(T0, T0 + timedelta(minutes=10))
    candles = provider(sim).fetch_candles(window)
    expected = PricePath(42).candles(window.start, window.end)
    assert [(c.ts, c.open, c.high, c.low, c.close) for c in candles] == [
        (e.ts, e.open, e.high, e.low, e.close) for e in expected
    ]


def test_long_windows_are_paged_under_the_300_row_limit(sim):
    window = Window(T0, T0 + timedelta(minutes=700))
    assert len(provider(sim).fetch_candles(window)) == 700


def test_more_than_300_rows_is_refused_like_coinbase(sim):
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(
            f"{sim}/coinbase/products/BTC-USD/candles?granularity=60&start=2026-03-01T00:00:00Z&end=2026-03-01T06:00:00Z"
        )
    assert info.value.code == 400


def test_ticker_is_now(sim):
    tick = provider(sim).fetch_ticker()
    assert abs((datetime.now(UTC) - tick.ts).total_seconds()) < 10


def gaps(times: list[float]) -> list[float]:
    return [round(b - a, 3) for a, b in itertools.pairwise(times)]


def test_429_with_retry_after_is_retried_after_what_it_says(sim, faults):
    faults(exchange="coinbase", kind="429", times=2, retry_after=0.3)
    http = HttpClient(
        "coinbase", f"{sim}/coinbase", timeout_s=1, deadline_s=30, max_body_bytes=1 << 20, retries=3, backoff_s=0.01
    )
    body = http.get_json("/products/BTC-USD/ticker")
    assert "price" in body
    waits = gaps(request_times(sim, "coinbase"))
    assert len(waits) == 2 and all(w >= 0.3 for w in waits), waits  # Retry-After, not the 0.01 s backoff


def test_429_without_retry_after_backs_off_longer_each_time(sim, faults):
    """A 429 or 418 without Retry-After waits backoff_s, then twice, then four times as long."""
    faults(exchange="coinbase", kind="429", times=3, retry_after=0)  # Retry-After: 0 = "no wait given"
    http = HttpClient(
        "coinbase", f"{sim}/coinbase", timeout_s=1, deadline_s=30, max_body_bytes=1 << 20, retries=3, backoff_s=0.2
    )
    assert "price" in http.get_json("/products/BTC-USD/ticker")
    waits = gaps(request_times(sim, "coinbase"))
    assert len(waits) == 3, waits
    assert waits[0] >= 0.2 and waits[1] >= 0.4 and waits[2] >= 0.8, waits
    assert waits[0] < waits[1] < waits[2], waits


def test_5xx_exhausting_retries_names_exchange_and_endpoint(sim, faults):
    faults(exchange="coinbase", kind="503", times=5)
    http = HttpClient(
        "coinbase", f"{sim}/coinbase", timeout_s=1, deadline_s=30, max_body_bytes=1 << 20, retries=2, backoff_s=0.01
    )
    with pytest.raises(ExchangeError, match=r"coinbase /products/BTC-USD/ticker: HTTP 503.*gave up after 3 attempts"):
        http.get_json("/products/BTC-USD/ticker")
    assert len(request_times(sim, "coinbase")) == 3


def test_timeout_is_bounded(sim, faults):
    faults(exchange="coinbase", kind="timeout", times=1, delay_s=3)
    http = HttpClient("coinbase", f"{sim}/coinbase", timeout_s=0.5, deadline_s=30, max_body_bytes=1 << 20, retries=0)
    with pytest.raises(ExchangeError, match=r"timed out after 0\.5s"):
        http.get_json("/products/BTC-USD/ticker")


def test_malformed_body_is_not_retried(sim, faults):
    faults(exchange="coinbase", kind="malformed", times=1)
    http = HttpClient(
        "coinbase", f"{sim}/coinbase", timeout_s=1, deadline_s=30, max_body_bytes=1 << 20, retries=3, backoff_s=0.01
    )
    with pytest.raises(ExchangeError, match="body is not JSON"):
        http.get_json("/products/BTC-USD/ticker")
    assert len(request_times(sim, "coinbase")) == 1


def test_empty_candle_list(sim, faults):
    faults(exchange="coinbase", kind="empty", times=1)
    assert provider(sim).fetch_candles(Window(T0, T0 + timedelta(minutes=3))) == []


def test_a_fault_scoped_to_a_path_leaves_other_requests_alone(sim, faults):
    """A live run's ticker reads must not take a fault a test meant for a candle request."""
    faults(exchange="coinbase", kind="empty", times=1, path="candles")
    exchange = provider(sim)
    assert exchange.fetch_ticker().price > 0  # not a candle request: answered normally
    assert exchange.fetch_candles(Window(T0, T0 + timedelta(minutes=3))) == []  # took the fault
    assert len(exchange.fetch_candles(Window(T0, T0 + timedelta(minutes=3)))) == 3  # used up
