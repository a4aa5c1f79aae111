"""A deterministic BTC/USD price path, minute by minute, for any past or present minute.

The path is a seeded geometric random walk calibrated on the real Bitstamp 1-minute series in
``tests/fixtures/realdata/series`` (sigma of 1-minute log returns ~ 4.1e-4, mean high-low range ~ 1.6e-4
of price). To make any minute computable without walking from the epoch, each UTC day has an
anchor price (a trend plus a mean-reverting daily walk, one draw per day) and the minutes of the
day follow a Brownian bridge from that day's anchor to the next one. The same seed always gives the same candles.
"""

from __future__ import annotations

import hashlib
import math
import random
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache

MINUTE_SIGMA = 4.1e-4
DAILY_SIGMA = MINUTE_SIGMA * math.sqrt(1440)
EPOCH_DAY = datetime(2020, 1, 1, tzinfo=UTC)
EPOCH_PRICE = 7_200.0  # BTC/USD on 2020-01-01
TREND_PER_DAY = 0.001024  # log-trend that reaches ~95k by late 2026
MEAN_REVERSION_PER_DAY = 0.01  # keeps the daily walk within ~±11% (1sigma) of the trend
MEAN_VOLUME_BTC = 0.6


@dataclass(frozen=True)
class SimCandle:
    ts: datetime
    open: float
    high: float
    low: float
    close: float
    volume: float
    trades: int


def _rng(seed: int, *parts: object) -> random.Random:
    digest = hashlib.sha256(":".join(str(p) for p in (seed, *parts)).encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))  # noqa: S311 - simulation, not crypto


class PricePath:
    """Deterministic minute candles for ``seed``."""

    def __init__(self, seed: int = 42) -> None:
        self.seed = seed
        self._deviation: list[float] = [0.0]
        #: The daily walk is extended in order, one day after the other: two threads extending it
        #: at once (a fresh server's first concurrent requests) would each append a day, shifting
        #: every later day's anchor, and the server would quote another path than the tests expect.
        self._extending = threading.Lock()

    def _log_anchor(self, day: int) -> float:
        if day < 0:
            raise ValueError(f"the simulated history starts on {EPOCH_DAY.date()}")
        with self._extending:
            while len(self._deviation) <= day:
                d = len(self._deviation)
                shock = _rng(self.seed, "day", d).gauss(0.0, DAILY_SIGMA)
                self._deviation.append(self._deviation[-1] * (1 - MEAN_REVERSION_PER_DAY) + shock)
            deviation = self._deviation[day]
        return math.log(EPOCH_PRICE) + TREND_PER_DAY * day + deviation

    @lru_cache(maxsize=64)  # noqa: B019 - a bounded per-instance day cache is what we want
    def _day(self, day: int) -> tuple[SimCandle, ...]:
        rng = _rng(self.seed, "minutes", day)
        steps = [rng.gauss(0.0, MINUTE_SIGMA) for _ in range(1440)]
        start, end = self._log_anchor(day), self._log_anchor(day + 1)
        correction = (end - start - sum(steps)) / 1440
        base = EPOCH_DAY + timedelta(days=day)
        candles = []
        level = start
        for minute, step in enumerate(steps):
            open_log = level
            level += step + correction
            o, c = math.exp(open_log), math.exp(level)
            wick_hi = abs(rng.gauss(0.0, MINUTE_SIGMA * 0.25))
            wick_lo = abs(rng.gauss(0.0, MINUTE_SIGMA * 0.25))
            volume = rng.lognormvariate(math.log(MEAN_VOLUME_BTC) - 0.5, 1.0)
            candles.append(
                SimCandle(
                    ts=base + timedelta(minutes=minute),
                    open=round(o, 2),
                    high=round(max(o, c) * math.exp(wick_hi), 2),
                    low=round(min(o, c) * math.exp(-wick_lo), 2),
                    close=round(c, 2),
                    volume=round(volume, 8),
                    trades=max(1, int(volume * 40)),
                )
            )
        return tuple(candles)

    def candle(self, ts: datetime) -> SimCandle:
        """The candle of the minute starting at ``ts`` (rounded down to the minute)."""
        ts = ts.astimezone(UTC).replace(second=0, microsecond=0)
        delta = ts - EPOCH_DAY
        return self._day(delta.days)[delta.seconds // 60]

    def candles(self, start: datetime, end: datetime) -> list[SimCandle]:
        """Candles with ``start <= ts < end``, oldest first."""
        out = []
        ts = start.astimezone(UTC).replace(second=0, microsecond=0)
        if ts < start:
            ts += timedelta(minutes=1)
        while ts < end:
            out.append(self.candle(ts))
            ts += timedelta(minutes=1)
        return out

    def price_at(self, ts: datetime) -> float:
        """The last trade price at instant ``ts``: linear inside the minute from open to close."""
        c = self.candle(ts)
        frac = (ts - c.ts).total_seconds() / 60.0
        return round(c.open + (c.close - c.open) * frac, 2)
