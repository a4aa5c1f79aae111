"""How fresh the data is and what the DAGs last did, from the store's hot set and last runs: pure
functions shared by ``/v1/health`` and ``/metrics``.

Ages: a tick's is the time since the exchange's trade (its ``ts``); a candle's is the time since its
minute *closed* (``ts`` + 1 minute), since a 1-minute candle can only be fetched once its minute is
over.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from btc_pipeline.api.models import DagRun, ExchangeFreshness, Health, Reading
from btc_pipeline.timeutil import format_ts, plausible_at, to_utc
from btc_pipeline.window import MINUTE

KINDS = {"tick": "tick", "candle_1m": "candle"}
DRAIN_DAG = "btc_drain"
#: Recorded runs read for the health report and the metrics (the store keeps the last 20 of each DAG).
RUNS_READ = 1000
INGEST_DAG = "btc_ingest"


@dataclass(frozen=True)
class Observed:
    """The newest observation of one kind from one exchange, and its age."""

    source: str
    kind: str
    ts: datetime
    price: float
    #: When the observation is complete: a tick's ts, a candle's close.
    as_of: datetime
    age_s: float


def observed(latest: Iterable[Mapping[str, Any]], now: datetime) -> list[Observed]:
    """The hot set's entries with their ages, by source and kind (unknown kinds, and times from the
    future that no clock skew explains, are left out: they would make the data look fresh forever)."""
    out = []
    for doc in latest:
        kind = str(doc.get("kind"))
        ts = to_utc(doc["ts"])
        if kind not in KINDS or not plausible_at(ts, now):
            continue
        as_of = ts + MINUTE if kind == "candle_1m" else ts
        out.append(Observed(str(doc["source"]), kind, ts, float(doc["price"]), as_of, (now - as_of).total_seconds()))
    return sorted(out, key=lambda o: (o.source, o.kind))


def last_runs(runs: Iterable[Mapping[str, Any]]) -> dict[str, Mapping[str, Any]]:
    """The newest recorded run of each DAG (``runs`` newest first, as the store gives them)."""
    newest: dict[str, Mapping[str, Any]] = {}
    for run in runs:
        newest.setdefault(str(run.get("dag_id")), run)
    return dict(sorted(newest.items()))


def consumer_lag(runs: Iterable[Mapping[str, Any]]) -> int | None:
    """Messages left in the topic after the newest ``btc_drain`` run that measured it."""
    for run in runs:
        if run.get("dag_id") == DRAIN_DAG and run.get("lag_after") is not None:
            return int(run["lag_after"])
    return None


def _opt_time(value: Any) -> datetime | None:
    return to_utc(value) if isinstance(value, datetime) else None


def dag_run(run: Mapping[str, Any]) -> DagRun:
    return DagRun(
        dag_id=str(run.get("dag_id")),
        run_id=str(run.get("run_id")),
        state=str(run.get("state", "unknown")),
        started_at=_opt_time(run.get("started_at")),
        finished_at=_opt_time(run.get("finished_at")),
        failed_task=run.get("failed_task"),
        error=run.get("error"),
    )


def health(
    latest: Iterable[Mapping[str, Any]], runs: Sequence[Mapping[str, Any]], now: datetime, stale_after_s: int
) -> Health:
    """The health report: ok when the newest tick or candle is younger than ``stale_after_s``."""
    seen = observed(latest, now)
    by_source: dict[str, dict[str, Reading]] = {}
    for o in seen:
        by_source.setdefault(o.source, {})[KINDS[o.kind]] = Reading(ts=o.ts, price=o.price, age_s=round(o.age_s, 1))
    newest = max((o.as_of for o in seen), default=None)
    age = None if newest is None else round((now - newest).total_seconds(), 1)
    reasons = []
    if newest is None:
        reasons.append("no tick or candle stored yet: is btc_ingest running and btc_drain green in Airflow?")
    elif age is not None and age > stale_after_s:
        reasons.append(
            f"the newest observation ({format_ts(newest)}) is {age:,.0f} s old, more than BTC_STALE_AFTER_S = "
            f"{stale_after_s} s: is btc_ingest running and btc_drain green in Airflow?"
        )
    dags = [dag_run(run) for run in last_runs(runs).values()]
    stale = bool(reasons)
    if stale:  # failed runs are likely why: say which
        reasons += [
            f"the last {d.dag_id} run failed" + (f" in {d.failed_task}" if d.failed_task else "")
            for d in dags
            if d.state == "failed"
        ]
    return Health(
        status="stale" if stale else "ok",
        reasons=reasons,
        stale_after_s=stale_after_s,
        checked_at=now,
        newest=newest,
        age_s=age,
        consumer_lag=consumer_lag(runs),
        exchanges=[
            ExchangeFreshness(source=source, tick=kinds.get("tick"), candle=kinds.get("candle"))
            for source, kinds in sorted(by_source.items())
        ],
        dags=dags,
    )


def unavailable(message: str, now: datetime, stale_after_s: int) -> Health:
    """The health report when MongoDB does not answer."""
    return Health(
        status="unavailable",
        reasons=[message],
        stale_after_s=stale_after_s,
        checked_at=now,
        newest=None,
        age_s=None,
        consumer_lag=None,
        exchanges=[],
        dags=[],
    )


def failovers(runs: Iterable[Mapping[str, Any]]) -> dict[tuple[str, str], int]:
    """Among the recorded ``btc_ingest`` runs, how often each exchange failed, by what failed.

    ``("coinbase", "candles")``: runs whose candles Coinbase could not serve, so the next exchange
    in ``BTC_EXCHANGES`` did (a failover); ``("kraken", "ticker")``: runs without Kraken's ticker.
    """
    counts: dict[tuple[str, str], int] = {}
    for run in runs:
        if run.get("dag_id") != INGEST_DAG:
            continue
        for name in run.get("failed_exchanges") or {}:
            exchange, _, what = str(name).partition(":")
            key = (exchange, "ticker" if what == "ticker" else "candles")
            counts[key] = counts.get(key, 0) + 1
    return counts
