"""The simulated exchange speaks Kraken, Binance and Bitstamp too: their paths, shapes, limits and
faults, over HTTP, read by the production clients. The server runs in-process on a free port."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from btc_pipeline.config import load_settings
from btc_pipeline.exchanges import ExchangeError, build_exchange
from btc_pipeline.exchanges import kraken as kraken_module
from btc_pipeline.window import MINUTE, Window, floor_minute
from simexchange.market import PRICE_OFFSET_BPS
from simexchange.pricepath import PricePath
from tests.conftest import post_fault, request_times

ALL = ("coinbase", "kraken", "binance", "bitstamp")


def get(url: str) -> Any:
    with urllib.request.urlopen(url) as r:
        return json.load(r)


def requests_served(sim: str) -> dict[str, int]:
    return get(f"{sim}/_health")["requests"]


def sim_env(sim: str, **extra: str) -> dict[str, str]:
    return {
        "BTC_COINBASE_URL": f"{sim}/coinbase",
        "BTC_KRAKEN_URL": f"{sim}/kraken/0",
        "BTC_BINANCE_URL": f"{sim}/binance",
        "BTC_BITSTAMP_URL": f"{sim}/bitstamp/api/v2",
        "BTC_HTTP_TIMEOUT_S": "2",
        **extra,
    }


def provider(sim: str, name: str, **env: str):
    p = build_exchange(name, load_settings(sim_env(sim, **env)))
    p.http.backoff_s = 0.01  # keep the retry tests fast; the backoff itself is HttpClient's
    return p


def recent_window(minutes: int = 10, ago: int = 2) -> Window:
    end = floor_minute(datetime.now(UTC)) - MINUTE * ago
    return Window(end - MINUTE * minutes, end)


@pytest.mark.parametrize("name", ALL)
def test_each_exchange_serves_the_one_price_path_with_its_offset(sim, name):
    window = recent_window()
    candles = provider(sim, name).fetch_candles(window)
    expected = PricePath(42).candles(window.start, window.end)
    assert [c.ts for c in candles] == [e.ts for e in expected]
    factor = 1 + PRICE_OFFSET_BPS[name] / 10_000
    for c, e in zip(candles, expected, strict=True):
        assert c.close == pytest.approx(e.close * factor, abs=0.51)  # Bitstamp quotes whole dollars
        assert c.low <= min(c.open, c.close) <= max(c.open, c.close) <= c.high


def test_tickers_differ_by_a_few_basis_points_only(sim):
    ticks = {name: provider(sim, name).fetch_ticker() for name in ALL}
    prices = [t.price for t in ticks.values()]
    spread_bps = (max(prices) - min(prices)) / min(prices) * 10_000
    assert 2 < spread_bps < 20
    assert ticks["binance"].price < ticks["coinbase"].price < ticks["kraken"].price  # -6 bps, 0, +2 bps
    for tick in ticks.values():
        assert abs((datetime.now(UTC) - tick.ts).total_seconds()) < 10


def test_kraken_ohlc_shape_horizon_and_unfinished_row(sim):
    body = get(f"{sim}/kraken/0/public/OHLC?pair=XBTUSD&interval=1")
    assert body["error"] == [] and set(body["result"]) == {"XXBTZUSD", "last"}
    rows = body["result"]["XXBTZUSD"]
    assert len(rows) == 720
    now = datetime.now(UTC)
    assert rows[-1][0] == int(floor_minute(now).timestamp())  # the current, unfinished minute
    assert body["result"]["last"] == rows[-2][0]
    assert all(isinstance(v, str) for v in rows[0][1:7]) and isinstance(rows[0][7], int)
    # `since` older than the horizon still gives only the latest 720 rows
    old = get(f"{sim}/kraken/0/public/OHLC?pair=XBTUSD&interval=1&since={int((now - timedelta(days=2)).timestamp())}")
    assert old["result"]["XXBTZUSD"][0][0] >= rows[0][0]


def test_kraken_unknown_pair_is_an_error_array(sim):
    body = get(f"{sim}/kraken/0/public/Ticker?pair=ETHUSD")
    assert body == {"error": ["EQuery:Unknown asset pair"]}


def test_kraken_window_beyond_the_horizon_is_refused_without_a_request(sim):
    before = requests_served(sim).get("kraken", 0)
    old = Window(
        floor_minute(datetime.now(UTC)) - timedelta(hours=13), floor_minute(datetime.now(UTC)) - timedelta(hours=12)
    )
    with pytest.raises(ExchangeError, match="beyond Kraken's 720-minute horizon"):
        provider(sim, "kraken").fetch_candles(old)
    assert requests_served(sim).get("kraken", 0) == before
    # the oldest window the horizon still holds is served
    start = floor_minute(datetime.now(UTC)) - MINUTE * (kraken_module.OHLC_HORIZON_ROWS - 3)
    assert len(provider(sim, "kraken").fetch_candles(Window(start, start + MINUTE * 2))) == 2


def test_kraken_error_array_is_retried_then_served(sim, faults):
    faults(exchange="kraken", kind="kraken_error", times=2)
    before = requests_served(sim).get("kraken", 0)
    tick = provider(sim, "kraken", BTC_HTTP_RETRIES="2").fetch_ticker()
    assert tick.price > 0
    assert requests_served(sim)["kraken"] == before + 3


def test_kraken_error_array_gives_up_after_the_retries(sim, faults):
    faults(exchange="kraken", kind="kraken_error", times=5)
    with pytest.raises(ExchangeError, match=r"EService:Unavailable.*gave up after 2 attempts"):
        provider(sim, "kraken", BTC_HTTP_RETRIES="1").fetch_candles(recent_window())
    assert len(request_times(sim, "kraken")) == 2


@pytest.mark.parametrize(
    "faults_in_order",
    [
        ["kraken_error"] * 10,
        ["503"] * 10,
        ["503", "kraken_error", "503", "kraken_error", "503", "kraken_error", "503", "kraken_error"],
        ["kraken_error", "503", "503", "kraken_error", "503", "503"],
    ],
    ids=["error-arrays", "http-503", "alternating", "mixed"],
)
def test_one_kraken_call_makes_at_most_retries_plus_one_requests(sim, faults, faults_in_order):
    """The HTTP layer's retries and Kraken's error-array retries share one budget: with
    BTC_HTTP_RETRIES=3, one call makes 4 requests at most, whatever mix of failures it meets."""
    for kind in faults_in_order:
        faults(exchange="kraken", kind=kind, times=1)
    with pytest.raises(ExchangeError, match="gave up after 4 attempts"):
        provider(sim, "kraken", BTC_HTTP_RETRIES="3").fetch_ticker()
    assert len(request_times(sim, "kraken")) == 4


def test_binance_limits_and_paging(sim):
    base = f"{sim}/binance/api/v3/klines?symbol=BTCUSDT&interval=1m"
    rows = get(f"{base}&limit=1000")
    assert len(rows) == 1000 and len(rows[0]) == 12
    assert rows[-1][6] == rows[-1][0] + 59_999
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(f"{base}&limit=1001")
    assert info.value.code == 400 and json.load(info.value)["code"] == -1130
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(f"{sim}/binance/api/v3/klines?symbol=BTCUSD&interval=1m")
    assert json.load(info.value) == {"code": -1121, "msg": "Invalid symbol."}
    window = recent_window(minutes=2500, ago=5)
    candles = provider(sim, "binance").fetch_candles(window)
    assert len(candles) == 2500 and candles[0].ts == window.start and candles[-1].ts == window.end - MINUTE


def test_binance_open_kline_is_served_but_not_taken(sim):
    now = floor_minute(datetime.now(UTC))
    rows = get(f"{sim}/binance/api/v3/klines?symbol=BTCUSDT&interval=1m&limit=3")
    assert rows[-1][0] == int(now.timestamp()) * 1000  # Binance includes the open kline
    candles = provider(sim, "binance").fetch_candles(Window(now - MINUTE * 2, now + MINUTE))
    assert [c.ts for c in candles] == [now - MINUTE * 2, now - MINUTE]


def test_binance_418_with_retry_after_then_served(sim, faults):
    faults(exchange="binance", kind="418", times=1, retry_after=0.3)
    p = provider(sim, "binance")
    assert p.fetch_ticker().price > 0
    first, second = request_times(sim, "binance")
    assert second - first >= 0.3  # the 418's Retry-After, not the 0.01 s backoff


def test_binance_451_is_final_and_says_restricted_location(sim, faults):
    faults(exchange="binance", kind="451", times=1)
    p = provider(sim, "binance")
    with pytest.raises(ExchangeError, match="HTTP 451: Binance refuses requests from this restricted location") as info:
        p.fetch_ticker()
    assert info.value.transient is False
    assert len(request_times(sim, "binance")) == 1  # not retried


def test_bitstamp_limits_and_paging(sim):
    base = f"{sim}/bitstamp/api/v2/ohlc/btcusd/"
    for query, message in (
        ("?limit=10", "step: Missing data for required field."),
        ("?step=60&limit=1001", "limit: Must be between 1 and 1000."),
    ):
        with pytest.raises(urllib.error.HTTPError) as info:
            urllib.request.urlopen(base + query)
        errors = json.load(info.value)["errors"]
        assert info.value.code == 400 and message in [f"{e['field']}: {e['message']}" for e in errors]
    body = get(f"{base}?step=60&limit=1000")
    assert body["data"]["pair"] == "BTC/USD" and len(body["data"]["ohlc"]) == 1000
    now = floor_minute(datetime.now(UTC))
    assert body["data"]["ohlc"][-1]["timestamp"] == str(int(now.timestamp()))  # the open candle, unless excluded
    closed = get(f"{base}?step=60&limit=5&exclude_current_candle=true")["data"]["ohlc"]
    assert closed[-1]["timestamp"] == str(int((now - MINUTE).timestamp()))
    window = recent_window(minutes=2100, ago=3)
    candles = provider(sim, "bitstamp").fetch_candles(window)
    assert len(candles) == 2100 and candles[0].ts == window.start and candles[-1].ts == window.end - MINUTE


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize("kind", ["empty", "tradeless"])
def test_empty_and_tradeless_answers_give_no_candles(sim, faults, name, kind):
    faults(exchange=name, kind=kind, times=1)
    assert provider(sim, name).fetch_candles(recent_window()) == []


def test_tradeless_kraken_keeps_its_unfinished_row(sim, faults):
    faults(exchange="kraken", kind="tradeless", times=1)
    rows = get(f"{sim}/kraken/0/public/OHLC?pair=XBTUSD&interval=1")["result"]["XXBTZUSD"]
    assert [r[0] for r in rows] == [int(floor_minute(datetime.now(UTC)).timestamp())]


@pytest.mark.parametrize(
    ("fault", "message"),
    [
        ({"exchange": "coinbase", "kind": "kraken_error"}, "use it with exchange kraken"),
        ({"exchange": "ftx", "kind": "500"}, "exchange must be one of"),
        ({"exchange": "kraken", "kind": "boom"}, "kind one of"),
    ],
)
def test_bad_fault_requests_are_refused(sim, fault, message):
    with pytest.raises(urllib.error.HTTPError) as info:
        post_fault(sim, **fault)
    assert info.value.code == 400 and message in json.load(info.value)["message"]
