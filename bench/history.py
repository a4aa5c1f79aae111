"""History backfill, end to end, on a running local stack (``make demo``): the history lane against
the path before it (``--lane live``: chunks of a day through ``btc-metrics`` and ``btc_drain``,
the read model merged per batch of 2,000), measured in the same run on the same stack.

    .venv/bin/python bench/history.py [--days 30 365] [--baseline-days 30] [--source coinbase]

For each size, each path backfills a range of its own that nothing has fetched yet (ending two
days ago and further back), with ``btc-pipeline backfill --from T1 --to T2 --source X``, and is
timed from the command's start until it exits with 0 minutes missing (the read model is written
with the candles, before the offsets are committed, so it is current then). Per stage it reports:

- fetch + produce: the chunk tasks' own time (summed) and the span from the first chunk's start
  to the last chunk's end (Airflow's REST API), and the run's wall time (its per-task overhead is
  the difference);
- store: the drain runs of the lane (``btc_history_drain`` or ``btc_drain``) in the period, from
  ``btc.pipeline_runs``: messages, batches, time in ``btc.prices`` and in the read model;
- live freshness meanwhile: ``/v1/health`` sampled every 2 s (how often not 200), the time since
  the newest stored candle's minute closed (up to 60 s between two minutes, plus the delay), and,
  from ``btc.prices`` afterwards, candle close -> stored and tick read -> stored (p50/p95) of the
  live data of the period.

Afterwards a ``rollups rebuild`` must change nothing (the read model equals a rebuild): of the
whole range up to 31 days, else of its first, middle and last day. Prints JSON; asserts nothing
(timings vary with the machine and its other load).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import threading
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "plugins"), str(ROOT / "tools")]

from _stats import spread  # noqa: E402
from btc_pipeline.cli.airflow_client import AirflowClient  # noqa: E402
from btc_pipeline.config import ApiSettings  # noqa: E402
from btc_pipeline.dag_ids import BACKFILL_DAG, CHUNK_TASK, DRAIN_DAG, HISTORY_DRAIN_DAG  # noqa: E402
from btc_pipeline.store import Store  # noqa: E402
from btc_pipeline.timeutil import floor_minute, format_ts, parse_iso, to_utc  # noqa: E402
from btc_pipeline.window import Window  # noqa: E402
from devstack import Stack  # noqa: E402


class LiveWatch(threading.Thread):
    """Samples ``/v1/health`` and the newest live candle's age every 2 s while a backfill runs."""

    def __init__(self, stack: Stack, store: Store) -> None:
        super().__init__(daemon=True)
        self.stack, self.store = stack, store
        self.health: list[int] = []
        self.candle_age: list[float] = []
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.wait(2.0):
            try:
                with urllib.request.urlopen(f"{self.stack.api_url}/v1/health", timeout=5) as answer:
                    self.health.append(answer.status)
            except urllib.error.HTTPError as exc:
                self.health.append(exc.code)
            except OSError:
                self.health.append(0)
            candles = [o.ts for o in self.store.latest() if o.kind == "candle_1m"]
            if candles:  # since the newest stored minute closed: up to 60 s plus the delay to store it
                self.candle_age.append((datetime.now(UTC) - max(candles)).total_seconds() - 60)


def backfill(stack: Stack, window: Window, source: str, lane: str) -> tuple[float, int, str, str]:
    env = stack.pipeline_cli_env()
    argv = [str(stack.bin / "btc-pipeline"), "backfill", "--from", format_ts(window.start), "--to"]
    argv += [format_ts(window.end), "--source", source, "--lane", lane, "--timeout", "7200"]
    started = time.monotonic()
    proc = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
    return time.monotonic() - started, proc.returncode, proc.stdout.strip(), proc.stderr.strip()


def run_stages(client: AirflowClient, store: Store, lane: str, since: datetime) -> dict[str, Any]:
    runs = [r for r in client.pages(f"/dags/{BACKFILL_DAG}/dagRuns", "dag_runs") if r.get("start_date")]
    run = max(runs, key=lambda r: str(r["start_date"]))
    run_id = str(run["dag_run_id"])
    tis = client.task_instances(BACKFILL_DAG, run_id, CHUNK_TASK)
    starts = [parse_iso(t["start_date"], "start") for t in tis if t.get("start_date")]
    ends = [parse_iso(t["end_date"], "end") for t in tis if t.get("end_date")]
    record = store.db["pipeline_runs"].find_one({"dag_id": BACKFILL_DAG, "run_id": run_id}) or {}
    drain_dag = HISTORY_DRAIN_DAG if lane == "history" else DRAIN_DAG
    drains = list(store.db["pipeline_runs"].find({"dag_id": drain_dag, "finished_at": {"$gte": since}}))
    batch_ms = [b for d in drains for b in d.get("batch_ms", [])]
    run_start, run_end = parse_iso(run["start_date"], "start"), parse_iso(run.get("end_date") or run["start_date"], "e")
    return {
        "chunks": len(tis),
        "run_s": round((run_end - run_start).total_seconds(), 1),
        "chunks_span_s": round((max(ends) - min(starts)).total_seconds(), 1) if starts and ends else None,
        "chunk_tasks_s": round(sum(float(t.get("duration") or 0) for t in tis), 1),
        "fetch_s": record.get("fetch_s"),
        "produce_s": record.get("produce_s"),
        "requests": record.get("requests"),
        "drain_runs": len(drains),
        "stored_messages": sum(int(d.get("consumed", 0)) for d in drains),
        "batches": len(batch_ms),
        "batch_s": round(sum(batch_ms) / 1000, 1),
        "batch_ms": spread(batch_ms) if batch_ms else None,
        "prices_s": round(sum(float(d.get("prices_ms", 0)) for d in drains) / 1000, 1),
        "read_model_s": round(sum(float(d.get("read_model_ms", 0)) for d in drains) / 1000, 1),
    }


def live_delays(store: Store, since: datetime, until: datetime) -> tuple[list[float], list[float]]:
    """Candle close -> stored of the live candles that closed in the period, and tick read -> stored
    of its ticks (on FerretDB this query reads ``btc.prices`` whole: done once per run, at the end)."""
    query = {"ts": {"$gte": since - timedelta(minutes=1), "$lt": until}}
    candles, ticks = [], []
    for doc in store.db["prices"].find(query, {"kind": 1, "ts": 1, "first_seen_at": 1, "fetched_at": 1}):
        seen, ts = to_utc(doc["first_seen_at"]), to_utc(doc["ts"])
        if doc["kind"] == "candle_1m" and since <= ts + timedelta(minutes=1) < until:
            delay = (seen - ts - timedelta(minutes=1)).total_seconds()
            if delay < 600:  # live; not a heal of an older minute
                candles.append(delay)
        elif doc["kind"] == "tick":
            ticks.append((seen - to_utc(doc["fetched_at"])).total_seconds())
    return candles, ticks


def rebuild_sample(window: Window) -> list[Window]:
    """What is rebuilt to check that the read model equals a rebuild: the whole range up to 31 days;
    beyond, its first, middle and last day (a year's rebuild alone takes minutes on FerretDB)."""
    if window.minute_count <= 31 * 1440:
        return [window]
    day = timedelta(days=1)
    middle = window.start + (window.end - window.start) / 2
    return [
        Window(window.start, window.start + day),
        Window(middle, middle + day),
        Window(window.end - day, window.end),
    ]


def wait_recorded(store: Store, dag_id: str, after: datetime, timeout_s: float = 300) -> None:
    """Until a run of ``dag_id`` that ended after ``after`` is recorded (runs record when they end)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if store.db["pipeline_runs"].find_one({"dag_id": dag_id, "finished_at": {"$gte": after}}):
            return
        time.sleep(5)


def measure(
    stack: Stack, store: Store, client: AirflowClient, window: Window, source: str, lane: str
) -> dict[str, Any]:
    since = datetime.now(UTC)
    watch = LiveWatch(stack, store)
    watch.start()
    wall, code, summary, progress = backfill(stack, window, source, lane)
    watch.stop.set()
    watch.join()
    until = datetime.now(UTC)
    wait_recorded(store, HISTORY_DRAIN_DAG if lane == "history" else DRAIN_DAG, until)
    checked = rebuild_sample(window)
    rebuilt = [store.rebuild_read_model(day) for day in checked]
    candle_delays, tick_delays = live_delays(store, since, until)
    return {
        "lane": lane,
        "range": str(window),
        "days": round(window.minute_count / 1440, 1),
        "exit_code": code,
        "wall_s": round(wall, 1),
        "candles_per_s": round(window.minute_count / wall),
        **run_stages(client, store, lane, since),
        "rebuild_checked": [str(w) for w in checked],
        "rebuild_changed_minutes": sum(r.minutes_changed for r in rebuilt),
        "rebuild_buckets_written": sum(r.buckets_written for r in rebuilt),
        "live": {
            "health_samples": len(watch.health),
            "health_not_200": sum(1 for s in watch.health if s != 200),
            "newest_candle_since_close_s": spread(watch.candle_age) if watch.candle_age else None,
            "candle_close_to_stored_s": spread(candle_delays) if candle_delays else None,
            "tick_read_to_stored_s": spread(tick_delays) if tick_delays else None,
        },
        "summary": summary.splitlines()[:6],
        "progress": progress.splitlines()[-3:],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--days", type=int, nargs="+", default=[30, 365])
    parser.add_argument(
        "--baseline-days", type=int, nargs="*", default=None, help="sizes the baseline runs (default: all)"
    )
    parser.add_argument("--source", default="coinbase")
    parser.add_argument("--state-dir", type=Path, default=None)
    args = parser.parse_args()
    stack = Stack.running("demo", state_dir=args.state_dir)
    store = Store.connect(stack.mongo_uri, stack.settings.mongo_db)
    client = AirflowClient(ApiSettings(url=stack.airflow_url, user=stack.admin_user, password=stack.admin_password))
    end = floor_minute(datetime.now(UTC)) - timedelta(days=2)
    baseline_days = args.days if args.baseline_days is None else args.baseline_days
    results = []
    for days in args.days:
        for lane in ("live", "history"):
            if lane == "live" and days not in baseline_days:
                continue
            window = Window(end - timedelta(days=days), end)
            end = window.start  # the next run fills minutes nothing has fetched yet
            print(f"== {lane} lane, {days} d: {window}", file=sys.stderr, flush=True)
            results.append(measure(stack, store, client, window, args.source, lane))
            print(json.dumps(results[-1], indent=1, default=str), flush=True)
    print(json.dumps({"date": format_ts(datetime.now(UTC)), "results": results}, default=str))


if __name__ == "__main__":
    main()
