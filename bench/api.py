"""Read API latency and throughput with ~1 M documents in ``btc.prices``: p50 / p99 and requests/s
of ``/v1/prices/latest``, ``/v1/candles`` (24 h at 1 m, 1 y at 1 d) and ``/v1/health``, served by
uvicorn (one worker, as the stack runs it) from a scratch FerretDB (the local stack's MongoDB).

    .venv/bin/python bench/api.py [--days 139] [--seconds 10] [--clients 1 4]

History as ``bench/read_path.py`` loads it (one candle and four ticks a minute, bulk-inserted, the
read model rebuilt with ``btc-pipeline rollups rebuild``'s code), then one live minute written
through the drain's path so that the hot set (``btc.latest``) is as a running pipeline has it.
Two servers: the API as shipped (its bucket cache warms up on the first request) and the same app
without the cache (every request reads every bucket it needs). The load generator is Python:
``--clients`` threads, each with one keep-alive connection, sending requests back to back for
``--seconds``. Targets: p50 <= 50 ms and >= 200 requests/s for /v1/prices/latest. Prints figures,
asserts nothing (timings vary with the machine and with what else runs on it).
"""

from __future__ import annotations

import argparse
import http.client
import os
import shutil
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from pymongo import MongoClient

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "plugins"), str(ROOT / "tools")]

from btc_pipeline.api import create_app  # noqa: E402
from btc_pipeline.config import load_settings  # noqa: E402
from btc_pipeline.schema import Observation  # noqa: E402
from btc_pipeline.store import Store  # noqa: E402
from btc_pipeline.window import MINUTE, Window  # noqa: E402
from devstack import Stack  # noqa: E402
from devstack.config import free_ports  # noqa: E402
from devstack.processes import free_port, http_ok  # noqa: E402
from read_path import EXCHANGES, PATH, load  # noqa: E402
from simexchange.market import PRICE_OFFSET_BPS  # noqa: E402

DB = "btc"
REQUESTS = {
    "/v1/prices/latest": "/v1/prices/latest",
    "/v1/candles 24 h at 1m": "/v1/candles?interval=1m&from=24h",
    "/v1/candles 1 y at 1d": "/v1/candles?interval=1d&from=365d",
    "/v1/health": "/v1/health",
}


def uncached_app() -> FastAPI:
    """The API without its bucket cache (``uvicorn --factory``; settings from the environment)."""
    settings = load_settings()
    return create_app(settings, Store.lazy(settings.mongo_uri, settings.mongo_db))


@dataclass
class Figures:
    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    errors: int

    @property
    def per_s(self) -> float:
        return self.requests / self.seconds


def hammer(port: int, path: str, clients: int, seconds: float) -> Figures:
    """``clients`` threads send ``GET path`` back to back on keep-alive connections for ``seconds``."""
    latencies: list[float] = []
    errors = [0]
    lock = threading.Lock()
    deadline = time.monotonic() + seconds

    def client() -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        mine: list[float] = []
        failed = 0
        while time.monotonic() < deadline:
            started = time.perf_counter()
            connection.request("GET", path)
            response = connection.getresponse()
            response.read()
            mine.append((time.perf_counter() - started) * 1000)
            failed += response.status not in (200, 503)  # 503: health of data older than BTC_STALE_AFTER_S
        connection.close()
        with lock:
            latencies.extend(mine)
            errors[0] += failed

    threads = [threading.Thread(target=client) for _ in range(clients)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - started
    latencies.sort()
    return Figures(
        requests=len(latencies),
        seconds=elapsed,
        p50_ms=statistics.median(latencies),
        p99_ms=latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))],
        errors=errors[0],
    )


def live_minute(now: datetime) -> list[Observation]:
    """The newest minute as the drain writes it: each exchange's ticker and Coinbase's candle."""
    minute = now.replace(second=0, microsecond=0) - MINUTE
    c = PATH.candle(minute)
    out = [
        replace(
            Observation("coinbase", "BTC-USD", "candle_1m", minute, c.close, now, "bench"),
            open=c.open,
            high=c.high,
            low=c.low,
            close=c.close,
            volume=c.volume,
        )
    ]
    for i, exchange in enumerate(EXCHANGES):
        at = now - timedelta(seconds=10 - i)
        price = round(PATH.price_at(at) * (1 + PRICE_OFFSET_BPS[exchange] / 10_000), 2)
        out.append(Observation(exchange, "BTC-USD", "tick", at, price, now, "bench", volume=0.001))
    return out


def serve(argv: list[str], port: int, env: dict[str, str]) -> subprocess.Popen[bytes]:
    options = ["--host", "127.0.0.1", "--port", str(port), "--no-access-log", "--log-level", "warning"]
    proc = subprocess.Popen([str(ROOT / ".venv" / "bin" / "uvicorn"), *argv, *options], env={**os.environ, **env})
    deadline = time.monotonic() + 60
    while not http_ok(f"http://127.0.0.1:{port}/livez"):
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError(f"uvicorn {argv} did not start")
        time.sleep(0.3)
    return proc


def measure(name: str, port: int, clients: list[int], seconds: float) -> dict[tuple[str, int], Figures]:
    print(f"\n== {name}")
    print(f"{'request':28s} {'clients':>7s} {'p50':>9s} {'p99':>9s} {'req/s':>8s} {'requests':>9s}")
    results = {}
    for label, path in REQUESTS.items():
        hammer(port, path, 1, 1.0)  # warm-up: connections, the cache, FerretDB's page cache
        for n in clients:
            f = hammer(port, path, n, seconds)
            results[(label, n)] = f
            bad = f"  ({f.errors} errors)" if f.errors else ""
            print(
                f"{label:28s} {n:7d} {f.p50_ms:7.1f}ms {f.p99_ms:7.1f}ms {f.per_s:8.0f} {f.requests:9d}{bad}",
                flush=True,
            )
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--days", type=int, default=139, help="days of history (139: ~1 M documents)")
    parser.add_argument("--seconds", type=float, default=10.0, help="how long each measurement sends requests")
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 4], help="concurrent clients to measure with")
    parser.add_argument("--reuse", action="store_true", help="measure the database a previous run left (no load)")
    args = parser.parse_args()
    state = ROOT / "state" / "bench-api"
    if not args.reuse:
        shutil.rmtree(state, ignore_errors=True)
    stack = Stack("test", state_dir=state, ports=free_ports())
    servers: list[subprocess.Popen[bytes]] = []
    try:
        stack.up(["ferretdb"])
        client: MongoClient[Any] = MongoClient(stack.mongo_uri, tz_aware=True)
        store = Store(client[DB])
        store.ensure_indexes()
        now = datetime.now(UTC)
        first = now - timedelta(days=args.days)
        if args.reuse and (count := client[DB]["prices"].estimated_document_count()):
            print(f"reusing the {count:,} documents and the read model a previous run left")
        else:
            count, load_s = load(client[DB], first, now, seed=2)
            whole = Window(first.replace(second=0, microsecond=0), now.replace(second=0, microsecond=0))
            rebuilt = store.rebuild_read_model(whole)
            print(
                f"loaded {count:,} documents in {load_s:.0f} s; read model rebuilt in "
                f"{rebuilt.scan_s + rebuilt.write_s:.0f} s",
                flush=True,
            )
        store.write_observations(live_minute(datetime.now(UTC)))
        env = {"BTC_MONGO_URI": stack.mongo_uri, "BTC_MONGO_DB": DB, "BTC_STALE_AFTER_S": "86400"}
        env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "plugins"), str(ROOT / "bench")])
        cached_port, uncached_port = free_port(), free_port()
        servers.append(serve(["--factory", "btc_pipeline.api.app:create_app"], cached_port, env))
        servers.append(serve(["--factory", "api:uncached_app"], uncached_port, env))
        shipped = measure("the API as shipped (bucket cache, 30 s TTL)", cached_port, args.clients, args.seconds)
        measure("without the bucket cache", uncached_port, args.clients, args.seconds)
        latest = shipped[("/v1/prices/latest", max(args.clients))]
        print("\n== targets (the API as shipped)")
        print(f"  /v1/prices/latest p50 <= 50 ms:      {latest.p50_ms:7.1f} ms with {max(args.clients)} clients")
        print(f"  /v1/prices/latest >= 200 requests/s: {latest.per_s:7.0f} /s")
        for label in ("/v1/candles 24 h at 1m", "/v1/candles 1 y at 1d"):
            p50 = shipped[(label, min(args.clients))].p50_ms
            print(f"  {label} p50 <= 50 ms:   {p50:7.1f} ms with {min(args.clients)} client(s)")
        client.close()
    finally:
        for proc in servers:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
        stack.down()


if __name__ == "__main__":
    main()
