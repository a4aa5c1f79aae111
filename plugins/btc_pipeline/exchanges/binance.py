"""Binance Spot public market-data REST API (``data-api.binance.vision``, ``api.binance.com``).

**BTC-USDT, published as BTC-USD.** Binance Spot has no BTC/USD book; we read ``BTCUSDT`` and
publish it under the pipeline's symbol ``BTC-USD``, assuming 1 USDT = 1 USD. USDT usually trades
within a few basis points of the dollar, well inside the cross-exchange check's default tolerance
(``BTC_MAX_DEVIATION_PCT``); a de-peg shows up there as Binance deviating from the other exchanges.

- Klines ``GET /api/v3/klines?symbol=BTCUSDT&interval=1m&startTime=<ms>&endTime=<ms>&limit=1000``:
  rows ``[openTime, open, high, low, close, volume, closeTime, quoteVolume, trades, takerBase,
  takerQuote, ignore]``, times in **milliseconds**, decimals as strings; at most 1000 rows per
  request, so longer windows are paged. The current (unfinished) kline is returned too: we keep only
  klines that have closed.
- Ticker ``GET /api/v3/ticker/24hr?symbol=BTCUSDT``: ``lastPrice``/``lastQty`` strings, and
  ``closeTime`` (ms, a number; some captures stringify it) is the tick's time.
- Errors: ``{"code": -1121, "msg": "Invalid symbol."}``; HTTP 429/418 with ``Retry-After`` are
  retried by :class:`~btc_pipeline.exchanges.http.HttpClient`; HTTP 451 (requests from a restricted
  location) is final and reported as such.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any, TypeVar

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
from btc_pipeline.exchanges.fields import candle, epoch_millis, number, shown, text
from btc_pipeline.window import Window

T = TypeVar("T")

NAME = "binance"
KLINES_ENDPOINT = "/api/v3/klines"
TICKER_ENDPOINT = "/api/v3/ticker/24hr"
MAX_KLINES_PER_REQUEST = 1000
RESTRICTED_LOCATION = (
    "HTTP 451: Binance refuses requests from this restricted location; point BTC_BINANCE_URL at a Binance "
    "host that serves this region, or remove binance from BTC_EXCHANGES"
)


def _millis(ts: datetime) -> int:
    return int(ts.timestamp()) * 1000 + ts.microsecond // 1000


def _error_body(body: Any, endpoint: str) -> None:
    if isinstance(body, dict) and "code" in body and "msg" in body:
        raise ExchangeError(NAME, endpoint, f"Binance error {text(body['code'])}: {shown(body['msg'])}")


def parse_candles(body: Any, window: Window, endpoint: str = KLINES_ENDPOINT, *, times: TimeRule) -> list[Candle]:
    """Parse a klines body, keeping the rows whose open time is inside ``window``.

    Args:
        body: The decoded JSON body.
        window: The minutes wanted.
        endpoint: Endpoint path, for error messages.
        times: The client's clock and allowed skew: every exchange time must pass it.

    Returns:
        The window's candles, oldest first.

    Raises:
        ExchangeError: An error body, a malformed row, or a row that fails validation.
    """
    _error_body(body, endpoint)
    if not isinstance(body, list):
        raise ExchangeError(NAME, endpoint, f"expected a JSON array of klines, got {type(body).__name__}")
    candles = []
    for row in body:
        if not isinstance(row, list) or len(row) < 7:
            raise ExchangeError(
                NAME, endpoint, f"kline {shown(row)} is not [openTime, open, high, low, close, volume, closeTime, ...]"
            )
        ts = epoch_millis(row[0], NAME, endpoint, "openTime", times)
        if not window.contains(ts):
            continue
        values = dict(zip(("open", "high", "low", "close", "volume"), row[1:6], strict=True))
        candles.append(candle(ts, values, NAME, endpoint))
    return validate_candles(NAME, endpoint, candles, window)


def parse_ticker(body: Any, endpoint: str = TICKER_ENDPOINT, *, times: TimeRule) -> Tick:
    """Parse a 24hr ticker body: ``lastPrice`` at ``closeTime``.

    Args:
        body: The decoded JSON body.
        endpoint: Endpoint path, for error messages.
        times: The client's clock and allowed skew: every exchange time must pass it.

    Returns:
        The tick.

    Raises:
        ExchangeError: An error body, or ``lastPrice``/``closeTime`` missing or malformed.
    """
    _error_body(body, endpoint)
    if not isinstance(body, dict):
        raise ExchangeError(NAME, endpoint, f"expected a JSON object, got {type(body).__name__}")
    for field in ("lastPrice", "closeTime"):
        if field not in body:
            raise ExchangeError(NAME, endpoint, f"24hr ticker has no {field!r} field")
    quantity = body.get("lastQty")
    tick = Tick(
        ts=epoch_millis(body["closeTime"], NAME, endpoint, "closeTime", times),
        price=number(body["lastPrice"], NAME, endpoint, "lastPrice"),
        volume=None if quantity is None else number(quantity, NAME, endpoint, "lastQty"),
    )
    return validate_tick(NAME, endpoint, tick)


class BinanceClient(ExchangeClient):
    """Binance Spot client for one symbol (``BTCUSDT``, published as the pipeline's ``BTC-USD``)."""

    name = NAME
    base_url = "https://data-api.binance.vision"
    #: Binance serves its whole history, 1000 klines per request; its IP limit is 6,000 request
    #: weight a minute and a klines request weighs 2 (50 a second): a backfill sends at most 10.
    limits = ExchangeLimits(rows_per_request=MAX_KLINES_PER_REQUEST, requests_per_second=10.0)
    market = "BTCUSDT"
    parse_candles = staticmethod(parse_candles)
    parse_ticker = staticmethod(parse_ticker)

    def get(self, endpoint: str, params: Mapping[str, Any], parse: Callable[[Any], T]) -> T:
        """GET and parse; HTTP 451 is reported as the restricted location it is, and final."""
        try:
            return self.http.get_parsed(endpoint, parse, params)
        except ExchangeError as exc:
            if exc.problem.startswith("HTTP 451"):
                raise ExchangeError(NAME, endpoint, RESTRICTED_LOCATION, permanent=True) from exc
            raise

    def candles_request(self, page: Window) -> tuple[str, dict[str, Any]]:
        params = {
            "symbol": self.market,
            "interval": "1m",
            "startTime": _millis(page.start),
            "endTime": _millis(page.end) - 1,  # inclusive at Binance: stop before the next minute
            "limit": MAX_KLINES_PER_REQUEST,
        }
        return KLINES_ENDPOINT, params

    def ticker_request(self) -> tuple[str, dict[str, Any]]:
        return TICKER_ENDPOINT, {"symbol": self.market}
