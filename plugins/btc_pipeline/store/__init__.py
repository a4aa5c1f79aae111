"""All of MongoDB: the only code that reads or writes it.

The system of record:

- :mod:`~btc_pipeline.store.prices`: ``btc.prices`` (every candle and tick) and its indexes.
- :mod:`~btc_pipeline.store.records`: rejects and run statistics; :mod:`~btc_pipeline.store.notrades`:
  minutes an exchange had no trades in; :mod:`~btc_pipeline.store.loads`: history backfills in progress.

The read model, kept by the drain, so that every frequent read touches a few small documents:

- :mod:`~btc_pipeline.store.layout`: bars in buckets, collections per series and period;
  :mod:`~btc_pipeline.store.buckets`: bucket documents and their compare-and-set writes.
- :mod:`~btc_pipeline.store.rollups`: merging observations in and updating every level;
  :mod:`~btc_pipeline.store.rebuild`: rebuilding a range from ``btc.prices``.
- :mod:`~btc_pipeline.store.latest`: the newest candle and tick of each exchange (hot set).
- :mod:`~btc_pipeline.store.reads`: the queries of the dashboard, the API, the CLI and the steps.

:class:`Store` puts them behind one object; :mod:`~btc_pipeline.store.collections` names the records.
"""

from btc_pipeline.store.layout import CONSENSUS, tick_series
from btc_pipeline.store.loads import HistoryLoad
from btc_pipeline.store.reads import BucketCache
from btc_pipeline.store.store import Store, StoreError, WriteResult, write_failure

__all__ = [
    "CONSENSUS",
    "BucketCache",
    "HistoryLoad",
    "Store",
    "StoreError",
    "WriteResult",
    "tick_series",
    "write_failure",
]
