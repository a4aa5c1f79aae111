"""HTTP server speaking four exchanges' public REST paths and response shapes.

Production provider code runs against it unchanged, with only its base URL pointed here::

    BTC_COINBASE_URL=http://127.0.0.1:8090/coinbase
    BTC_KRAKEN_URL=http://127.0.0.1:8090/kraken/0
    BTC_BINANCE_URL=http://127.0.0.1:8090/binance
    BTC_BITSTAMP_URL=http://127.0.0.1:8090/bitstamp/api/v2

All four serve the one :class:`PricePath`, so any past window is reproducible, each with a small
fixed price offset (:data:`PRICE_OFFSET_BPS`, a few basis points, as between real venues; Binance's
is its USDT quote) and its own price precision, so the cross-exchange spread is small but not zero.
What each one reproduces:

- **coinbase** ``/products/BTC-USD/{ticker,candles}``: rows ``[time, low, high, open, close,
  volume]`` newest first, at most 300 per request (more is a 400, like Coinbase), closed minutes only.
- **kraken** ``/0/public/{Ticker,OHLC}?pair=XBTUSD``: ``{"error": [], "result": {"XXBTZUSD": ...,
  "last": ...}}``; OHLC rows ``[time, open, high, low, close, vwap, volume, count]`` with string
  decimals, only the latest 720 rows, rows after ``since``, and the current unfinished minute as the
  last row. Errors come as HTTP 200 with a non-empty ``error`` array.
- **binance** ``/api/v3/klines``, ``/api/v3/ticker/24hr`` (``symbol=BTCUSDT``): 12-field kline rows,
  millisecond times, at most 1000 rows (``limit`` above 1000 is a 400), the open kline included.
- **bitstamp** ``/api/v2/ohlc/btcusd/``, ``/api/v2/ticker/btcusd/``: ``{"data": {"pair", "ohlc":
  [...]}}`` with string values; ``step`` and ``limit`` (1..1000) required; ``end`` wins over
  ``start``; ``exclude_current_candle``.

Faults are injected per exchange through a control endpoint, consumed one request at a time::

    POST   /_control/faults  {"exchange": "kraken", "kind": "kraken_error", "times": 2}
    DELETE /_control/faults  (clear all)
    GET    /_control/faults  (list what is queued)
    GET    /_health          (status, seed, requests served per exchange)

Fault kinds: ``429`` and ``418`` (with Retry-After), ``451`` (restricted location), ``500``,
``503``, ``timeout`` (sleeps ``delay_s``, then 504), ``malformed`` (a body that is not JSON),
``empty`` (a candle request answers with no candles at all), ``tradeless`` (a candle request answers
without rows for the requested minutes, as Coinbase does for minutes without trades; Kraken keeps its
unfinished row), ``kraken_error`` (Kraken only: HTTP 200 with ``{"error": ["EService:Unavailable"]}``).
``empty`` and ``tradeless`` leave ticker requests unchanged (but are still consumed by them).
"""

from __future__ import annotations

import argparse
import json
import logging
import threading
import time
from collections import Counter
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from btc_pipeline.simexchange.pricepath import PricePath, SimCandle

log = logging.getLogger(__name__)

EXCHANGES = ("coinbase", "kraken", "binance", "bitstamp")
FAULT_KINDS = (
    "429",
    "418",
    "451",
    "500",
    "503",
    "timeout",
    "malformed",
    "empty",
    "tradeless",
    "kraken_error",
)
#: Fixed per-exchange price offsets in basis points (Binance quotes USDT).
PRICE_OFFSET_BPS = {"coinbase": 0.0, "kraken": 2.0, "binance": -6.0, "bitstamp": 1.0}
#: Decimals each exchange quotes BTC in (Bitstamp's BTC/USD is whole dollars).
PRICE_DECIMALS = {"coinbase": 2, "kraken": 1, "binance": 2, "bitstamp": 0}
KRAKEN_HORIZON_ROWS = 720
KRAKEN_PAIR = "XXBTZUSD"
BINANCE_MAX_LIMIT = 1000
BITSTAMP_MAX_LIMIT = 1000
MINUTE = timedelta(minutes=1)

Reply = tuple[int, Any, dict[str, str]]


@dataclass
class Fault:
    kind: str
    times: int
    retry_after: float = 1.0
    delay_s: float = 30.0


class FaultBook:
    """Per-exchange queues of faults, consumed one request at a time. Thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: dict[str, list[Fault]] = {}

    def add(self, exchange: str, fault: Fault) -> None:
        with self._lock:
            self._faults.setdefault(exchange, []).append(fault)

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()

    def take(self, exchange: str) -> Fault | None:
        with self._lock:
            queue = self._faults.get(exchange, [])
            if not queue:
                return None
            fault = queue[0]
            fault.times -= 1
            if fault.times <= 0:
                queue.pop(0)
            return fault

    def snapshot(self) -> dict[str, list[dict[str, Any]]]:
        with self._lock:
            return {ex: [vars(f).copy() for f in q] for ex, q in self._faults.items() if q}


def _parse_time(value: str) -> datetime:
    if value.replace(".", "", 1).isdigit():
        return datetime.fromtimestamp(float(value), UTC)
    return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)


def _iso_us(ts: datetime) -> str:
    return ts.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _ms(ts: datetime) -> int:
    return int(ts.timestamp()) * 1000 + ts.microsecond // 1000


def _floor(ts: datetime) -> datetime:
    return ts.replace(second=0, microsecond=0)


def _ok(body: Any) -> Reply:
    return 200, body, {}


class SimExchange:
    """The state behind the HTTP handler: price path, faults, a clock and request counts."""

    def __init__(self, seed: int = 42, clock: Any = None) -> None:
        self.path = PricePath(seed)
        self.faults = FaultBook()
        self.clock = clock or (lambda: datetime.now(UTC))
        self.requests: Counter[str] = Counter()

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
        if ts == _floor(now):  # still open: the close is the latest price, inside [low, high]
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
        end = min(end, _floor(now) + MINUTE)
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

    # --- Coinbase Exchange -------------------------------------------------------------------
    def coinbase(self, route: str, query: dict[str, str], fault: str | None) -> Reply:
        """Answer a GET under ``/coinbase`` the way Coinbase Exchange would (``fault``: empty, tradeless or None)."""
        parts = route.strip("/").split("/")
        if len(parts) != 3 or parts[0] != "products" or parts[1] != "BTC-USD":
            return 404, {"message": "NotFound"}, {}
        now = self.clock()
        if parts[2] == "ticker":
            trade_time, price, candle = self.tick("coinbase", now)
            return _ok(
                {
                    "ask": f"{price + 0.01:.2f}",
                    "bid": f"{price - 0.01:.2f}",
                    "volume": f"{candle.volume * 1440:.8f}",
                    "trade_id": int(trade_time.timestamp()),
                    "price": f"{price:.2f}",
                    "size": "0.00100000",
                    "time": _iso_us(trade_time),
                    "rfq_volume": "0.000000",
                }
            )
        if parts[2] != "candles":
            return 404, {"message": "NotFound"}, {}
        if query.get("granularity", "60") != "60":
            return 400, {"message": "Unsupported granularity for the simulated exchange"}, {}
        try:
            end = _parse_time(query["end"]) if "end" in query else now
            start = _parse_time(query["start"]) if "start" in query else end - timedelta(minutes=300)
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
            return _ok([])
        closed = [c for c in self.candles("coinbase", start, end + MINUTE, now) if c.ts < _floor(now)]
        rows = [[int(c.ts.timestamp()), c.low, c.high, c.open, c.close, c.volume] for c in closed]
        return _ok(rows[::-1])  # newest first, like Coinbase

    # --- Kraken ------------------------------------------------------------------------------
    def kraken(self, route: str, query: dict[str, str], fault: str | None) -> Reply:
        """Answer a GET under ``/kraken`` the way Kraken would (``fault``: empty, tradeless or None)."""
        method = route.strip("/").removeprefix("0/")
        if method not in ("public/Ticker", "public/OHLC"):
            return _ok({"error": ["EGeneral:Unknown method"]})
        if query.get("pair", "").upper() not in ("XBTUSD", KRAKEN_PAIR):
            return _ok({"error": ["EQuery:Unknown asset pair"]})
        now = self.clock()
        if method == "public/Ticker":
            _, price, candle = self.tick("kraken", now)
            day = self.candle("kraken", now.replace(hour=0, minute=0, second=0, microsecond=0), now)
            volume_24h = candle.volume * 1440
            return _ok(
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
            return _ok({"error": ["EGeneral:Invalid arguments:interval (the simulated exchange serves 1 only)"]})
        current = _floor(now)
        oldest = current - MINUTE * (KRAKEN_HORIZON_ROWS - 1)
        start = oldest
        if "since" in query:
            try:
                start = max(oldest, _parse_time(query["since"]) + timedelta(seconds=1))  # rows after `since`
            except ValueError:
                return _ok({"error": ["EGeneral:Invalid arguments:since"]})
        candles = self.candles("kraken", start, current + MINUTE, now)
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
        return _ok({"error": [], "result": {KRAKEN_PAIR: rows, "last": int((current - MINUTE).timestamp())}})

    # --- Binance Spot ------------------------------------------------------------------------
    def binance(self, route: str, query: dict[str, str], fault: str | None) -> Reply:
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
        now = self.clock()
        if route == "/api/v3/ticker/24hr":
            trade_time, price, candle = self.tick("binance", now)
            opened = self.quote("binance", self.path.price_at(now - timedelta(days=1)))
            return _ok(
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
                    "openTime": _ms(trade_time) - 86_400_000,
                    "closeTime": _ms(trade_time),
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
        last = _floor(now)
        if end_ms is not None:
            last = min(last, _floor(datetime.fromtimestamp(end_ms / 1000, UTC)))
        if start_ms is not None:
            first = _floor(datetime.fromtimestamp((start_ms + 59_999) // 60_000 * 60, UTC))  # first open >= start
            last = min(last, first + MINUTE * (limit - 1))
        else:
            first = last - MINUTE * (limit - 1)
        candles = self.candles("binance", first, last + MINUTE, now)
        if fault in ("empty", "tradeless"):
            candles = []
        rows = [
            [
                _ms(c.ts),
                f"{c.open:.8f}",
                f"{c.high:.8f}",
                f"{c.low:.8f}",
                f"{c.close:.8f}",
                f"{c.volume:.8f}",
                _ms(c.ts) + 59_999,
                f"{c.volume * c.close:.8f}",
                c.trades,
                f"{c.volume / 2:.8f}",
                f"{c.volume * c.close / 2:.8f}",
                "0",
            ]
            for c in candles
        ]
        return _ok(rows)

    # --- Bitstamp ----------------------------------------------------------------------------
    def bitstamp(self, route: str, query: dict[str, str], fault: str | None) -> Reply:
        """Answer a GET under ``/bitstamp`` the way Bitstamp would (``fault``: empty, tradeless or None)."""
        parts = route.strip("/").removeprefix("api/v2/").split("/")
        if len(parts) != 2 or parts[0] not in ("ohlc", "ticker"):
            return 404, {"status": "error", "reason": "Not found"}, {}
        if parts[1] != "btcusd":
            return 404, {"status": "error", "reason": f"Invalid currency pair {parts[1]!r}"}, {}
        now = self.clock()
        if parts[0] == "ticker":
            trade_time, price, candle = self.tick("bitstamp", now)
            opened = self.quote("bitstamp", self.path.price_at(now - timedelta(days=1)))
            return _ok(
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
            start = _parse_time(query["start"]) if "start" in query else None
            end = _parse_time(query["end"]) if "end" in query else None
        except ValueError:
            return 400, {"status": "error", "errors": [{"field": "start/end/limit", "message": "Not a number."}]}, {}
        if not 1 <= limit <= BITSTAMP_MAX_LIMIT:
            errors.append({"field": "limit", "message": "Must be between 1 and 1000."})
        if errors:
            return 400, {"status": "error", "reason": "Invalid request", "errors": errors}, {}
        exclude_current = query.get("exclude_current_candle", "false").lower() == "true"
        newest = _floor(now) - (MINUTE if exclude_current else timedelta(0))
        if end is not None:  # "if both start and end are posted, end will be used"
            last = min(_floor(end), newest)
            first = last - MINUTE * (limit - 1)
        elif start is not None:
            first = _floor(start) + (MINUTE if _floor(start) < start else timedelta(0))
            last = min(first + MINUTE * (limit - 1), newest)
        else:
            last = newest
            first = last - MINUTE * (limit - 1)
        candles = [] if fault in ("empty", "tradeless") else self.candles("bitstamp", first, last + MINUTE, now)
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
        return _ok({"data": {"pair": "BTC/USD", "ohlc": ohlc}})


def _fault_reply(exchange: str, fault: Fault) -> Reply:
    """The answer of an injected fault (``empty``/``tradeless`` are handled by the exchanges)."""
    if fault.kind in ("429", "418"):
        if exchange == "binance":
            body: Any = {
                "code": -1003,
                "msg": "Too much request weight used; current limit is 6000 request weight per 1 MINUTE.",
            }
        else:
            body = {"message": "Too Many Requests"}
        return int(fault.kind), body, {"Retry-After": f"{fault.retry_after:g}"}
    if fault.kind == "451":
        return 451, {"code": 0, "msg": "Service unavailable from a restricted location (injected)."}, {}
    if fault.kind in ("500", "503"):
        return int(fault.kind), {"message": "Internal Server Error (injected)"}, {}
    if fault.kind == "timeout":
        time.sleep(fault.delay_s)
        return 504, {"message": "Gateway Timeout (injected, after delay)"}, {}
    if fault.kind == "kraken_error":
        return 200, {"error": ["EService:Unavailable"], "result": {}}, {}
    return 200, b"<html>502 Bad Gateway</html>", {}  # malformed


def make_handler(sim: SimExchange) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "btc-simexchange/2"

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
            log.debug("%s " + format, self.address_string(), *args)

        def _send(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
            raw = body if isinstance(body, bytes) else json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(raw)))
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(raw)

        def do_GET(self) -> None:
            url = urlsplit(self.path)
            query = {k: v[-1] for k, v in parse_qs(url.query).items()}
            if url.path == "/_health":
                return self._send(200, {"status": "ok", "seed": sim.path.seed, "requests": dict(sim.requests)})
            if url.path == "/_control/faults":
                return self._send(200, sim.faults.snapshot())
            exchange, _, route = url.path.lstrip("/").partition("/")
            if exchange not in EXCHANGES:
                return self._send(404, {"message": f"unknown exchange {exchange!r}; known: {EXCHANGES}"})
            sim.requests[exchange] += 1
            fault = sim.faults.take(exchange)
            if fault is not None and fault.kind not in ("empty", "tradeless"):
                return self._send(*_fault_reply(exchange, fault))
            status, body, headers = getattr(sim, exchange)("/" + route, query, fault.kind if fault else None)
            return self._send(status, body, headers)

        def do_POST(self) -> None:
            if urlsplit(self.path).path != "/_control/faults":
                return self._send(404, {"message": "NotFound"})
            try:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", "0"))) or b"{}")
                exchange, kind = body["exchange"], str(body["kind"])
                if exchange not in EXCHANGES or kind not in FAULT_KINDS:
                    raise ValueError(f"exchange must be one of {EXCHANGES}, kind one of {FAULT_KINDS}")
                if kind == "kraken_error" and exchange != "kraken":
                    raise ValueError("kind kraken_error is Kraken's error-array answer; use it with exchange kraken")
                fault = Fault(
                    kind=kind,
                    times=int(body.get("times", 1)),
                    retry_after=float(body.get("retry_after", 1.0)),
                    delay_s=float(body.get("delay_s", 30.0)),
                )
            except (KeyError, ValueError, TypeError) as exc:
                return self._send(400, {"message": f"bad fault: {exc}"})
            sim.faults.add(exchange, fault)
            return self._send(201, sim.faults.snapshot())

        def do_DELETE(self) -> None:
            if urlsplit(self.path).path != "/_control/faults":
                return self._send(404, {"message": "NotFound"})
            sim.faults.clear()
            return self._send(200, {})

    return Handler


def serve(host: str, port: int, seed: int) -> ThreadingHTTPServer:
    """Create (not start) the server; call ``serve_forever()`` on the result."""
    server = ThreadingHTTPServer((host, port), make_handler(SimExchange(seed)))
    server.daemon_threads = True
    return server


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m btc_pipeline.simexchange.server", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8090)
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    server = serve(args.host, args.port, args.seed)
    log.info("simulated exchange on http://%s:%d (seed %d)", args.host, args.port, args.seed)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":  # no __main__.py: Airflow imports every module under plugins/
    main()
