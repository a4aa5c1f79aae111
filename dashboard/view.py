"""What one refresh of the dashboard shows, read through the store (the read model only: a refresh
reads a few dozen small documents, whatever the length of history)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import pandas as pd

from btc_pipeline.alerts import Alert
from btc_pipeline.bars import interval_for
from btc_pipeline.config import Settings
from btc_pipeline.health import PipelineHealth, pipeline_health
from btc_pipeline.quotes import Quote, quote
from btc_pipeline.steps.alerts import move_reference
from btc_pipeline.steps.gaps import GapReport, find_gaps
from btc_pipeline.store import CONSENSUS, Store, tick_series
from btc_pipeline.timeutil import floor_minute, format_ts, seconds_left
from btc_pipeline.window import MINUTE, Window

#: The chart's ranges (``None``: from the first candle stored).
RANGES: dict[str, timedelta | None] = {
    "1h": timedelta(hours=1),
    "6h": timedelta(hours=6),
    "24h": timedelta(days=1),
    "7d": timedelta(days=7),
    "30d": timedelta(days=30),
    "1y": timedelta(days=365),
    "all": None,
}


@dataclass(frozen=True)
class DayStats:
    """The last 24 hours of the chosen series: change, high, low, volume."""

    open: float
    close: float
    high: float
    low: float
    volume: float | None

    @property
    def change_pct(self) -> float:
        return (self.close / self.open - 1) * 100


@dataclass
class Chart:
    """The bars of the chosen range and series (or each exchange's line, to compare them)."""

    window: Window
    interval: str
    bars: pd.DataFrame
    lines: dict[str, pd.DataFrame] = field(default_factory=dict)


@dataclass
class Live:
    """The quote, the newest observations, the last 24 hours, the price a move counts from, the alerts."""

    quote: Quote
    #: The freshness verdict of ``/v1/health`` (runs left out).
    health: PipelineHealth
    day: DayStats | None
    move_reference: float | None
    alerts: list[Alert]


@dataclass
class HealthPanel:
    """The pipeline's health (as ``/v1/health`` reports it) and its tables, rejects, holes of 24 h."""

    health: PipelineHealth
    exchanges: list[dict[str, str]]
    runs: list[dict[str, Any]]
    rejects_24h: dict[str, int]
    gaps: GapReport
    #: The last notification deliveries (:func:`delivery_rows`), newest first.
    notifications: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class HistoryProgress:
    """A history backfill being stored: the minutes of its range with a candle, of all, and an ETA."""

    window: Window
    done: int
    total: int
    eta_s: float | None

    @property
    def text(self) -> str:
        eta = "" if self.eta_s is None else f", about {int(self.eta_s) // 60} min {int(self.eta_s) % 60:02d} s left"
        return (
            f"Loading history {format_ts(self.window.start)} → {format_ts(self.window.end)}: {self.done:,} of "
            f"{self.total:,} minutes ({100 * self.done / self.total:.0f} %){eta}. The chart fills in as it arrives."
        )


#: How long after its run ended a load is still shown while its minutes are being stored.
LOAD_SHOWN_AFTER_END = timedelta(minutes=15)
#: A load whose run never recorded its end (killed) is not shown after this long.
LOAD_GIVEN_UP_AFTER = timedelta(hours=6)


def load_history(store: Store, now: datetime) -> HistoryProgress | None:
    """The history backfill in progress (run by ``btc-pipeline backfill`` or the first start), or
    ``None`` when none is: its run is over and its minutes are stored, or it ended a while ago."""
    load = store.history_load()
    if load is None or load.state == "failed":
        return None
    if load.finished_at is not None and now - load.finished_at > LOAD_SHOWN_AFTER_END:
        return None
    if load.finished_at is None and now - load.started_at > LOAD_GIVEN_UP_AFTER:  # its run never said how it ended
        return None
    total = load.window.minute_count
    done = store.minutes_with_candles(load.window)
    if done >= total and load.state != "running":
        return None
    elapsed = (now - load.started_at).total_seconds()
    eta = seconds_left(total - done, done - load.present_before, elapsed)
    return HistoryProgress(load.window, min(done, total), total, eta)


def chart_window(range_name: str, store: Store, now: datetime) -> Window:
    """The window of a range: it ends with the current minute (its bar fills as it goes)."""
    end = floor_minute(now) + MINUTE
    span = RANGES[range_name]
    if span is not None:
        return Window(end - span, end)
    first = store.first_candle()
    start = floor_minute(first) if first is not None else end - timedelta(days=1)
    return Window(start.replace(hour=0, minute=0), end)


def load_chart(store: Store, range_name: str, source: str, compare: bool, exchanges: list[str], now: datetime) -> Chart:
    """The chart's data: the bars of ``source``, or (``compare``) each exchange's ticker line."""
    window = chart_window(range_name, store, now)
    interval = interval_for(window.end - window.start)
    if compare:
        lines = {x: store.bars(tick_series(x), interval, window) for x in exchanges}
        return Chart(window, interval, pd.DataFrame(), lines)
    return Chart(window, interval, store.bars(source, interval, window))


def load_live(store: Store, settings: Settings, source: str, now: datetime) -> Live:
    """The header's data: the quote, the data's freshness, the last 24 h of ``source``, the alerts, and
    the consensus one move alert window (``BTC_ALERT_MOVE_WINDOW_MIN``, the pipeline's) before the newest tick."""
    latest = store.latest()
    q = quote(latest, now)
    window = timedelta(minutes=settings.alert_move_window_min)
    reference = None if q.newest is None else move_reference(store, q.newest, window)
    end = floor_minute(now) + MINUTE
    bars = store.bars(source, "5m", Window(end - timedelta(days=1), end))
    day = None
    if not bars.empty:
        volume = bars["volume"].sum() if bars["volume"].notna().any() else None
        day = DayStats(
            float(bars["open"].iloc[0]),
            float(bars["close"].iloc[-1]),
            float(bars["high"].max()),
            float(bars["low"].min()),
            None if volume is None else float(volume),
        )
    return Live(q, pipeline_health(latest, [], now, settings.stale_after_s), day, reference, store.recent_alerts())


def freshness_rows(health: PipelineHealth, exchanges: Iterable[str]) -> list[dict[str, str]]:
    """Each exchange's newest candle and tick (``exchanges`` also without data) and their ages."""
    seen = health.by_exchange()
    rows = []
    for name in sorted(set(exchanges) | set(seen)):
        row = {"exchange": name}
        for label in ("candle", "tick"):
            reading = seen.get(name, {}).get(label)
            row[f"newest {label}"] = format_ts(reading.observation.ts) if reading else "no data"
            row[f"{label} age"] = f"{reading.age_s:,.0f} s" if reading else "—"
        rows.append(row)
    return rows


def run_rows(health: PipelineHealth) -> list[dict[str, Any]]:
    """One row per DAG: its last recorded run, and how many of the runs the store keeps failed."""
    return [
        {
            "DAG": dag_id,
            "last run": format_ts(runs[0].started_at),
            "state": runs[0].state,
            "failed task": runs[0].failed_task or "",
            "error": (runs[0].error or "")[:120],
            "runs kept": len(runs),
            "failed of them": sum(r.state == "failed" for r in runs),
        }
        for dag_id, runs in health.dags.items()
    ]


def delivery_rows(deliveries: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """One row per notification delivery (as :meth:`~btc_pipeline.store.Store.recent_deliveries`
    gives them): when, what, to which channel (already redacted when stored), how it ended."""
    return [
        {
            "at": format_ts(d["at"]),
            "what": d.get("kind", ""),
            "message": str(d.get("title", ""))[:100],
            "channel": d.get("channel", ""),
            "outcome": d.get("outcome", ""),
            "tries": d.get("attempts", 0),
            "detail": str(d.get("detail", ""))[:120],
        }
        for d in deliveries
    ]


def load_health(store: Store, settings: Settings, now: datetime) -> HealthPanel:
    """The health panel's data (the holes of the last 24 h included)."""
    health = pipeline_health(store.latest(), store.recent_runs(), now, settings.stale_after_s)
    days = store.reject_counts()
    rejects: dict[str, int] = {}
    for day in (f"{now - timedelta(days=1):%Y-%m-%d}", f"{now:%Y-%m-%d}"):
        for reason, count in days.get(day, {}).items():
            rejects[reason] = rejects.get(reason, 0) + count
    end = floor_minute(now) - MINUTE * 2  # the last two minutes may still be on their way
    gaps = find_gaps(store, Window(end - timedelta(days=1), end), settings.symbol)
    notifications = delivery_rows(store.recent_deliveries())
    exchanges = freshness_rows(health, settings.exchanges)
    return HealthPanel(health, exchanges, run_rows(health), rejects, gaps, notifications)


def series_choices(settings: Settings) -> list[str]:
    """What the source selector offers: the consensus first, then the configured exchanges."""
    return [CONSENSUS, *settings.exchanges]
