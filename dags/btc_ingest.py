"""
# btc_ingest

Every minute, for its data interval `[start, end)`, fetches the **closed 1-minute candles** of
that window from the first exchange in `BTC_EXCHANGES` that can serve it (failover in order; the
message's `source` says who did) and produces them as schema-v1 JSON messages to the Kafka topic
`btc-metrics`, keyed `source|symbol|kind|ts`.

For live runs (window closed less than `BTC_LIVE_TICK_HORIZON_S` ago) it also reads **every**
exchange's ticker, produces each as a `tick`, and cross-checks them: the spread, and any exchange
more than `BTC_MAX_DEVIATION_PCT` away from the median of the others, are logged and recorded in
`btc.pipeline_runs`. One exchange's failed ticker is recorded there but does not fail the run.

- **Timetable**: `CronDataIntervalTimetable("* * * * *")`, so every run owns a real one-minute
  window (a plain cron schedule would give `start == end` in Airflow 3).
- **Idempotent**: candles depend only on the window, so re-running or backfilling a window
  produces the same keys and prices; the drain upserts on the key.
- **catchup=False**: after downtime the scheduler does not replay every missed minute one by
  one; missed windows are filled with `airflow backfill create --dag-id btc_ingest ...` or the
  `btc-pipeline backfill` CLI (see the README).
- **max_active_runs=3**: windows are independent; a window whose candles are late (retrying)
  must not hold up the next minutes, but a broker outage must not pile up dozens of runs either.
  While three runs are retrying, the scheduler skips the minutes it could not start (catchup is
  off): those windows are holes that `btc-pipeline gaps` lists and the heal DAG fills.
- **Failure = retry**: no candles yet for a just-closed window, an exchange failure on every
  exchange, or any unacknowledged Kafka delivery fails `produce_window`; it retries 4 times with
  exponential backoff (15 s .. 2 min).
- `record_run` writes the run's counts and timings to `btc.pipeline_runs`.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import CronDataIntervalTimetable, dag, get_current_context, task

from btc_pipeline.tasks import hooks, ingest

NETWORK_TIMEOUT = timedelta(minutes=2)


@dag(
    dag_id="btc_ingest",
    schedule=CronDataIntervalTimetable("* * * * *", timezone="UTC"),
    start_date=datetime.fromisoformat("2026-01-01T00:00:00+00:00"),
    catchup=False,
    max_active_runs=3,
    tags=["btc", "ingest", "kafka"],
    doc_md=__doc__,
    default_args={
        "on_failure_callback": hooks.record_failed_run,
        "retries": 4,
        "retry_delay": timedelta(seconds=15),
        "retry_exponential_backoff": True,
        "max_retry_delay": timedelta(minutes=2),
    },
)
def btc_ingest() -> None:
    @task(execution_timeout=NETWORK_TIMEOUT)
    def produce_window() -> dict:
        """Fetch the window's candles (+ live ticker) and produce them to `btc-metrics`."""
        ctx = get_current_context()
        return ingest.produce_window(ctx["data_interval_start"], ctx["data_interval_end"], ctx["run_id"])

    @task(execution_timeout=NETWORK_TIMEOUT)
    def record_run(result: dict) -> None:
        """Store the run's counts and timings in `btc.pipeline_runs`."""
        ctx = get_current_context()
        ingest.record_ingest_run(result, ctx["dag"].dag_id, ctx["run_id"], ctx["dag_run"].start_date)

    record_run(produce_window())


btc_ingest()
