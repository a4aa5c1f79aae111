"""Bitstamp, ``/bitstamp/api/v2/{ohlc,ticker}/btcusd/``: ``{"data": {"pair", "ohlc": [...]}}`` with string
values; ``step`` and ``limit`` (1..1000) required; ``end`` wins over ``start``; ``exclude_current_candle``."""

from __future__ import annotations

from datetime import timedelta

from simexchange.market import MINUTE, Market, Reply, floor, ok, parse_time

NAME = "bitstamp"
BITSTAMP_MAX_LIMIT = 1000


def answer(market: Market, route: str, query: dict[str, str], fault: str | None) -> Reply:
    """Answer a GET under ``/bitstamp`` the way Bitstamp would (``fault``: empty, tradeless or None)."""
    parts = route.strip("/").removeprefix("api/v2/").split("/")
    if len(parts) != 2 or parts[0] not in ("ohlc", "ticker"):
        return 404, {"status": "error", "reason": "Not found"}, {}
    if parts[1] != "btcusd":
        return 404, {"status": "error", "reason": f"Invalid currency pair {parts[1]!r}"}, {}
    now = market.clock()
    if parts[0] == "ticker":
        trade_time, price, candle = market.tick("bitstamp", now)
        opened = market.quote("bitstamp", market.path.price_at(now - timedelta(days=1)))
        return ok(
            {
                "timestamp": str(int(trade_time.timestamp())),
                "open": f"{opened:.0f}",
                "high": f"{max(price, opened) * 1.01:.0f}",
                "low": f"{min(price, opened) * 0.99:.0f}",
                "last": f"{price:.0f}",
                "volume": f"{candle.volume * 1440:.8f}",
                "vwap": f"{(price + opened) / 2:.0f}",
                "bid": f"{price - 1:.0f}",
                "ask": f"{price + 1:.0f}",
                "side": "0",
                "open_24": f"{opened:.0f}",
                "percent_change_24": f"{(price / opened - 1) * 100:.2f}",
            }
        )
    errors = []
    for name in ("step", "limit"):
        if name not in query:
            errors.append({"field": name, "message": "Missing data for required field.", "code": "invalid"})
    if "step" in query and query["step"] != "60":
        errors.append({"field": "step", "message": "Not a valid choice (the simulated exchange serves 60)."})
    try:
        limit = int(query.get("limit", "1"))
        start = parse_time(query["start"]) if "start" in query else None
        end = parse_time(query["end"]) if "end" in query else None
    except ValueError:
        return 400, {"status": "error", "errors": [{"field": "start/end/limit", "message": "Not a number."}]}, {}
    if not 1 <= limit <= BITSTAMP_MAX_LIMIT:
        errors.append({"field": "limit", "message": "Must be between 1 and 1000."})
    if errors:
        return 400, {"status": "error", "reason": "Invalid request", "errors": errors}, {}
    exclude_current = query.get("exclude_current_candle", "false").lower() == "true"
    newest = floor(now) - (MINUTE if exclude_current else timedelta(0))
    if end is not None:  # "if both start and end are posted, end will be used"
        last = min(floor(end), newest)
        first = last - MINUTE * (limit - 1)
    elif start is not None:
        first = floor(start) + (MINUTE if floor(start) < start else timedelta(0))
        last = min(first + MINUTE * (limit - 1), newest)
    else:
        last = newest
        first = last - MINUTE * (limit - 1)
    candles = [] if fault in ("empty", "tradeless") else market.candles("bitstamp", first, last + MINUTE, now)
    ohlc = [
        {
            "timestamp": str(int(c.ts.timestamp())),
            "open": f"{c.open:.0f}",
            "high": f"{c.high:.0f}",
            "low": f"{c.low:.0f}",
            "close": f"{c.close:.0f}",
            "volume": f"{c.volume:.8f}",
        }
        for c in candles
    ]
    return ok({"data": {"pair": "BTC/USD", "ohlc": ohlc}})
