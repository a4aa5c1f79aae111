"""Coinbase Exchange, ``/coinbase/products/BTC-USD/{ticker,candles}``: rows ``[time, low, high, open, close,
volume]`` newest first, at most 300 per request (more is a 400), closed minutes only."""

from __future__ import annotations

from datetime import timedelta

from simexchange.market import MINUTE, Market, Reply, floor, iso_us, ok, parse_time

NAME = "coinbase"


def answer(market: Market, route: str, query: dict[str, str], fault: str | None) -> Reply:
    """Answer a GET under ``/coinbase`` the way Coinbase Exchange would (``fault``: empty, tradeless or None)."""
    parts = route.strip("/").split("/")
    if len(parts) != 3 or parts[0] != "products" or parts[1] != "BTC-USD":
        return 404, {"message": "NotFound"}, {}
    now = market.clock()
    if parts[2] == "ticker":
        trade_time, price, candle = market.tick("coinbase", now)
        return ok(
            {
                "ask": f"{price + 0.01:.2f}",
                "bid": f"{price - 0.01:.2f}",
                "volume": f"{candle.volume * 1440:.8f}",
                "trade_id": int(trade_time.timestamp()),
                "price": f"{price:.2f}",
                "size": "0.00100000",
                "time": iso_us(trade_time),
                "rfq_volume": "0.000000",
            }
        )
    if parts[2] != "candles":
        return 404, {"message": "NotFound"}, {}
    if query.get("granularity", "60") != "60":
        return 400, {"message": "Unsupported granularity for the simulated exchange"}, {}
    try:
        end = parse_time(query["end"]) if "end" in query else now
        start = parse_time(query["start"]) if "start" in query else end - timedelta(minutes=300)
    except ValueError:
        return 400, {"message": "Invalid start or end"}, {}
    if (end - start) / MINUTE > 300:
        return (
            400,
            {
                "message": "granularity too small for the requested time range. "
                "Count of aggregations requested exceeds 300"
            },
            {},
        )
    if fault in ("empty", "tradeless"):  # every requested minute: no rows
        return ok([])
    closed = [c for c in market.candles("coinbase", start, end + MINUTE, now) if c.ts < floor(now)]
    rows = [[int(c.ts.timestamp()), c.low, c.high, c.open, c.close, c.volume] for c in closed]
    return ok(rows[::-1])  # newest first, like Coinbase
