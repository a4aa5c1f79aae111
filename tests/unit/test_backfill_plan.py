"""Backfill planning: chunks that respect each exchange's row limits and horizon, request counts,
parameter validation, the heal horizon, and which missing minutes count as "no trades"."""

from __future__ import annotations

import itertools
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest

from btc_pipeline.exchanges import Candle, Tick
from btc_pipeline.exchanges.pace import Pacer
from btc_pipeline.steps.backfill_plan import (
    backfill_request,
    check_backfill_window,
    chunk_minutes,
    plan_backfill,
    plan_chunks,
    request_count,
    requested_lane,
)
from btc_pipeline.steps.heal import HEAL_LAG, heal_window
from btc_pipeline.steps.ingest import settled_missing
from btc_pipeline.window import MINUTE, Window

T0 = datetime(2026, 11, 17, 0, 0, tzinfo=UTC)
NOW = datetime(2026, 11, 24, 12, 34, 56, tzinfo=UTC)


def m(i: int) -> datetime:
    return T0 + MINUTE * i


@pytest.mark.parametrize(
    ("provider", "minutes"), [("coinbase", 1200), ("binance", 1000), ("bitstamp", 1000), ("kraken", 720)]
)
def test_chunks_are_whole_pages_of_at_most_a_day(provider: str, minutes: int) -> None:
    assert chunk_minutes(provider) == minutes


def test_unknown_exchange() -> None:
    with pytest.raises(ValueError, match="unknown exchange 'ftx'"):
        chunk_minutes("ftx")


@pytest.mark.parametrize(
    ("provider", "chunks", "requests"), [("coinbase", 9, 34), ("binance", 11, 11), ("bitstamp", 11, 11)]
)
def test_seven_days_are_a_handful_of_chunks_and_requests(provider: str, chunks: int, requests: int) -> None:
    week = Window(T0, T0 + timedelta(days=7))
    plan = plan_backfill(week, [provider])
    assert len(plan.chunks) == chunks
    assert plan.requests == requests
    assert plan.minutes == 10_080 and not plan.only_missing
    assert plan.chunks[0].start == week.start and plan.chunks[-1].end == week.end
    for a, b in zip(plan.chunks, plan.chunks[1:], strict=False):
        assert a.end == b.start
    assert all(c.minute_count <= 1440 for c in plan.chunks)
    assert all(c.minute_count % chunk_minutes(provider) == 0 for c in plan.chunks[:-1])


@pytest.mark.parametrize(
    ("provider", "minutes", "requests"),
    [("coinbase", 1, 1), ("coinbase", 300, 1), ("coinbase", 301, 2), ("coinbase", 1200, 4), ("binance", 1001, 2)],
)
def test_request_count(provider: str, minutes: int, requests: int) -> None:
    assert request_count(Window(T0, m(minutes)), provider) == requests


def test_kraken_is_one_request_per_chunk() -> None:
    assert request_count(Window(T0, m(720)), "kraken") == 1


def test_scattered_holes_share_chunks_and_long_ones_are_split() -> None:
    holes = [Window(m(5), m(7)), Window(m(100), m(101)), Window(m(1190), m(1210)), Window(m(1300), m(3000))]
    chunks = plan_chunks(holes, 1200)
    assert chunks == [
        Window(m(5), m(101)),  # two nearby holes share a chunk, which ends where the last one does
        Window(m(1190), m(1210)),  # would make the first chunk longer than 1200 minutes
        Window(m(1300), m(2500)),  # a long hole is split
        Window(m(2500), m(3000)),
    ]
    assert all(c.minute_count <= 1200 for c in chunks)
    wanted = {t for h in holes for t in h.minutes()}
    assert wanted <= {t for c in chunks for t in c.minutes()}


def test_plan_chunks_refuses_overlaps_and_bad_sizes() -> None:
    with pytest.raises(ValueError, match="overlaps"):
        plan_chunks([Window(m(0), m(10)), Window(m(5), m(20))], 100)
    with pytest.raises(ValueError, match="at least 1"):
        plan_chunks([Window(m(0), m(10))], 0)
    assert plan_chunks([], 100) == []


def test_plan_of_only_the_gaps() -> None:
    window = Window(m(0), m(2000))
    plan = plan_backfill(window, ["coinbase", "kraken"], gaps=[Window(m(10), m(12)), Window(m(1500), m(1501))])
    assert plan.only_missing and plan.chunk_minutes == 1200
    assert plan.chunks == [Window(m(10), m(12)), Window(m(1500), m(1501))]  # 1491 minutes apart: two chunks
    plan = plan_backfill(window, ["coinbase"], gaps=[Window(m(10), m(12)), Window(m(1000), m(1001))])
    assert plan.chunks == [Window(m(10), m(1001))] and plan.requests == 4
    with pytest.raises(ValueError, match="outside the range"):
        plan_backfill(window, ["coinbase"], gaps=[Window(m(1990), m(2010))])


def test_backfill_ranges_must_be_closed_and_within_the_horizon() -> None:
    last_closed_end = datetime(2026, 11, 24, 12, 34, tzinfo=UTC)
    check_backfill_window(Window(T0, last_closed_end), ["coinbase"], NOW)
    with pytest.raises(ValueError, match="2026-11-24T12:35:00Z is in the future"):
        check_backfill_window(Window(T0, last_closed_end + MINUTE), ["coinbase"], NOW)
    recent = Window(last_closed_end - MINUTE * 700, last_closed_end)
    check_backfill_window(recent, ["kraken"], NOW)
    too_old = Window(last_closed_end - MINUTE * 721, last_closed_end)
    with pytest.raises(ValueError, match="beyond the horizon of kraken"):
        check_backfill_window(too_old, ["kraken"], NOW)
    check_backfill_window(too_old, ["kraken", "coinbase"], NOW)  # failover serves what Kraken cannot
    year = Window(last_closed_end - timedelta(days=366), last_closed_end)
    check_backfill_window(year, ["coinbase"], NOW)
    with pytest.raises(ValueError, match="spans 366 days, more than the 366 days allowed"):
        check_backfill_window(Window(year.start - MINUTE, year.end), ["coinbase"], NOW)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"end": "2026-11-24T10:00Z"}, "parameter 'start' is required"),
        ({"start": "2026-11-24T10:00Z", "end": "soon"}, "end='soon' is not an ISO-8601 time"),
        (
            {"start": "2026-11-24T10:00Z", "end": "2026-11-24T10:00:30Z"},
            "start/end: 2026-11-24T10:00:00Z is not before",
        ),
        (
            {"start": "2026-11-24T10:00Z", "end": "9999-12-31T23:59Z"},
            "start/end: 9999-12-31T23:59:00Z is in the future",
        ),
        ({"start": "2026-11-24T10:00Z", "end": "2026-11-24T11:00Z", "source": "ftx"}, "source='ftx'"),
        ({"start": "2026-11-24T10:00Z", "end": "2026-11-24T11:00Z", "only_missing": "yes"}, "only_missing"),
    ],
)
def test_bad_run_parameters(params: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        backfill_request(params, NOW)


def test_run_parameters() -> None:
    window, source, only_missing = backfill_request(
        {"start": "2026-11-24T11:00:30+01:00", "end": "2026-11-24T10:10:00", "source": "", "only_missing": True}, NOW
    )
    assert window == Window(datetime(2026, 11, 24, 10, 0, tzinfo=UTC), datetime(2026, 11, 24, 10, 10, tzinfo=UTC))
    assert (source, only_missing) == (None, True)


def test_heal_window_ends_before_the_live_minutes_and_respects_krakens_horizon() -> None:
    run_after = datetime(2026, 11, 24, 13, 5, 12, tzinfo=UTC)
    end = datetime(2026, 11, 24, 13, 5, tzinfo=UTC) - HEAL_LAG
    window, horizon = heal_window(run_after, 360, ["coinbase", "kraken"])
    assert window == Window(end - MINUTE * 360, end) and horizon == 360
    window, horizon = heal_window(run_after, 1440, ["coinbase", "kraken"])
    assert horizon == 719 - 10 - 30 and window is not None and window.minute_count == horizon
    assert window.start >= datetime(2026, 11, 24, 13, 35, tzinfo=UTC) - MINUTE * 719  # fetched up to 30 min late
    window, horizon = heal_window(run_after, 1440, ["coinbase", "bitstamp"])
    assert horizon == 1440 and window is not None and window.minute_count == 1440


def test_settled_missing_minutes_are_no_trades_younger_ones_not_yet() -> None:
    window = Window(m(0), m(5))
    candles = [Candle(m(1), 1, 1, 1, 1, 0.1), Candle(m(3), 1, 1, 1, 1, 0.1)]
    now = m(4) + timedelta(seconds=90)  # minute 3 closed 90 s ago, minute 4 closed 30 s ago
    no_trades, not_yet = settled_missing(window, candles, now)
    assert no_trades == [m(0), m(2)]
    assert not_yet == [m(4)]


class ListedProvider:
    """An exchange stand-in that answers from a fixed list (unit test of the recorder only)."""

    def __init__(self, name: str, candles: list[Candle]) -> None:
        self.name = name
        self.candles = candles

    def fetch_candles(self, window: Window) -> list[Candle]:
        return [c for c in self.candles if window.contains(c.ts)]

    def fetch_ticker(self) -> Tick:
        return Tick(ts=m(0), price=1.0)


def test_the_minutes_the_serving_exchange_had_no_candle_for() -> None:
    """What ingest_window records as empty_minutes: computed from the serving exchange's answer."""
    window = Window(m(0), m(3))
    coinbase = ListedProvider("coinbase", [Candle(m(1), 1, 1, 1, 1, 0.1)])
    kraken = ListedProvider("kraken", [Candle(m(i), 1, 1, 1, 1, 0.1) for i in range(3)])
    late = m(3) + timedelta(minutes=5)
    assert settled_missing(window, coinbase.fetch_candles(window), late)[0] == [m(0), m(2)]
    assert settled_missing(window, kraken.fetch_candles(window), late)[0] == []


@pytest.mark.parametrize(
    ("scope", "chunks", "failed_step"),
    [(None, None, "find_gaps"), ({"start": "2026-11-17T00:00:00Z"}, None, "plan")],
)
def test_summarize_after_a_failed_first_step_fails_at_once(
    scope: dict[str, object] | None, chunks: list[dict[str, object]] | None, failed_step: str
) -> None:
    """``summarize`` runs even when an upstream task failed (trigger rule ALL_DONE); with nothing
    planned it fails without retries instead of crashing on ``None`` and being retried for minutes."""
    from airflow.sdk.exceptions import AirflowFailException

    from btc_pipeline.tasks.backfill import summarize_run

    with pytest.raises(AirflowFailException, match=f"{failed_step} failed"):
        summarize_run("btc_backfill", "manual__x", scope, chunks, None, None)


@pytest.mark.parametrize(
    ("provider", "minutes", "chunks", "requests"),
    [
        ("coinbase", 21_600, 25, 1752),
        ("binance", 21_000, 26, 526),
        ("bitstamp", 21_000, 26, 526),
        ("kraken", 720, 0, 0),
    ],
)
def test_a_year_in_the_history_lane_is_a_few_dozen_chunks_of_whole_pages(
    provider: str, minutes: int, chunks: int, requests: int
) -> None:
    assert chunk_minutes(provider, "history") == minutes
    if provider == "kraken":
        return  # its 720-minute horizon: no year to plan
    year = Window(T0, T0 + timedelta(days=365))
    plan = plan_backfill(year, [provider], lane="history")
    assert (len(plan.chunks), plan.requests, plan.minutes, plan.lane) == (chunks, requests, 525_600, "history")
    assert all(c.minute_count % minutes == 0 for c in plan.chunks[:-1])
    assert len(plan_backfill(year, [provider]).chunks) > 360  # the live lane: chunks of a day at most


def test_the_lane_parameter_is_history_by_default_and_checked() -> None:
    assert requested_lane({}) == "history" and requested_lane({"lane": "live"}) == "live"
    with pytest.raises(ValueError, match="parameter lane='fast' must be one of live, history"):
        requested_lane({"lane": "fast"})


def test_the_pacer_never_starts_more_calls_in_a_second_than_its_rate(tmp_path) -> None:
    """Threads of two pacers of one exchange (two chunk tasks) share its rate."""
    pacers = [Pacer("coinbase", 8.0, directory=tmp_path), Pacer("coinbase", 8.0, directory=tmp_path)]
    starts = []
    with ThreadPoolExecutor(max_workers=4) as pool:
        # the booked starts: a loaded machine may wake a thread late, but never lets it start early
        list(pool.map(lambda i: starts.append(pacers[i % 2].wait()), range(12)))
    starts.sort()
    gaps = [b - a for a, b in itertools.pairwise(starts)]
    assert min(gaps) >= 1 / 8 - 0.01  # evenly spaced, whichever thread comes first
    assert starts[-1] - starts[0] >= 11 / 8 - 0.02  # 12 calls at 8 a second: no burst at the start
