"""Ingest with all four exchanges on the real broker and database: candles from the first exchange
that serves, one tick per exchange, the cross-exchange check recorded in ``pipeline_runs``, failover
and ticker failures visible in the result, and a broker outage that fails the run and then recovers
with every observation stored exactly once. Each test has its own topic and database."""

from __future__ import annotations

import json
import logging
import time
from collections import Counter
from datetime import UTC, datetime
from typing import Any

import pytest

from btc_pipeline.config import Settings, load_settings
from btc_pipeline.exchanges import build_exchange
from btc_pipeline.steps.ingest import AllExchangesFailedError, ingest_window
from btc_pipeline.store import Store
from btc_pipeline.stream import DeliveryError
from btc_pipeline.window import MINUTE, Window, floor_minute
from devstack.config import simulated_base_urls
from simexchange.pricepath import PricePath

from .conftest import new_producer, read_topic, run_drain

pytestmark = pytest.mark.integration

ALL = ("coinbase", "kraken", "binance", "bitstamp")


def at_sim(settings: Settings, url: str, **changes: Any) -> Settings:
    """``settings`` with all four exchanges, in failover order, on the simulated exchange at ``url``."""
    urls = load_settings(simulated_base_urls(url)).base_urls
    return settings.model_copy(update={"exchanges": ALL, "base_urls": urls, **changes})


def clients(settings: Settings) -> list[Any]:
    built = [build_exchange(name, settings) for name in settings.exchanges]
    for x in built:
        x.http.backoff_s = 0.05  # keep retries quick; Retry-After is still honoured as sent
    return built


def live_window() -> Window:
    end = floor_minute(datetime.now(UTC)) - MINUTE
    return Window(end - MINUTE * 4, end)


def test_four_exchanges_candles_from_the_first_one_tick_from_each_and_reruns_identical(core_stack, scratch):
    s = at_sim(scratch, core_stack.simex_url)
    window = live_window()
    results, wall_ms = [], []
    for run_id in ("run-1", "run-2"):
        started = time.monotonic()
        results.append(ingest_window(window, s, clients(s), new_producer(core_stack), run_id))
        wall_ms.append((time.monotonic() - started) * 1000)
    first, second = results
    print(f"\ningest_window with 4 exchanges (new producer each): {[round(ms) for ms in wall_ms]} ms wall")
    print(f"messages per run: {first.produced}; {first}")

    for result in (first, second):
        assert result.source == "coinbase"
        assert (result.candles, result.ticks, result.produced) == (4, 4, 8)
        assert result.failed_exchanges == {}
        assert tuple(result.tick_prices) == ALL
        assert result.spread_pct is not None and 0 < result.spread_pct < 0.2  # a few bps between venues
        assert result.flagged == {}

    messages = read_topic(core_stack, s.topic, 16)
    assert len(messages) == 16
    candles: dict[str, dict[str, tuple[Any, ...]]] = {"run-1": {}, "run-2": {}}
    tick_sources: dict[str, list[str]] = {"run-1": [], "run-2": []}
    for m in messages:
        body = json.loads(m.value())
        assert m.key().decode() == f"{body['source']}|BTC-USD|{body['kind']}|{body['ts']}"
        assert body["v"] == 1 and body["symbol"] == "BTC-USD"
        if body["kind"] == "candle_1m":
            assert body["source"] == "coinbase"  # candles come from the first exchange only
            candles[body["run_id"]][m.key().decode()] = tuple(
                body[f] for f in ("price", "open", "high", "low", "close", "volume")
            )
        else:
            assert body["kind"] == "tick"
            tick_sources[body["run_id"]].append(body["source"])
            assert body["price"] == (first if body["run_id"] == "run-1" else second).tick_prices[body["source"]]
    assert sorted(tick_sources["run-1"]) == sorted(tick_sources["run-2"]) == sorted(ALL)
    assert candles["run-1"] == candles["run-2"]  # same keys, same prices
    assert sorted(candles["run-1"]) == [
        f"coinbase|BTC-USD|candle_1m|{ts:%Y-%m-%dT%H:%M:%SZ}" for ts in window.minutes()
    ]
    expected = PricePath(42).candle(window.start)
    key = f"coinbase|BTC-USD|candle_1m|{window.start:%Y-%m-%dT%H:%M:%SZ}"
    assert candles["run-1"][key][1:5] == (expected.open, expected.high, expected.low, expected.close)


def test_a_deviating_ticker_is_flagged_and_recorded_in_pipeline_runs(core_stack, scratch, mongo, caplog):
    # The simulated venues sit at 0 (coinbase), +2 (kraken), -6 (binance, USDT) and +1 (bitstamp) bps:
    # against the median of the others Binance is 7 bps = 0.07 % off, the others at most 0.02 %.
    s = at_sim(scratch, core_stack.simex_url, max_deviation_pct=0.05)
    started_at = datetime.now(UTC)
    with caplog.at_level(logging.WARNING, logger="btc_pipeline.steps.ingest"):
        result = ingest_window(live_window(), s, clients(s), new_producer(core_stack), "flag-run")
    assert set(result.flagged) == {"binance"}
    assert result.flagged["binance"] == pytest.approx(0.07, abs=0.01)
    assert any("ticker of binance" in r.message and "BTC_MAX_DEVIATION_PCT" in r.message for r in caplog.records)

    db = mongo[s.mongo_db]
    Store(db).record_run(
        "btc_ingest", "flag-run", started_at=started_at, finished_at=datetime.now(UTC), fields=result.to_dict()
    )
    doc = db["pipeline_runs"].find_one({"_id": "btc_ingest|flag-run"})
    assert doc is not None
    assert doc["flagged"] == result.flagged
    assert doc["tick_prices"] == result.tick_prices and set(doc["tick_prices"]) == set(ALL)
    assert doc["spread_pct"] == result.spread_pct
    assert doc["failed_exchanges"] == {}
    assert doc["source"] == "coinbase" and doc["ticks"] == 4


def test_failover_and_a_failed_ticker_are_visible_and_do_not_fail_the_run(core_stack, scratch, sim, faults):
    s = at_sim(scratch, sim, http_retries=1)
    faults(exchange="coinbase", kind="503", times=4)  # 2 attempts for the candles, 2 for the ticker
    result = ingest_window(live_window(), s, clients(s), new_producer(core_stack), "failover-run")
    assert result.source == "kraken"
    assert set(result.failed_exchanges) == {"coinbase", "coinbase:ticker"}
    assert "HTTP 503" in result.failed_exchanges["coinbase"]
    assert "/products/BTC-USD/ticker: HTTP 503" in result.failed_exchanges["coinbase:ticker"]
    assert tuple(result.tick_prices) == ("kraken", "binance", "bitstamp")
    assert (result.candles, result.ticks, result.produced) == (4, 3, 7)

    messages = [json.loads(m.value()) for m in read_topic(core_stack, s.topic, 7)]
    assert Counter((b["kind"], b["source"]) for b in messages) == {
        ("candle_1m", "kraken"): 4,
        ("tick", "kraken"): 1,
        ("tick", "binance"): 1,
        ("tick", "bitstamp"): 1,
    }


def test_every_exchange_failing_is_one_clear_error_and_produces_nothing(core_stack, scratch, sim, faults):
    s = at_sim(scratch, sim, http_retries=0)
    faults(exchange="coinbase", kind="500", times=1)
    faults(exchange="kraken", kind="kraken_error", times=1)
    faults(exchange="binance", kind="451", times=1)
    faults(exchange="bitstamp", kind="malformed", times=1)
    window = live_window()
    with pytest.raises(AllExchangesFailedError) as info:
        ingest_window(window, s, clients(s), new_producer(core_stack), "doomed")
    message = str(info.value)
    assert message.startswith(f"no exchange could serve {window}: coinbase: ")
    for part in ("HTTP 500", "['EService:Unavailable']", "restricted location", "body is not JSON"):
        assert part in message
    assert read_topic(core_stack, s.topic, 0, wait_s=3) == []


def test_broker_down_fails_the_run_and_the_retry_stores_everything_exactly_once(core_stack, scratch, mongo):
    """Stops and restarts this session's own Kafka (BTC_TEST_STATE_DIR keeps it apart from others)."""
    s = at_sim(scratch, core_stack.simex_url, live_tick_horizon_s=3600)
    window = live_window()
    core_stack.stop("kafka")
    try:
        dead = new_producer(core_stack, **{"message.timeout.ms": 5000})
        with pytest.raises(DeliveryError, match=r"not delivered|unacknowledged"):
            ingest_window(window, s, clients(s), dead, "attempt-1")
    finally:
        core_stack.up(["kafka"])
    result = ingest_window(window, s, clients(s), new_producer(core_stack), "attempt-2")
    assert (result.candles, result.ticks) == (4, 4)

    messages = read_topic(core_stack, s.topic, result.produced)
    assert len(messages) == result.produced == 8
    assert {json.loads(m.value())["run_id"] for m in messages} == {"attempt-2"}

    stats = run_drain(core_stack, s, mongo[s.mongo_db], run_id="after-outage")
    assert stats.consumed == 8 and stats.rejected == 0 and stats.lag_after == 0
    prices = mongo[s.mongo_db]["prices"]
    assert prices.count_documents({}) == 8
    assert prices.count_documents({"kind": "candle_1m", "source": "coinbase"}) == 4
    assert sorted(d["source"] for d in prices.find({"kind": "tick"})) == sorted(ALL)
