"""How soon a message produced outside Airflow is in MongoDB: the latency that decides between the
drain's two triggers (``BTC_DRAIN_TRIGGER=outlets`` or ``watcher``), on a running ``make demo``.

    .venv/bin/python bench/drain_trigger.py [--probes 8] [--state-dir state]

With ``btc_ingest`` and ``btc_heal`` paused (unpaused again at the end, even on failure), so that
no task of ours produces and no outlet event can start a drain, it waits a random 0-30 s (so the
probes fall at different points of the drain's 30 s timer and of a lingering run's idle wait),
produces one valid candle for a unique minute of 2020 straight to the topic (what a producer
outside Airflow would do), and times until the drain has stored it (polling ``btc.prices`` by
``_id``). Prints p50/p95/max, with the stack's trigger and idle settings, and the number of
asset events Airflow recorded meanwhile (the metadata a watcher adds).

The probe candles stay in the demo database (2020, far from anything the dashboard shows).
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
import urllib.parse
from datetime import UTC, datetime, timedelta
from pathlib import Path

from confluent_kafka import Producer

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "plugins"), str(ROOT / "tools")]

from _stats import percentile  # noqa: E402
from btc_pipeline.cli.airflow_client import AirflowClient  # noqa: E402
from btc_pipeline.config import ApiSettings  # noqa: E402
from btc_pipeline.schema import Observation  # noqa: E402
from btc_pipeline.store import Store  # noqa: E402
from btc_pipeline.stream import Record, produce_all, producer_config  # noqa: E402
from btc_pipeline.timeutil import format_ts  # noqa: E402
from devstack import Stack  # noqa: E402

PAUSED = ("btc_ingest", "btc_heal")


def probe_candle(minute: datetime) -> Observation:
    """A valid candle nobody else writes: a minute of 2020, marked as a probe."""
    return Observation(
        "coinbase", "BTC-USD", "candle_1m", minute, 7200.0, datetime.now(UTC), "bench-probe",
        7190.0, 7210.0, 7180.0, 7200.0, 0.5,
    )  # fmt: skip


def asset_events_since(client: AirflowClient, since: datetime) -> int:
    query = urllib.parse.urlencode({"timestamp_gte": format_ts(since), "limit": 1})
    return int(client.call("GET", f"/assets/events?{query}")["total_entries"])


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--probes", type=int, default=8)
    parser.add_argument("--timeout", type=float, default=120, help="give up on one probe after this many seconds")
    parser.add_argument("--state-dir", type=Path, default=None)
    args = parser.parse_args()
    stack = Stack.running("demo", state_dir=args.state_dir)
    settings = stack.settings
    store = Store.connect(stack.mongo_uri, settings.mongo_db)
    client = AirflowClient(ApiSettings(url=stack.airflow_url, user=stack.admin_user, password=stack.admin_password))
    producer = Producer(producer_config({"bootstrap.servers": stack.kafka_bootstrap}))
    rng = random.Random()
    base = datetime(2020, 1, 1, tzinfo=UTC) + timedelta(minutes=rng.randrange(0, 500_000))
    started_at = datetime.now(UTC)
    latencies: list[float] = []
    for dag_id in PAUSED:
        client.call("PATCH", f"/dags/{dag_id}", {"is_paused": True})
    try:
        time.sleep(75)  # let a running ingest minute end: its outlet events would start drains
        for i in range(args.probes):
            time.sleep(rng.uniform(0, 30))
            candle = probe_candle(base + timedelta(minutes=i))
            key, value = candle.encode()
            sent = time.monotonic()
            produce_all(producer, settings.topic, [Record(key, value)])
            while store.db["prices"].find_one({"_id": candle.key}, {"_id": 1}) is None:
                if time.monotonic() - sent > args.timeout:
                    raise SystemExit(f"probe {candle.key} not stored after {args.timeout:.0f} s")
                time.sleep(0.1)
            latencies.append(time.monotonic() - sent)
            print(f"probe {i + 1}: stored after {latencies[-1]:.1f} s", flush=True)
    finally:
        for dag_id in PAUSED:
            client.call("PATCH", f"/dags/{dag_id}", {"is_paused": False})
    result = {
        "drain_trigger": settings.drain_trigger,
        "drain_idle_s": settings.drain_idle_s,
        "probes": len(latencies),
        "produced_to_stored_s": {
            "p50": round(percentile(latencies, 50), 1),
            "p95": round(percentile(latencies, 95), 1),
            "max": round(max(latencies), 1),
        },
        "asset_events": asset_events_since(client, started_at),
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
