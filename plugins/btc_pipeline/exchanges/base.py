"""What every exchange client offers: the :class:`Exchange` protocol, its values and its limits.

An exchange client turns one exchange's public REST API into :class:`Candle` and :class:`Tick`
values (the HTTP plumbing they share is :mod:`btc_pipeline.exchanges.http`). Every failure is an
:class:`ExchangeError` naming the exchange, the endpoint and what went wrong. Parsed values are
validated before they are returned: a response that fails validation is a failure of that
exchange, never data.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from btc_pipeline.errors import BtcPipelineError
from btc_pipeline.timeutil import DEFAULT_MAX_CLOCK_SKEW_S, ImplausibleTimeError, check_plausible, utcnow
from btc_pipeline.window import MINUTE, Window

if TYPE_CHECKING:
    from btc_pipeline.exchanges.http import HttpClient

T = TypeVar("T")

#: The longest backoff between two attempts without ``Retry-After`` (HTTP layer and Kraken's retries).
MAX_BACKOFF_S = 30.0


class ExchangeError(BtcPipelineError, RuntimeError):
    """A request to an exchange failed or its answer could not be used.

    ``transient`` marks an answer that says "try again shortly" inside an HTTP 200 (Kraken's
    ``EService:Unavailable``): the client retries those itself; HTTP-level failures have been
    retried by the HTTP layer already when this is raised. ``permanent`` marks an answer that will
    not change by asking again soon (HTTP 451 restricted location, 404, an unknown pair): a task
    that only met permanent failures fails without Airflow retries.
    """

    def __init__(
        self, exchange: str, endpoint: str, problem: str, *, transient: bool = False, permanent: bool = False
    ) -> None:
        super().__init__(f"{exchange} {endpoint}: {problem}")
        self.exchange = exchange
        self.endpoint = endpoint
        self.problem = problem
        self.transient = transient
        self.permanent = permanent


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


@dataclass(frozen=True)
class ExchangeLimits:
    """What one exchange's candle endpoint serves, declared by its client class.

    Attributes:
        rows_per_request: The most 1-minute candles one request returns (a client pages beyond it).
        horizon_minutes: How many of the most recent minutes it serves at all (``None``: its whole
            history). Kraken keeps only the latest 720.
        single_request: One request returns every row since a start (Kraken), so a window within
            the horizon never takes more than one request.
        requests_per_second: The most candle requests a backfill sends per second, kept below the
            exchange's published public rate limit (with room for the live ingest's requests).
    """

    rows_per_request: int
    horizon_minutes: int | None = None
    single_request: bool = False
    requests_per_second: float = 1.0

    def pages(self, window: Window) -> list[Window]:
        """The parts of ``window`` that are fetched in one request each, oldest first."""
        return [window] if self.single_request else list(window.chunks(self.rows_per_request))


class Exchange(Protocol):
    """One exchange: the latest ticker and the closed 1-minute candles of a window."""

    #: Its name in ``BTC_EXCHANGES``, in messages (``source``) and in the store.
    name: str
    #: What its candle endpoint serves.
    limits: ExchangeLimits

    def fetch_candles(self, window: Window) -> list[Candle]:
        """Closed 1-minute candles with ``ts`` in ``window``, oldest first (minutes without trades absent)."""
        ...

    def fetch_ticker(self) -> Tick:
        """The latest trade."""
        ...


@dataclass(frozen=True)
class TimeRule:
    """The project's one rule for a believable time (:func:`~btc_pipeline.timeutil.check_plausible`),
    as one reply is read: the client's clock when it read it, and how far ahead of that clock an
    exchange's time may be (``BTC_MAX_CLOCK_SKEW_S``)."""

    now: datetime
    max_skew_s: float = DEFAULT_MAX_CLOCK_SKEW_S

    def check(self, ts: datetime, exchange: str, endpoint: str, what: str) -> datetime:
        """``ts`` in UTC if it lies in [2009-01-03, now + max_skew_s].

        Raises:
            ExchangeError: ``bad_ts`` (before 2009-01-03) or ``future_ts`` (ahead of the clock).
        """
        try:
            return check_plausible(ts, what, now=self.now, max_skew_s=self.max_skew_s)
        except ImplausibleTimeError as exc:
            raise ExchangeError(exchange, endpoint, f"{exc.reason}: {exc.detail}") from None


class ExchangeClient(Exchange):
    """What every client holds: its :class:`~btc_pipeline.exchanges.http.HttpClient`, its clock
    (injectable, so tests are deterministic) and how far ahead of that clock an exchange's time may
    be (``BTC_MAX_CLOCK_SKEW_S``). Each subclass declares the rest of what the package knows about
    its exchange, how to ask for a page of candles and for the ticker, and its parsers; the paging
    is done here once. :data:`btc_pipeline.exchanges.EXCHANGES` maps names to subclasses."""

    #: The production base URL of its public REST API (the default of ``BTC_<NAME>_URL``).
    base_url: str
    #: The exchange's own name for the pipeline's ``BTC-USD`` (product, pair or symbol).
    market: str
    #: Reads a candle reply: ``parse_candles(body, window, endpoint, *, times)``, the window's candles.
    parse_candles: Callable[..., list[Candle]]
    #: Reads a ticker reply: ``parse_ticker(body, endpoint, *, times)``, the tick.
    parse_ticker: Callable[..., Tick]

    def __init__(
        self,
        http: HttpClient,
        *,
        clock: Callable[[], datetime] = utcnow,
        max_skew_s: float = DEFAULT_MAX_CLOCK_SKEW_S,
    ) -> None:
        self.http = http
        self.clock = clock
        self.max_skew_s = max_skew_s

    def candles_request(self, page: Window) -> tuple[str, dict[str, Any]]:
        """The endpoint and query parameters that ask for the candles of ``page``."""
        raise NotImplementedError

    def ticker_request(self) -> tuple[str, dict[str, Any]]:
        """The endpoint and query parameters that ask for the ticker."""
        raise NotImplementedError

    def get(self, endpoint: str, params: Mapping[str, Any], parse: Callable[[Any], T]) -> T:
        """GET ``endpoint`` and parse the reply (see :meth:`~btc_pipeline.exchanges.http.HttpClient.get_parsed`)."""
        return self.http.get_parsed(endpoint, parse, params)

    def fetch_candles(self, window: Window) -> list[Candle]:
        """Closed 1-minute candles of ``window``, oldest first, one request per page (:meth:`ExchangeLimits.pages`).

        Raises:
            ExchangeError: A request failed or a body is unusable.
        """
        candles: list[Candle] = []
        for page in self.limits.pages(window):
            endpoint, params = self.candles_request(page)
            parse = partial(self.parse_candles, window=page, endpoint=endpoint, times=self.times())
            candles.extend(self.get(endpoint, params, parse))
        return self.closed(candles)

    def fetch_ticker(self) -> Tick:
        """The latest trade.

        Raises:
            ExchangeError: The request failed or the body is unusable.
        """
        endpoint, params = self.ticker_request()
        return self.get(endpoint, params, partial(self.parse_ticker, endpoint=endpoint, times=self.times()))

    def times(self) -> TimeRule:
        """The rule every exchange time in a reply read now must pass."""
        return TimeRule(self.clock(), self.max_skew_s)

    def closed(self, candles: list[Candle]) -> list[Candle]:
        """The candles that have closed: exchanges also return the minute still trading (Kraken's
        last row, Binance's open kline), which is not data yet."""
        now = self.clock()
        return [c for c in candles if c.ts + MINUTE <= now]


#: No tick can trade more BTC than will ever exist.
MAX_BTC_SUPPLY = 21_000_000


def validate_candles(exchange: str, endpoint: str, candles: Iterable[Candle], window: Window) -> list[Candle]:
    """Check candles for sane prices and window membership, sort them, drop duplicates.

    Raises:
        ExchangeError: A candle has a non-positive or non-finite price, inconsistent OHLC, a
            negative volume or a timestamp outside the window.
    """
    by_ts: dict[datetime, Candle] = {}
    for c in candles:
        for field in ("open", "high", "low", "close"):
            if not 0 < getattr(c, field) < math.inf:  # also refuses nan
                raise ExchangeError(exchange, endpoint, f"candle {c.ts.isoformat()} has {field}={getattr(c, field)!r}")
        if not c.low <= min(c.open, c.close) <= max(c.open, c.close) <= c.high:
            raise ExchangeError(
                exchange, endpoint, f"candle {c.ts.isoformat()} violates low <= open,close <= high: {c}"
            )
        if c.volume is not None and (not math.isfinite(c.volume) or c.volume < 0):
            raise ExchangeError(exchange, endpoint, f"candle {c.ts.isoformat()} has volume={c.volume!r}")
        if not window.contains(c.ts):
            raise ExchangeError(exchange, endpoint, f"candle {c.ts.isoformat()} is outside the window {window}")
        if c.ts.second or c.ts.microsecond:
            raise ExchangeError(exchange, endpoint, f"candle time {c.ts.isoformat()} is not on a whole minute")
        by_ts[c.ts] = c
    return [by_ts[ts] for ts in sorted(by_ts)]


def validate_tick(exchange: str, endpoint: str, tick: Tick) -> Tick:
    """Check a tick for a sane price and last-trade size (its time was checked when it was read).

    Raises:
        ExchangeError: The price is not a positive finite number, or the size is negative, not
            finite, or above the 21 million BTC that will ever exist.
    """
    if not 0 < tick.price < math.inf:  # also refuses nan
        raise ExchangeError(exchange, endpoint, f"ticker price {tick.price!r} is not a positive number")
    if tick.volume is not None and not 0 <= tick.volume <= MAX_BTC_SUPPLY:  # also refuses nan
        raise ExchangeError(
            exchange, endpoint, f"ticker size {tick.volume!r} is not between 0 and {MAX_BTC_SUPPLY:,} BTC"
        )
    return tick
