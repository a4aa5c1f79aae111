from __future__ import annotations

import pytest

from btc_pipeline.config import ConfigError, load_settings


def test_defaults_are_the_local_stack():
    s = load_settings({})
    assert s.topic == "btc-metrics"
    assert s.dlq_topic == "btc-metrics-dlq"
    assert s.mongo_db == "btc"
    assert s.exchanges == ("coinbase", "kraken", "bitstamp", "binance")
    assert s.base_urls["coinbase"] == "https://api.exchange.coinbase.com"


def test_values_are_read_and_normalised():
    s = load_settings({"BTC_EXCHANGES": " Coinbase , kraken", "BTC_COINBASE_URL": "http://127.0.0.1:8090/coinbase/"})
    assert s.exchanges == ("coinbase", "kraken")
    assert s.base_urls["coinbase"] == "http://127.0.0.1:8090/coinbase"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"BTC_EXCHANGES": "coinbase,ftx"}, "unknown exchange"),
        ({"BTC_EXCHANGES": " , "}, "BTC_EXCHANGES is empty"),
        ({"BTC_EXCHANGES": "coinbase,coinbase"}, "lists an exchange twice"),
        ({"BTC_HTTP_TIMEOUT_S": "fast"}, "BTC_HTTP_TIMEOUT_S='fast' is not a number"),
        ({"BTC_HTTP_RETRIES": "99"}, "out of range"),
        ({"BTC_DRAIN_BATCH_SIZE": "1.5"}, "is not an integer"),
        ({"BTC_COINBASE_URL": "api.exchange.coinbase.com"}, "is not an http(s) URL"),
        ({"BTC_DLQ_TOPIC": "btc-metrics"}, "must differ"),
        ({"BTC_MONGO_URI": "postgres://x"}, "must start with mongodb://"),
        ({"BTC_SYMBOL": "ETH-USD"}, "only BTC-USD"),
        ({"BTC_TICK_INTERVAL_S": "1"}, "BTC_TICK_INTERVAL_S=1 is out of range; expected 2..60"),
        ({"BTC_TICK_INTERVAL_S": "61"}, "out of range"),
        ({"BTC_DRAIN_IDLE_S": "-1"}, "BTC_DRAIN_IDLE_S=-1.0 is out of range; expected 0..1800"),
        ({"BTC_DRAIN_MAX_SECONDS": "3600"}, "out of range"),
        ({"BTC_INGEST_RETRIES": "eleven"}, "is not an integer"),
        ({"BTC_INGEST_RETRY_DELAY_S": "0"}, "out of range"),
        ({"BTC_INGEST_DELIVERY_TIMEOUT_S": "60"}, "out of range"),
        ({"BTC_DRAIN_TRIGGER": "kafka"}, "BTC_DRAIN_TRIGGER='kafka' is not one of: outlets, watcher"),
    ],
)
def test_bad_values_fail_with_a_specific_message(env, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_settings(env)
