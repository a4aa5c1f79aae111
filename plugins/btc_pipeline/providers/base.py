"""What every exchange client offers, and the HTTP plumbing they share.

A provider turns one exchange's public REST API into :class:`Candle` and :class:`Tick` values.
Requests have explicit timeouts and bounded retries with exponential backoff that honour
``Retry-After``; every failure is an :class:`ExchangeError` naming the exchange, the endpoint and
what went wrong. Parsed values are validated before they are returned: a response that fails
validation is a failure of that exchange, never data.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

import requests

from btc_pipeline.window import Window

log = logging.getLogger(__name__)

RETRYABLE_STATUS = frozenset({418, 429, 500, 502, 503, 504})
MAX_RETRY_AFTER_S = 60.0


class ExchangeError(RuntimeError):
    """A request to an exchange failed or its answer could not be used."""

    def __init__(
        self,
        provider: str,
        endpoint: str,
        problem: str,
        *,
        retryable: bool = False,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(f"{provider} {endpoint}: {problem}")
        self.provider = provider
        self.endpoint = endpoint
        self.problem = problem
        self.retryable = retryable
        self.retry_after = retry_after


@dataclass(frozen=True)
class Candle:
    """A closed 1-minute candle; ``ts`` is its open time (UTC)."""

    ts: datetime
    open: float
    high: float
    low: float
    close: float
    volume: float | None


@dataclass(frozen=True)
class Tick:
    """The latest trade price as the exchange reported it, at the exchange's time."""

    ts: datetime
    price: float
    volume: float | None = None


class Provider(Protocol):
    """One exchange: the latest ticker and the closed 1-minute candles of a window."""

    name: str

    def fetch_candles(self, window: Window) -> list[Candle]:
        """Closed 1-minute candles with ``ts`` in ``window``, oldest first (minutes without trades absent)."""
        ...

    def fetch_ticker(self) -> Tick:
        """The latest trade."""
        ...


def _finite_positive(value: float, what: str) -> bool:
    return math.isfinite(value) and value > 0


def validate_candles(provider: str, endpoint: str, candles: Iterable[Candle], window: Window) -> list[Candle]:
    """Check candles for sane prices and window membership, sort them, drop duplicates.

    Raises:
        ExchangeError: A candle has a non-positive or non-finite price, inconsistent OHLC, a
            negative volume or a timestamp outside the window.
    """
    by_ts: dict[datetime, Candle] = {}
    for c in candles:
        for field in ("open", "high", "low", "close"):
            if not _finite_positive(getattr(c, field), field):
                raise ExchangeError(provider, endpoint, f"candle {c.ts.isoformat()} has {field}={getattr(c, field)!r}")
        if not c.low <= min(c.open, c.close) <= max(c.open, c.close) <= c.high:
            raise ExchangeError(
                provider, endpoint, f"candle {c.ts.isoformat()} violates low <= open,close <= high: {c}"
            )
        if c.volume is not None and (not math.isfinite(c.volume) or c.volume < 0):
            raise ExchangeError(provider, endpoint, f"candle {c.ts.isoformat()} has volume={c.volume!r}")
        if not window.contains(c.ts):
            raise ExchangeError(provider, endpoint, f"candle {c.ts.isoformat()} is outside the window {window}")
        if c.ts.second or c.ts.microsecond:
            raise ExchangeError(provider, endpoint, f"candle time {c.ts.isoformat()} is not on a whole minute")
        by_ts[c.ts] = c
    return [by_ts[ts] for ts in sorted(by_ts)]


def validate_tick(provider: str, endpoint: str, tick: Tick) -> Tick:
    """Check a tick for a sane price.

    Raises:
        ExchangeError: The price is not a positive finite number.
    """
    if not _finite_positive(tick.price, "price"):
        raise ExchangeError(provider, endpoint, f"ticker price {tick.price!r} is not a positive number")
    return tick


def parse_retry_after(value: str | None, default: float) -> float:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds form), capped."""
    if not value:
        return default
    try:
        return min(max(float(value), 0.0), MAX_RETRY_AFTER_S)
    except ValueError:
        return default


class HttpClient:
    """GETs JSON with a timeout, bounded retries, exponential backoff and ``Retry-After``."""

    def __init__(
        self,
        provider: str,
        base_url: str,
        *,
        timeout_s: float,
        retries: int,
        session: requests.Session | None = None,
        backoff_s: float = 0.5,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.provider = provider
        self.base_url = base_url.rstrip("/")
        self.timeout_s = timeout_s
        self.retries = retries
        self.session = session or requests.Session()
        self.backoff_s = backoff_s
        self.sleep = sleep

    def get_json(self, endpoint: str, params: Mapping[str, Any] | None = None) -> Any:
        """GET ``base_url + endpoint`` and return the decoded JSON body.

        Raises:
            ExchangeError: After the retries are spent, or at once for a non-retryable answer.
        """
        url = self.base_url + endpoint
        attempt = 0
        while True:
            try:
                return self._get_once(endpoint, url, params)
            except ExchangeError as exc:
                if not exc.retryable or attempt >= self.retries:
                    if exc.retryable:
                        raise ExchangeError(
                            self.provider, endpoint, f"{exc.problem} (gave up after {attempt + 1} attempts)"
                        ) from exc
                    raise
                delay = exc.retry_after if exc.retry_after is not None else self.backoff_s * 2**attempt
                log.warning("%s; retry %d/%d in %.1fs", exc, attempt + 1, self.retries, delay)
                self.sleep(delay)
                attempt += 1

    def _get_once(self, endpoint: str, url: str, params: Mapping[str, Any] | None) -> Any:
        try:
            response = self.session.get(url, params=params, timeout=self.timeout_s)
        except requests.Timeout:
            raise ExchangeError(self.provider, endpoint, f"timed out after {self.timeout_s}s", retryable=True) from None
        except requests.ConnectionError as exc:
            raise ExchangeError(self.provider, endpoint, f"connection failed: {exc}", retryable=True) from None
        if response.status_code != 200:
            snippet = response.text[:200].replace("\n", " ")
            retry_after = None
            if response.status_code in (418, 429):
                retry_after = parse_retry_after(response.headers.get("Retry-After"), self.backoff_s)
            raise ExchangeError(
                self.provider,
                endpoint,
                f"HTTP {response.status_code}: {snippet}",
                retryable=response.status_code in RETRYABLE_STATUS,
                retry_after=retry_after,
            )
        try:
            return response.json()
        except ValueError:
            snippet = response.text[:120].replace("\n", " ")
            raise ExchangeError(self.provider, endpoint, f"body is not JSON: {snippet!r}") from None
