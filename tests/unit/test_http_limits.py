"""The HTTP layer against a real local server that answers with bodies of our choosing: deeply
nested JSON, bodies beyond the size cap, and bodies dripped one byte at a time."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from btc_pipeline.exchanges.base import ExchangeError
from btc_pipeline.exchanges.http import HttpClient

DEEP_JSON = b"[" * 100_000 + b"]" * 100_000


@contextmanager
def serving(body: bytes, *, status: int = 200, drip_s: float = 0.0) -> Iterator[tuple[str, list[float]]]:
    """A local HTTP server answering every GET with ``body`` (one byte every ``drip_s`` seconds if
    set); yields its URL and the times of the requests it received. Stopped on exit, failed or not."""
    received: list[float] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            received.append(time.monotonic())
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            try:
                if not drip_s:
                    self.wfile.write(body)
                    return
                for i in range(len(body)):
                    self.wfile.write(body[i : i + 1])
                    self.wfile.flush()
                    time.sleep(drip_s)
            except OSError:
                return  # the client hung up: what a deadline does

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", received
    finally:
        server.shutdown()
        server.server_close()


def client(url: str, **kwargs: Any) -> HttpClient:
    return HttpClient("kraken", url, **{"timeout_s": 2.0, "retries": 0, **kwargs})


def test_json_nested_deeper_than_the_stack_is_an_exchange_error() -> None:
    with serving(DEEP_JSON) as (url, _), pytest.raises(ExchangeError, match=r"kraken /public/Ticker: body is not JSON"):
        client(url).get_json("/public/Ticker")
