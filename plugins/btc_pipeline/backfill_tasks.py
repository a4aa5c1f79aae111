"""The bodies of the ``btc_backfill`` and ``btc_heal`` tasks: parameters in, clients from Airflow
connections, then the functions of :mod:`btc_pipeline.backfill` and :mod:`btc_pipeline.gaps`.

Each DAG run has three steps: a plan (the chunks, as small dicts for XCom), one mapped task per
chunk (fetch with the exchange's paging client, produce to ``btc-metrics``), and a summary written
to ``btc.pipeline_runs`` that fails the run when a chunk failed (the chunks are not leaves, so
without it a failed chunk would leave the run green).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from airflow.providers.mongo.hooks.mongo import MongoHook
from airflow.sdk.exceptions import AirflowFailException

from btc_pipeline.airflow_tasks import GuaranteedProducerHook
from btc_pipeline.backfill import (
    BackfillPlan,
    backfill_chunk,
    backfill_request,
    check_backfill_window,
    first_candle_since,
    heal_window,
    parse_instant,
    plan_backfill,
)
from btc_pipeline.config import Settings, load_settings
from btc_pipeline.gaps import GapReport, find_gaps
from btc_pipeline.providers import build_provider
from btc_pipeline.schema import format_ts
from btc_pipeline.store import PIPELINE_RUNS, record_run
from btc_pipeline.window import Window

log = logging.getLogger(__name__)


def _mongo(settings: Settings) -> MongoHook:
    return MongoHook(mongo_conn_id=settings.mongo_conn_id)


def _plan_output(plan: BackfillPlan, source: str | None, extra: Mapping[str, Any]) -> dict[str, Any]:
    chunks = [
        {
            "start": format_ts(chunk.start),
            "end": format_ts(chunk.end),
            "source": source,
            "only_missing": plan.only_missing,
            "label": f"{format_ts(chunk.start)} → {format_ts(chunk.end)}",
        }
        for chunk in plan.chunks
    ]
    summary = {
        "window_start": format_ts(plan.window.start),
        "window_end": format_ts(plan.window.end),
        "source": source,
        "providers": list(plan.providers),
        "only_missing": plan.only_missing,
        "chunk_minutes": plan.chunk_minutes,
        "chunks": len(plan.chunks),
        "planned_minutes": plan.minutes,
        "planned_requests": plan.requests,
        **extra,
    }
    log.info("plan: %s", summary)
    return {"chunks": chunks, "summary": summary}


def _gap_stats(report: GapReport) -> dict[str, Any]:
    return {
        "gaps_missing_minutes": report.missing_minutes,
        "gaps_missing_ranges": len(report.missing),
        "gaps_no_trade_minutes": report.no_trade_minutes,
    }


def plan_backfill_run(params: Mapping[str, Any]) -> dict[str, Any]:
    """Task body of ``btc_backfill.plan``: validate the parameters and split the range into chunks.

    Args:
        params: The run's parameters (see :func:`backfill_request`).

    Returns:
        ``chunks`` (one small dict per chunk, for the mapped task) and ``summary``.

    Raises:
        AirflowFailException: The parameters are invalid (no retry: they will not get better).
    """
    settings = load_settings()
    try:
        window, source, only_missing = backfill_request(params)
        providers = (source,) if source else settings.providers
        check_backfill_window(window, providers, datetime.now(UTC))
    except ValueError as exc:
        raise AirflowFailException(f"btc_backfill: {exc}") from exc
    extra: dict[str, Any] = {}
    gaps = None
    if only_missing:
        with _mongo(settings) as hook:
            report = find_gaps(hook.get_conn()[settings.mongo_db], window, settings.symbol, source)
        gaps = [r.window for r in report.missing]
        extra = _gap_stats(report)
    return _plan_output(plan_backfill(window, providers, gaps=gaps), source, extra)


def plan_heal_run(run_after: datetime) -> dict[str, Any]:
    """Task body of ``btc_heal.find_gaps``: the holes of the recent horizon, as chunks.

    Minutes an exchange said it had no trades in are not holes; minutes before the first candle the
    pipeline ever stored are not healed (that is history, for ``btc-pipeline backfill``).

    Args:
        run_after: When the run was due; the horizon ends :data:`~btc_pipeline.backfill.HEAL_LAG`
            before it.

    Returns:
        ``chunks`` and ``summary``, as :func:`plan_backfill_run`.
    """
    settings = load_settings()
    window, horizon = heal_window(run_after, settings.heal_horizon_minutes, settings.providers)
    extra: dict[str, Any] = {"horizon_minutes": horizon}
    if window is None:
        log.warning("no heal horizon left within the providers' horizons")
        return {"chunks": [], "summary": extra}
    with _mongo(settings) as hook:
        db = hook.get_conn()[settings.mongo_db]
        start = first_candle_since(db, window, settings.symbol)
        if start is None:
            log.info("no candle stored up to %s: nothing to heal", format_ts(window.end))
            return {"chunks": [], "summary": {**extra, "window_end": format_ts(window.end)}}
        window = Window(start, window.end)
        report = find_gaps(db, window, settings.symbol)
    extra.update(_gap_stats(report))
    for gap in report.missing:
        log.info("hole %s → %s (%d min)", format_ts(gap.start), format_ts(gap.end), gap.minutes)
    for quiet in report.no_trades:
        log.info(
            "no trades %s → %s per %s: skipped", format_ts(quiet.start), format_ts(quiet.end), ", ".join(quiet.sources)
        )
    plan = plan_backfill(window, settings.providers, gaps=[r.window for r in report.missing])
    return _plan_output(plan, None, extra)


def run_backfill_chunk(chunk: Mapping[str, Any], run_id: str) -> dict[str, Any]:
    """Task body of the mapped ``fetch_and_produce``: fetch one chunk and produce it to Kafka.

    Args:
        chunk: One of the plan's chunks.
        run_id: The Airflow run id, carried in every message.

    Returns:
        The chunk's counts (:class:`~btc_pipeline.backfill.ChunkResult`).
    """
    settings = load_settings()
    window = Window(parse_instant(chunk["start"], "start"), parse_instant(chunk["end"], "end"))
    source = chunk.get("source")
    names = (source,) if source else settings.providers
    providers = [build_provider(name, settings) for name in names]
    producer = GuaranteedProducerHook(kafka_config_id=settings.kafka_conn_id).get_producer()
    with _mongo(settings) as hook:
        result = backfill_chunk(
            window,
            settings,
            providers,
            producer,
            hook.get_conn()[settings.mongo_db],
            run_id,
            only_missing=bool(chunk.get("only_missing")),
            present_source=source,
        )
    return result.to_dict()


def summarize_run(
    dag_id: str,
    run_id: str,
    summary: Mapping[str, Any],
    chunks: Iterable[Mapping[str, Any]],
    results: Iterable[Mapping[str, Any]],
    started_at: datetime | None,
) -> dict[str, Any]:
    """Task body of ``summarize``: store the run's totals in ``pipeline_runs``; fail if a chunk failed.

    Args:
        dag_id: ``btc_backfill`` or ``btc_heal``.
        run_id: The run.
        summary: The plan's summary.
        chunks: The planned chunks.
        results: The results of the chunks that succeeded.
        started_at: When the run started.

    Returns:
        The stored document (dates as ISO strings).

    Raises:
        AirflowFailException: A chunk failed; the message lists which (their logs say why).
    """
    planned = list(chunks)
    done = [dict(r) for r in results]
    finished = {r["start"] for r in done}
    failed = [c["label"] for c in planned if c["start"] not in finished]
    totals = {
        key: sum(int(r.get(key, 0)) for r in done)
        for key in ("fetched", "produced", "already_present", "no_trade_minutes", "requests")
    }
    sources = sorted({str(r["source"]) for r in done})
    doc: dict[str, Any] = {
        "_id": f"{dag_id}|{run_id}",
        "dag_id": dag_id,
        "run_id": run_id,
        "started_at": started_at or datetime.now(UTC),
        "finished_at": datetime.now(UTC),
        **summary,
        "chunks_done": len(done),
        "chunks_failed": failed,
        "served_by": sources,
        **totals,
    }
    settings = load_settings()
    with _mongo(settings) as hook:
        record_run(hook.get_conn()[settings.mongo_db][PIPELINE_RUNS], doc)
    log.info("summary: %s", {k: v for k, v in doc.items() if k not in ("started_at", "finished_at")})
    if failed:
        raise AirflowFailException(f"{len(failed)} of {len(planned)} chunk(s) failed: {', '.join(failed)}")
    return {**doc, "started_at": doc["started_at"].isoformat(), "finished_at": doc["finished_at"].isoformat()}


def produce_chunks(chunks: Any, plan_task_id: str) -> Any:
    """Wire the steps ``btc_backfill`` and ``btc_heal`` share, after their own planning task.

    One mapped ``fetch_and_produce`` task per chunk (named after its window in the UI), then
    ``summarize``, which runs even when a chunk failed, records the totals and fails the run then.

    Args:
        chunks: The planning task's output (``XComArg`` of the chunk dicts).
        plan_task_id: That task's id, whose XCom ``summary`` holds the run's plan totals.

    Returns:
        The ``summarize`` task's output.
    """
    from datetime import timedelta

    from airflow.sdk import TriggerRule, get_current_context, task

    @task(execution_timeout=timedelta(minutes=10), map_index_template="{{ chunk_window }}")  # type: ignore[untyped-decorator]
    def fetch_and_produce(chunk: dict[str, Any]) -> dict[str, Any]:
        """Fetch one chunk's candles with the exchange's paging client and produce them to `btc-metrics`."""
        ctx = get_current_context()
        ctx["chunk_window"] = chunk["label"]  # type: ignore[typeddict-unknown-key]
        return run_backfill_chunk(chunk, ctx["run_id"])

    @task(trigger_rule=TriggerRule.ALL_DONE, execution_timeout=timedelta(minutes=2))  # type: ignore[untyped-decorator]
    def summarize(chunks: list[Any], results: list[Any]) -> dict[str, Any]:
        """Store the run's totals in `btc.pipeline_runs`; fail if a chunk failed."""
        ctx = get_current_context()
        summary = ctx["ti"].xcom_pull(task_ids=plan_task_id, key="summary") or {}
        return summarize_run(ctx["dag"].dag_id, ctx["run_id"], summary, chunks, results, ctx["dag_run"].start_date)

    return summarize(chunks, fetch_and_produce.expand(chunk=chunks))
