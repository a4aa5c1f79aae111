"""Exchange clients, one module per exchange, all behind :class:`~btc_pipeline.exchanges.base.Exchange`.

Each module declares its candle endpoint's :data:`LIMITS` (rows per request, how far back it
serves); backfill planning asks :func:`limits_of` instead of knowing the exchanges itself.
"""

from __future__ import annotations

from collections.abc import Callable

import requests

from btc_pipeline.config import Settings
from btc_pipeline.exchanges import binance, bitstamp, coinbase, kraken
from btc_pipeline.exchanges.base import Candle, Exchange, ExchangeError, ExchangeLimits, Tick
from btc_pipeline.exchanges.http import HttpClient

__all__ = ["Candle", "Exchange", "ExchangeError", "ExchangeLimits", "Tick", "build_exchange", "limits_of"]

#: Each client takes its HttpClient and, by keyword, ``max_skew_s`` (and an injectable ``clock``).
_CLIENTS: dict[str, Callable[..., Exchange]] = {
    coinbase.NAME: coinbase.CoinbaseClient,
    kraken.NAME: kraken.KrakenClient,
    binance.NAME: binance.BinanceClient,
    bitstamp.NAME: bitstamp.BitstampClient,
}
_LIMITS: dict[str, ExchangeLimits] = {
    coinbase.NAME: coinbase.LIMITS,
    kraken.NAME: kraken.LIMITS,
    binance.NAME: binance.LIMITS,
    bitstamp.NAME: bitstamp.LIMITS,
}


def limits_of(name: str) -> ExchangeLimits:
    """What exchange ``name``'s candle endpoint serves.

    Raises:
        ValueError: No client is implemented for ``name``.
    """
    try:
        return _LIMITS[name]
    except KeyError:
        raise ValueError(f"unknown exchange {name!r}; known: {', '.join(_LIMITS)}") from None


def build_exchange(name: str, settings: Settings, session: requests.Session | None = None) -> Exchange:
    """Build the client of exchange ``name`` with the configured base URL, timeout, deadline, body cap,
    retries and clock skew.

    Raises:
        ValueError: No client is implemented for ``name``.
    """
    try:
        cls = _CLIENTS[name]
    except KeyError:
        raise ValueError(f"no client for exchange {name!r}; implemented: {', '.join(_CLIENTS)}") from None
    http = HttpClient(
        name,
        settings.base_urls[name],
        timeout_s=settings.http_timeout_s,
        deadline_s=settings.http_deadline_s,
        max_body_bytes=settings.http_max_body_bytes,
        retries=settings.http_retries,
        session=session,
    )
    return cls(http, max_skew_s=settings.max_clock_skew_s)
