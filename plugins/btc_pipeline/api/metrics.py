"""``/metrics``: the pipeline's state as Prometheus metrics, read from the store on each scrape, and
the API's own request latencies.

Each app has a registry of its own (:func:`registry`), so several apps (tests) never share series.
The store is read on scrape (the hot set, the last runs, the reject summary: a few small
documents); when MongoDB does not answer, ``btc_store_up`` is 0 and the pipeline's metrics are left
out, and the scrape still succeeds.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime

from prometheus_client import CollectorRegistry, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from btc_pipeline.health import PipelineHealth, RunRecord, failovers, pipeline_health
from btc_pipeline.store import Store, StoreError

log = logging.getLogger(__name__)


class PipelineCollector(Collector):
    """Collects the pipeline's metrics from the store when scraped."""

    def __init__(self, store: Store, clock: Callable[[], datetime], stale_after_s: int) -> None:
        self.store = store
        self.clock = clock
        self.stale_after_s = stale_after_s

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily("btc_store_up", "1 when MongoDB answered this scrape's reads, else 0")
        try:
            latest = self.store.latest()
            runs = self.store.recent_runs()
            rejects = self.store.reject_counts()
        except StoreError as exc:
            log.warning("metrics: %s", exc)
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        report = pipeline_health(latest, runs, self.clock(), self.stale_after_s)
        yield from _data_age(report)
        if report.consumer_lag is not None:
            gauge = GaugeMetricFamily("btc_consumer_lag", "Messages left in the topic after the last btc_drain run")
            gauge.add_metric([], report.consumer_lag)
            yield gauge
        yield from _runs(runs, report)
        reject = GaugeMetricFamily(
            "btc_rejects",
            "Messages sent to the dead-letter topic over the UTC days the reject summary keeps (31), by reason "
            "(a gauge: old days roll off)",
            labels=["reason"],
        )
        totals: Counter[str] = Counter()
        for counts in rejects.values():
            totals.update(counts)
        for reason, count in sorted(totals.items()):
            reject.add_metric([reason], count)
        yield reject
        failed = GaugeMetricFamily(
            "btc_exchange_failovers",
            "Among the recorded btc_ingest runs (the last 20), those in which the exchange failed: what=candles "
            "(the next exchange served the window) or what=ticker (its ticker is missing)",
            labels=["exchange", "what"],
        )
        for (exchange, what), count in sorted(failovers(runs).items()):
            failed.add_metric([exchange, what], count)
        yield failed
        cache = self.store.cache
        if cache is not None:
            hits = CounterMetricFamily("btc_api_bucket_cache_hits", "Read-model buckets served from the API's cache")
            hits.add_metric([], cache.hits)
            misses = CounterMetricFamily("btc_api_bucket_cache_misses", "Read-model buckets the API read from MongoDB")
            misses.add_metric([], cache.misses)
            yield hits
            yield misses


def _data_age(report: PipelineHealth) -> Iterator[Metric]:
    age = GaugeMetricFamily(
        "btc_data_age_seconds",
        "Seconds since the newest observation of each exchange and kind (tick: the trade time; candle_1m: the "
        "minute's close)",
        labels=["source", "kind"],
    )
    for f in report.readings:
        age.add_metric([f.observation.source, f.observation.kind], round(f.age_s, 3))
    yield age


def _runs(runs: Sequence[RunRecord], report: PipelineHealth) -> Iterator[Metric]:
    by_state = GaugeMetricFamily(
        "btc_dag_runs", "Recorded runs (the last 20 of each DAG) by DAG and state", labels=["dag_id", "state"]
    )
    for (dag_id, state), count in sorted(Counter((run.dag_id, run.state) for run in runs).items()):
        by_state.add_metric([dag_id, state], count)
    yield by_state
    success = GaugeMetricFamily(
        "btc_dag_last_run_success", "1 when the DAG's last recorded run succeeded", labels=["dag_id"]
    )
    age = GaugeMetricFamily(
        "btc_dag_last_run_age_seconds", "Seconds since the DAG's last recorded run ended", labels=["dag_id"]
    )
    for dag_id, (last, *_) in report.dags.items():
        success.add_metric([dag_id], 1 if last.state == "success" else 0)
        age.add_metric([dag_id], round((report.checked_at - last.finished_at).total_seconds(), 3))
    yield success
    yield age


def registry(store: Store, clock: Callable[[], datetime], stale_after_s: int) -> tuple[CollectorRegistry, Histogram]:
    """A registry of the pipeline's metrics and the API's request-latency histogram."""
    reg = CollectorRegistry(auto_describe=False)
    reg.register(PipelineCollector(store, clock, stale_after_s))
    latency = Histogram(
        "btc_api_request_duration_seconds",
        "Time to answer an API request, by route and status code",
        ["route", "status"],
        registry=reg,
        buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
    )
    return reg, latency


class RequestTimer:
    """ASGI middleware: observe each HTTP request's duration by route template and status code."""

    def __init__(self, app: ASGIApp, latency: Histogram) -> None:
        self.app = app
        self.latency = latency

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        code = 500

        async def send_and_note(message: Message) -> None:
            nonlocal code
            if message["type"] == "http.response.start":
                code = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_and_note)
        finally:
            route = getattr(scope.get("route"), "path", "unmatched")
            self.latency.labels(route, str(code)).observe(time.perf_counter() - started)
