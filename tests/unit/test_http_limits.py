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
def serving(
    body: bytes, *, status: int = 200, drip_s: float = 0.0, headers: dict[str, str] | None = None
) -> Iterator[tuple[str, list[float]]]:
    """A local HTTP server answering every GET with ``body`` (one byte every ``drip_s`` seconds if
    set); yields its URL and the times of the requests it received. Stopped on exit, failed or not."""
    received: list[float] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            received.append(time.monotonic())
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
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
    settings = {"timeout_s": 2.0, "deadline_s": 30.0, "max_body_bytes": 1 << 20, "retries": 0, "backoff_s": 0.01}
    return HttpClient("kraken", url, **{**settings, **kwargs})


def test_json_nested_deeper_than_the_stack_is_an_exchange_error() -> None:
    with serving(DEEP_JSON) as (url, _), pytest.raises(ExchangeError, match=r"kraken /public/Ticker: body is not JSON"):
        client(url).get_json("/public/Ticker")


def test_a_dripping_server_is_cut_off_at_the_deadline_not_when_it_finishes() -> None:
    """One byte every 0.25 s for 40 bytes (10 s) never trips the 2 s per-read timeout; the 1.5 s
    deadline over the whole call does."""
    body = b'{"result": "' + b"x" * 26 + b'"}'
    with serving(body, drip_s=0.25) as (url, _):
        started = time.monotonic()
        with pytest.raises(ExchangeError, match=r"kraken /public/Ticker: body not complete at the 1.5s deadline"):
            client(url, deadline_s=1.5).get_json("/public/Ticker")
        assert time.monotonic() - started < 6  # well before the 10 s the server takes


def test_the_deadline_covers_retries_no_retry_starts_past_it() -> None:
    """A 503 with Retry-After: 1 and five retries allowed: after the attempts that fit in 2.5 s the
    call gives up rather than waiting for the next one."""
    with serving(b'{"message": "busy"}', status=503, headers={"Retry-After": "1"}) as (url, received):
        with pytest.raises(ExchangeError, match=r"gave up after \d attempts \(last: HTTP 503\) at the 2.5s deadline"):
            client(url, deadline_s=2.5, retries=5).get_json("/public/Ticker")
        assert 2 <= len(received) <= 4, received  # not the six that five retries would make


def test_a_body_larger_than_the_cap_is_refused() -> None:
    body = b"[" + b"1," * 600_000 + b"1]"  # 1.2 MB of valid JSON
    with serving(body) as (url, _):
        with pytest.raises(ExchangeError, match=r"kraken /public/OHLC: body larger than 1048576 bytes"):
            client(url).get_json("/public/OHLC")
        assert len(client(url, max_body_bytes=2 << 20).get_json("/public/OHLC")) == 600_001


def test_an_error_status_reports_a_snippet_of_the_body() -> None:
    gone = r'HTTP 404: \{"message": "gone"\}'
    with serving(b'{"message": "gone"}', status=404) as (url, _), pytest.raises(ExchangeError, match=gone) as caught:
        client(url).get_json("/public/Ticker")
    assert caught.value.permanent
