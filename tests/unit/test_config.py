from __future__ import annotations

import re
from pathlib import Path

import pytest

from btc_pipeline.config import ConfigError, Settings, env_key, load_api_settings, load_settings, read_env_file, url_key

ENV_EXAMPLE = Path(__file__).resolve().parents[2] / ".env.example"


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
        ({"BTC_EXCHANGES": " , "}, "BTC_EXCHANGES=',' lists no exchange"),
        ({"BTC_PROVIDERS": "coinbase,ftx"}, "BTC_PROVIDERS='coinbase,ftx' names unknown exchange(s) ['ftx']"),
        ({"BTC_EXCHANGES": "coinbase,coinbase"}, "lists an exchange twice"),
        ({"BTC_HTTP_TIMEOUT_S": "fast"}, "BTC_HTTP_TIMEOUT_S='fast' is not a number"),
        ({"BTC_HTTP_RETRIES": "99"}, "BTC_HTTP_RETRIES='99' is out of range; expected 0..10"),
        ({"BTC_DRAIN_BATCH_SIZE": "1.5"}, "is not an integer"),
        ({"BTC_COINBASE_URL": "api.exchange.coinbase.com"}, "is not an http(s) URL"),
        ({"BTC_DLQ_TOPIC": "btc-metrics"}, "must differ"),
        (
            {"BTC_MONGO_URI": "postgres://btc:s3cret@db"},
            "BTC_MONGO_URI='postgres://btc:***@db' must start with mongodb://",
        ),
        ({"BTC_SYMBOL": "ETH-USD"}, "BTC_SYMBOL='ETH-USD' is not one of: BTC-USD"),
        ({"BTC_TICK_INTERVAL_S": "1"}, "BTC_TICK_INTERVAL_S='1' is out of range; expected 2..60"),
        ({"BTC_TICK_INTERVAL_S": "61"}, "out of range"),
        ({"BTC_DRAIN_IDLE_S": "-1"}, "BTC_DRAIN_IDLE_S='-1' is out of range; expected 0..1800"),
        ({"BTC_ALERT_ABOVE": "0"}, "BTC_ALERT_ABOVE='0' is out of range; expected 0.01..10000000"),
        ({"BTC_ALERT_BELOW": "cheap"}, "BTC_ALERT_BELOW='cheap' is not a number"),
        ({"BTC_SMA_PERIODS": "20,1"}, "BTC_SMA_PERIODS='20,1' has a period outside 2..500 bars"),
        ({"BTC_EMA_PERIODS": "12,x"}, "BTC_EMA_PERIODS='12,x' is not a comma-separated list of bar counts"),
        ({"BTC_HTTP_RETRIES": "99", "BTC_TOPIC": "a", "BTC_DLQ_TOPIC": "a"}, "BTC_HTTP_RETRIES='99' is out of range"),
        ({"BTC_DRAIN_MAX_SECONDS": "3600"}, "out of range"),
        ({"BTC_INGEST_RETRIES": "eleven"}, "is not an integer"),
        ({"BTC_INGEST_RETRY_DELAY_S": "0"}, "out of range"),
        ({"BTC_INGEST_DELIVERY_TIMEOUT_S": "60"}, "out of range"),
        ({"BTC_DRAIN_TRIGGER": "kafka"}, "BTC_DRAIN_TRIGGER='kafka' is not one of: outlets, watcher"),
        ({"BTC_HISTORY_ON_START": "1 year"}, "BTC_HISTORY_ON_START='1 year' is not an age such as 90m"),
        ({"BTC_HISTORY_ON_START": "99999999999w"}, "'99999999999w' is longer than any age a time can have"),
    ],
)
def test_bad_values_fail_with_a_specific_message(env, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_settings(env)


def test_empty_values_are_the_defaults_and_values_are_normalised():
    blank = dict.fromkeys(("BTC_TOPIC", "BTC_EXCHANGES", "BTC_ALERT_ABOVE", "BTC_COINBASE_URL"), " ")
    assert load_settings(blank) == load_settings({})
    s = load_settings({"BTC_SYMBOL": "btc-usd", "BTC_DRAIN_TRIGGER": "Watcher", "BTC_SMA_PERIODS": "5, 10"})
    assert (s.symbol, s.drain_trigger, s.sma_periods) == ("BTC-USD", "watcher", (5, 10))


def test_the_deprecated_name_is_read_with_a_warning(caplog):
    assert load_settings({"BTC_PROVIDERS": "kraken"}).exchanges == ("kraken",)
    assert "BTC_PROVIDERS is deprecated: rename it to BTC_EXCHANGES" in caplog.text
    assert load_settings({"BTC_PROVIDERS": "kraken", "BTC_EXCHANGES": "bitstamp"}).exchanges == ("bitstamp",)


def test_the_mongo_uri_is_not_in_the_repr():
    assert "s3cret" not in repr(load_settings({"BTC_MONGO_URI": "mongodb://btc:s3cret@db:27017/"}))


def test_api_settings():
    assert load_api_settings({}).url == "http://127.0.0.1:8080"
    assert load_api_settings({"AIRFLOW_PORT": "18080"}).url == "http://127.0.0.1:18080"
    api = load_api_settings({"AIRFLOW_API_URL": "https://airflow.example/", "AIRFLOW_ADMIN_PASSWORD": "pw"})
    assert (api.url, api.user, api.password) == ("https://airflow.example", "admin", "pw")
    assert "pw" not in repr(api)
    with pytest.raises(ConfigError, match=re.escape("AIRFLOW_PORT='0' is out of range; expected 1..65535")):
        load_api_settings({"AIRFLOW_PORT": "0"})
    with pytest.raises(ConfigError, match=r"AIRFLOW_API_URL='airflow:8080' is not an http\(s\) URL"):
        load_api_settings({"AIRFLOW_API_URL": "airflow:8080"})


def declared_settings() -> dict[str, object]:
    """Every ``BTC_*`` variable the model reads, with its declared default (read off the model)."""
    defaults = Settings.model_construct()  # the declared defaults, as written in config.py
    declared = {env_key(Settings, name): getattr(defaults, name) for name in Settings.model_fields}
    del declared["BTC_BASE_URLS"]  # one variable per exchange instead
    return declared | {url_key(name): url for name, url in defaults.base_urls.items()}


def test_env_example_lists_every_setting_with_its_default():
    example = {key: value for key, value in read_env_file(ENV_EXAMPLE).items() if key.startswith("BTC_")}
    declared = declared_settings()
    assert not set(declared) - set(example), f"settings missing from .env.example: {set(declared) - set(example)}"
    assert not set(example) - set(declared), f"in .env.example, not settings: {set(example) - set(declared)}"
    for key, value in example.items():
        assert load_settings({key: value}) == load_settings({}), (
            f".env.example has {key}={value!r}; the model's default is {declared[key]!r}"
        )


def test_env_file_parsing(tmp_path):
    env = tmp_path / ".env"
    env.write_text("# comment\n\nAIRFLOW_PORT=8081\nexport BTC_EXCHANGES=\"kraken,coinbase\"\nSECRET='a b'\nEMPTY=\n")
    assert read_env_file(env) == {
        "AIRFLOW_PORT": "8081",
        "BTC_EXCHANGES": "kraken,coinbase",
        "SECRET": "a b",
        "EMPTY": "",
    }
    assert read_env_file(tmp_path / "missing") == {}
