"""Hostile exchange replies: whatever a body holds, a parser returns a value or raises ExchangeError,
so failover always goes on to the next exchange. The examples are the inputs that escaped before."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from btc_pipeline.config import load_settings
from btc_pipeline.exchanges import binance, bitstamp, build_exchange, coinbase, kraken
from btc_pipeline.exchanges.base import ExchangeError
from btc_pipeline.exchanges.fields import number
from btc_pipeline.exchanges.http import HttpClient
from btc_pipeline.steps.ingest import fetch_window
from btc_pipeline.window import MINUTE, Window, floor_minute

T = datetime(2026, 1, 1, tzinfo=UTC)
WINDOW = Window(T, T + timedelta(minutes=2))
S = int(T.timestamp())
HUGE = 10**400  # a 400-digit integer: float() raises OverflowError
DEEP: Any = []
for _ in range(5000):  # deeper than the interpreter's recursion limit: repr() and str() raise RecursionError
    DEEP = [DEEP]


def kraken_ohlc(rows: Any) -> dict[str, Any]:
    return {"error": [], "result": {"XXBTZUSD": rows, "last": S}}


def bitstamp_ohlc(**row: Any) -> dict[str, Any]:
    fields = {"timestamp": str(S), "open": "1", "high": "2", "low": "1", "close": "1", "volume": "0"}
    return {"data": {"pair": "BTC/USD", "ohlc": [{**fields, **row}]}}


# (parser, body) pairs that must each end in ExchangeError
HOSTILE: list[tuple[str, Callable[[Any], Any], Any]] = [
    ("coinbase candle price 400 digits", lambda b: coinbase.parse_candles(b, WINDOW), [[S, HUGE, 2, 1, 1, 0]]),
    ("coinbase candle time 400 digits", lambda b: coinbase.parse_candles(b, WINDOW), [[HUGE, 1, 2, 1, 1, 0]]),
    ("coinbase deep candle row", lambda b: coinbase.parse_candles(b, WINDOW), [DEEP]),
    ("coinbase deep error message", coinbase.parse_ticker, {"message": DEEP}),
    (
        "coinbase ticker size 400 digits",
        coinbase.parse_ticker,
        {"price": "1", "size": HUGE, "time": "2024-03-13T11:10:41Z"},
    ),
    ("coinbase ticker time year 1 +01:00", coinbase.parse_ticker, {"price": "1", "time": "0001-01-01T00:00:00+01:00"}),
    (
        "kraken ohlc volume 400 digits",
        lambda b: kraken.parse_candles(b, WINDOW),
        kraken_ohlc([[S, "1", "2", "1", "1", "1", HUGE, 1], [S + 60, "1", "1", "1", "1", "1", "0", 0]]),
    ),
    ("kraken deep error", lambda b: kraken.parse_candles(b, WINDOW), {"error": [DEEP], "result": {}}),
    ("kraken deep ohlc row", lambda b: kraken.parse_candles(b, WINDOW), kraken_ohlc([DEEP, DEEP])),
    ("kraken deep ticker c", lambda b: kraken.parse_ticker(b, received_at=T), kraken_ohlc({"c": DEEP})),
    (
        "binance kline open 400 digits",
        lambda b: binance.parse_candles(b, WINDOW),
        [[S * 1000, HUGE, "2", "1", "1", "1", S * 1000 + 59_999]],
    ),
    ("binance deep error", binance.parse_ticker, {"code": DEEP, "msg": DEEP}),
    ("binance ticker time 400 digits", binance.parse_ticker, {"lastPrice": "1", "closeTime": HUGE}),
    ("bitstamp candle close 400 digits", lambda b: bitstamp.parse_candles(b, WINDOW), bitstamp_ohlc(close=HUGE)),
    ("bitstamp candle time 400 digits", lambda b: bitstamp.parse_candles(b, WINDOW), bitstamp_ohlc(timestamp=HUGE)),
    ("bitstamp errors a number", bitstamp.parse_ticker, {"errors": 5}),
    ("bitstamp errors a number (candles)", lambda b: bitstamp.parse_candles(b, WINDOW), {"errors": 5}),
    (
        "bitstamp deep errors",
        bitstamp.parse_ticker,
        {"status": "error", "reason": DEEP, "errors": [DEEP, {"field": DEEP}]},
    ),
    ("bitstamp deep row", lambda b: bitstamp.parse_candles(b, WINDOW), {"data": {"ohlc": [DEEP]}}),
]


@pytest.mark.parametrize(("parse", "body"), [(p, b) for _, p, b in HOSTILE], ids=[name for name, _, _ in HOSTILE])
def test_hostile_bodies_are_exchange_errors(parse: Callable[[Any], Any], body: Any) -> None:
    with pytest.raises(ExchangeError) as caught:
        parse(body)
    assert len(str(caught.value)) < 1000  # a short message, whatever the body held


@pytest.mark.parametrize(
    "value", [HUGE, -HUGE, str(HUGE), "1e400", float("inf"), DEEP, {"a": DEEP}], ids=lambda v: type(v).__name__
)
def test_number_refuses_what_is_no_finite_float(value: Any) -> None:
    with pytest.raises(ExchangeError, match=r"coinbase /x: price="):
        number(value, "coinbase", "/x", "price")


def test_a_parser_bug_is_an_exchange_error_naming_exchange_endpoint_and_class(sim: str) -> None:
    http = HttpClient("coinbase", f"{sim}/coinbase", timeout_s=1, retries=0)
    with pytest.raises(ExchangeError, match=r"coinbase /products/BTC-USD/ticker: .*KeyError") as caught:
        http.get_parsed("/products/BTC-USD/ticker", lambda body: body["no such field"])
    assert caught.value.exchange == "coinbase"


def test_failover_goes_on_when_a_parser_fails_unforeseen(sim: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A future parser bug (here: ZeroDivisionError) must not stop failover: the next exchange serves."""

    def broken(body: Any, window: Window, endpoint: str = "") -> Any:
        return 1 / 0

    monkeypatch.setattr(coinbase, "parse_candles", broken)
    names = ("coinbase", "bitstamp")
    settings = load_settings({"BTC_COINBASE_URL": f"{sim}/coinbase", "BTC_BITSTAMP_URL": f"{sim}/bitstamp/api/v2"})
    end = floor_minute(datetime.now(UTC)) - MINUTE * 3
    served, candles, reasons = fetch_window(
        Window(end - MINUTE * 3, end), [build_exchange(n, settings) for n in names], now=datetime.now(UTC)
    )
    assert served.name == "bitstamp" and len(candles) == 3
    assert "ZeroDivisionError" in reasons["coinbase"]
