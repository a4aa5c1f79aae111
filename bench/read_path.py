"""Read path at a year of history: every read the dashboard, the CLI and the API make, on the read
model, against the query the pipeline made before it (on ``btc.prices``), in the same run, on a
scratch FerretDB (the local stack's MongoDB).

    .venv/bin/python bench/read_path.py [--days 365] [--repeat 15] [--no-old]

History: one candle (Coinbase; Kraken when Coinbase "failed", ~1 % of minutes) and four ticks (one
per exchange) a minute, with some minutes without trades (recorded as such) and some re-delivered
candles. Loaded into ``btc.prices`` with bulk inserts, newest ~1 M documents first, the read model
built with ``btc-pipeline rollups rebuild``'s code; measured at 1 M documents, then again once the
rest of the year (2.6 M in all) is loaded. The old queries are timed once each, at 10 k and at 1 M
documents only: on FerretDB they read the whole collection (~1 min each at 1 M).

Prints each read's median (and p95) in ms, the targets, and whether they are met. Nothing is
asserted: timings vary with the machine.
"""

from __future__ import annotations

import argparse
import random
import shutil
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
from pymongo import MongoClient
from pymongo.database import Database

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "plugins"), str(ROOT / "tools"), str(ROOT / "dashboard")]

import view  # noqa: E402  (the dashboard's loaders: what one refresh reads)
from _stats import percentile  # noqa: E402
from btc_pipeline.bars import interval_for  # noqa: E402
from btc_pipeline.config import load_settings  # noqa: E402
from btc_pipeline.schema import Observation  # noqa: E402
from btc_pipeline.steps.gaps import find_gaps  # noqa: E402
from btc_pipeline.store import CONSENSUS, Store  # noqa: E402
from btc_pipeline.store.prices import collapse, insert_observations, to_document  # noqa: E402
from btc_pipeline.timeutil import format_ts  # noqa: E402
from btc_pipeline.window import MINUTE, Window  # noqa: E402
from devstack import Stack  # noqa: E402
from devstack.config import free_ports  # noqa: E402
from simexchange.market import PRICE_OFFSET_BPS  # noqa: E402
from simexchange.pricepath import PricePath  # noqa: E402

EXCHANGES = tuple(PRICE_OFFSET_BPS)
RANGES = {"1h": timedelta(hours=1), "24h": timedelta(days=1), "7d": timedelta(days=7), "30d": timedelta(days=30)}
RANGES["1y"] = timedelta(days=365)
PATH = PricePath(42)


# --- history ------------------------------------------------------------------------------------


def minute_docs(ts: datetime, rnd: random.Random) -> list[dict[str, Any]]:
    """The documents btc.prices holds for one minute: a candle (or none: no trades) and four ticks."""
    candle = PATH.candle(ts)
    docs: list[dict[str, Any]] = []
    fetched = ts + timedelta(seconds=62)
    roll = rnd.random()
    if roll >= 0.001:  # 0.1 % of minutes without trades
        source = "kraken" if roll < 0.011 else "coinbase"
        obs = Observation(source, "BTC-USD", "candle_1m", ts, candle.close, fetched, "bench")
        obs = replace(obs, open=candle.open, high=candle.high, low=candle.low, volume=candle.volume, close=candle.close)
        docs.append({"_id": obs.key, **to_document(obs), "first_seen_at": fetched})
    for i, exchange in enumerate(EXCHANGES):
        at = ts + timedelta(seconds=10 + 12 * i)
        price = round(PATH.price_at(at) * (1 + PRICE_OFFSET_BPS[exchange] / 10_000), 2)
        obs = Observation(exchange, "BTC-USD", "tick", at, price, at + timedelta(seconds=1), "bench", volume=0.001)
        docs.append({"_id": obs.key, **to_document(obs), "first_seen_at": at + timedelta(seconds=2)})
    return docs


def history(start: datetime, end: datetime, seed: int) -> Iterator[list[dict[str, Any]]]:
    """Batches of btc.prices documents for ``[start, end)``, a day at a time."""
    rnd = random.Random(seed)
    start, end = start.replace(second=0, microsecond=0), end.replace(second=0, microsecond=0)
    day = start
    while day < end:
        batch: list[dict[str, Any]] = []
        ts = day
        while ts < min(day + timedelta(days=1), end):
            batch += minute_docs(ts, rnd)
            ts += MINUTE
        yield batch
        day += timedelta(days=1)


def load(db: Database[Any], start: datetime, end: datetime, seed: int) -> tuple[int, float]:
    """Bulk-insert the history of ``[start, end)``; returns documents and seconds."""
    started, count = time.perf_counter(), 0
    no_trades: list[dict[str, Any]] = []
    for batch in history(start, end, seed):
        db["prices"].insert_many(batch, ordered=False)
        count += len(batch)
        candles = {d["ts"] for d in batch if d["kind"] == "candle_1m"}
        minutes = {d["ts"].replace(second=0) for d in batch if d["kind"] == "tick"}
        for ts in sorted(minutes - candles):
            no_trades.append(
                {"_id": f"coinbase|BTC-USD|{format_ts(ts)}", "source": "coinbase", "symbol": "BTC-USD", "ts": ts}
            )
    if no_trades:
        Store(db).record_no_trade_minutes(
            "coinbase", "BTC-USD", [d["ts"] for d in no_trades], "bench", reported_at=datetime.now(UTC)
        )
    return count, time.perf_counter() - started


# --- the queries before the read model (as the pipeline made them on btc.prices) -------------


def old_candles(db: Database[Any], since: datetime, rule: str) -> pd.DataFrame:
    fields = {"_id": 0, "source": 1, "ts": 1, "open": 1, "high": 1, "low": 1, "close": 1, "volume": 1}
    rows = list(db["prices"].find({"kind": "candle_1m", "ts": {"$gte": since}}, fields).sort("ts", 1))
    frame = pd.DataFrame(rows)
    if frame.empty or rule == "1m":
        return frame
    rules = {"5m": "5min", "1h": "1h", "1d": "1D"}
    return (
        frame.set_index("ts")
        .resample(rules[rule])
        .agg({"open": "first", "high": "max", "low": "min", "close": "last", "volume": "sum"})
        .dropna()
    )


def old_latest_ticks(db: Database[Any], since: datetime) -> dict[str, Any]:
    newest: dict[str, Any] = {}
    cursor = db["prices"].find({"kind": "tick", "ts": {"$gte": since}}, {"_id": 0, "source": 1, "price": 1, "ts": 1})
    for doc in cursor.sort("ts", -1):
        newest.setdefault(doc["source"], doc)
    return newest


def old_gaps(db: Database[Any], window: Window) -> int:
    query = {"kind": "candle_1m", "symbol": "BTC-USD", "ts": {"$gte": window.start, "$lt": window.end}}
    present = {doc["ts"] for doc in db["prices"].find(query, {"ts": 1, "_id": 0})}
    reports = list(db["no_trade_minutes"].find({"ts": {"$gte": window.start, "$lt": window.end}}))
    return window.minute_count - len(present) - len(reports)


def old_drain_batch(db: Database[Any], observations: list[Observation]) -> None:
    """insert_many, then the duplicates' stored versions with one $in query (the reconciliation)."""
    latest = collapse(observations)
    _, existing = insert_observations(db["prices"], latest, datetime.now(UTC))
    list(db["prices"].find({"_id": {"$in": existing}}, {"fetched_at": 1, "close": 1}))


# --- timing ---------------------------------------------------------------------------------------


def timed(fn: Callable[[], object], repeat: int) -> tuple[float, float]:
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - started) * 1000)
    return statistics.median(samples), percentile(samples, 95)


def redelivered(now: datetime, n: int = 500) -> list[Observation]:
    """500 candles the store holds already (re-delivered: same key, same values, same fetch)."""
    start = now.replace(second=0, microsecond=0) - timedelta(hours=40)
    out = []
    for i in range(n):
        ts = start + MINUTE * i
        c = PATH.candle(ts)
        obs = Observation("coinbase", "BTC-USD", "candle_1m", ts, c.close, ts + timedelta(seconds=62), "bench")
        out.append(replace(obs, open=c.open, high=c.high, low=c.low, close=c.close, volume=c.volume))
    return out


def candle_reads(
    store: Store, db: Database[Any], interval: str, window: Window
) -> tuple[Callable[[], object], Callable[[], object]]:
    """The read model's and the old query for the candles of ``window`` at ``interval``."""
    return (lambda: store.bars(CONSENSUS, interval, window)), (lambda: old_candles(db, window.start, interval))


def measure(documents: int, db: Database[Any], now: datetime, repeat: int, *, old: bool) -> dict[str, float]:
    store = Store(db)
    end = now.replace(second=0, microsecond=0)
    results: dict[str, float] = {}
    print(f"\n== {documents:,} documents in btc.prices", flush=True)
    print(f"{'read':42s} {'read model p50':>15s} {'p95':>8s} {'before (1 run)':>15s}")

    def row(name: str, new: Callable[[], object], before: Callable[[], object] | None) -> float:
        p50, p95 = timed(new, repeat)
        old_ms = f"{timed(before, 1)[0]:13.0f}ms" if (before is not None and old) else "             -"
        print(f"{name:42s} {p50:13.1f}ms {p95:6.1f}ms {old_ms}", flush=True)
        results[name] = p50
        return p50

    row("latest price per exchange", store.latest, lambda: old_latest_ticks(db, end - timedelta(minutes=10)))
    for name, span in RANGES.items():
        interval = interval_for(span)
        new, before = candle_reads(store, db, interval, Window(end - span, end))
        row(f"candles {name} at {interval} (consensus)", new, before)
    row(
        "API: candles 24h at 1m (consensus)",
        lambda: store.bars(CONSENSUS, "1m", Window(end - timedelta(days=1), end)),
        None,
    )
    gap_window = Window(end - timedelta(days=1), end)
    row("gaps --since 24h", lambda: find_gaps(store, gap_window, "BTC-USD"), lambda: old_gaps(db, gap_window))
    row("pipeline runs (the last 20 of each DAG)", store.recent_runs, None)

    settings = load_settings({})

    def refresh() -> None:  # what one dashboard refresh reads: the page's own loaders, 1 h view
        view.load_live(store, settings, CONSENSUS, end)
        view.load_chart(store, "1h", CONSENSUS, False, list(settings.exchanges), end)
        view.load_health(store, settings, end)

    row("dashboard refresh (all its reads, 1h view)", refresh, None)
    batch = redelivered(now)
    row(
        "drain batch: 500 re-delivered candles",
        lambda: store.write_observations(batch),
        lambda: old_drain_batch(db, batch),
    )
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--days", type=int, default=365, help="days of history in all (2.6 M documents for 365)")
    parser.add_argument("--first-days", type=int, default=139, help="newest days loaded first (~1 M documents)")
    parser.add_argument("--repeat", type=int, default=15, help="runs of each read-model query")
    parser.add_argument("--no-old", action="store_true", help="skip the old queries (minutes at 1 M)")
    args = parser.parse_args()
    state = ROOT / "state" / "bench-read-path"
    shutil.rmtree(state, ignore_errors=True)
    stack = Stack("test", state_dir=state, ports=free_ports())
    now = datetime.now(UTC)
    try:
        stack.up(["ferretdb"])
        client: MongoClient[Any] = MongoClient(stack.mongo_uri, tz_aware=True)
        summary: dict[str, dict[str, float]] = {}

        small = client["bench_small"]
        count, load_s = load(small, now - timedelta(hours=46), now, seed=1)
        store = Store(small)
        store.ensure_indexes()
        minute = now.replace(second=0, microsecond=0)
        rebuilt = store.rebuild_read_model(Window(minute - timedelta(days=3), minute))
        built_s = rebuilt.scan_s + rebuilt.write_s
        print(f"loaded {count:,} documents in {load_s:.1f} s; read model built in {built_s:.1f} s")
        summary["10k"] = measure(count, small, now, args.repeat, old=not args.no_old)

        big = client["btc"]
        Store(big).ensure_indexes()
        first = now - timedelta(days=args.first_days)
        count, load_s = load(big, first, now, seed=2)
        window = Window(first.replace(second=0, microsecond=0), now.replace(second=0, microsecond=0))
        rebuilt = Store(big).rebuild_read_model(window)
        print(
            f"\nloaded {count:,} documents in {load_s:.0f} s ({count / load_s:,.0f}/s); read model rebuilt in "
            f"{rebuilt.scan_s:.0f} s reading + {rebuilt.write_s:.0f} s writing ({rebuilt.buckets_written:,} buckets)"
        )
        summary["1M"] = measure(count, big, now, args.repeat, old=not args.no_old)

        if args.days > args.first_days:
            older = now - timedelta(days=args.days)
            more, load_s = load(big, older, first, seed=3)
            window = Window(older.replace(second=0, microsecond=0), first.replace(second=0, microsecond=0))
            rebuilt = Store(big).rebuild_read_model(window)
            total = count + more
            print(
                f"\nloaded {more:,} more documents in {load_s:.0f} s; read model of them rebuilt in "
                f"{rebuilt.scan_s:.0f} s reading + {rebuilt.write_s:.0f} s writing"
            )
            summary["2.6M"] = measure(total, big, now, args.repeat, old=False)

        print("\n== targets")
        refresh = "dashboard refresh (all its reads, 1h view)"
        print(f"  dashboard refresh <= 300 ms p50 at 1 M:   {summary['1M'][refresh]:7.1f} ms")
        if "2.6M" in summary:
            print(f"  dashboard refresh <= 500 ms p50 at 2.6 M: {summary['2.6M'][refresh]:7.1f} ms")
        print(f"  gaps --since 24h <= 1 s:                  {summary['1M']['gaps --since 24h']:7.1f} ms")
        drain = "drain batch: 500 re-delivered candles"
        ratio = summary["1M"][drain] / summary["10k"][drain]
        print(
            f"  drain batch within +-20 % 10 k -> 1 M:    {summary['10k'][drain]:.0f} -> {summary['1M'][drain]:.0f} ms"
            f" ({ratio:.2f}x)"
        )
    finally:
        stack.down()


if __name__ == "__main__":
    main()
