"""Binance Spot, ``/binance/api/v3/{klines,ticker/24hr}?symbol=BTCUSDT``: 12-field kline rows, millisecond
times, at most 1000 rows (``limit`` above 1000 is a 400), the open kline included."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from simexchange.market import MINUTE, Market, Reply, floor, millis, ok

NAME = "binance"
BINANCE_MAX_LIMIT = 1000


def answer(market: Market, route: str, query: dict[str, str], fault: str | None) -> Reply:
    """Answer a GET under ``/binance`` the way Binance Spot would (``fault``: empty, tradeless or None)."""
    route = route.rstrip("/")
    if route not in ("/api/v3/klines", "/api/v3/ticker/24hr"):
        return 404, {"code": -1, "msg": f"unknown path {route}"}, {}
    if "symbol" not in query:
        return (
            400,
            {"code": -1102, "msg": "Mandatory parameter 'symbol' was not sent, was empty/null, or malformed."},
            {},
        )
    if query["symbol"] != "BTCUSDT":
        return 400, {"code": -1121, "msg": "Invalid symbol."}, {}
    now = market.clock()
    if route == "/api/v3/ticker/24hr":
        trade_time, price, candle = market.tick("binance", now)
        opened = market.quote("binance", market.path.price_at(now - timedelta(days=1)))
        return ok(
            {
                "symbol": "BTCUSDT",
                "priceChange": f"{price - opened:.8f}",
                "priceChangePercent": f"{(price / opened - 1) * 100:.3f}",
                "weightedAvgPrice": f"{(price + opened) / 2:.8f}",
                "prevClosePrice": f"{opened:.8f}",
                "lastPrice": f"{price:.8f}",
                "lastQty": "0.00100000",
                "bidPrice": f"{price - 0.01:.8f}",
                "bidQty": "1.00000000",
                "askPrice": f"{price:.8f}",
                "askQty": "1.00000000",
                "openPrice": f"{opened:.8f}",
                "highPrice": f"{max(price, opened) * 1.01:.8f}",
                "lowPrice": f"{min(price, opened) * 0.99:.8f}",
                "volume": f"{candle.volume * 1440:.8f}",
                "quoteVolume": f"{candle.volume * 1440 * price:.8f}",
                "openTime": millis(trade_time) - 86_400_000,
                "closeTime": millis(trade_time),
                "firstId": 1,
                "lastId": candle.trades * 1440,
                "count": candle.trades * 1440,
            }
        )
    if query.get("interval") != "1m":
        return 400, {"code": -1120, "msg": "Invalid interval. (the simulated exchange serves 1m only)"}, {}
    try:
        limit = int(query.get("limit", "500"))
        start_ms = int(query["startTime"]) if "startTime" in query else None
        end_ms = int(query["endTime"]) if "endTime" in query else None
    except ValueError:
        return 400, {"code": -1100, "msg": "Illegal characters found in a parameter."}, {}
    if not 1 <= limit <= BINANCE_MAX_LIMIT:
        return 400, {"code": -1130, "msg": "Invalid data sent for a parameter: limit must be 1..1000."}, {}
    last = floor(now)
    if end_ms is not None:
        last = min(last, floor(datetime.fromtimestamp(end_ms / 1000, UTC)))
    if start_ms is not None:
        first = floor(datetime.fromtimestamp((start_ms + 59_999) // 60_000 * 60, UTC))  # first open >= start
        last = min(last, first + MINUTE * (limit - 1))
    else:
        first = last - MINUTE * (limit - 1)
    candles = market.candles("binance", first, last + MINUTE, now)
    if fault in ("empty", "tradeless"):
        candles = []
    rows = [
        [
            millis(c.ts),
            f"{c.open:.8f}",
            f"{c.high:.8f}",
            f"{c.low:.8f}",
            f"{c.close:.8f}",
            f"{c.volume:.8f}",
            millis(c.ts) + 59_999,
            f"{c.volume * c.close:.8f}",
            c.trades,
            f"{c.volume / 2:.8f}",
            f"{c.volume * c.close / 2:.8f}",
            "0",
        ]
        for c in candles
    ]
    return ok(rows)
