"""Task bodies of ``btc_backfill`` and ``btc_heal``: parameters in, clients from Airflow
connections, then the steps of :mod:`btc_pipeline.steps.backfill` and :mod:`btc_pipeline.steps.gaps`.

Each DAG run has three steps: a plan (``chunks``, small dicts for the mapped task, and ``summary``,
both returned as the planning task's outputs), one mapped task per chunk (fetch with the
exchange's paging client, produce to ``btc-metrics``), and a summary written to
``btc.pipeline_runs`` that fails the run when a chunk failed (the chunks are not leaves, so without
it a failed chunk would leave the run green).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from airflow.sdk import Asset
from airflow.sdk.exceptions import AirflowFailException

from btc_pipeline.config import load_settings
from btc_pipeline.exchanges import build_exchange
from btc_pipeline.steps.backfill import backfill_chunk
from btc_pipeline.steps.backfill_plan import (
    CHUNKS_AT_ONCE,
    backfill_request,
    check_backfill_window,
    plan_backfill,
    request_count,
    requested_lane,
)
from btc_pipeline.steps.gaps import GapReport, find_gaps
from btc_pipeline.steps.heal import first_candle_since, heal_window
from btc_pipeline.store import HistoryLoad
from btc_pipeline.tasks import hooks
from btc_pipeline.timeutil import format_ts, parse_iso
from btc_pipeline.window import Window

log = logging.getLogger(__name__)


def _gaps(report: GapReport) -> dict[str, Any]:
    """A scope's ``holes`` (``[start, end]`` pairs) and gap statistics."""
    return {
        "holes": [[format_ts(r.start), format_ts(r.end)] for r in report.missing],
        "gaps_missing_minutes": report.missing_minutes,
        "gaps_missing_ranges": len(report.missing),
        "gaps_no_trade_minutes": report.no_trade_minutes,
    }


def _scope(window: Window | None, source: str | None, exchanges: Sequence[str], **facts: Any) -> dict[str, Any]:
    return {
        "window_start": format_ts(window.start) if window else None,
        "window_end": format_ts(window.end) if window else None,
        "source": source,
        "exchanges": list(exchanges),
        **facts,
    }


def _scope_window(scope: Mapping[str, Any]) -> Window:
    return Window(parse_iso(scope["window_start"], "window_start"), parse_iso(scope["window_end"], "window_end"))


def backfill_scope(params: Mapping[str, Any]) -> dict[str, Any]:
    """``btc_backfill.find_gaps``: validate the parameters and, with ``only_missing``, find the holes.

    Args:
        params: The run's parameters (see :func:`~btc_pipeline.steps.backfill_plan.backfill_request`).

    Returns:
        The run's scope: its range, source and exchanges, ``holes`` (``[start, end]`` pairs; ``None``
        = the whole range) and the gap statistics, for ``plan`` and ``summarize``.

    Raises:
        AirflowFailException: The parameters are invalid (no retry: they will not get better).
    """
    settings = load_settings()
    now = datetime.now(UTC)
    try:
        window, source, only_missing = backfill_request(params, now)
        lane = requested_lane(params)
        exchanges = (source,) if source else settings.exchanges
        check_backfill_window(window, exchanges, now)
    except ValueError as exc:
        raise AirflowFailException(f"btc_backfill: {exc}") from exc
    if not only_missing:
        return _scope(window, source, exchanges, only_missing=False, holes=None, lane=lane)
    with hooks.store(settings) as store:
        report = find_gaps(store, window, settings.symbol, source)
    return _scope(window, source, exchanges, only_missing=True, lane=lane, **_gaps(report))


def heal_scope(run_after: datetime) -> dict[str, Any]:
    """``btc_heal.find_gaps``: the holes of the recent horizon.

    Minutes an exchange said it had no trades in are not holes; minutes before the first candle the
    pipeline ever stored are not healed (that is history, for ``btc-pipeline backfill``).

    Args:
        run_after: When the run was due; the horizon ends
            :data:`~btc_pipeline.steps.heal.HEAL_LAG` before it.

    Returns:
        The run's scope, as :func:`backfill_scope` (``window_start`` ``None``: nothing to heal).
    """
    settings = load_settings()
    exchanges = settings.exchanges
    window, horizon = heal_window(run_after, settings.heal_horizon_minutes, exchanges)
    if window is None:
        log.warning("no heal horizon left within the exchanges' horizons")
        return _scope(None, None, exchanges, only_missing=True, holes=[], horizon_minutes=horizon)
    with hooks.store(settings) as store:
        start = first_candle_since(store, window)
        if start is None:
            log.info("no candle stored up to %s: nothing to heal", format_ts(window.end))
            return _scope(None, None, exchanges, only_missing=True, holes=[], horizon_minutes=horizon)
        window = Window(start, window.end)
        report = find_gaps(store, window, settings.symbol)
    for gap in report.missing:
        log.info("hole %s → %s (%d min)", format_ts(gap.start), format_ts(gap.end), gap.minutes)
    for quiet in report.no_trades:
        log.info(
            "no trades %s → %s per %s: skipped", format_ts(quiet.start), format_ts(quiet.end), ", ".join(quiet.sources)
        )
    return _scope(window, None, exchanges, only_missing=True, horizon_minutes=horizon, **_gaps(report))


def plan_chunks_of(scope: Mapping[str, Any]) -> list[dict[str, Any]]:
    """``plan``: split a run's scope into chunks, one small dict each for the mapped task.

    Args:
        scope: What ``find_gaps`` returned.

    Returns:
        The chunks (``start``, ``end``, ``source``, ``only_missing``, and ``label``, the task's name
        in the UI), oldest first.
    """
    if scope.get("window_start") is None:
        return []
    window = _scope_window(scope)
    holes = scope.get("holes")
    gaps = None if holes is None else [Window(parse_iso(a, "hole start"), parse_iso(b, "hole end")) for a, b in holes]
    # a heal's scope names no lane: heals take the live lane
    plan = plan_backfill(
        window, scope["exchanges"], gaps=gaps, lane=requested_lane({"lane": scope.get("lane") or "live"})
    )
    log.info(
        "plan (%s lane): %d chunk(s) of at most %d minutes, %d minutes, %d request(s) to %s",
        plan.lane,
        len(plan.chunks),
        plan.chunk_minutes,
        plan.minutes,
        plan.requests,
        plan.exchanges[0],
    )
    return [
        {
            "start": format_ts(chunk.start),
            "end": format_ts(chunk.end),
            "source": scope.get("source"),
            "only_missing": bool(scope.get("only_missing")),
            "lane": plan.lane,
            "label": f"{format_ts(chunk.start)} → {format_ts(chunk.end)}",
            "minutes": chunk.minute_count,
            "requests": request_count(chunk, plan.exchanges[0]),
        }
        for chunk in plan.chunks
    ]


def record_history_start(run_id: str, scope: Mapping[str, Any], chunks: Sequence[Mapping[str, Any]]) -> None:
    """``plan`` of a history-lane backfill: record the load as started, with the minutes of its range
    already stored, so that the dashboard can show its progress (:mod:`btc_pipeline.store.loads`)."""
    if scope.get("lane") != "history" or not chunks:
        return
    window = _scope_window(scope)
    with hooks.store(load_settings()) as store:
        load = HistoryLoad(
            run_id=run_id,
            window=window,
            planned_minutes=sum(int(c.get("minutes", 0)) for c in chunks),
            present_before=store.minutes_with_candles(window),
            started_at=datetime.now(UTC),
            state="running",
        )
        store.record_history_load(load)


def run_backfill_chunk(chunk: Mapping[str, Any], run_id: str) -> dict[str, Any]:
    """Task body of the mapped ``fetch_and_produce``: fetch one chunk and produce it to Kafka.

    Args:
        chunk: One of the plan's chunks.
        run_id: The Airflow run id, carried in every message.

    Returns:
        The chunk's counts (:class:`~btc_pipeline.steps.backfill.ChunkResult`).
    """
    settings = load_settings()
    window = Window(parse_iso(chunk["start"], "chunk start"), parse_iso(chunk["end"], "chunk end"))
    source = chunk.get("source")
    names = (source,) if source else settings.exchanges
    exchanges = [build_exchange(name, settings) for name in names]
    with hooks.store(settings) as store, hooks.no_retry_when_permanent():
        result = backfill_chunk(
            window,
            settings,
            exchanges,
            hooks.producer(settings),
            store,
            run_id,
            only_missing=bool(chunk.get("only_missing")),
            present_source=source,
            lane="history" if chunk.get("lane") == "history" else "live",
        )
    return result.to_dict()


def summarize_run(
    dag_id: str,
    run_id: str,
    scope: Mapping[str, Any] | None,
    chunks: Iterable[Mapping[str, Any]] | None,
    results: Iterable[Mapping[str, Any]] | None,
    started_at: datetime | None,
) -> dict[str, Any]:
    """``summarize``: store the run's scope and totals in ``pipeline_runs``; fail if a chunk failed.

    Args:
        dag_id: ``btc_backfill`` or ``btc_heal``.
        run_id: The run.
        scope: What ``find_gaps`` returned; ``None`` when it failed.
        chunks: The planned chunks; ``None`` when ``plan`` failed.
        results: The results of the chunks that succeeded.
        started_at: When the run started.

    Returns:
        The stored document (dates as ISO strings).

    Raises:
        AirflowFailException: A chunk failed; the message lists which (their logs say why). Or
            nothing was planned because ``find_gaps`` or ``plan`` failed: their failure callback
            has recorded the run already, and retrying this task would not change that.
    """
    if scope is None or chunks is None:
        failed_step = "find_gaps" if scope is None else "plan"
        raise AirflowFailException(f"nothing to summarize: {failed_step} failed (its log says why)")
    planned = list(chunks)
    done = [dict(r) for r in results or ()]
    finished = {r["start"] for r in done}
    failed = [c["label"] for c in planned if c["start"] not in finished]
    totals: dict[str, float] = {
        key: sum(int(r.get(key, 0)) for r in done)
        for key in ("fetched", "produced", "already_present", "no_trade_minutes", "requests")
    }
    # the chunks' own time (fetch, produce), summed: what the run's wall time spent outside them is Airflow's
    totals |= {
        f"{key}_s": round(sum(float(r.get(f"{key}_ms", 0)) for r in done) / 1000, 1) for key in ("fetch", "produce")
    }
    sources = sorted({s for r in done for s in str(r["source"]).split(",")})
    fields: dict[str, Any] = {
        **{key: value for key, value in scope.items() if key != "holes"},
        "chunks": len(planned),
        "planned_minutes": sum(int(c.get("minutes", 0)) for c in planned),
        "planned_requests": sum(int(c.get("requests", 0)) for c in planned),
        "chunks_done": len(done),
        "chunks_failed": failed,
        "state": "failed" if failed else "success",
        "served_by": sources,
        **totals,
    }
    settings = load_settings()
    now = datetime.now(UTC)
    with hooks.store(settings) as store:
        doc = store.record_run(dag_id, run_id, started_at=started_at or now, finished_at=now, fields=fields)
        if scope.get("lane") == "history":
            store.finish_history_load(run_id, fields["state"], now)
    log.info("summary: %s", fields)
    if failed:
        raise AirflowFailException(f"{len(failed)} of {len(planned)} chunk(s) failed: {', '.join(failed)}")
    return {**doc, "started_at": format_ts(doc["started_at"]), "finished_at": format_ts(doc["finished_at"])}


def plan_and_produce(scope: Any, outlets: Sequence[Asset]) -> Any:
    """Wire the tasks ``btc_backfill`` and ``btc_heal`` share, after their own ``find_gaps``.

    ``plan`` splits the scope into chunks; one mapped ``fetch_and_produce`` task per chunk (named
    after its window in the UI) fetches and produces it; ``summarize`` runs even when a chunk
    failed, records the scope and the totals, and fails the run then. Data flows as the tasks'
    return values.

    Args:
        scope: ``find_gaps``'s output.
        outlets: The topics' assets, the chunks' outlets: each chunk that succeeds starts the drains
            of those topics (``btc_drain``; ``btc_history_drain`` for ``btc_backfill``).

    Returns:
        The ``summarize`` task's output.
    """
    from airflow.sdk import TriggerRule, get_current_context, task

    @task(execution_timeout=timedelta(minutes=2))  # type: ignore[untyped-decorator]
    def plan(scope: dict[str, Any]) -> list[dict[str, Any]]:
        """Split the scope into chunks, each a whole number of the exchange's pages (a day, or 15 days
        in the history lane); record a history load for the dashboard."""
        chunks = plan_chunks_of(scope)
        record_history_start(get_current_context()["run_id"], scope, chunks)
        return chunks

    @task(  # type: ignore[untyped-decorator]
        execution_timeout=timedelta(minutes=10),
        map_index_template="{{ chunk_window }}",
        outlets=list(outlets),
        # each chunk sends its share of the exchange's request rate (ExchangeLimits.requests_per_second)
        max_active_tis_per_dagrun=CHUNKS_AT_ONCE,
    )
    def fetch_and_produce(chunk: dict[str, Any]) -> dict[str, Any]:
        """Fetch one chunk's candles with the exchange's paging client and produce them to `btc-metrics`."""
        ctx = get_current_context()
        ctx["chunk_window"] = chunk["label"]  # type: ignore[typeddict-unknown-key]
        return run_backfill_chunk(chunk, ctx["run_id"])

    @task(trigger_rule=TriggerRule.ALL_DONE, execution_timeout=timedelta(minutes=2))  # type: ignore[untyped-decorator]
    def summarize(scope: dict[str, Any], chunks: list[Any], results: list[Any]) -> dict[str, Any]:
        """Store the run's scope and totals in `btc.pipeline_runs`; fail if a chunk failed."""
        ctx = get_current_context()
        return summarize_run(ctx["dag"].dag_id, ctx["run_id"], scope, chunks, results, ctx["dag_run"].start_date)

    chunks = plan(scope)
    return summarize(scope, chunks, fetch_and_produce.expand(chunk=chunks))
