"""Kraken public REST API (``api.kraken.com/0``).

- Every answer is ``{"error": [...], "result": {...}}``, mostly with HTTP 200: a non-empty ``error``
  array is a failure. ``EAPI:Rate limit exceeded``, ``EService:Unavailable``, ``EService:Busy`` and
  ``EService: Throttled`` are transient and retried here with tenacity (exponential backoff), within
  the same request budget as the HTTP layer's retries, so one call makes at most
  ``BTC_HTTP_RETRIES + 1`` requests whatever mix of failures it meets; any other error
  (``EQuery:Unknown asset pair``, ``EGeneral:Invalid arguments``) fails at once.
- ``result`` is keyed by Kraken's own pair name (``XXBTZUSD`` for the ``XBTUSD`` we ask for), next
  to ``last``: we take the one key that is not ``last``.
- Ticker ``GET /public/Ticker?pair=XBTUSD``: ``c`` = ``[last trade price, lot volume]``, strings.
  The ticker carries no time, so a tick's ``ts`` is when its answer was received (our UTC clock).
- OHLC ``GET /public/OHLC?pair=XBTUSD&interval=1&since=<epoch s>``: rows
  ``[time, open, high, low, close, vwap, volume, count]`` (time in seconds, decimals as strings,
  count an integer). Only the latest 720 rows exist, whatever ``since`` says (~12 h of minutes),
  and the last row is the current, unfinished minute: we drop it. A window older than that horizon
  is refused before any request, so failover moves on to an exchange that can serve it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, TypeVar

from tenacity import RetryCallState, Retrying, retry_if_exception, wait_exponential

from btc_pipeline.exchanges.base import (
    MAX_BACKOFF_S,
    Candle,
    ExchangeClient,
    ExchangeError,
    ExchangeLimits,
    Tick,
    TimeRule,
    validate_candles,
    validate_tick,
)
from btc_pipeline.exchanges.fields import candle, epoch_seconds, number, shown
from btc_pipeline.window import MINUTE, Window, floor_minute

log = logging.getLogger(__name__)

T = TypeVar("T")

NAME = "kraken"
OHLC_ENDPOINT = "/public/OHLC"
TICKER_ENDPOINT = "/public/Ticker"
#: Kraken serves only this many of the most recent OHLC rows, the unfinished one included.
OHLC_HORIZON_ROWS = 720
#: Kraken error prefixes that mean "try again shortly", not "your request is wrong".
RETRYABLE_ERRORS = ("EAPI:Rate limit exceeded", "EService:Unavailable", "EService:Busy", "EService: Throttled")


def parse_result(body: Any, endpoint: str) -> dict[str, Any]:
    """Check Kraken's envelope and return its ``result`` object.

    Args:
        body: The decoded JSON body.
        endpoint: Endpoint path, for error messages.

    Returns:
        The ``result`` object.

    Raises:
        ExchangeError: The ``error`` array is not empty (retryable for the transient errors listed
            in :data:`RETRYABLE_ERRORS`), or the envelope is malformed.
    """
    if not isinstance(body, dict):
        raise ExchangeError(NAME, endpoint, f"expected a JSON object {{error, result}}, got {type(body).__name__}")
    errors = body.get("error", [])
    if not isinstance(errors, list):
        raise ExchangeError(NAME, endpoint, f"'error' is {type(errors).__name__}, expected an array")
    if errors:
        texts = [e if isinstance(e, str) else shown(e) for e in errors]
        retryable = all(text.startswith(RETRYABLE_ERRORS) for text in texts)
        raise ExchangeError(NAME, endpoint, f"Kraken error {texts}", transient=retryable, permanent=not retryable)
    result = body.get("result")
    if not isinstance(result, dict):
        raise ExchangeError(NAME, endpoint, f"'result' is {type(result).__name__}, expected an object")
    return result


def _pair_entry(result: Mapping[str, Any], endpoint: str) -> Any:
    pairs = [key for key in result if key != "last"]
    if len(pairs) != 1:
        raise ExchangeError(NAME, endpoint, f"expected exactly one pair in 'result' besides 'last', got {shown(pairs)}")
    return result[pairs[0]]


def parse_candles(body: Any, window: Window, endpoint: str = OHLC_ENDPOINT, *, times: TimeRule) -> list[Candle]:
    """Parse an OHLC body: drop the unfinished last row, keep the closed rows inside ``window``.

    Args:
        body: The decoded JSON body.
        window: The minutes wanted.
        endpoint: Endpoint path, for error messages.
        times: The client's clock and allowed skew: every exchange time must pass it.

    Returns:
        The window's closed candles, oldest first.

    Raises:
        ExchangeError: Kraken reported an error, a row is malformed or fails validation, or the
            answer is the full 720-row horizon and starts after ``window.start`` (the window's
            beginning has fallen off what Kraken keeps).
    """
    rows = _pair_entry(parse_result(body, endpoint), endpoint)
    if not isinstance(rows, list):
        raise ExchangeError(NAME, endpoint, f"OHLC rows are {type(rows).__name__}, expected an array")
    candles = []
    first_ts: datetime | None = None
    for row in rows[:-1]:  # the last row is the current, not-yet-committed minute
        if not isinstance(row, list) or len(row) < 8:
            raise ExchangeError(
                NAME, endpoint, f"OHLC row {shown(row)} is not [time, open, high, low, close, vwap, volume, count]"
            )
        ts = epoch_seconds(row[0], NAME, endpoint, "time", times)
        first_ts = ts if first_ts is None else min(first_ts, ts)
        if not window.contains(ts):
            continue
        values = dict(zip(("open", "high", "low", "close", "vwap", "volume"), row[1:7], strict=True))
        candles.append(candle(ts, values, NAME, endpoint))
    if len(rows) >= OHLC_HORIZON_ROWS and first_ts is not None and first_ts > window.start:
        raise ExchangeError(
            NAME,
            endpoint,
            f"window {window} starts before the oldest row served ({first_ts.isoformat()}): "
            f"beyond Kraken's {OHLC_HORIZON_ROWS}-minute horizon",
        )
    return validate_candles(NAME, endpoint, candles, window)


def parse_ticker(body: Any, endpoint: str = TICKER_ENDPOINT, *, received_at: datetime) -> Tick:
    """Parse a Ticker body: the last trade ``c = [price, lot volume]``.

    Args:
        body: The decoded JSON body.
        endpoint: Endpoint path, for error messages.
        received_at: When the answer arrived; Kraken's ticker has no time of its own.

    Returns:
        The tick, at ``received_at``.

    Raises:
        ExchangeError: Kraken reported an error, or ``c`` is missing or malformed.
    """
    entry = _pair_entry(parse_result(body, endpoint), endpoint)
    if not isinstance(entry, dict):
        raise ExchangeError(NAME, endpoint, f"ticker entry is {type(entry).__name__}, expected an object")
    last = entry.get("c")
    if not isinstance(last, list) or len(last) < 2:
        raise ExchangeError(NAME, endpoint, f"ticker field 'c' (last trade) is {shown(last)}, expected [price, volume]")
    tick = Tick(
        ts=received_at.astimezone(UTC),
        price=number(last[0], NAME, endpoint, "c[0] (last price)"),
        volume=number(last[1], NAME, endpoint, "c[1] (last volume)"),
    )
    return validate_tick(NAME, endpoint, tick)


class KrakenClient(ExchangeClient):
    """Kraken client for one pair (``XBTUSD``, answered as ``XXBTZUSD``)."""

    name = NAME
    base_url = "https://api.kraken.com/0"
    #: One request returns every row since ``since``, within the latest 720 minutes.
    #: Its public endpoints allow about one request a second (a decaying call counter).
    limits = ExchangeLimits(
        rows_per_request=OHLC_HORIZON_ROWS,
        horizon_minutes=OHLC_HORIZON_ROWS,
        single_request=True,
        requests_per_second=1.0,
    )
    market = "XBTUSD"
    parse_candles = staticmethod(parse_candles)

    def get(self, endpoint: str, params: Mapping[str, Any], parse: Callable[[Any], T]) -> T:
        """GET and parse; a transient ``error`` answer (``parse`` raises a transient ExchangeError) is
        retried within one budget of ``retries + 1`` requests, the HTTP layer's retries included.

        Raises:
            ExchangeError: The budget is spent, or a failure that is final.
        """
        budget = {"left": self.http.retries + 1}

        def attempt() -> T:
            # the HTTP layer may spend several requests (503s, timeouts) of what is left
            body, requests = self.http.get_json_counted(endpoint, params, retries=budget["left"] - 1)
            budget["left"] -= requests
            return self.http.parse_reply(endpoint, parse, body)

        def spent(state: RetryCallState) -> bool:
            return budget["left"] <= 0

        def log_retry(state: RetryCallState) -> None:
            exc = state.outcome.exception() if state.outcome else None
            log.warning("%s; retry in %.1fs (%d request(s) left)", exc, state.upcoming_sleep, budget["left"])

        retrying = Retrying(
            retry=retry_if_exception(lambda exc: isinstance(exc, ExchangeError) and exc.transient),
            stop=spent,
            wait=wait_exponential(multiplier=self.http.backoff_s, max=MAX_BACKOFF_S),
            before_sleep=log_retry,
            reraise=True,
        )
        try:
            return retrying(attempt)
        except ExchangeError as exc:
            if exc.transient:
                used = self.http.retries + 1 - budget["left"]
                raise ExchangeError(NAME, endpoint, f"{exc.problem} (gave up after {used} attempts)") from exc
            raise

    def fetch_candles(self, window: Window) -> list[Candle]:
        """Closed 1-minute candles of ``window`` (one request: Kraken returns everything since ``since``).

        Raises:
            ExchangeError: The window is beyond Kraken's horizon (refused before any request), or
                the request failed.
        """
        oldest = floor_minute(self.clock()) - MINUTE * (OHLC_HORIZON_ROWS - 1)
        if window.start < oldest:
            raise ExchangeError(
                NAME,
                OHLC_ENDPOINT,
                f"window {window} starts before {oldest.isoformat()}: beyond Kraken's {OHLC_HORIZON_ROWS}-minute "
                "horizon (only the latest 720 one-minute rows are served); use another exchange for this window",
            )
        return super().fetch_candles(window)

    def candles_request(self, page: Window) -> tuple[str, dict[str, Any]]:
        # `since` one minute early: whether Kraken treats it as exclusive or inclusive, the first
        # minute of the window is in the answer; rows outside the window are dropped by the parser.
        return OHLC_ENDPOINT, {"pair": self.market, "interval": 1, "since": int((page.start - MINUTE).timestamp())}

    def fetch_ticker(self) -> Tick:
        """The last trade, timed when Kraken's answer was received (its ticker has no time).

        Raises:
            ExchangeError: The request failed or the body is unusable.
        """
        return self.get(
            TICKER_ENDPOINT, {"pair": self.market}, lambda body: parse_ticker(body, received_at=self.clock())
        )
