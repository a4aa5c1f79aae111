"""The collections of the ``btc`` database; ``prices``, ``rejects`` and ``pipeline_runs`` are a contract (README)."""

#: Candles and ticks, the system of record (natural key unique, ``ts`` a BSON date).
PRICES = "prices"
#: What the dead-letter topic got, with the reason.
REJECTS = "rejects"
#: One document per ingest, drain, backfill or heal run: counts, timings, lag.
PIPELINE_RUNS = "pipeline_runs"
#: Minutes an exchange answered without a candle for (it had no trades in them), per exchange.
NO_TRADE_MINUTES = "no_trade_minutes"
#: Every notification delivery: what, to which channel (redacted), when, outcome, attempts.
NOTIFICATIONS = "notifications"
