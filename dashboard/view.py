"""What one refresh of the dashboard shows, read through the store (the read model only: a refresh
reads a few dozen small documents, whatever the length of history)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import pandas as pd

from btc_pipeline.bars import interval_for
from btc_pipeline.config import Settings
from btc_pipeline.quotes import Quote, quote
from btc_pipeline.steps.gaps import GapReport, find_gaps
from btc_pipeline.store import CONSENSUS, Store, tick_series
from btc_pipeline.timeutil import floor_minute, format_ts, to_utc
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
DAGS = ("btc_ingest", "btc_drain", "btc_backfill", "btc_heal", "btc_retention")


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
    """The quote, the newest observation, the last 24 hours and the alerts the pipeline recorded."""

    quote: Quote
    newest: datetime | None
    newest_by: dict[tuple[str, str], datetime]
    day: DayStats | None
    alerts: list[dict[str, Any]]


@dataclass
class Health:
    """How the pipeline is doing: freshness per exchange, lag, runs, rejects, holes."""

    exchanges: list[dict[str, Any]]
    consumer_lag: int | None
    runs: list[dict[str, Any]]
    rejects_24h: dict[str, int]
    gaps: GapReport


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


def load_live(store: Store, source: str, now: datetime) -> Live:
    """The header's data: the quote, the newest observation, the last 24 h of ``source``, the alerts."""
    latest = store.latest()
    newest_by = {(str(d["source"]), str(d["kind"])): to_utc(d["ts"]) for d in latest}
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
    return Live(quote(latest, now), max(newest_by.values(), default=None), newest_by, day, store.recent_alerts())


def load_health(store: Store, settings: Settings, now: datetime) -> Health:
    """The health panel's data (the holes of the last 24 h included)."""
    latest = {(str(d["source"]), str(d["kind"])): to_utc(d["ts"]) for d in store.latest()}
    exchanges = []
    for name in sorted(set(settings.exchanges) | {s for s, _ in latest}):
        row: dict[str, Any] = {"exchange": name}
        for kind, label in (("candle_1m", "candle"), ("tick", "tick")):
            ts = latest.get((name, kind))
            row[f"newest {label}"] = format_ts(ts) if ts else "no data"
            row[f"{label} age"] = f"{(now - ts).total_seconds():,.0f} s" if ts else "—"
        exchanges.append(row)
    runs = store.recent_runs(100)
    drains = [r for r in runs if r.get("dag_id") == "btc_drain" and r.get("lag_after") is not None]
    last_per_dag = []
    for dag_id in DAGS:
        mine = [r for r in runs if r.get("dag_id") == dag_id]
        if mine:
            last = mine[0]
            last_per_dag.append(
                {
                    "DAG": dag_id,
                    "last run": format_ts(to_utc(last["started_at"])),
                    "state": last.get("state", "success"),
                    "failed task": last.get("failed_task", ""),
                    "error": str(last.get("error", ""))[:120],
                    "runs shown": len(mine),
                    "failed of them": sum(1 for r in mine if r.get("state") == "failed"),
                }
            )
    days = store.reject_counts()
    rejects: dict[str, int] = {}
    for day in (f"{now - timedelta(days=1):%Y-%m-%d}", f"{now:%Y-%m-%d}"):
        for reason, count in days.get(day, {}).items():
            rejects[reason] = rejects.get(reason, 0) + count
    end = floor_minute(now) - MINUTE * 2  # the last two minutes may still be on their way
    gaps = find_gaps(store, Window(end - timedelta(days=1), end), settings.symbol)
    return Health(exchanges, drains[0]["lag_after"] if drains else None, last_per_dag, rejects, gaps)


def series_choices(settings: Settings) -> list[str]:
    """What the source selector offers: the consensus first, then the configured exchanges."""
    return [CONSENSUS, *settings.exchanges]
