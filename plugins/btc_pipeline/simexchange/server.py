"""HTTP server speaking the exchanges' public REST paths and response shapes.

Production provider code runs against it unchanged, with only its base URL pointed here:
``BTC_COINBASE_URL=http://127.0.0.1:8090/coinbase``. Prices come from :class:`PricePath`, so any
past window is reproducible. Faults are injected per exchange through a control endpoint::

    POST   /_control/faults  {"exchange": "coinbase", "kind": "429", "times": 2, "retry_after": 1}
    DELETE /_control/faults  (clear all)
    GET    /_control/faults  (list what is queued)
    GET    /_health

Fault kinds: ``429`` (with Retry-After), ``500``, ``503``, ``timeout`` (sleeps ``delay_s``),
``malformed`` (a body that is not JSON), ``empty`` (no candles).
"""

from __future__ import annotations

import argparse
import json
import logging
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from btc_pipeline.simexchange.pricepath import PricePath

log = logging.getLogger(__name__)

FAULT_KINDS = ("429", "500", "503", "timeout", "malformed", "empty")
EXCHANGES = ("coinbase",)


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


class SimExchange:
    """The state behind the HTTP handler: price path, faults and a clock."""

    def __init__(self, seed: int = 42, clock: Any = None) -> None:
        self.path = PricePath(seed)
        self.faults = FaultBook()
        self.clock = clock or (lambda: datetime.now(UTC))
        self.requests = 0

    # --- Coinbase Exchange -------------------------------------------------------------------
    def coinbase(self, route: str, query: dict[str, str]) -> tuple[int, Any]:
        parts = route.strip("/").split("/")
        if len(parts) != 3 or parts[0] != "products":
            return 404, {"message": "NotFound"}
        product, what = parts[1], parts[2]
        if product != "BTC-USD":
            return 404, {"message": "NotFound"}
        now = self.clock()
        if what == "ticker":
            trade_time = now - timedelta(seconds=1)
            price = self.path.price_at(trade_time)
            candle = self.path.candle(trade_time)
            return 200, {
                "ask": f"{price + 0.01:.2f}",
                "bid": f"{price - 0.01:.2f}",
                "volume": f"{candle.volume * 1440:.8f}",
                "trade_id": int(trade_time.timestamp()),
                "price": f"{price:.2f}",
                "size": "0.00100000",
                "time": _iso_us(trade_time),
                "rfq_volume": "0.000000",
            }
        if what == "candles":
            if query.get("granularity", "60") != "60":
                return 400, {"message": "Unsupported granularity for the simulated exchange"}
            try:
                end = _parse_time(query["end"]) if "end" in query else now
                start = _parse_time(query["start"]) if "start" in query else end - timedelta(minutes=300)
            except ValueError:
                return 400, {"message": "Invalid start or end"}
            if (end - start) / timedelta(minutes=1) > 300:
                return 400, {
                    "message": "granularity too small for the requested time range. "
                    "Count of aggregations requested exceeds 300"
                }
            closed_before = now.replace(second=0, microsecond=0)  # the current minute is still open
            rows = [
                [int(c.ts.timestamp()), c.low, c.high, c.open, c.close, c.volume]
                for c in self.path.candles(start, min(end + timedelta(minutes=1), closed_before))
                if c.ts <= end
            ]
            return 200, rows[::-1]  # newest first, like Coinbase
        return 404, {"message": "NotFound"}


def make_handler(sim: SimExchange) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "btc-simexchange/1"

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
                return self._send(200, {"status": "ok", "seed": sim.path.seed})
            if url.path == "/_control/faults":
                return self._send(200, sim.faults.snapshot())
            exchange, _, route = url.path.lstrip("/").partition("/")
            if exchange not in EXCHANGES:
                return self._send(404, {"message": f"unknown exchange {exchange!r}; known: {EXCHANGES}"})
            sim.requests += 1
            fault = sim.faults.take(exchange)
            if fault is not None and fault.kind != "empty":
                return self._fault(fault)
            status, body = getattr(sim, exchange)("/" + route, query)
            if fault is not None and fault.kind == "empty" and isinstance(body, list):
                body = []
            return self._send(status, body)

        def _fault(self, fault: Fault) -> None:
            if fault.kind == "429":
                return self._send(429, {"message": "Too Many Requests"}, {"Retry-After": f"{fault.retry_after:g}"})
            if fault.kind in ("500", "503"):
                return self._send(int(fault.kind), {"message": "Internal Server Error (injected)"})
            if fault.kind == "timeout":
                time.sleep(fault.delay_s)
                return self._send(504, {"message": "Gateway Timeout (injected, after delay)"})
            return self._send(200, b"<html>502 Bad Gateway</html>")  # malformed

        def do_POST(self) -> None:
            if urlsplit(self.path).path != "/_control/faults":
                return self._send(404, {"message": "NotFound"})
            try:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", "0"))) or b"{}")
                exchange, kind = body["exchange"], str(body["kind"])
                if exchange not in EXCHANGES or kind not in FAULT_KINDS:
                    raise ValueError(f"exchange must be one of {EXCHANGES}, kind one of {FAULT_KINDS}")
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
