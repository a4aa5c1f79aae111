"""
# btc_backfill

Re-ingests a range of **closed 1-minute candles** from the exchanges' history, in chunks, through
`btc-metrics` and `btc_drain` like live data. Triggered by `btc-pipeline backfill` (or by hand:
*Trigger* with the parameters below); safe to re-run: same keys, same prices, one document each.

Parameters (run conf):

| name | meaning |
|---|---|
| `start`, `end` | the range `[start, end)`, ISO-8601 UTC, floored to the minute; `end` at most the last closed minute |
| `source` | one exchange (`coinbase`, `kraken`, `binance`, `bitstamp`), or empty = `BTC_EXCHANGES` in failover order |
| `only_missing` | fill only the holes `btc-pipeline gaps` finds (not minutes an exchange said had no trades) |
| `lane` | `history` (default): 15-day chunks via `btc-metrics-history`; `live`: a day via `btc-metrics` |

Tasks:

1. `find_gaps` validates the parameters and, with `only_missing`, finds the holes of the range.
2. `plan` splits the range (or its holes) into **chunks**, each a whole number of the first
   exchange's pages: in the history lane at most 15 days (Coinbase 21,600 minutes = 72 requests
   of 300; Binance/Bitstamp 21,000 = 21 requests), so a year is 25 chunks; in the live lane at most
   a day (Coinbase 1,200 = 4 requests). Kraken serves only its latest 720 minutes (1 request).
3. `fetch_and_produce` is **mapped**, one task instance per chunk (named by its window), two at a
   time: it fetches the chunk's pages (four at a time in the history lane), each from the first
   exchange that serves it, paced at half the exchange's request rate (Coinbase 8/s, Binance and
   Bitstamp 10/s, Kraken 1/s, each under its published limit; HTTP 429 and `Retry-After` are
   honoured), produces the candles with the idempotent producer (its success is an event of the
   topic's asset, which starts the topic's drain at once), and
   records in `btc.no_trade_minutes` the settled minutes the exchange had no candle
   for (no trades). A chunk whose newest minutes are not published yet fails and is retried.
4. `summarize` writes the run's totals to `btc.pipeline_runs` and fails the run if a chunk failed.

- **Timetable**: `NullTimetable`: manual and API triggers only.
- **max_active_runs=1**: backfills queue behind each other instead of competing for the workers.
- Candles reach MongoDB as `btc_drain` consumes them, seconds after each chunk.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import Param, dag, get_current_context, task

from btc_pipeline.config import KNOWN_EXCHANGES
from btc_pipeline.dag_ids import BACKFILL_DAG
from btc_pipeline.tasks import backfill, schedules

OUTLETS = [schedules.topic_asset(schedules.settings()), schedules.history_asset(schedules.settings())]


@dag(
    dag_id=BACKFILL_DAG,
    schedule=None,
    start_date=datetime.fromisoformat("2026-01-01T00:00:00+00:00"),
    catchup=False,
    max_active_runs=1,
    tags=["btc", "backfill", "kafka"],
    doc_md=__doc__,
    params={
        "start": Param(None, type=["null", "string"], description="range start, ISO-8601 UTC (inclusive)"),
        "end": Param(None, type=["null", "string"], description="range end, ISO-8601 UTC (exclusive)"),
        "source": Param(
            None,
            type=["null", "string"],
            enum=[None, *KNOWN_EXCHANGES],
            description="one exchange, or empty for BTC_EXCHANGES in failover order",
        ),
        "only_missing": Param(False, type="boolean", description="fill only minutes without a candle"),
        "lane": Param(
            "history",
            type="string",
            enum=["history", "live"],
            description="history: chunks of 15 days via btc-metrics-history (default); live: a day, via btc-metrics",
        ),
    },
    on_success_callback=schedules.on_success(schedules.settings()),
    default_args=schedules.retry_args(3, timedelta(seconds=15), timedelta(minutes=2)),
)
def btc_backfill() -> None:
    @task(execution_timeout=timedelta(minutes=5))
    def find_gaps() -> dict:
        """Validate the parameters; with `only_missing`, find the holes of the range."""
        return backfill.backfill_scope(get_current_context()["params"])

    backfill.plan_and_produce(find_gaps(), OUTLETS)


btc_backfill()
