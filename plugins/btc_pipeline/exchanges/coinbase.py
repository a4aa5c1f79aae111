"""Coinbase Exchange public REST API (``api.exchange.coinbase.com``).

- Ticker ``GET /products/{product}/ticker``: strings for numbers, ``time`` ISO-8601 with µs.
- Candles ``GET /products/{product}/candles?granularity=60&start=&end=``: rows
  ``[time, low, high, open, close, volume]`` (epoch seconds, numbers), newest first, at most 300
  per request, and no row for a minute without trades. Rows may precede ``start``; we filter.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from btc_pipeline.exchanges.base import (
    Candle,
    ExchangeError,
    ExchangeLimits,
    Tick,
    validate_candles,
    validate_tick,
)
from btc_pipeline.exchanges.fields import epoch_seconds, number, shown, text
from btc_pipeline.exchanges.http import HttpClient
from btc_pipeline.timeutil import format_ts, parse_iso
from btc_pipeline.window import MINUTE, Window

NAME = "coinbase"
MAX_CANDLES_PER_REQUEST = 300
#: Coinbase serves its whole history, 300 candles per request.
LIMITS = ExchangeLimits(rows_per_request=MAX_CANDLES_PER_REQUEST)


def parse_candles(body: Any, window: Window, endpoint: str = "/products/BTC-USD/candles") -> list[Candle]:
    """Parse a candles body, keeping the rows inside ``window``.

    Raises:
        ExchangeError: The body is not a list of 6-number rows, or a row fails validation.
    """
    if isinstance(body, dict) and "message" in body:
        raise ExchangeError(NAME, endpoint, f"error body: {text(body['message'])}")
    if not isinstance(body, list):
        raise ExchangeError(NAME, endpoint, f"expected a JSON array of candles, got {type(body).__name__}")
    candles = []
    for row in body:
        if not isinstance(row, list) or len(row) < 6:
            raise ExchangeError(
                NAME, endpoint, f"candle row {shown(row)} is not [time, low, high, open, close, volume]"
            )
        ts = epoch_seconds(row[0], NAME, endpoint, "time")
        if not window.contains(ts):
            continue  # Coinbase may return rows before `start`, and `end` is inclusive
        low, high, open_, close, volume = (
            number(v, NAME, endpoint, n)
            for v, n in zip(row[1:6], ("low", "high", "open", "close", "volume"), strict=True)
        )
        candles.append(Candle(ts=ts, open=open_, high=high, low=low, close=close, volume=volume))
    return validate_candles(NAME, endpoint, candles, window)


def parse_ticker(body: Any, endpoint: str = "/products/BTC-USD/ticker") -> Tick:
    """Parse a ticker body.

    Raises:
        ExchangeError: Fields are missing or malformed.
    """
    if not isinstance(body, dict):
        raise ExchangeError(NAME, endpoint, f"expected a JSON object, got {type(body).__name__}")
    if "message" in body and "price" not in body:
        raise ExchangeError(NAME, endpoint, f"error body: {text(body['message'])}")
    for field in ("price", "time"):
        if field not in body:
            raise ExchangeError(NAME, endpoint, f"ticker has no {field!r} field")
    time_text = body["time"]
    if not isinstance(time_text, str):
        raise ExchangeError(NAME, endpoint, f"time={shown(time_text)} is not a string")
    try:
        ts = parse_iso(time_text, "time")
    except ValueError:
        raise ExchangeError(NAME, endpoint, f"time={shown(time_text)} is not ISO-8601") from None
    size = body.get("size")
    tick = Tick(
        ts=ts,
        price=number(body["price"], NAME, endpoint, "price"),
        volume=None if size is None else number(size, NAME, endpoint, "size"),
    )
    return validate_tick(NAME, endpoint, tick)


class CoinbaseClient:
    """Coinbase Exchange client for one product (``BTC-USD``)."""

    name = NAME
    limits = LIMITS

    def __init__(self, http: HttpClient, product: str = "BTC-USD") -> None:
        self.http = http
        self.product = product

    def fetch_candles(self, window: Window) -> list[Candle]:
        endpoint = f"/products/{self.product}/candles"
        candles: list[Candle] = []
        for chunk in window.chunks(MAX_CANDLES_PER_REQUEST):
            # `end` is inclusive at Coinbase: ask up to the last minute's start only.
            params = {"granularity": 60, "start": format_ts(chunk.start), "end": format_ts(chunk.end - MINUTE)}
            candles.extend(
                self.http.get_parsed(endpoint, partial(parse_candles, window=chunk, endpoint=endpoint), params)
            )
        return candles

    def fetch_ticker(self) -> Tick:
        endpoint = f"/products/{self.product}/ticker"
        return self.http.get_parsed(endpoint, lambda body: parse_ticker(body, endpoint))
