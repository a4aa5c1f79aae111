"""The read API as the local stack runs it (uvicorn, its own process): once the scheduled DAGs have
brought prices into MongoDB, the API serves them, its health probe turns 200 and its metrics
describe the running pipeline."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from datetime import datetime, timedelta
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from btc_pipeline.health import LatestObservation
from btc_pipeline.store import Store
from devstack import Stack
from simexchange.market import PRICE_OFFSET_BPS
from simexchange.pricepath import PricePath

from .conftest import wait_for

pytestmark = pytest.mark.integration


def get(url: str) -> tuple[int, Any]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            raw = response.read()
            status = response.status
            kind = response.headers.get("content-type", "")
    except urllib.error.HTTPError as error:
        raw, status, kind = error.read(), error.code, error.headers.get("content-type", "")
    return status, json.loads(raw) if kind.startswith("application/json") else raw.decode()


def test_the_api_serves_the_stacks_prices(stack: Stack, mongo: Any):
    assert get(f"{stack.api_url}/livez") == (200, {"status": "alive"})
    store = Store(mongo["btc"])

    def data_flowing() -> list[LatestObservation] | None:
        latest = store.latest()
        kinds = {(o.source, o.kind) for o in latest}
        return latest if {(x, "tick") for x in PRICE_OFFSET_BPS} | {("coinbase", "candle_1m")} <= kinds else None

    wait_for(data_flowing, 240, "ticks of every exchange and a Coinbase candle in btc.latest")
    status, body = get(f"{stack.api_url}/v1/prices/latest")
    assert status == 200 and {x["source"] for x in body["exchanges"]} == set(PRICE_OFFSET_BPS)
    assert body["consensus"] is not None
    ticks = {o.source: o for o in store.latest() if o.kind == "tick"}  # read after the API: newer or the same
    for x in body["exchanges"]:
        stored = ticks[x["source"]]
        answered = datetime.fromisoformat(x["ts"])
        assert answered < stored.ts or (answered == stored.ts and x["price"] == stored.price), x

    candle = next(o for o in store.latest() if o.kind == "candle_1m" and o.source == "coinbase")
    start = candle.ts
    query = f"source=coinbase&from={start:%Y-%m-%dT%H:%MZ}&to={start + timedelta(minutes=1):%Y-%m-%dT%H:%MZ}"
    status, page = get(f"{stack.api_url}/v1/candles?{query}")
    assert status == 200 and page["count"] == 1
    assert page["candles"][0]["close"] == PricePath(42).candle(start).close  # what the exchange published

    def fresh() -> Any:
        status, report = get(f"{stack.api_url}/v1/health")
        # the DAGs' runs are recorded when they end: btc_ingest's after its minute of ticks
        recorded = {d["dag_id"] for d in report["dags"]} if status == 200 else set()
        return report if {"btc_ingest", "btc_drain"} <= recorded else None

    report = wait_for(fresh, 180, "/v1/health to answer 200 with btc_ingest's and btc_drain's runs", interval_s=5)
    assert report["status"] == "ok" and {d["dag_id"] for d in report["dags"]} >= {"btc_ingest", "btc_drain"}
    status, text = get(f"{stack.api_url}/metrics")
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }
    assert status == 200 and samples[("btc_store_up", ())] == 1
    assert 0 <= samples[("btc_data_age_seconds", (("kind", "tick"), ("source", "coinbase")))] < 600
    assert samples[("btc_api_request_duration_seconds_count", (("route", "/v1/candles"), ("status", "200")))] == 1


def test_the_docs_pages_draw_in_a_browser_without_internet(stack: Stack, tmp_path):
    """Swagger UI and ReDoc load their scripts from the API itself (no CDN, and this machine has no
    internet): the pages draw every route."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    from devstack.browser import chromium

    driver = chromium(profile=tmp_path / "profile")
    try:
        driver.get(f"{stack.api_url}/docs")
        operations = WebDriverWait(driver, 30).until(lambda d: d.find_elements(By.CSS_SELECTOR, ".opblock-summary"))
        assert any("/v1/candles" in op.text for op in operations)
        driver.get(f"{stack.api_url}/redoc")
        WebDriverWait(driver, 30).until(lambda d: "/v1/gaps" in d.find_element(By.TAG_NAME, "body").text)
    finally:
        driver.quit()
