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

The venues are in ``simexchange.venues`` (one module each, mirroring ``btc_pipeline.exchanges``),
the price path they quote in ``simexchange.market``, the faults in ``simexchange.faults``.

Faults are injected per exchange through a control endpoint, consumed one request at a time::

    POST   /_control/faults  {"exchange": "kraken", "kind": "kraken_error", "times": 2}
                             (+ "path": "OHLC": only requests whose path contains it)
    DELETE /_control/faults  (clear all)
    GET    /_control/faults  (list what is queued)
    GET    /_health          (status, seed, requests served per exchange)
    GET    /_control/requests[?exchange=kraken]  (the latest requests: exchange, path, time)
    DELETE /_control/requests  (forget them)

Fault kinds: ``429`` and ``418`` (with Retry-After), ``451`` (restricted location), ``500``,
``503``, ``timeout`` (sleeps ``delay_s``, then 504), ``malformed`` (a body that is not JSON),
``empty`` (a candle request answers with no candles at all), ``tradeless`` (a candle request answers
without rows for the requested minutes, as Coinbase does for minutes without trades; Kraken keeps its
unfinished row), ``kraken_error`` (Kraken only: HTTP 200 with ``{"error": ["EService:Unavailable"]}``).
``empty`` and ``tradeless`` leave ticker requests unchanged (but are still consumed by them).
Hostile answers: ``error_200`` (the venue's own error body with HTTP 200), ``deep_nesting`` (JSON
arrays nested 100,000 deep), ``future_ts`` / ``ancient_ts`` (the venue's answer with every time
moved to 2096 / 2001), ``huge_number`` (every other number 400 digits long), ``drip`` (the venue's
answer sent one byte every ``delay_s`` seconds, default 1).
"""

from __future__ import annotations

import argparse
import json
import logging
import threading
import time
from collections import Counter, deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from simexchange.faults import ALTER_ANSWER, FAULT_KINDS, SHAPED_BY_VENUE, Fault, FaultBook, altered, fault_reply
from simexchange.market import EXCHANGES, Market
from simexchange.venues import VENUES

log = logging.getLogger(__name__)


class SimExchange:
    """The state behind the HTTP handler: the market, the faults, and the requests served."""

    def __init__(self, seed: int = 42, clock: Any = None) -> None:
        self.market = Market(seed, clock)
        self.faults = FaultBook()
        self.requests: Counter[str] = Counter()
        self._log: deque[dict[str, Any]] = deque(maxlen=2000)
        self._lock = threading.Lock()

    def record(self, exchange: str, path: str) -> None:
        """Count a request and keep when it came (for retry and backoff tests)."""
        with self._lock:
            self.requests[exchange] += 1
            self._log.append({"exchange": exchange, "path": path, "time": time.time()})

    def request_log(self, exchange: str | None = None) -> list[dict[str, Any]]:
        with self._lock:
            return [r for r in self._log if exchange is None or r["exchange"] == exchange]

    def forget_requests(self) -> None:
        with self._lock:
            self._log.clear()


def make_handler(sim: SimExchange) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "btc-simexchange/2"

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
            log.debug("%s " + format, self.address_string(), *args)

        def _send(self, status: int, body: Any, headers: dict[str, str] | None = None, drip_s: float = 0.0) -> None:
            raw = body if isinstance(body, bytes) else json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(raw)))
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            if not drip_s:
                self.wfile.write(raw)
                return
            try:  # a slow drip: one byte at a time
                for i in range(len(raw)):
                    self.wfile.write(raw[i : i + 1])
                    self.wfile.flush()
                    time.sleep(drip_s)
            except OSError:
                log.info("%s hung up during a drip after %d of %d bytes", self.address_string(), i, len(raw))

        def do_GET(self) -> None:
            url = urlsplit(self.path)
            query = {k: v[-1] for k, v in parse_qs(url.query).items()}
            if url.path == "/_health":
                return self._send(200, {"status": "ok", "seed": sim.market.path.seed, "requests": dict(sim.requests)})
            if url.path == "/_control/faults":
                return self._send(200, sim.faults.snapshot())
            if url.path == "/_control/requests":
                return self._send(200, sim.request_log(query.get("exchange")))
            exchange, _, route = url.path.lstrip("/").partition("/")
            if exchange not in EXCHANGES:
                return self._send(404, {"message": f"unknown exchange {exchange!r}; known: {EXCHANGES}"})
            sim.record(exchange, url.path)
            fault = sim.faults.take(exchange, url.path)
            kind = fault.kind if fault else None
            if fault is not None and kind not in SHAPED_BY_VENUE + ALTER_ANSWER:
                return self._send(*fault_reply(exchange, fault))
            status, body, headers = VENUES[exchange](
                sim.market, "/" + route, query, kind if kind in SHAPED_BY_VENUE else None
            )
            if fault is not None and kind in ALTER_ANSWER:
                return self._send(status, altered(fault.kind, body), headers, fault.delay_s if kind == "drip" else 0.0)
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
                    delay_s=float(body.get("delay_s", 1.0 if kind == "drip" else 30.0)),
                    path=str(body["path"]) if body.get("path") else None,
                )
            except (KeyError, ValueError, TypeError) as exc:
                return self._send(400, {"message": f"bad fault: {exc}"})
            sim.faults.add(exchange, fault)
            return self._send(201, sim.faults.snapshot())

        def do_DELETE(self) -> None:
            path = urlsplit(self.path).path
            if path == "/_control/faults":
                sim.faults.clear()
            elif path == "/_control/requests":
                sim.forget_requests()
            else:
                return self._send(404, {"message": "NotFound"})
            return self._send(200, {})

    return Handler


def serve(host: str, port: int, seed: int) -> ThreadingHTTPServer:
    """Create (not start) the server; call ``serve_forever()`` on the result."""
    server = ThreadingHTTPServer((host, port), make_handler(SimExchange(seed)))
    server.daemon_threads = True
    return server


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m simexchange", description=(__doc__ or "").splitlines()[0])
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


if __name__ == "__main__":
    main()
