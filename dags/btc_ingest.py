"""
# btc_ingest

Every minute, for its data interval `[start, end)`:

1. `produce_window` fetches the **closed 1-minute candles** of the window from the first exchange
   in `BTC_EXCHANGES` that can serve it (failover in order; the message's `source` says who did)
   and produces them as schema-v1 JSON messages to the Kafka topic `btc-metrics`, keyed
   `source|symbol|kind|ts`; then, for a live run, one round of **every** exchange's ticker as
   `tick`s, cross-checked (spread, and any exchange more than `BTC_MAX_DEVIATION_PCT` away from
   the median of the others, recorded in `btc.pipeline_runs`). A failed ticker does not fail the run.
2. `stream_ticks`, beside it, reads every exchange's ticker again every `BTC_TICK_INTERVAL_S`
   (10 s) through the minute after the window and produces each round at once, so the newest price
   is seconds old. Same keys (a tick's `ts` is the exchange's trade time): re-reads never duplicate.
3. `record_run` writes the run's counts and timings to `btc.pipeline_runs`.

- **Drain on arrival**: both producing tasks declare the topic's asset
  (`kafka://btc_kafka/btc-metrics`) as an outlet, so `btc_drain` starts as soon as one succeeds.
- **Heal on recovery**: when a run succeeds after failed or skipped windows (the previous
  successful window ends before this one starts), `produce_window` backfills the holes between
  them at once (at most `BTC_HEAL_HORIZON_MINUTES`), minutes already stored or known to be
  trade-less excepted. The hourly `btc_heal` remains the safety net.
- **Timetable**: `CronDataIntervalTimetable("* * * * *")`, so every run owns a real one-minute
  window (a plain cron schedule would give `start == end` in Airflow 3).
- **Idempotent**: candles depend only on the window, so re-running or backfilling a window
  produces the same keys and prices; the drain upserts on the key.
- **catchup=False**: after downtime the scheduler does not replay every missed minute one by
  one; the first run that succeeds heals them (above), and `btc-pipeline backfill` fills older ones.
- **max_active_runs=3**: windows are independent; a window whose candles are late (retrying)
  must not hold up the next minutes, but a broker outage must not pile up dozens of runs either.
  While three runs are retrying, the scheduler skips the minutes it could not start: the next
  successful run heals them.
- **Failure = retry**: no candles yet for a just-closed window, an exchange failure on every
  exchange, or any unacknowledged Kafka delivery fails `produce_window`; it retries
  `BTC_INGEST_RETRIES` (4) times with exponential backoff from `BTC_INGEST_RETRY_DELAY_S` (15 s)
  up to 2 min. `stream_ticks` is not retried (a ticker reading cannot be had again later).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import CronDataIntervalTimetable, dag, get_current_context, task

from btc_pipeline.dag_ids import INGEST_DAG
from btc_pipeline.tasks import ingest, schedules

NETWORK_TIMEOUT = timedelta(minutes=2)
SETTINGS = schedules.settings()
TOPIC = schedules.topic_asset(SETTINGS)


@dag(
    dag_id=INGEST_DAG,
    schedule=CronDataIntervalTimetable("* * * * *", timezone="UTC"),
    start_date=datetime.fromisoformat("2026-01-01T00:00:00+00:00"),
    catchup=False,
    max_active_runs=3,
    tags=["btc", "ingest", "kafka"],
    doc_md=__doc__,
    on_success_callback=schedules.on_success(SETTINGS),
    default_args=schedules.retry_args(
        SETTINGS.ingest_retries, timedelta(seconds=SETTINGS.ingest_retry_delay_s), timedelta(minutes=2)
    ),
)
def btc_ingest() -> None:
    @task(execution_timeout=NETWORK_TIMEOUT, outlets=[TOPIC])
    def produce_window() -> dict:
        """Fetch the window's candles (+ live tickers), produce them to `btc-metrics`; heal failed windows."""
        ctx = get_current_context()
        return ingest.produce_window(
            ctx["data_interval_start"],
            ctx["data_interval_end"],
            ctx["run_id"],
            ctx.get("prev_data_interval_end_success"),
        )

    @task(execution_timeout=NETWORK_TIMEOUT, retries=0, outlets=[TOPIC])
    def stream_ticks() -> dict:
        """Every exchange's ticker every `BTC_TICK_INTERVAL_S` through the minute, produced at once."""
        ctx = get_current_context()
        return ingest.stream_window_ticks(ctx["data_interval_start"], ctx["data_interval_end"], ctx["run_id"])

    @task(execution_timeout=NETWORK_TIMEOUT)
    def record_run(result: dict, ticks: dict) -> None:
        """Store the run's counts and timings in `btc.pipeline_runs`."""
        ctx = get_current_context()
        ingest.record_ingest_run(result, ctx["dag"].dag_id, ctx["run_id"], ctx["dag_run"].start_date, ticks)

    record_run(produce_window(), stream_ticks())


btc_ingest()
