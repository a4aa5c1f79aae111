"""Exchange clients, one module per exchange, all behind :class:`~btc_pipeline.providers.base.Provider`."""

from __future__ import annotations

from collections.abc import Callable

import requests

from btc_pipeline.config import Settings
from btc_pipeline.providers.base import Candle, ExchangeError, HttpClient, Provider, Tick
from btc_pipeline.providers.binance import BinanceProvider
from btc_pipeline.providers.bitstamp import BitstampProvider
from btc_pipeline.providers.coinbase import CoinbaseProvider
from btc_pipeline.providers.kraken import KrakenProvider

__all__ = ["Candle", "ExchangeError", "Provider", "Tick", "build_provider"]

_IMPLEMENTED: dict[str, Callable[[HttpClient], Provider]] = {
    "coinbase": CoinbaseProvider,
    "kraken": KrakenProvider,
    "binance": BinanceProvider,
    "bitstamp": BitstampProvider,
}


def build_provider(name: str, settings: Settings, session: requests.Session | None = None) -> Provider:
    """Build the client of exchange ``name`` with the configured base URL, timeout and retries.

    Raises:
        ValueError: No client is implemented for ``name`` yet.
    """
    try:
        cls = _IMPLEMENTED[name]
    except KeyError:
        raise ValueError(f"no client for exchange {name!r}; implemented: {', '.join(_IMPLEMENTED)}") from None
    http = HttpClient(
        name,
        settings.base_urls[name],
        timeout_s=settings.http_timeout_s,
        retries=settings.http_retries,
        session=session,
    )
    return cls(http)
