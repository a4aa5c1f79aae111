"""The read API (FastAPI's TestClient, in-process) against a real FerretDB of its own, seeded through
the store's production write path: every endpoint, the formats and paging of candles, every 422,
503 when MongoDB is unreachable, health fresh and stale, the metrics, the bucket cache's
staleness bound, and schemathesis over ``/openapi.json`` (no 5xx, every response as documented)."""

from __future__ import annotations

import io
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pandas as pd
import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, example, given, settings
from prometheus_client.parser import text_string_to_metric_families
from pymongo import MongoClient
from schemathesis import GenerationMode

from btc_pipeline.api import create_app
from btc_pipeline.config import Settings, load_settings
from btc_pipeline.schema import Observation
from btc_pipeline.steps.gaps import find_gaps
from btc_pipeline.store import CONSENSUS, BucketCache, Store
from btc_pipeline.window import MINUTE, Window
from devstack import Stack
from devstack.config import free_ports
from devstack.processes import free_port
from simexchange.market import PRICE_OFFSET_BPS
from simexchange.pricepath import PricePath
from tests.conftest import EXTREME_DATE_QUERIES

pytestmark = pytest.mark.integration

#: The API's clock in these tests: the seeded data ends just before it.
NOW = datetime(2026, 6, 2, 12, 0, 30, tzinfo=UTC)
START = datetime(2026, 6, 2, 9, 0, tzinfo=UTC)
HOLE = Window(datetime(2026, 6, 2, 10, 30, tzinfo=UTC), datetime(2026, 6, 2, 10, 33, tzinfo=UTC))
NO_TRADES = Window(datetime(2026, 6, 2, 11, 10, tzinfo=UTC), datetime(2026, 6, 2, 11, 12, tzinfo=UTC))
KRAKEN_FROM = datetime(2026, 6, 2, 11, 15, tzinfo=UTC)
PATH = PricePath(11)
DB = "api_test"


def candle(source: str, ts: datetime) -> Observation:
    c = PATH.candle(ts)
    k = 1 + PRICE_OFFSET_BPS[source] / 10_000
    o, h, lo, cl = (round(v * k, 2) for v in (c.open, c.high, c.low, c.close))
    return Observation(source, "BTC-USD", "candle_1m", ts, cl, ts + timedelta(seconds=70), "seed", o, h, lo, cl, 1.5)


def tick(source: str, ts: datetime) -> Observation:
    price = round(PATH.price_at(ts) * (1 + PRICE_OFFSET_BPS[source] / 10_000), 2)
    return Observation(source, "BTC-USD", "tick", ts, price, ts + timedelta(seconds=1), "seed", volume=0.01)


def seed(store: Store) -> None:
    """09:00-12:00: Coinbase's candles (less a hole and two minutes without trades), Kraken's from
    11:15, each exchange's ticker every 20 s over the last half hour; runs and rejects."""
    minutes = [START + MINUTE * m for m in range(180)]
    observations = [candle("coinbase", ts) for ts in minutes if not HOLE.contains(ts) and not NO_TRADES.contains(ts)]
    observations += [candle("kraken", ts) for ts in minutes if ts >= KRAKEN_FROM]
    for second in range(0, 30 * 60, 20):
        at = NOW - timedelta(minutes=30) + timedelta(seconds=second)
        observations += [tick(x, at + timedelta(seconds=i)) for i, x in enumerate(PRICE_OFFSET_BPS)]
    for i in range(0, len(observations), 300):
        store.write_observations(observations[i : i + 300], now=NOW)
    store.record_no_trade_minutes("coinbase", "BTC-USD", list(NO_TRADES.minutes()), "seed", reported_at=NOW)
    runs = [
        ("btc_drain", "d1", {"state": "success", "consumed": 10, "lag_after": 4}),
        ("btc_ingest", "i1", {"state": "success", "failed_exchanges": {"coinbase": "HTTP 503", "kraken:ticker": "x"}}),
        ("btc_ingest", "i2", {"state": "success", "failed_exchanges": {"coinbase": "HTTP 429"}}),
        ("btc_backfill", "b1", {"state": "failed", "failed_task": "find_gaps", "error": "end must be after start"}),
    ]
    for n, (dag_id, run_id, fields) in enumerate(runs):
        at = NOW - timedelta(minutes=10 - n)
        store.record_run(dag_id, run_id, started_at=at, finished_at=at + timedelta(seconds=5), fields=fields)
    rejects = [
        {"_id": f"t|0|{o}", "topic": "t", "partition": 0, "offset": o, "reason": reason}
        for o, reason in enumerate(["invalid_json", "invalid_json", "bad_price"])
    ]
    store.record_rejects(rejects, day="2026-06-02")


@pytest.fixture(scope="module")
def ferretdb(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """A FerretDB of this module's own (the dev stack's launcher, only that service)."""
    stack = Stack("test", state_dir=Path(tmp_path_factory.mktemp("api-ferretdb")), ports=free_ports())
    try:
        stack.up(["ferretdb"])
        yield stack
    finally:
        stack.down()


@pytest.fixture(scope="module")
def store(ferretdb: Stack) -> Iterator[Store]:
    client: MongoClient[Any] = MongoClient(ferretdb.mongo_uri, tz_aware=True)
    seeded = Store(client[DB])
    seed(seeded)
    yield seeded
    client.close()


@pytest.fixture
def own_store(ferretdb: Stack) -> Iterator[Store]:
    """A database seeded like the module's, of one test's own: for a test that writes (the module's
    database stays as seeded, whatever order the tests run in)."""
    client: MongoClient[Any] = MongoClient(ferretdb.mongo_uri, tz_aware=True)
    name = f"{DB}_{uuid.uuid4().hex[:8]}"
    seeded = Store(client[name])
    seed(seeded)
    yield seeded
    client.drop_database(name)
    client.close()


@pytest.fixture(scope="module")
def api_settings(ferretdb: Stack) -> Settings:
    return load_settings({"BTC_MONGO_URI": ferretdb.mongo_uri, "BTC_MONGO_DB": DB})


@pytest.fixture(scope="module")
def client(api_settings: Settings, store: Store) -> TestClient:
    return TestClient(create_app(api_settings, clock=lambda: NOW))


def frame_of(candles: list[dict[str, Any]]) -> pd.DataFrame:
    frame = pd.DataFrame(candles, columns=["ts", "open", "high", "low", "close", "volume", "n"])
    frame["ts"] = pd.to_datetime(frame["ts"], utc=True)
    return frame


# --- prices --------------------------------------------------------------------------------------


def test_latest_prices_are_each_exchanges_newest_tick_and_their_median(client: TestClient, store: Store):
    body = client.get("/v1/prices/latest").json()
    newest = {o.source: o for o in store.latest() if o.kind == "tick"}
    assert {x["source"] for x in body["exchanges"]} == set(PRICE_OFFSET_BPS) == set(newest)
    for x in body["exchanges"]:
        assert x["price"] == newest[x["source"]].price
        assert pd.Timestamp(x["ts"]) == newest[x["source"]].ts
        assert x["age_s"] == pytest.approx((NOW - newest[x["source"]].ts).total_seconds(), abs=0.1)
        assert x["stale"] is False
    prices = sorted(o.price for o in newest.values())
    assert body["consensus"] == pytest.approx((prices[1] + prices[2]) / 2)
    assert [x["price"] for x in body["exchanges"]] == prices  # by price


def test_candles_default_to_the_consensus_of_the_last_day_oldest_first(client: TestClient, store: Store):
    response = client.get("/v1/candles", params={"interval": "1m"})
    assert response.status_code == 200 and response.headers["content-type"] == "application/json"
    body = response.json()
    assert (body["source"], body["interval"], body["next"]) == (CONSENSUS, "1m", None)
    assert (body["from"], body["to"]) == ("2026-06-01T12:01:00Z", "2026-06-02T12:01:00Z")
    expected = store.bars(CONSENSUS, "1m", Window(START, NOW.replace(second=0) + MINUTE))
    assert body["count"] == len(expected) == 180 - HOLE.minute_count - NO_TRADES.minute_count
    pd.testing.assert_frame_equal(frame_of(body["candles"]), expected, check_dtype=False)
    assert {c["n"] for c in body["candles"] if c["ts"] >= "2026-06-02T11:15:00Z"} == {2}  # Coinbase and Kraken


@pytest.mark.parametrize(
    ("source", "interval"),
    [("coinbase", "1m"), ("kraken", "5m"), ("binance-ticks", "1m"), (CONSENSUS, "1h"), (CONSENSUS, "1d")],
)
def test_candles_of_every_kind_of_series_and_level(client: TestClient, store: Store, source: str, interval: str):
    body = client.get(
        "/v1/candles", params={"source": source, "interval": interval, "from": "2026-06-02T00:00Z"}
    ).json()
    expected = store.bars(source, interval, Window(datetime(2026, 6, 2, tzinfo=UTC), NOW.replace(second=0) + MINUTE))
    assert body["count"] == len(expected) > 0
    pd.testing.assert_frame_equal(frame_of(body["candles"]), expected, check_dtype=False)


def test_candles_come_in_pages_that_follow_next_to_the_whole_range(client: TestClient):
    whole = client.get("/v1/candles", params={"from": "2026-06-02T09:00Z", "to": "2026-06-02T12:00Z"}).json()
    url: str | None = "/v1/candles?from=2026-06-02T09:00Z&to=2026-06-02T12:00Z&limit=50"
    pages = []
    while url:
        page = client.get(url).json()
        assert len(page["candles"]) <= 50
        pages.append(page)
        url = page["next"]
    assert len(pages) == 4  # 180 minutes in pages of 50
    assert [c for p in pages for c in p["candles"]] == whole["candles"]
    assert pages[1]["from"] == pages[0]["to"] == "2026-06-02T09:50:00Z"


def test_candles_as_csv_and_parquet_equal_the_json(client: TestClient):
    query = {"source": "coinbase", "from": "2026-06-02T09:00Z", "to": "2026-06-02T10:00Z"}
    expected = frame_of(client.get("/v1/candles", params=query).json()["candles"])
    csv = client.get("/v1/candles", params={**query, "format": "csv"})
    assert csv.headers["content-type"].startswith("text/csv") and "link" not in csv.headers
    from_csv = pd.read_csv(io.StringIO(csv.text))
    from_csv["ts"] = pd.to_datetime(from_csv["ts"], utc=True)
    pd.testing.assert_frame_equal(from_csv, expected, check_dtype=False)
    parquet = client.get("/v1/candles", params={**query, "format": "parquet", "limit": 30})
    assert parquet.headers["content-type"] == "application/vnd.apache.parquet"
    next_from = "2026-06-02T09%3A30%3A00Z"
    assert parquet.headers["link"] == (
        f"</v1/candles?interval=1m&source=coinbase&format=parquet&limit=30&from={next_from}"
        '&to=2026-06-02T10%3A00%3A00Z>; rel="next"'
    )
    from_parquet = pd.read_parquet(io.BytesIO(parquet.content))
    pd.testing.assert_frame_equal(from_parquet, expected.iloc[:30], check_dtype=False)


def test_gaps_are_reported_as_the_cli_reports_them(client: TestClient, store: Store):
    response = client.get("/v1/gaps", params={"from": "2026-06-02T09:00Z", "to": "2026-06-02T12:00Z"})
    assert response.status_code == 200
    report = find_gaps(store, Window(START, START + timedelta(hours=3)), "BTC-USD")
    assert response.json() == report.to_dict()
    assert [(r["status"], r["minutes"]) for r in response.json()["ranges"]] == [("missing", 3), ("no_trades", 2)]
    only_kraken = client.get(
        "/v1/gaps", params={"from": "2026-06-02T10:00Z", "to": "2026-06-02T12:00Z", "source": "kraken"}
    )
    assert only_kraken.json()["present"] == 45 and only_kraken.json()["source"] == "kraken"


# --- errors --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "query", "parameter"),
    [
        ("/v1/candles", {"interval": "2m"}, "interval"),
        ("/v1/candles", {"source": "ftx"}, "source"),
        ("/v1/candles", {"format": "xml"}, "format"),
        ("/v1/candles", {"from": "2026-06-02T11:00Z", "to": "2026-06-02T10:00Z"}, "from"),
        ("/v1/candles", {"from": "60d"}, "from"),
        ("/v1/candles", {"limit": "5001"}, "limit"),
        ("/v1/candles", {"limit": "many"}, "limit"),
        ("/v1/candles", {"to": "tomorrow"}, "to"),
        ("/v1/gaps", {"from": "2026-02-30T00:00Z"}, "from"),
        ("/v1/gaps", {"to": "2026-06-02T13:00Z"}, "to"),
        ("/v1/gaps", {"from": "40d"}, "from"),
        ("/v1/gaps", {"source": "consensus"}, "source"),
    ],
)
def test_a_bad_parameter_is_a_422_naming_it(client: TestClient, path: str, query: dict[str, str], parameter: str):
    response = client.get(path, params=query)
    assert response.status_code == 422
    body = response.json()
    assert body["error"] == "bad_parameter" and body["parameter"] == parameter
    assert body["message"].startswith(parameter), body


def test_unreachable_mongodb_is_a_503_with_a_clear_body(api_settings: Settings):
    port = free_port()
    settings = load_settings({"BTC_MONGO_URI": f"mongodb://127.0.0.1:{port}/", "BTC_MONGO_DB": DB})
    nowhere = Store.lazy(settings.mongo_uri, DB, timeout_ms=200)
    client = TestClient(create_app(settings, nowhere, clock=lambda: NOW))
    for path in ("/v1/prices/latest", "/v1/candles", "/v1/gaps"):
        response = client.get(path)
        assert response.status_code == 503, path
        body = response.json()
        assert body["error"] == "database_unavailable" and "BTC_MONGO_URI" in body["message"]
        assert "Traceback" not in response.text
    health = client.get("/v1/health")
    assert health.status_code == 503 and health.json()["status"] == "unavailable"
    metrics = client.get("/metrics")
    assert metrics.status_code == 200 and "btc_store_up 0.0" in metrics.text
    assert client.get("/livez").json() == {"status": "alive"}
    nowhere.close()


# --- operations ----------------------------------------------------------------------------------


def test_health_is_200_while_fresh_and_503_with_reasons_when_stale(api_settings: Settings, store: Store):
    fresh = TestClient(create_app(api_settings, clock=lambda: NOW)).get("/v1/health")
    assert fresh.status_code == 200
    body = fresh.json()
    assert body["status"] == "ok" and body["consumer_lag"] == 4 and body["stale_after_s"] == 120
    assert {x["source"] for x in body["exchanges"]} == set(PRICE_OFFSET_BPS)
    assert {d["dag_id"]: d["state"] for d in body["dags"]} == {
        "btc_backfill": "failed",
        "btc_drain": "success",
        "btc_ingest": "success",
    }
    later = TestClient(create_app(api_settings, clock=lambda: NOW + timedelta(minutes=10))).get("/v1/health")
    assert later.status_code == 503
    stale = later.json()
    assert stale["status"] == "stale" and "BTC_STALE_AFTER_S" in stale["reasons"][0]
    assert "the last btc_backfill run failed in find_gaps" in stale["reasons"]


def test_the_dashboard_panel_and_the_api_report_the_same_health(
    api_settings: Settings, client: TestClient, store: Store
):
    """The same store and clock: /v1/health and the dashboard's health panel give each exchange the
    same ages (a candle's from its close) and the same last run of each DAG."""
    from dashboard.view import load_health

    body = client.get("/v1/health").json()
    panel = load_health(store, api_settings, NOW)
    api_ages = {
        (x["source"], kind): f"{x[kind]['age_s']:,.0f} s"
        for x in body["exchanges"]
        for kind in ("candle", "tick")
        if x[kind]
    }
    panel_ages = {(row["exchange"], kind): row[f"{kind} age"] for row in panel.exchanges for kind in ("candle", "tick")}
    assert api_ages == {key: age for key, age in panel_ages.items() if age != "—"}
    assert api_ages[("coinbase", "candle")] == "30 s"  # the 11:59 candle closed at 12:00:00, 30 s before NOW
    assert [(d["dag_id"], d["state"]) for d in body["dags"]] == [(r["DAG"], r["state"]) for r in panel.runs]
    assert panel.health.consumer_lag == body["consumer_lag"] == 4


def test_metrics_describe_the_pipeline(client: TestClient):
    response = client.get("/metrics")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(response.text)
        for s in family.samples
    }
    assert samples[("btc_store_up", ())] == 1
    assert samples[("btc_data_age_seconds", (("kind", "tick"), ("source", "coinbase")))] == pytest.approx(40, abs=20)
    assert samples[("btc_data_age_seconds", (("kind", "candle_1m"), ("source", "coinbase")))] == 30.0
    assert samples[("btc_consumer_lag", ())] == 4
    assert samples[("btc_rejects", (("reason", "invalid_json"),))] == 2
    assert samples[("btc_dag_runs", (("dag_id", "btc_ingest"), ("state", "success")))] == 2
    assert samples[("btc_dag_last_run_success", (("dag_id", "btc_backfill"),))] == 0
    assert samples[("btc_exchange_failovers", (("exchange", "coinbase"), ("what", "candles")))] == 2
    assert samples[("btc_exchange_failovers", (("exchange", "kraken"), ("what", "ticker")))] == 1
    assert any(name == "btc_api_request_duration_seconds_count" for name, _ in samples)


def test_openapi_documents_every_route_with_descriptions(client: TestClient):
    spec = client.get("/openapi.json").json()
    assert {"/v1/prices/latest", "/v1/candles", "/v1/gaps", "/v1/health", "/metrics"} <= set(spec["paths"])
    candles = spec["paths"]["/v1/candles"]["get"]
    by_name = {p["name"]: p for p in candles["parameters"]}
    assert set(by_name) == {"interval", "source", "from", "to", "limit", "format"}
    assert all(p.get("description") for p in by_name.values())
    assert (
        by_name["source"]["schema"]["default"] == CONSENSUS and "binance-ticks" in by_name["source"]["schema"]["enum"]
    )
    assert set(candles["responses"]["200"]["content"]) == {
        "application/json",
        "text/csv",
        "application/vnd.apache.parquet",
    }
    assert client.get("/docs").status_code == 200


# --- the bucket cache ----------------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def test_cached_old_bars_are_at_most_ttl_stale_and_the_newest_are_always_fresh(ferretdb: Stack, own_store: Store):
    clock = Clock()
    cache = BucketCache(ttl_s=30, settle_s=300, clock=clock, now=lambda: NOW)
    cached = Store.lazy(ferretdb.mongo_uri, own_store.db.name, cache=cache)
    day = Window(START, NOW.replace(second=0) + MINUTE)
    first = cached.bars("coinbase", "1m", day)
    assert cache.misses == 4 and len(cache) == 2  # 09:00, 10:00; 11:00 ended 30 s ago, 12:00 is filling
    pd.testing.assert_frame_equal(cached.bars("coinbase", "1m", day), first)
    assert cache.hits == 2

    old, new = START + MINUTE * 5, NOW.replace(second=0)
    corrected = candle("coinbase", old)
    corrected = Observation(
        **{
            **corrected.__dict__,
            "close": corrected.close + 1,
            "price": corrected.close + 1,
            "high": corrected.high + 1,
            "fetched_at": NOW,
        }
    )
    own_store.write_observations([corrected, candle("coinbase", new)], now=NOW)
    seen = cached.bars("coinbase", "1m", day).set_index("ts")
    assert new in seen.index  # the current hour is read fresh
    assert seen.loc[old, "close"] == first.set_index("ts").loc[old, "close"]  # the old hour is cached
    clock.t = 31
    assert cached.bars("coinbase", "1m", day).set_index("ts").loc[old, "close"] == corrected.close
    cached.close()


def test_the_cache_is_bounded_by_the_bar_slots_it_holds():
    cache = BucketCache(max_slots=1)
    for i in range(5):
        cache.put("c", str(i), None)
    assert len(cache) == 1 and cache.get("c", "4") == (True, None) and cache.get("c", "0") == (False, None)


# --- schemathesis --------------------------------------------------------------------------------


#: Dates no generator is likely to hit, tried first in every run: each extreme a 422 naming the
#: parameter, and a candles ``to`` in year 9999 cut back to now (200).
EXPLICIT_EXAMPLES = [(path, query) for path, query, _ in EXTREME_DATE_QUERIES] + [
    ("/v1/candles", {"to": "9999-12-31T23:59:59.999999Z"})
]


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=str)
def test_every_response_is_documented_and_none_is_a_500(client: TestClient, mode: GenerationMode):
    """Schemathesis over /openapi.json: valid requests (positive) and requests that break the schema
    (negative) to every operation, and the explicit examples of extreme dates; each response has a
    documented status, content type and schema."""
    schema = schemathesis.openapi.from_asgi("/openapi.json", client.app)
    # a schema-valid request may still break a rule between parameters (from before to, a range
    # within the limit of its interval): 422 is a right answer to it
    accepted = schema.config.checks.positive_data_acceptance
    accepted.expected_statuses = [*accepted.expected_statuses, "422"]
    statuses: dict[str, int] = {}

    def responds_as_documented(case: Any) -> None:
        response = case.call_and_validate()
        statuses[f"{case.path}?{urlencode(case.query or {})}"] = response.status_code

    fuzzed = given(case=schema.as_strategy(mode))(responds_as_documented)
    for path, query in EXPLICIT_EXAMPLES:
        fuzzed = example(case=schema[path]["GET"].Case(query=query))(fuzzed)
    settings(max_examples=120, deadline=None, database=None, suppress_health_check=list(HealthCheck))(fuzzed)()
    explicit = [statuses[f"{path}?{urlencode(query)}"] for path, query in EXPLICIT_EXAMPLES]
    assert explicit == [422] * len(EXTREME_DATE_QUERIES) + [200]
