"""The one health model (btc_pipeline.health) fed with store records on a fixed clock, and the two
views of it: the API's /v1/health body and the dashboard panel's tables. No services."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from btc_pipeline.api.routes import health_body
from btc_pipeline.health import LatestObservation, RunRecord, failovers, pipeline_health
from dashboard.view import freshness_rows, run_rows

NOW = datetime(2026, 6, 2, 12, 0, 30, tzinfo=UTC)
MINUTE = timedelta(minutes=1)


def seen(source: str, kind: str, ts: datetime, price: float = 100.0) -> LatestObservation:
    return LatestObservation(source, kind, ts, price)


def run(dag_id: str, run_id: str, started_at: datetime, state: str = "success", **fields: object) -> RunRecord:
    return RunRecord(dag_id, run_id, state, started_at, started_at + timedelta(seconds=5), **fields)  # type: ignore[arg-type]


def test_a_candle_ages_from_its_close_and_a_tick_from_its_time():
    report = pipeline_health(
        [
            seen("coinbase", "candle_1m", datetime(2026, 6, 2, 11, 57, tzinfo=UTC)),  # closed 11:58:00
            seen("coinbase", "tick", NOW - timedelta(seconds=30)),
        ],
        [],
        NOW,
        stale_after_s=120,
    )
    ages = {(f.observation.source, f.observation.kind): f.age_s for f in report.readings}
    assert ages == {("coinbase", "candle_1m"): 150.0, ("coinbase", "tick"): 30.0}
    assert report.newest == NOW - timedelta(seconds=30) and report.age_s == 30.0


def test_the_newest_candle_counts_from_its_close_in_the_verdict():
    """A candle of the minute that just closed is 30 s old, not 90 s (its open)."""
    report = pipeline_health([seen("kraken", "candle_1m", datetime(2026, 6, 2, 11, 59, tzinfo=UTC))], [], NOW, 60)
    assert report.status == "ok" and report.newest == datetime(2026, 6, 2, 12, 0, tzinfo=UTC)
    assert report.age_s == 30.0


@pytest.mark.parametrize(("age_s", "verdict"), [(119.9, "ok"), (120.0, "ok"), (120.1, "stale"), (3600, "stale")])
def test_fresh_up_to_the_limit_and_stale_beyond(age_s: float, verdict: str):
    report = pipeline_health([seen("coinbase", "tick", NOW - timedelta(seconds=age_s))], [], NOW, stale_after_s=120)
    assert report.status == verdict
    assert (report.reasons == []) == (verdict == "ok")
    if verdict == "stale":
        assert "more than BTC_STALE_AFTER_S = 120 s" in report.reasons[0]


def test_an_entry_from_the_future_is_left_out():
    """A reading stamped in 2096 would make the data look fresh forever."""
    latest = [
        seen("kraken", "tick", datetime(2096, 1, 1, tzinfo=UTC)),
        seen("coinbase", "tick", NOW - timedelta(minutes=10)),
        seen("bitstamp", "tick", NOW + timedelta(seconds=30)),  # within the allowed clock skew: kept
    ]
    report = pipeline_health(latest, [], NOW, stale_after_s=120)
    assert [f.observation.source for f in report.readings] == ["bitstamp", "coinbase"]
    assert report.newest == NOW + timedelta(seconds=30) and report.status == "ok"
    alone = pipeline_health(latest[:1], [], NOW, stale_after_s=120)
    assert alone.status == "stale" and alone.readings == [] and alone.newest is None


def test_the_consumer_lag_is_that_of_the_newest_drain_run_that_measured_it():
    runs = [
        run("btc_drain", "old", NOW - 3 * MINUTE, lag_after=9),
        run("btc_ingest", "i", NOW, lag_after=None),
        run("btc_drain", "newest-unmeasured", NOW - MINUTE, state="failed"),
        run("btc_drain", "measured", NOW - 2 * MINUTE, lag_after=4),
    ]
    assert pipeline_health([], runs, NOW, 120).consumer_lag == 4
    assert pipeline_health([], runs[1:3], NOW, 120).consumer_lag is None


def test_the_last_run_of_each_dag_and_its_failures_among_those_kept():
    runs = [
        run("btc_ingest", "i1", NOW - 2 * MINUTE),
        run("btc_drain", "d1", NOW - 3 * MINUTE, state="failed", failed_task="drain"),
        run("btc_ingest", "i2", NOW - MINUTE, state="failed", failed_task="produce_window"),
        run("btc_drain", "d2", NOW - MINUTE),
    ]
    report = pipeline_health([seen("coinbase", "tick", NOW - timedelta(minutes=5))], runs, NOW, 120)
    assert {dag_id: [r.run_id for r in runs] for dag_id, runs in report.dags.items()} == {
        "btc_drain": ["d2", "d1"],
        "btc_ingest": ["i2", "i1"],
    }
    assert [(row["DAG"], row["state"], row["runs kept"], row["failed of them"]) for row in run_rows(report)] == [
        ("btc_drain", "success", 2, 1),
        ("btc_ingest", "failed", 2, 1),
    ]
    # stale: the failed last runs are named as the likely cause, not the drain that failed earlier
    assert report.reasons[1:] == ["the last btc_ingest run failed in produce_window"]


def test_no_data_yet():
    report = pipeline_health([], [], NOW, stale_after_s=120)
    assert report.status == "stale" and "no tick or candle stored yet" in report.reasons[0]
    assert report.newest is None and report.age_s is None and report.consumer_lag is None
    assert report.dags == {} and report.readings == []
    body = health_body(report)
    assert body.status == "stale" and body.exchanges == [] and body.dags == []
    assert freshness_rows(report, ["coinbase"]) == [
        {
            "exchange": "coinbase",
            "newest candle": "no data",
            "candle age": "—",
            "newest tick": "no data",
            "tick age": "—",
        }
    ]


def test_the_api_and_the_dashboard_panel_show_the_same_ages_and_runs():
    latest = [
        seen("coinbase", "candle_1m", datetime(2026, 6, 2, 11, 58, tzinfo=UTC)),
        seen("coinbase", "tick", NOW - timedelta(seconds=12.25)),
        seen("kraken", "tick", NOW - timedelta(seconds=400)),
    ]
    runs = [run("btc_backfill", "b", NOW - MINUTE, state="failed", failed_task="plan", error="x" * 300)]
    report = pipeline_health(latest, runs, NOW, stale_after_s=120)
    body = health_body(report)
    api = {
        (x.source, kind): r.age_s for x in body.exchanges for kind, r in (("candle", x.candle), ("tick", x.tick)) if r
    }
    assert api == {("coinbase", "candle"): 90.0, ("coinbase", "tick"): 12.2, ("kraken", "tick"): 400.0}
    rows = {row["exchange"]: row for row in freshness_rows(report, ["coinbase", "kraken", "binance"])}
    panel = {(name, kind): row[f"{kind} age"] for name, row in rows.items() for kind in ("candle", "tick")}
    assert panel == {
        ("coinbase", "candle"): "90 s",
        ("coinbase", "tick"): "12 s",
        ("kraken", "candle"): "—",
        ("kraken", "tick"): "400 s",
        ("binance", "candle"): "—",
        ("binance", "tick"): "—",
    }
    assert rows["coinbase"]["newest candle"] == "2026-06-02T11:58:00Z"  # the minute shown by its start
    (dag,) = body.dags
    (row,) = run_rows(report)
    assert (dag.dag_id, dag.state, dag.failed_task) == (row["DAG"], row["state"], row["failed task"])
    assert len(row["error"]) == 120 and row["failed of them"] == 1


def test_failovers_count_candle_and_ticker_failures_of_ingest_runs():
    runs = [
        run("btc_ingest", "a", NOW, failed_exchanges=("coinbase", "kraken:ticker")),
        run("btc_ingest", "b", NOW, failed_exchanges=("coinbase",)),
        run("btc_ingest", "c", NOW),
        run("btc_backfill", "d", NOW, failed_exchanges=("bitstamp",)),
    ]
    assert failovers(runs) == {("coinbase", "candles"): 2, ("kraken", "ticker"): 1}
