"""The read API's app without a database: an unexpected error is a clean 500 (logged redacted, no
traceback in the body), extreme dates are a 422 before any read, the liveness route and the docs
answer, and ``/`` leads to the docs."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from btc_pipeline.api import create_app
from btc_pipeline.config import load_settings
from btc_pipeline.store import Store
from devstack.processes import free_port
from tests.conftest import EXTREME_DATE_QUERIES


class BrokenStore(Store):
    """A store whose hot-set read fails as a bug would."""

    def latest(self) -> list[dict[str, Any]]:
        raise KeyError("internal detail that must not reach clients, mongodb://btc:s3cret-pw@db:27017/")


@pytest.fixture
def client() -> TestClient:
    settings = load_settings({"BTC_MONGO_URI": f"mongodb://127.0.0.1:{free_port()}/"})
    store = BrokenStore.lazy(settings.mongo_uri, settings.mongo_db, timeout_ms=100)
    return TestClient(create_app(settings, store), raise_server_exceptions=False, follow_redirects=False)


def test_an_unexpected_error_is_a_clean_500_and_is_logged(client: TestClient, caplog: pytest.LogCaptureFixture):
    response = client.get("/v1/prices/latest")
    assert response.status_code == 500
    assert response.json() == {
        "error": "internal",
        "message": "the API failed to answer this request; its log has the details",
        "parameter": None,
    }
    assert "internal detail" not in response.text
    assert "internal detail" in caplog.text  # the traceback is in the log
    assert "Traceback" in caplog.text and "in latest" in caplog.text
    assert "s3cret-pw" not in caplog.text  # ... with every URI in it redacted


def test_liveness_docs_and_the_root(client: TestClient):
    assert client.get("/livez").json() == {"status": "alive"}
    assert client.get("/docs").status_code == 200
    root = client.get("/")
    assert root.status_code == 307 and root.headers["location"] == "/docs"
    assert client.get("/openapi.json").json()["info"]["title"] == "btc-pipeline read API"


@pytest.mark.parametrize(("path", "query", "parameter"), EXTREME_DATE_QUERIES)
def test_an_extreme_date_is_a_422_naming_it_never_a_500(
    client: TestClient, path: str, query: dict[str, str], parameter: str
):
    response = client.get(path, params=query)
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["error"] == "bad_parameter" and body["parameter"] == parameter
    assert body["message"].startswith(parameter)


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_the_docs_pages_load_their_assets_from_the_api_not_a_cdn(client: TestClient, page: str):
    import re

    html = client.get(page).text
    assets = re.findall(r'(?:src|href)="([^"]+\.(?:js|css|png))"', html)
    assert assets and all(url.startswith("/") for url in assets), assets
    for url in assets:
        answer = client.get(url)
        assert answer.status_code == 200 and len(answer.content) > 1000, url


@pytest.mark.parametrize(
    ("query", "parameter", "words"),
    [
        ("interval=2m", "interval", "interval='2m': Input should be '1m', '5m', '1h' or '1d'"),
        ("format=xml", "format", "format='xml': Input should be 'json', 'csv' or 'parquet'"),
        ("limit=0", "limit", "limit='0': Input should be greater than or equal to 1"),
        ("limit=5001", "limit", "limit='5001': Input should be less than or equal to 5000"),
        ("limit=many", "limit", "limit='many': Input should be a valid integer"),
    ],
)
def test_typed_parameters_are_refused_by_fastapi_with_a_422_naming_them(
    client: TestClient, query: str, parameter: str, words: str
):
    response = client.get(f"/v1/candles?{query}")
    assert response.status_code == 422
    assert response.json()["parameter"] == parameter and words in response.json()["message"]


def test_the_schema_lists_the_typed_parameters_values(client: TestClient):
    parameters = {
        p["name"]: p["schema"] for p in client.get("/openapi.json").json()["paths"]["/v1/candles"]["get"]["parameters"]
    }
    assert parameters["interval"]["enum"] == ["1m", "5m", "1h", "1d"]
    assert parameters["format"]["enum"] == ["json", "csv", "parquet"]
