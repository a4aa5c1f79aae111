"""The simulated exchange misbehaves on request: error bodies with HTTP 200, deep nesting, times
from the future and from before BTC, 400-digit numbers and a slow drip, each in the venue's own
shape. The production clients, over HTTP, must turn each into an ExchangeError naming the venue."""

from __future__ import annotations

import time
from typing import Any

import pytest

from btc_pipeline.exchanges import ExchangeError
from simexchange.faults import ANCIENT_S, FUTURE_S, HUGE, altered
from tests.unit.test_simexchange_exchanges import ALL, provider, recent_window

ERROR_200 = {
    "coinbase": "error body: Internal server error",
    "kraken": r"Kraken error \['EService:Unavailable'\]",
    "binance": "Binance error -1001",
    "bitstamp": "Bitstamp error: Invalid request",
}


@pytest.mark.parametrize("name", ALL)
def test_an_error_body_with_status_200_is_the_venues_own_error(sim: str, faults: Any, name: str) -> None:
    faults(exchange=name, kind="error_200", times=3)
    with pytest.raises(ExchangeError, match=ERROR_200[name]) as caught:
        provider(sim, name, BTC_HTTP_RETRIES="0").fetch_ticker()
    assert caught.value.exchange == name


@pytest.mark.parametrize("name", ALL)
def test_deep_nesting_is_not_json(sim: str, faults: Any, name: str) -> None:
    faults(exchange=name, kind="deep_nesting")
    with pytest.raises(ExchangeError, match=f"{name} .*body is not JSON"):
        provider(sim, name).fetch_candles(recent_window())
    assert provider(sim, name).fetch_candles(recent_window())  # used up: served again


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize(("kind", "reason"), [("future_ts", "future_ts"), ("ancient_ts", "bad_ts")])
def test_candle_times_from_the_future_or_before_btc_are_refused(
    sim: str, faults: Any, name: str, kind: str, reason: str
) -> None:
    faults(exchange=name, kind=kind)
    with pytest.raises(ExchangeError, match=f"{name} .*{reason}"):
        provider(sim, name).fetch_candles(recent_window())


@pytest.mark.parametrize("name", ["coinbase", "binance", "bitstamp"])  # Kraken's ticker carries no time
def test_ticker_times_from_the_future_are_refused(sim: str, faults: Any, name: str) -> None:
    faults(exchange=name, kind="future_ts")
    with pytest.raises(ExchangeError, match=r"future_ts.*2096-01-01"):
        provider(sim, name).fetch_ticker()


@pytest.mark.parametrize("name", ALL)
def test_400_digit_numbers_are_refused(sim: str, faults: Any, name: str) -> None:
    faults(exchange=name, kind="huge_number", times=2)
    with pytest.raises(ExchangeError, match="is not a finite number"):
        provider(sim, name).fetch_ticker()
    with pytest.raises(ExchangeError, match="is not a finite number"):
        provider(sim, name).fetch_candles(recent_window())


def test_a_drip_is_cut_off_at_the_deadline(sim: str, faults: Any) -> None:
    """The ticker body (~250 bytes) at 0.2 s a byte would take 50 s; the 1 s deadline ends the call."""
    faults(exchange="coinbase", kind="drip", delay_s=0.2)
    started = time.monotonic()
    with pytest.raises(ExchangeError, match=r"coinbase /products/BTC-USD/ticker: body not complete at the 1s deadline"):
        provider(sim, "coinbase", BTC_HTTP_DEADLINE_S="1").fetch_ticker()
    assert time.monotonic() - started < 10


def test_a_drip_within_the_deadline_is_read_whole(sim: str, faults: Any) -> None:
    faults(exchange="bitstamp", kind="drip", delay_s=0.001)
    assert provider(sim, "bitstamp").fetch_ticker().price > 0


def test_altered_moves_every_time_and_only_times() -> None:
    body = {"t": 1767225600, "ms": "1767225600000", "iso": "2026-01-01T00:00:00.123Z", "price": "87000.5", "n": 3}
    assert altered("future_ts", body) == {
        "t": FUTURE_S,
        "ms": str(FUTURE_S * 1000),
        "iso": "2096-01-01T00:00:00Z",
        "price": "87000.5",
        "n": 3,
    }
    assert altered("ancient_ts", [[1767225600, 1.5]]) == [[ANCIENT_S, 1.5]]
    assert altered("huge_number", body) == {**body, "price": str(HUGE), "n": HUGE}
    assert altered("drip", body) == body
