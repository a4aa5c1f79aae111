"""How soon each kind of notification reaches its receiver, on a running ``make demo`` whose
``.env`` points the notifications at this script's webhook:

    BTC_NOTIFY_URLS=json://127.0.0.1:8091/demo    BTC_ALERT_ABOVE=1000000    BTC_STALE_AFTER_S=60
    make demo && .venv/bin/python bench/notify_latency.py [--port 8091] [--probes 3] [--failure-probes 2]

Three events, each timed from when it happened to when the message arrived here:

- **price level crossing**: a tick of every exchange at ``BTC_ALERT_ABOVE`` + 100 produced to the
  topic (as a producer outside Airflow would) makes the consensus cross the level; ticks at the
  price before bring it back under, so each probe crosses again. From the produce to the message.
- **failing task**: a run of ``btc_ingest`` triggered without a date, whose ``stream_ticks`` (no
  retries) fails at once. From the task instance's ``end_date`` (Airflow's) to the message; then
  the next successful run's recovery message, from that run's ``end_date``.
- **stale data**: ``btc_ingest`` and ``btc_heal`` paused until the newest observation is older than
  ``BTC_STALE_AFTER_S``; from that moment (newest + the limit) to the "stale" message; unpaused,
  from the first new observation stored (its ``first_seen_at``) to the "fresh again" message.

The baseline measured in the same run is the receiver's own round trip (a message posted to it
by the same delivery code, outside the pipeline). Event times come from Airflow and MongoDB, which
share this machine's clock. The probe ticks stay in the demo database (one price spike each).
"""

from __future__ import annotations

import argparse
import http.server
import json
import sys
import threading
import time
import urllib.parse
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "plugins"), str(ROOT / "tools")]

from confluent_kafka import Producer  # noqa: E402

from _stats import percentile  # noqa: E402
from btc_pipeline.cli.airflow_client import AirflowClient  # noqa: E402
from btc_pipeline.config import ApiSettings  # noqa: E402
from btc_pipeline.notify.deliver import deliver  # noqa: E402
from btc_pipeline.notify.messages import check_message  # noqa: E402
from btc_pipeline.quotes import quote  # noqa: E402
from btc_pipeline.schema import Observation  # noqa: E402
from btc_pipeline.store import Store  # noqa: E402
from btc_pipeline.stream import Record, produce_all, producer_config  # noqa: E402
from btc_pipeline.timeutil import to_utc  # noqa: E402
from devstack import Stack  # noqa: E402


class Receiver:
    """Records every POST with its arrival time (UTC)."""

    def __init__(self, port: int) -> None:
        self.got: list[tuple[datetime, dict[str, Any]]] = []
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
                receiver.got.append((datetime.now(UTC), body))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def wait(self, match: Any, after: int, timeout_s: float) -> tuple[datetime, dict[str, Any]]:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for at, body in self.got[after:]:
                if match(body):
                    return at, body
            time.sleep(0.1)
        raise SystemExit(f"no matching message within {timeout_s:.0f} s; got {[b.get('title') for _, b in self.got]}")


def seconds(a: datetime, b: datetime) -> float:
    return round((b - a).total_seconds(), 1)


def figures(values: list[float]) -> dict[str, float]:
    return {"n": len(values), "p50": round(percentile(values, 50), 1), "max": round(max(values), 1)}


#: When the last price probe's reset ticks were stamped.
_last_reset = [datetime.min.replace(tzinfo=UTC)]


def price_probe(stack: Stack, store: Store, receiver: Receiver, level: float) -> float:
    settings = stack.settings
    producer = Producer(producer_config({"bootstrap.servers": stack.kafka_bootstrap}))
    # 2 s ahead, and after the previous probe's reset ticks: newer than every exchange's latest
    # tick (else it replaces none, and an evaluation at an older time is ignored)
    now = max(datetime.now(UTC).replace(microsecond=0), _last_reset[0]) + timedelta(seconds=2)
    ticks = [
        Observation(x, "BTC-USD", "tick", now, level + 100, now, "bench-notify", volume=0.01)
        for x in settings.exchanges
    ]
    before = quote(store.latest(), datetime.now(UTC)).consensus or level / 2
    seen = len(receiver.got)
    produced = datetime.now(UTC)
    produce_all(producer, settings.topic, [Record(*t.encode()) for t in ticks])
    at, _ = receiver.wait(lambda b: "rose above" in b.get("title", ""), seen, 120)
    # back under the level at once (the exchanges' own ticks may be older than the probe's for a
    # while), and on to the next probe once btc_drain has evaluated that price
    back = now + timedelta(seconds=1)
    _last_reset[0] = back
    resets = [
        Observation(x, "BTC-USD", "tick", back, before, back, "bench-notify", volume=0.01) for x in settings.exchanges
    ]
    produce_all(producer, settings.topic, [Record(*t.encode()) for t in resets])
    deadline = time.monotonic() + 120
    while (store.alert_state()[0].last_price or level) >= level:
        if time.monotonic() > deadline:
            raise SystemExit("btc_drain did not evaluate the price back under the level within 120 s")
        time.sleep(0.5)
    return seconds(produced, at)


def failure_probe(client: AirflowClient, receiver: Receiver) -> tuple[float, float]:
    seen = len(receiver.got)
    run = client.call("POST", "/dags/btc_ingest/dagRuns", {"logical_date": None, "conf": {}})
    run_id = run["dag_run_id"]
    at, _ = receiver.wait(lambda b: run_id in b.get("message", "") and "stream_ticks" in b["message"], seen, 180)
    quoted = urllib.parse.quote(run_id, safe="")
    # its produce_window would retry for minutes and fail again later, inside the next probe: end it
    client.call("PATCH", f"/dags/btc_ingest/dagRuns/{quoted}", {"state": "failed"})
    ti = client.call("GET", f"/dags/btc_ingest/dagRuns/{quoted}/taskInstances/stream_ticks")
    failed = to_utc(datetime.fromisoformat(ti["end_date"]))
    rec_at, body = receiver.wait(lambda b: b.get("title") == "btc_ingest recovered", seen, 300)
    recovered_run = body["message"].split("- run: ", 1)[1].split(" succeeded", 1)[0]
    run = client.call("GET", f"/dags/btc_ingest/dagRuns/{urllib.parse.quote(recovered_run, safe='')}")
    return seconds(failed, at), seconds(to_utc(datetime.fromisoformat(run["end_date"])), rec_at)


def stale_probe(stack: Stack, client: AirflowClient, store: Store, receiver: Receiver) -> tuple[float, float]:
    limit = stack.settings.stale_after_s
    seen = len(receiver.got)
    for dag_id in ("btc_ingest", "btc_heal"):
        client.call("PATCH", f"/dags/{dag_id}", {"is_paused": True})
    try:
        at, _ = receiver.wait(lambda b: b.get("title") == "BTC-USD data is stale", seen, limit + 600)
        newest = max(o.as_of for o in store.latest())
        stale_delay = seconds(newest + timedelta(seconds=limit), at)
    finally:
        for dag_id in ("btc_ingest", "btc_heal"):
            client.call("PATCH", f"/dags/{dag_id}", {"is_paused": False})
    # the first new observation: seen in the hot set (polled every 0.2 s) as it is stored
    deadline = time.monotonic() + 300
    while max(o.as_of for o in store.latest()) <= newest:
        if time.monotonic() > deadline:
            raise SystemExit("no new observation within 300 s of unpausing btc_ingest")
        time.sleep(0.2)
    stored = datetime.now(UTC)
    at, _ = receiver.wait(lambda b: "fresh again" in b.get("title", ""), seen, 300)
    return stale_delay, seconds(stored, at)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--port", type=int, default=8091)
    parser.add_argument("--probes", type=int, default=3, help="price crossings")
    parser.add_argument("--failure-probes", type=int, default=2, help="failed runs (each waits for its recovery)")
    parser.add_argument("--state-dir", type=Path, default=None)
    args = parser.parse_args()
    stack = Stack.running("demo", state_dir=args.state_dir)
    settings = stack.settings
    if not settings.notify_urls or settings.alert_above is None:
        raise SystemExit("set BTC_NOTIFY_URLS=json://127.0.0.1:PORT/demo and BTC_ALERT_ABOVE in .env, then make demo")
    receiver = Receiver(args.port)
    store = Store.connect(stack.mongo_uri, settings.mongo_db)
    client = AirflowClient(ApiSettings(url=stack.airflow_url, user=stack.admin_user, password=stack.admin_password))
    client.login()
    # until btc_drain evaluates live prices (after a restart it may first wait for Kafka's group
    # coordinator, and the first evaluation only remembers the price)
    deadline = time.monotonic() + 600
    while (store.alert_state()[0].last_ts or datetime.min.replace(tzinfo=UTC)) < datetime.now(UTC) - timedelta(
        seconds=60
    ):
        if time.monotonic() > deadline:
            raise SystemExit("btc_drain evaluated no price alert within 10 min: is btc_ingest running?")
        time.sleep(2)
    baseline = []
    for _ in range(args.probes):
        sent = datetime.now(UTC)
        deliver(check_message(sent), [f"json://127.0.0.1:{args.port}/baseline"], None)
        baseline.append(seconds(sent, receiver.got[-1][0]))
    price = []
    for i in range(args.probes):
        price.append(price_probe(stack, store, receiver, settings.alert_above))
        print(f"price crossing {i + 1}: delivered after {price[-1]} s", flush=True)
    stale, fresh = stale_probe(stack, client, store, receiver)
    print(f"stale: delivered {stale} s after the limit; fresh again: {fresh} s after the first new observation")
    failure, recovery = [], []
    for i in range(args.failure_probes):
        f, r = failure_probe(client, receiver)
        failure.append(f)
        recovery.append(r)
        print(f"failing task {i + 1}: delivered after {f} s; recovery after {r} s", flush=True)
    result = {
        "baseline_receiver_round_trip_s": figures(baseline),
        "price_crossing_to_delivery_s": figures(price),
        "failing_task_to_delivery_s": figures(failure),
        "recovered_run_to_delivery_s": figures(recovery),
        "stale_limit_to_delivery_s": stale,
        "fresh_again_to_delivery_s": fresh,
        "stale_after_s": settings.stale_after_s,
        "deliveries_recorded": len(store.recent_deliveries()),
        "deliveries_failed": sum(d["outcome"] != "sent" for d in store.recent_deliveries()),
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
