"""The pipeline's health, computed in one place for ``/v1/health``, ``/metrics`` and the dashboard's
health panel: pure functions over the store's records of the hot set (:class:`LatestObservation`)
and of the last runs of each DAG (:class:`RunRecord`).

Ages: a tick's counts from the exchange's trade (its ``ts``), a candle's from its minute's *close*
(``ts`` + 1 minute: a 1-minute candle can only be fetched once its minute is over). Entries from
the future that no clock skew explains are left out: they would make the data look fresh forever.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from btc_pipeline.dag_ids import DRAIN_DAG, INGEST_DAG
from btc_pipeline.timeutil import format_ts, plausible_at
from btc_pipeline.window import MINUTE

#: What a report calls each kind of observation.
KIND_LABELS = {"candle_1m": "candle", "tick": "tick"}


@dataclass(frozen=True)
class LatestObservation:
    """The newest observation of one kind from one exchange: an entry of the store's hot set."""

    source: str
    kind: str
    ts: datetime
    price: float

    @property
    def as_of(self) -> datetime:
        """When it was complete: a tick at its ``ts``, a candle when its minute closed."""
        return self.ts + MINUTE if self.kind == "candle_1m" else self.ts


@dataclass(frozen=True)
class RunRecord:
    """One recorded run of a DAG; ``lag_after``: a drain's consumer lag after it; ``failed_exchanges``:
    what failed in an ingest run, ``<exchange>`` (its candles) or ``<exchange>:ticker``."""

    dag_id: str
    run_id: str
    state: str
    started_at: datetime
    finished_at: datetime
    failed_task: str | None = None
    error: str | None = None
    lag_after: int | None = None
    failed_exchanges: tuple[str, ...] = ()


@dataclass(frozen=True)
class Freshness:
    """An entry of the hot set and its age in seconds."""

    observation: LatestObservation
    age_s: float


@dataclass(frozen=True)
class PipelineHealth:
    """Fresh while the newest tick or candle is at most ``stale_after_s`` old; ``reasons`` say why not."""

    checked_at: datetime
    stale_after_s: int
    readings: list[Freshness]
    newest: datetime | None
    age_s: float | None
    consumer_lag: int | None
    #: The runs each DAG has kept, newest first, by DAG id.
    dags: dict[str, list[RunRecord]]
    reasons: list[str]

    @property
    def status(self) -> Literal["ok", "stale"]:
        return "stale" if self.reasons else "ok"

    def by_exchange(self) -> dict[str, dict[str, Freshness]]:
        """The readings by exchange, then by :data:`KIND_LABELS` (``candle``, ``tick``)."""
        out: dict[str, dict[str, Freshness]] = {}
        for f in self.readings:
            out.setdefault(f.observation.source, {})[KIND_LABELS[f.observation.kind]] = f
        return out


def freshness(latest: Iterable[LatestObservation], now: datetime) -> list[Freshness]:
    """The hot set's entries with their ages, by exchange and kind (unknown kinds and the future left out)."""
    kept = [o for o in latest if o.kind in KIND_LABELS and plausible_at(o.ts, now)]
    return [Freshness(o, (now - o.as_of).total_seconds()) for o in sorted(kept, key=lambda o: (o.source, o.kind))]


def pipeline_health(
    latest: Iterable[LatestObservation], runs: Iterable[RunRecord], now: datetime, stale_after_s: int
) -> PipelineHealth:
    """The pipeline's health at ``now``.

    Args:
        latest: The store's hot set (:meth:`~btc_pipeline.store.Store.latest`).
        runs: The recorded runs (:meth:`~btc_pipeline.store.Store.recent_runs`), in any order.
        now: The time of the check.
        stale_after_s: ``BTC_STALE_AFTER_S``: data older than this is stale.

    Returns:
        The report. When stale, its reasons also name the DAGs whose last run failed.
    """
    readings = freshness(latest, now)
    newest = max((f.observation.as_of for f in readings), default=None)
    age = None if newest is None else (now - newest).total_seconds()
    dags: dict[str, list[RunRecord]] = {}
    for run in sorted(runs, key=lambda r: (r.dag_id, -r.started_at.timestamp())):
        dags.setdefault(run.dag_id, []).append(run)
    check = f"is {INGEST_DAG} running and {DRAIN_DAG} green in Airflow?"
    reasons = []
    if newest is None:
        reasons.append(f"no tick or candle stored yet: {check}")
    elif age is not None and age > stale_after_s:
        reasons.append(
            f"the newest observation ({format_ts(newest)}) is {age:,.0f} s old, more than BTC_STALE_AFTER_S = "
            f"{stale_after_s} s: {check}"
        )
    if reasons:  # failed runs are likely why: say which
        failed = [mine[0] for mine in dags.values() if mine[0].state == "failed"]
        reasons += [
            f"the last {r.dag_id} run failed" + (f" in {r.failed_task}" if r.failed_task else "") for r in failed
        ]
    lags = [r.lag_after for r in dags.get(DRAIN_DAG, []) if r.lag_after is not None]
    return PipelineHealth(now, stale_after_s, readings, newest, age, lags[0] if lags else None, dags, reasons)


def failovers(runs: Iterable[RunRecord]) -> dict[tuple[str, str], int]:
    """Among the recorded ``btc_ingest`` runs, how often each exchange failed, by what failed:
    ``("coinbase", "candles")``, the next exchange in ``BTC_EXCHANGES`` served the window (a failover);
    ``("kraken", "ticker")``, the run has no Kraken ticker."""
    counts: dict[tuple[str, str], int] = {}
    for run in runs:
        for name in run.failed_exchanges if run.dag_id == INGEST_DAG else ():
            exchange, _, what = name.partition(":")
            key = (exchange, "ticker" if what == "ticker" else "candles")
            counts[key] = counts.get(key, 0) + 1
    return counts
