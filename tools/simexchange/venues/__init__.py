"""One module per simulated venue, mirroring ``btc_pipeline.exchanges``: each ``answer``s the GET
requests under its prefix the way the real exchange does."""

from collections.abc import Callable

from simexchange.market import Market, Reply
from simexchange.venues import binance, bitstamp, coinbase, kraken

VENUES: dict[str, Callable[[Market, str, dict[str, str], str | None], Reply]] = {
    coinbase.NAME: coinbase.answer,
    kraken.NAME: kraken.answer,
    binance.NAME: binance.answer,
    bitstamp.NAME: bitstamp.answer,
}

__all__ = ["VENUES"]
