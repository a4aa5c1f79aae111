#!/usr/bin/python3
"""A stub standing in for Redpanda Console (see ``tools/deploycheck/standins/README.md``).

It serves on :8080 what docker-compose.yml's health check asks for, ``/admin/health``: 200 when
every broker in ``KAFKA_BROKERS`` (the variable the real console reads) accepts a TCP connection,
503 naming the one that does not. So the console's wiring (the broker's service name and port)
is checked; the console itself (topic browser, UI) is not there: ``/`` says so.
"""

from __future__ import annotations

import os
import socket
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def brokers(spec: str) -> list[tuple[str, int]]:
    """``redpanda:9092,other:9093`` -> ``[("redpanda", 9092), ("other", 9093)]``.

    Raises:
        ValueError: An entry without ``host:port``.
    """
    out = []
    for part in filter(None, (p.strip() for p in spec.split(","))):
        host, colon, port = part.rpartition(":")
        if not colon or not host or not port.isdigit():
            raise ValueError(f"KAFKA_BROKERS entry {part!r} is not host:port")
        out.append((host, int(port)))
    if not out:
        raise ValueError("KAFKA_BROKERS is empty")
    return out


def unreachable(targets: list[tuple[str, int]]) -> list[str]:
    """The brokers that do not accept a TCP connection within 2 s."""
    down = []
    for host, port in targets:
        try:
            socket.create_connection((host, port), timeout=2).close()
        except OSError as exc:
            down.append(f"{host}:{port} ({exc})")
    return down


class Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path == "/admin/health":
            try:
                down = unreachable(brokers(os.environ.get("KAFKA_BROKERS", "")))
            except ValueError as exc:
                down = [str(exc)]
            status, body = (503, "brokers unreachable: " + "; ".join(down)) if down else (200, "ok")
        elif self.path == "/":
            status, body = 200, "Stand-in for Redpanda Console (btc-pipeline deploycheck): no UI here.\n"
        else:
            status, body = 404, "not found"
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the base class's name
        if not self.path.startswith("/admin/health"):
            super().log_message(format, *args)


if __name__ == "__main__":
    print(f"Redpanda Console stub on :8080, brokers {os.environ.get('KAFKA_BROKERS', '')!r}", flush=True)
    ThreadingHTTPServer(("0.0.0.0", 8080), Handler).serve_forever()  # noqa: S104 - inside its container
