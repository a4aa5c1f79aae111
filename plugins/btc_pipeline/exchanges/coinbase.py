"""Coinbase Exchange public REST API (``api.exchange.coinbase.com``).

- Ticker ``GET /products/{product}/ticker``: strings for numbers, ``time`` ISO-8601 with µs.
- Candles ``GET /products/{product}/candles?granularity=60&start=&end=``: rows
  ``[time, low, high, open, close, volume]`` (epoch seconds, numbers), newest first, at most 300
  per request, and no row for a minute without trades. Rows may precede ``start``; we filter.
"""

from __future__ import annotations

from typing import Any

from btc_pipeline.exchanges.base import (
    Candle,
    ExchangeClient,
    ExchangeError,
    ExchangeLimits,
    Tick,
    TimeRule,
    validate_candles,
    validate_tick,
)
from btc_pipeline.exchanges.fields import candle, epoch_seconds, iso_time, number, shown, text
from btc_pipeline.timeutil import format_ts
from btc_pipeline.window import MINUTE, Window

NAME = "coinbase"
MAX_CANDLES_PER_REQUEST = 300


def parse_candles(
    body: Any, window: Window, endpoint: str = "/products/BTC-USD/candles", *, times: TimeRule
) -> list[Candle]:
    """Parse a candles body, keeping the rows inside ``window`` (every row's time must pass ``times``).

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
        ts = epoch_seconds(row[0], NAME, endpoint, "time", times)
        if not window.contains(ts):
            continue  # Coinbase may return rows before `start`, and `end` is inclusive
        values = dict(zip(("low", "high", "open", "close", "volume"), row[1:6], strict=True))
        candles.append(candle(ts, values, NAME, endpoint))
    return validate_candles(NAME, endpoint, candles, window)


def parse_ticker(body: Any, endpoint: str = "/products/BTC-USD/ticker", *, times: TimeRule) -> Tick:
    """Parse a ticker body; its ``time`` must name its offset and pass ``times``.

    Raises:
        ExchangeError: Fields are missing, malformed or implausible (``time`` without an offset,
            before 2009-01-03 or in the future).
    """
    if not isinstance(body, dict):
        raise ExchangeError(NAME, endpoint, f"expected a JSON object, got {type(body).__name__}")
    if "message" in body and "price" not in body:
        raise ExchangeError(NAME, endpoint, f"error body: {text(body['message'])}")
    for field in ("price", "time"):
        if field not in body:
            raise ExchangeError(NAME, endpoint, f"ticker has no {field!r} field")
    size = body.get("size")
    tick = Tick(
        ts=iso_time(body["time"], NAME, endpoint, "time", times),
        price=number(body["price"], NAME, endpoint, "price"),
        volume=None if size is None else number(size, NAME, endpoint, "size"),
    )
    return validate_tick(NAME, endpoint, tick)


class CoinbaseClient(ExchangeClient):
    """Coinbase Exchange client for one product (``BTC-USD``)."""

    name = NAME
    base_url = "https://api.exchange.coinbase.com"
    #: Coinbase serves its whole history, 300 candles per request; public endpoints allow 10
    #: requests per second per IP (bursts of 15): a backfill sends at most 9 (the live ingest ~0.2).
    limits = ExchangeLimits(rows_per_request=MAX_CANDLES_PER_REQUEST, requests_per_second=9.0)
    market = "BTC-USD"
    parse_candles = staticmethod(parse_candles)
    parse_ticker = staticmethod(parse_ticker)

    def candles_request(self, page: Window) -> tuple[str, dict[str, Any]]:
        # `end` is inclusive at Coinbase: ask up to the last minute's start only.
        params = {"granularity": 60, "start": format_ts(page.start), "end": format_ts(page.end - MINUTE)}
        return f"/products/{self.market}/candles", params

    def ticker_request(self) -> tuple[str, dict[str, Any]]:
        return f"/products/{self.market}/ticker", {}
