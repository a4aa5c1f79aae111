"""The pipeline's DAG ids and the task ids other code asks Airflow about, in one place: the DAG
files use them for ``dag_id=``, the CLI to trigger and follow runs, the health report to find the
runs it speaks of. A DAG file's name is its id (``tests/test_dag_integrity.py`` checks both)."""

from __future__ import annotations

INGEST_DAG = "btc_ingest"
DRAIN_DAG = "btc_drain"
HISTORY_DRAIN_DAG = "btc_history_drain"
BACKFILL_DAG = "btc_backfill"
HEAL_DAG = "btc_heal"
RETENTION_DAG = "btc_retention"
DAG_IDS = (INGEST_DAG, DRAIN_DAG, HISTORY_DRAIN_DAG, BACKFILL_DAG, HEAL_DAG, RETENTION_DAG)

#: The tasks of ``btc_backfill`` and ``btc_heal`` (``btc_pipeline.tasks.backfill.plan_and_produce``):
#: the planner, whose return value lists the chunks; the task mapped over them; the run's summary.
PLAN_TASK = "plan"
CHUNK_TASK = "fetch_and_produce"
SUMMARIZE_TASK = "summarize"
#: ``btc_ingest``'s task that produces the window and heals the failed windows before it.
PRODUCE_TASK = "produce_window"
