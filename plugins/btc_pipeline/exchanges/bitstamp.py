"""Bitstamp public REST API v2 (``www.bitstamp.net/api/v2``).

- OHLC ``GET /ohlc/btcusd/?step=60&limit=<1..1000>&start=<s>&end=<s>&exclude_current_candle=true``:
  ``{"data": {"pair": "BTC/USD", "ohlc": [{"timestamp", "open", "high", "low", "close", "volume"}]}}``
  with every value a string and ``timestamp`` the minute's start in epoch seconds. Minutes without
  trades are present as flat zero-volume candles. At most 1000 rows per request, so longer windows
  are paged. Bitstamp's docs say that when both ``start`` and ``end`` are sent, ``end`` wins; we
  send ``start`` = the chunk's first minute, ``end`` = its last minute and ``limit`` = its length,
  which select the same rows under either reading.
- Ticker ``GET /ticker/btcusd/``: all strings; ``last`` is the last price and ``timestamp`` (epoch
  seconds) its time. The ticker has no last-trade size, so a tick's volume is null.
- Errors: ``{"status": "error", "reason": ..., "errors": [{"field", "message"}]}`` (shape not
  verified against the official page; both parts are reported when present).
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
from btc_pipeline.exchanges.fields import candle, epoch_seconds, number, shown, text
from btc_pipeline.window import MINUTE, Window

NAME = "bitstamp"
MAX_CANDLES_PER_REQUEST = 1000


def _error_body(body: Any, endpoint: str) -> None:
    if not isinstance(body, dict) or not (body.get("status") == "error" or "errors" in body):
        return
    errors = body.get("errors") or []
    parts = [text(body["reason"])] if body.get("reason") else []
    for error in errors if isinstance(errors, list) else [errors]:
        if isinstance(error, dict):
            parts.append(f"{text(error.get('field', '?'))}: {text(error.get('message', error))}")
        else:
            parts.append(text(error))
    detail = "; ".join(parts) if parts else shown(body)
    raise ExchangeError(NAME, endpoint, f"Bitstamp error: {detail}")


def parse_candles(body: Any, window: Window, endpoint: str = "/ohlc/btcusd/", *, times: TimeRule) -> list[Candle]:
    """Parse an OHLC body, keeping the candles inside ``window``.

    Args:
        body: The decoded JSON body.
        window: The minutes wanted.
        endpoint: Endpoint path, for error messages.
        times: The client's clock and allowed skew: every exchange time must pass it.

    Returns:
        The window's candles, oldest first.

    Raises:
        ExchangeError: An error body, a missing ``data.ohlc`` array, or a malformed candle.
    """
    _error_body(body, endpoint)
    data = body.get("data") if isinstance(body, dict) else None
    rows = data.get("ohlc") if isinstance(data, dict) else None
    if not isinstance(rows, list):
        raise ExchangeError(NAME, endpoint, "expected {'data': {'ohlc': [...]}}; the body has no 'data.ohlc' array")
    candles = []
    for row in rows:
        if not isinstance(row, dict):
            raise ExchangeError(NAME, endpoint, f"OHLC entry {shown(row)} is not an object")
        missing = [f for f in ("timestamp", "open", "high", "low", "close", "volume") if f not in row]
        if missing:
            raise ExchangeError(NAME, endpoint, f"OHLC entry {shown(row)} lacks {missing}")
        ts = epoch_seconds(row["timestamp"], NAME, endpoint, "timestamp", times)
        if not window.contains(ts):
            continue
        candles.append(candle(ts, row, NAME, endpoint))
    return validate_candles(NAME, endpoint, candles, window)


def parse_ticker(body: Any, endpoint: str = "/ticker/btcusd/", *, times: TimeRule) -> Tick:
    """Parse a ticker body: ``last`` at ``timestamp``.

    Args:
        body: The decoded JSON body.
        endpoint: Endpoint path, for error messages.
        times: The client's clock and allowed skew: every exchange time must pass it.

    Returns:
        The tick (volume null: Bitstamp's ticker has no last-trade size).

    Raises:
        ExchangeError: An error body, or ``last``/``timestamp`` missing or malformed.
    """
    _error_body(body, endpoint)
    if not isinstance(body, dict):
        raise ExchangeError(NAME, endpoint, f"expected a JSON object, got {type(body).__name__}")
    for field in ("last", "timestamp"):
        if field not in body:
            raise ExchangeError(NAME, endpoint, f"ticker has no {field!r} field")
    tick = Tick(
        ts=epoch_seconds(body["timestamp"], NAME, endpoint, "timestamp", times),
        price=number(body["last"], NAME, endpoint, "last"),
    )
    return validate_tick(NAME, endpoint, tick)


class BitstampClient(ExchangeClient):
    """Bitstamp client for one pair (``btcusd``)."""

    name = NAME
    base_url = "https://www.bitstamp.net/api/v2"
    #: Bitstamp serves its whole history, 1000 candles per request; it allows 400 requests a second
    #: and 8,000 per 10 minutes (13.3 a second sustained): a backfill sends at most 10.
    limits = ExchangeLimits(rows_per_request=MAX_CANDLES_PER_REQUEST, requests_per_second=10.0)
    market = "btcusd"
    parse_candles = staticmethod(parse_candles)
    parse_ticker = staticmethod(parse_ticker)

    def candles_request(self, page: Window) -> tuple[str, dict[str, Any]]:
        params = {
            "step": 60,
            "limit": page.minute_count,
            "start": int(page.start.timestamp()),
            "end": int((page.end - MINUTE).timestamp()),
            "exclude_current_candle": "true",
        }
        return f"/ohlc/{self.market}/", params

    def ticker_request(self) -> tuple[str, dict[str, Any]]:
        return f"/ticker/{self.market}/", {}
