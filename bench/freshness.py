"""Freshness and cost of a running local stack (``make demo``), measured over a calm period.

    .venv/bin/python bench/freshness.py [--minutes 20] [--backfill] [--state-dir state]

While it waits it samples, every 5 s, what the dashboard's read returns (the age of the newest
tick in the hot set, as the page shows it) and the CPU and memory of every process of the stack.
At the end it reads, for the period:

- candle close -> stored: the minute's close (``ts + 60 s``) to ``first_seen_at`` (when the drain
  first stored it), for the candles of live runs;
- tick observed -> stored: when the pipeline read the ticker (``fetched_at``) to ``first_seen_at``;
  and, for reference, from the exchange's trade time (``ts``), which includes how old the
  exchange's last trade was when it was read;
- DAG runs, task instances and asset events per day (Airflow's REST API), i.e. the growth of its
  metadata;
- with ``--backfill``: the wall time of ``btc-pipeline backfill`` of 7 days (ending a week ago, so
  that it fills minutes no run has fetched), until every candle is in MongoDB.

Prints p50/p95 of each, the CPU of the stack's processes (in cores: 1.0 = one core busy; task
processes that ended between samples are counted through their parents) and of the whole machine,
and the stack's resident memory.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
import urllib.parse
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "plugins"), str(ROOT / "tools")]

from _stats import percentile, spread  # noqa: E402
from btc_pipeline.cli.airflow_client import AirflowClient  # noqa: E402
from btc_pipeline.config import ApiSettings  # noqa: E402
from btc_pipeline.dag_ids import DAG_IDS  # noqa: E402
from btc_pipeline.store import Store  # noqa: E402
from btc_pipeline.timeutil import floor_minute, format_ts, to_utc  # noqa: E402
from devstack import Stack  # noqa: E402


def stack_processes(stack: Stack) -> list[psutil.Process]:
    procs: list[psutil.Process] = []
    for service in stack.services():
        pid = stack.pid_of(service.name)
        if pid is None:
            continue
        try:
            leader = psutil.Process(pid)
            procs += [leader, *leader.children(recursive=True)]
        except psutil.NoSuchProcess:
            continue
    return procs


def sample_usage(stack: Stack, seen: dict[int, psutil.Process]) -> tuple[float, float]:
    """CPU seconds so far (user + system) of every process seen, and resident MB now."""
    for proc in stack_processes(stack):
        seen.setdefault(proc.pid, proc)
    cpu, rss = 0.0, 0.0
    for proc in list(seen.values()):
        try:
            times = proc.cpu_times()
            cpu += times.user + times.system + times.children_user + times.children_system
            rss += proc.memory_info().rss / 1e6
        except psutil.Error:
            continue  # a task process that ended: its CPU time is lost to the sum (small)
    return cpu, rss


def runs_per_dag(client: AirflowClient, since: datetime, until: datetime) -> dict[str, int]:
    """DAG runs per DAG due in ``[since, until]``, ``task_instances`` of all DAGs started in it and
    the ``asset_events`` recorded in it (what starts the drain besides its timer)."""
    out = {}
    window = {"run_after_gte": format_ts(since), "run_after_lte": format_ts(until), "limit": 1}
    for dag_id in DAG_IDS:
        query = urllib.parse.urlencode(window)
        out[dag_id] = int(client.call("GET", f"/dags/{dag_id}/dagRuns?{query}")["total_entries"])
    query = urllib.parse.urlencode({"start_date_gte": format_ts(since), "start_date_lte": format_ts(until), "limit": 1})
    out["task_instances"] = int(client.call("GET", f"/dags/~/dagRuns/~/taskInstances?{query}")["total_entries"])
    query = urllib.parse.urlencode({"timestamp_gte": format_ts(since), "timestamp_lte": format_ts(until), "limit": 1})
    out["asset_events"] = int(client.call("GET", f"/assets/events?{query}")["total_entries"])
    return out


def backfill_week(stack: Stack) -> float:
    end = floor_minute(datetime.now(UTC)) - timedelta(days=8)
    args = ["backfill", "--from", format_ts(end - timedelta(days=7)), "--to", format_ts(end)]
    env = stack.pipeline_cli_env()
    started = time.monotonic()
    proc = subprocess.run(
        [str(stack.bin / "btc-pipeline"), *args], env=env, capture_output=True, text=True, check=False
    )
    wall = time.monotonic() - started
    print(proc.stdout.strip())
    if proc.returncode != 0:
        print(f"backfill ended with exit code {proc.returncode}: {proc.stderr.strip()[-500:]}")
    return wall


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--minutes", type=float, default=20)
    parser.add_argument("--backfill", action="store_true", help="also time a 7-day backfill (after the period)")
    parser.add_argument("--state-dir", type=Path, default=None, help="the stack's state directory (default state/)")
    args = parser.parse_args()
    stack = Stack.running("demo", state_dir=args.state_dir)
    store = Store.connect(stack.mongo_uri, stack.settings.mongo_db)
    client = AirflowClient(ApiSettings(url=stack.airflow_url, user=stack.admin_user, password=stack.admin_password))
    started_at = datetime.now(UTC)
    seen: dict[int, psutil.Process] = {}
    cpu0, _ = sample_usage(stack, seen)
    machine0 = psutil.cpu_times()
    t0 = time.monotonic()
    price_ages: list[float] = []
    memory: list[float] = []
    while time.monotonic() - t0 < args.minutes * 60:
        now = datetime.now(UTC)
        readings = [o.ts for o in store.latest() if o.kind == "tick"]
        if readings:
            price_ages.append((now - max(readings)).total_seconds())
        _, rss = sample_usage(stack, seen)
        memory.append(rss)
        time.sleep(5)
    cpu1, _ = sample_usage(stack, seen)
    machine1 = psutil.cpu_times()
    elapsed = time.monotonic() - t0
    busy = sum(getattr(machine1, f) - getattr(machine0, f) for f in ("user", "system", "nice", "irq", "softirq"))
    finished_at = datetime.now(UTC)

    prices = store.db["prices"]
    query = {"ts": {"$gte": started_at - timedelta(minutes=1), "$lt": finished_at}}
    candles: list[float] = []
    ticks: list[float] = []
    trades: list[float] = []
    for doc in prices.find(query, {"kind": 1, "ts": 1, "first_seen_at": 1, "fetched_at": 1}):
        seen_at, ts = to_utc(doc["first_seen_at"]), to_utc(doc["ts"])
        if doc["kind"] == "candle_1m":
            if seen_at - ts < timedelta(minutes=10):  # live, not a backfill of old minutes
                candles.append((seen_at - (ts + timedelta(minutes=1))).total_seconds())
        else:
            ticks.append((seen_at - to_utc(doc["fetched_at"])).total_seconds())
            trades.append((seen_at - ts).total_seconds())
    runs = runs_per_dag(client, started_at, finished_at)
    scale = 86_400 / elapsed
    result: dict[str, Any] = {
        "drain_trigger": stack.settings.drain_trigger,
        "minutes": round(elapsed / 60, 1),
        "candle_close_to_stored_s": spread(candles),
        "tick_read_to_stored_s": spread(ticks),
        "tick_trade_time_to_stored_s": spread(trades),
        "dashboard_price_age_s": spread(price_ages),
        "stack_cpu_cores": round((cpu1 - cpu0) / elapsed, 3),
        "machine_cpu_cores": round(busy / elapsed, 3),
        "memory_mb": {"p50": round(percentile(memory, 50)), "max": round(max(memory))} if memory else None,
        "per_day": {name: round(n * scale) for name, n in runs.items()},
    }
    if args.backfill:
        result["backfill_7d_s"] = round(backfill_week(stack), 1)
    print(json.dumps(rounded(result), indent=2))


def rounded(value: Any) -> Any:
    if isinstance(value, float):
        return round(value, 1)
    if isinstance(value, dict):
        return {k: rounded(v) for k, v in value.items()}
    return value


if __name__ == "__main__":
    main()
