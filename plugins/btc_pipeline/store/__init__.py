"""All of MongoDB: the only code that reads or writes it.

- :mod:`~btc_pipeline.store.prices`: ``btc.prices``, the system of record, and its indexes.
- :mod:`~btc_pipeline.store.records`: rejects, run statistics, minutes without trades.
- :mod:`~btc_pipeline.store.reads`: the queries of the dashboard, the CLI and the steps.
- :class:`Store` puts them behind one object; :mod:`~btc_pipeline.store.collections` names them.
"""

from btc_pipeline.store.collections import NO_TRADE_MINUTES, PIPELINE_RUNS, PRICES, REJECTS
from btc_pipeline.store.prices import UpsertResult, to_document
from btc_pipeline.store.store import Store, StoreError

__all__ = [
    "NO_TRADE_MINUTES",
    "PIPELINE_RUNS",
    "PRICES",
    "REJECTS",
    "Store",
    "StoreError",
    "UpsertResult",
    "to_document",
]
