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

Tasks:

1. `find_gaps` validates the parameters and, with `only_missing`, finds the holes of the range.
2. `plan` splits the range (or its holes) into **chunks** of at most a day and a
   whole number of the first exchange's pages (Coinbase 1,200 minutes = 4 requests of 300;
   Binance/Bitstamp 1,000 = 1 request; Kraken 720 = 1 request, and only within its 720-minute
   horizon). 7 days are 9 chunks and 34 requests.
3. `fetch_and_produce` is **mapped**, one task instance per chunk (named by its window): it fetches
   the chunk from the first exchange that serves it, produces the candles with the idempotent
   producer (its success is an event of the topic's asset, which starts `btc_drain` at once), and
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

TOPIC = schedules.topic_asset(schedules.settings())


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
    },
    on_success_callback=schedules.on_success(schedules.settings()),
    default_args=schedules.retry_args(3, timedelta(seconds=15), timedelta(minutes=2)),
)
def btc_backfill() -> None:
    @task(execution_timeout=timedelta(minutes=5))
    def find_gaps() -> dict:
        """Validate the parameters; with `only_missing`, find the holes of the range."""
        return backfill.backfill_scope(get_current_context()["params"])

    backfill.plan_and_produce(find_gaps(), TOPIC)


btc_backfill()
