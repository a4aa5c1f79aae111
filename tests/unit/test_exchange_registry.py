"""The one map of exchanges: each client class carries its name, base URL, limits and market, and
what the rest of the package knows about exchanges is read from it."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from btc_pipeline.config import KNOWN_EXCHANGES, load_settings
from btc_pipeline.exchanges import EXCHANGES, build_exchange, limits_of
from btc_pipeline.exchanges.base import Candle
from btc_pipeline.window import MINUTE


def test_the_settings_and_the_limits_come_from_the_map():
    assert KNOWN_EXCHANGES == tuple(EXCHANGES) == ("coinbase", "kraken", "bitstamp", "binance")
    settings = load_settings({})
    assert settings.base_urls == {name: client.base_url for name, client in EXCHANGES.items()}
    for name, client in EXCHANGES.items():
        assert client.name == name and limits_of(name) is client.limits
        assert client.base_url.startswith("https://") and client.market
    with pytest.raises(ValueError, match="unknown exchange 'ftx'; known: coinbase, kraken, bitstamp, binance"):
        limits_of("ftx")


@pytest.mark.parametrize("name", list(EXCHANGES))
def test_every_client_drops_the_candle_still_trading(name):
    now = datetime(2026, 1, 1, 12, 0, 30, tzinfo=UTC)
    client = build_exchange(name, load_settings({}))
    client.clock = lambda: now  # type: ignore[attr-defined]
    closed = Candle(now.replace(second=0) - MINUTE, 1.0, 1.0, 1.0, 1.0, 0.0)
    trading = Candle(now.replace(second=0), 1.0, 1.0, 1.0, 1.0, 0.0)
    assert client.closed([closed, trading]) == [closed]  # type: ignore[attr-defined]
