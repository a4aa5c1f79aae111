"""Freshness of a running stack: how long from an observation to its document in MongoDB.

For a candle: from the minute's close (``ts + 60 s``) to ``first_seen_at`` (when the drain first
stored it). For a tick: from the exchange's trade time to ``first_seen_at``. Reads the stack's
``btc.prices`` (``BTC_MONGO_URI``, default the local stack), e.g. after ``make demo`` has run a while:

    .venv/bin/python bench/freshness.py [--minutes 60]

Also prints the drain's consumer lag from its latest ``pipeline_runs`` documents.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from pymongo import MongoClient

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "plugins"))

from btc_pipeline.config import load_settings


def percentile(values: list[float], q: int) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1] if len(values) > 1 else values[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--minutes", type=int, default=60, help="look at observations of the last N minutes")
    args = parser.parse_args()
    settings = load_settings()
    client: MongoClient[Any] = MongoClient(settings.mongo_uri, tz_aware=True)
    db = client[settings.mongo_db]
    since = datetime.now(UTC) - timedelta(minutes=args.minutes)
    for kind, closes_after in (("candle_1m", timedelta(minutes=1)), ("tick", timedelta(0))):
        delays = [
            (doc["first_seen_at"] - (doc["ts"] + closes_after)).total_seconds()
            for doc in db.prices.find({"kind": kind, "ts": {"$gte": since}}, {"ts": 1, "first_seen_at": 1})
            if doc.get("first_seen_at")
        ]
        if not delays:
            print(f"{kind:9s}: no observations in the last {args.minutes} min")
            continue
        print(
            f"{kind:9s}: n={len(delays):5d}  p50={percentile(delays, 50):6.1f} s  "
            f"p95={percentile(delays, 95):6.1f} s  max={max(delays):6.1f} s"
        )
    runs = list(db.pipeline_runs.find({"dag_id": "btc_drain"}).sort("started_at", -1).limit(20))
    if runs:
        before = [r["lag_before"] for r in runs if r.get("lag_before") is not None]
        after = [r["lag_after"] for r in runs if r.get("lag_after") is not None]
        print(
            f"btc_drain consumer lag over its last {len(runs)} runs: before max {max(before, default=0)}, "
            f"after max {max(after, default=0)}"
        )


if __name__ == "__main__":
    main()
