"""Healing: find the holes in the recent 1-minute candles and backfill them, hourly (``btc_heal``,
:func:`heal_window`) and at once when a live ingest run succeeds after failed or skipped windows
(:func:`heal_recovery`). A heal fills holes in the series the pipeline has been recording; it never
imports history from before the first candle stored (:func:`first_candle_since`).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from btc_pipeline.config import Settings
from btc_pipeline.exchanges import Exchange, limits_of
from btc_pipeline.steps.backfill import backfill_chunk
from btc_pipeline.steps.backfill_plan import chunk_minutes, exchange_horizons, plan_chunks
from btc_pipeline.steps.gaps import find_gaps
from btc_pipeline.steps.ingest import AllExchangesFailedError, CandlesNotReadyError
from btc_pipeline.stream import DeliveryError
from btc_pipeline.timeutil import format_ts, utcnow
from btc_pipeline.window import MINUTE, Window, floor_minute

if TYPE_CHECKING:
    from confluent_kafka import Producer

    from btc_pipeline.store import Store

log = logging.getLogger(__name__)

#: The heal leaves the most recent minutes to the live ingest, which may still be retrying them.
HEAL_LAG = timedelta(minutes=10)
#: Slack between a heal run's planned time and its chunks' fetches, kept off the horizon limit.
HORIZON_MARGIN = timedelta(minutes=30)


def heal_window(run_after: datetime, horizon_minutes: int, exchanges: Sequence[str]) -> tuple[Window | None, int]:
    """The range an hourly heal run looks at: the last ``horizon_minutes``, within every exchange's horizon.

    The most recent :data:`HEAL_LAG` minutes are left to the live ingest (a run may still be
    retrying them). With Kraken among the exchanges the horizon is capped so that the oldest
    minute is still inside its 720 minutes when the chunks run (:data:`HORIZON_MARGIN` of slack).

    Args:
        run_after: When the heal run was due (its time, so a retry looks at the same range).
        horizon_minutes: The configured horizon (``BTC_HEAL_HORIZON_MINUTES``).
        exchanges: Exchanges in failover order.

    Returns:
        The range (``None`` when the cap leaves nothing) and the horizon used, in minutes.
    """
    end = floor_minute(run_after) - HEAL_LAG
    horizon = capped_horizon(horizon_minutes, exchanges, lag=HEAL_LAG)
    if horizon < 1:
        return None, 0
    return Window(end - MINUTE * horizon, end), horizon


def capped_horizon(horizon_minutes: int, exchanges: Sequence[str], *, lag: timedelta) -> int:
    """``horizon_minutes``, capped so that a range ending ``lag`` ago is still inside every
    exchange's horizon when its chunks run (:data:`HORIZON_MARGIN` of slack); may be < 1."""
    limits = exchange_horizons(exchanges)
    if not limits:
        return horizon_minutes
    cap = int((MINUTE * (min(limits) - 1) - lag - HORIZON_MARGIN) / MINUTE)
    if horizon_minutes > cap:
        log.warning(
            "heal horizon %d min is beyond what %s serve; using %d min",
            horizon_minutes,
            ", ".join(x for x in exchanges if limits_of(x).horizon_minutes is not None),
            cap,
        )
        return cap
    return horizon_minutes


def first_candle_since(store: Store, window: Window) -> datetime | None:
    """Where healing ``window`` may start: its start if the pipeline stored candles before it, else
    the oldest candle inside it (``None``: no candle at all up to the window's end).

    A heal fills holes in the series the pipeline has been recording; it does not import history
    from before the first candle ever stored (that is ``btc-pipeline backfill``'s job).

    Args:
        store: The ``btc`` database.
        window: The heal range.

    Returns:
        The first minute to heal, or ``None``.
    """
    first = store.first_candle()
    if first is None or first >= window.end:
        return None
    return max(first, window.start)


@dataclass
class RecoveryHeal:
    """What a live ingest run healed after failed or skipped windows (part of its run record)."""

    start: str
    end: str
    missing_minutes: int = 0
    chunks: int = 0
    produced: int = 0
    no_trade_minutes: int = 0
    requests: int = 0
    #: Why some holes are left (to the next run, or the hourly heal), if any are.
    left: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def heal_recovery(
    window: Window,
    last_success_end: datetime | None,
    settings: Settings,
    exchanges: Sequence[Exchange],
    producer: Producer,
    store: Store,
    run_id: str,
) -> RecoveryHeal | None:
    """After failed or skipped windows, backfill their holes at once (not at the next hourly heal).

    The windows between the end of the last successful run and this ``window`` (at most
    ``BTC_HEAL_HORIZON_MINUTES``, within the exchanges' horizons) are looked up in the read model;
    the minutes without a candle and not known to be trade-less are fetched and produced like a
    backfill with ``only_missing``. A chunk that fails is left, with its reason, to the next run
    and to ``btc_heal``: healing never fails the live run.

    Args:
        window: This run's window (just produced).
        last_success_end: The end of the last successful run's window (Airflow's
            ``prev_data_interval_end_success``); ``None`` (no run ever succeeded) heals nothing.
        settings: Pipeline settings.
        exchanges: Exchange clients in failover order.
        producer: An idempotent producer.
        store: The ``btc`` database.
        run_id: The run id carried in the messages.

    Returns:
        What was healed, or ``None`` when the previous window succeeded (nothing to look at), or
        ``window`` is not live (a backfill or re-run of an old window fills what it was asked to).
    """
    if last_success_end is None or last_success_end >= window.start:
        return None
    if utcnow() - window.end > timedelta(seconds=settings.live_tick_horizon_s):
        return None
    horizon = capped_horizon(settings.heal_horizon_minutes, [x.name for x in exchanges], lag=timedelta(0))
    if horizon < 1:
        return None
    scope = Window(max(floor_minute(last_success_end), window.start - MINUTE * horizon), window.start)
    report = find_gaps(store, scope, settings.symbol)
    heal = RecoveryHeal(start=format_ts(scope.start), end=format_ts(scope.end), missing_minutes=report.missing_minutes)
    if not report.missing:
        return heal
    chunks = plan_chunks([gap.window for gap in report.missing], chunk_minutes(exchanges[0].name))
    log.info("recovering: %d minute(s) missing in %s, in %d chunk(s)", report.missing_minutes, scope, len(chunks))
    for chunk in chunks:
        try:
            done = backfill_chunk(chunk, settings, exchanges, producer, store, run_id, only_missing=True)
        except CandlesNotReadyError as exc:  # its other minutes were produced; the next run looks again
            heal.left.append(str(exc))
            continue
        except (AllExchangesFailedError, DeliveryError) as exc:
            heal.left.append(f"{chunk}: {exc}")
            log.error("could not heal %s now (the next run and btc_heal try again): %s", chunk, exc)
            continue
        heal.chunks += 1
        heal.produced += done.produced
        heal.no_trade_minutes += done.no_trade_minutes
        heal.requests += done.requests
    return heal
