"""Exchange clients, one module per exchange, all behind :class:`~btc_pipeline.exchanges.base.Exchange`.

Each client class carries everything the package knows about its exchange (name, production base
URL, candle limits, its name for BTC-USD), and :data:`EXCHANGES` maps names to classes: the
settings' known exchanges and ``BTC_<NAME>_URL`` keys, :func:`limits_of` and :func:`build_exchange`
all read this one map. Importing the package loads neither :mod:`btc_pipeline.config` (which
imports the map) nor the HTTP stack.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from btc_pipeline.exchanges.base import Candle, Exchange, ExchangeClient, ExchangeError, ExchangeLimits, Tick
from btc_pipeline.exchanges.binance import BinanceClient
from btc_pipeline.exchanges.bitstamp import BitstampClient
from btc_pipeline.exchanges.coinbase import CoinbaseClient
from btc_pipeline.exchanges.kraken import KrakenClient

if TYPE_CHECKING:  # the config imports this package; HTTP is loaded when a client is built (the CLI starts fast)
    from btc_pipeline.config import Settings

__all__ = ["EXCHANGES", "Candle", "Exchange", "ExchangeError", "ExchangeLimits", "Tick", "build_exchange", "limits_of"]

#: Every implemented exchange by name, in the default failover order (``BTC_EXCHANGES``): Binance
#: last, since it answers HTTP 451 in some regions (the US).
EXCHANGES: dict[str, type[ExchangeClient]] = {
    client.name: client for client in (CoinbaseClient, KrakenClient, BitstampClient, BinanceClient)
}


def _client_class(name: str) -> type[ExchangeClient]:
    try:
        return EXCHANGES[name]
    except KeyError:
        raise ValueError(f"unknown exchange {name!r}; known: {', '.join(EXCHANGES)}") from None


def limits_of(name: str) -> ExchangeLimits:
    """What exchange ``name``'s candle endpoint serves.

    Raises:
        ValueError: No client is implemented for ``name``.
    """
    return _client_class(name).limits


def build_exchange(name: str, settings: Settings) -> Exchange:
    """Build the client of exchange ``name`` with the configured base URL, timeout, deadline, body cap,
    retries and clock skew.

    Raises:
        ValueError: No client is implemented for ``name``.
    """
    from btc_pipeline.exchanges.http import HttpClient

    cls = _client_class(name)
    http = HttpClient(
        name,
        settings.base_urls[name],
        timeout_s=settings.http_timeout_s,
        deadline_s=settings.http_deadline_s,
        max_body_bytes=settings.http_max_body_bytes,
        retries=settings.http_retries,
    )
    return cls(http, max_skew_s=settings.max_clock_skew_s)
