"""Kraken, ``/kraken/0/public/{Ticker,OHLC}?pair=XBTUSD``: ``{"error": [], "result": {"XXBTZUSD": ...,
"last": ...}}``; OHLC rows with string decimals, only the latest 720, rows after ``since``, the current
unfinished minute last. Errors come as HTTP 200 with a non-empty ``error`` array."""

from __future__ import annotations

from datetime import timedelta

from simexchange.market import MINUTE, Market, Reply, floor, ok, parse_time

NAME = "kraken"
KRAKEN_HORIZON_ROWS = 720
KRAKEN_PAIR = "XXBTZUSD"


def answer(market: Market, route: str, query: dict[str, str], fault: str | None) -> Reply:
    """Answer a GET under ``/kraken`` the way Kraken would (``fault``: empty, tradeless or None)."""
    method = route.strip("/").removeprefix("0/")
    if method not in ("public/Ticker", "public/OHLC"):
        return ok({"error": ["EGeneral:Unknown method"]})
    if query.get("pair", "").upper() not in ("XBTUSD", KRAKEN_PAIR):
        return ok({"error": ["EQuery:Unknown asset pair"]})
    now = market.clock()
    if method == "public/Ticker":
        _, price, candle = market.tick("kraken", now)
        day = market.candle("kraken", now.replace(hour=0, minute=0, second=0, microsecond=0), now)
        volume_24h = candle.volume * 1440
        return ok(
            {
                "error": [],
                "result": {
                    KRAKEN_PAIR: {
                        "a": [f"{price + 0.1:.5f}", "1", "1.000"],
                        "b": [f"{price:.5f}", "1", "1.000"],
                        "c": [f"{price:.5f}", "0.00100000"],
                        "v": [f"{volume_24h / 2:.8f}", f"{volume_24h:.8f}"],
                        "p": [f"{price:.5f}", f"{price:.5f}"],
                        "t": [candle.trades * 720, candle.trades * 1440],
                        "l": [f"{min(price, day.open) * 0.99:.5f}"] * 2,
                        "h": [f"{max(price, day.open) * 1.01:.5f}"] * 2,
                        "o": f"{day.open:.5f}",
                    }
                },
            }
        )
    if query.get("interval", "1") != "1":
        return ok({"error": ["EGeneral:Invalid arguments:interval (the simulated exchange serves 1 only)"]})
    current = floor(now)
    oldest = current - MINUTE * (KRAKEN_HORIZON_ROWS - 1)
    start = oldest
    if "since" in query:
        try:
            start = max(oldest, parse_time(query["since"]) + timedelta(seconds=1))  # rows after `since`
        except ValueError:
            return ok({"error": ["EGeneral:Invalid arguments:since"]})
    candles = market.candles("kraken", start, current + MINUTE, now)
    if fault == "empty":
        candles = []
    elif fault == "tradeless":  # no trades since `since`: only the open minute remains
        candles = [c for c in candles if c.ts == current]
    rows = [
        [
            int(c.ts.timestamp()),
            f"{c.open:.1f}",
            f"{c.high:.1f}",
            f"{c.low:.1f}",
            f"{c.close:.1f}",
            f"{(c.open + c.high + c.low + c.close) / 4:.1f}",
            f"{c.volume:.8f}",
            c.trades,
        ]
        for c in candles
    ]
    return ok({"error": [], "result": {KRAKEN_PAIR: rows, "last": int((current - MINUTE).timestamp())}})
