"""The market the simulated venues quote: one seeded price path, each venue's offset and precision,
a clock, and the helpers the venues share to answer requests."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from simexchange.pricepath import PricePath, SimCandle

EXCHANGES = ("coinbase", "kraken", "binance", "bitstamp")
#: Fixed per-exchange price offsets in basis points (Binance quotes USDT).
PRICE_OFFSET_BPS = {"coinbase": 0.0, "kraken": 2.0, "binance": -6.0, "bitstamp": 1.0}
#: Decimals each exchange quotes BTC in (Bitstamp's BTC/USD is whole dollars).
PRICE_DECIMALS = {"coinbase": 2, "kraken": 1, "binance": 2, "bitstamp": 0}
MINUTE = timedelta(minutes=1)

#: An answer: HTTP status, body (JSON-able, or raw bytes), extra headers.
Reply = tuple[int, Any, dict[str, str]]


def parse_time(value: str) -> datetime:
    if value.replace(".", "", 1).isdigit():
        return datetime.fromtimestamp(float(value), UTC)
    return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)


def iso_us(ts: datetime) -> str:
    return ts.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def millis(ts: datetime) -> int:
    return int(ts.timestamp()) * 1000 + ts.microsecond // 1000


def floor(ts: datetime) -> datetime:
    return ts.replace(second=0, microsecond=0)


def ok(body: Any) -> Reply:
    return 200, body, {}


class Market:
    """The price path as every venue quotes it, and the clock (tests pass a fixed one)."""

    def __init__(self, seed: int = 42, clock: Any = None) -> None:
        self.path = PricePath(seed)
        self.clock = clock or (lambda: datetime.now(UTC))

    # --- the price path as each exchange quotes it -------------------------------------------
    def quote(self, exchange: str, price: float) -> float:
        """A price of the path as ``exchange`` quotes it.

        Args:
            exchange: One of :data:`EXCHANGES`.
            price: A price of the path.

        Returns:
            ``price`` with the exchange's offset, rounded to its precision.
        """
        return round(price * (1 + PRICE_OFFSET_BPS[exchange] / 10_000), PRICE_DECIMALS[exchange])

    def candle(self, exchange: str, ts: datetime, now: datetime) -> SimCandle:
        """The exchange's candle of one minute.

        Args:
            exchange: One of :data:`EXCHANGES`.
            ts: The minute's start.
            now: The current time: the current minute's candle is partial (close = the price now).

        Returns:
            The candle, in the exchange's prices.
        """
        c = self.path.candle(ts)
        if ts == floor(now):  # still open: the close is the latest price, inside [low, high]
            fraction = (now - ts) / MINUTE
            c = replace(c, close=self.path.price_at(now), volume=round(c.volume * fraction, 8))
        q = self.quote
        return replace(
            c,
            open=q(exchange, c.open),
            high=q(exchange, c.high),
            low=q(exchange, c.low),
            close=q(exchange, c.close),
        )

    def candles(self, exchange: str, start: datetime, end: datetime, now: datetime) -> list[SimCandle]:
        """The exchange's candles of a range.

        Args:
            exchange: One of :data:`EXCHANGES`.
            start: First minute (rounded up to a whole minute).
            end: End of the range, exclusive.
            now: The current time: minutes that have not begun are left out, the current one is partial.

        Returns:
            The candles with ``start <= ts < end``, oldest first.
        """
        end = min(end, floor(now) + MINUTE)
        return [self.candle(exchange, c.ts, now) for c in self.path.candles(start, end)]

    def tick(self, exchange: str, now: datetime) -> tuple[datetime, float, SimCandle]:
        """The exchange's last trade, one second before ``now``.

        Args:
            exchange: One of :data:`EXCHANGES`.
            now: The current time.

        Returns:
            The trade's time, its price as the exchange quotes it, and the path's candle of that minute.
        """
        trade_time = now - timedelta(seconds=1)
        return trade_time, self.quote(exchange, self.path.price_at(trade_time)), self.path.candle(trade_time)
