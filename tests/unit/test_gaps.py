"""Gap classification and merging into ranges (pure functions, no services)."""

from __future__ import annotations

import itertools
import random
from datetime import UTC, datetime, timedelta

import pytest

from btc_pipeline.steps.gaps import GapReport, MinuteRange, classify_minutes, combine_reports, merge_minutes
from btc_pipeline.store.notrades import no_trade_documents
from btc_pipeline.window import MINUTE, Window

T0 = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)


def m(i: int) -> datetime:
    return T0 + MINUTE * i


def window(n: int) -> Window:
    return Window(T0, m(n))


def test_a_complete_range_has_no_gaps() -> None:
    assert classify_minutes(window(10), [m(i) for i in range(10)], {}) == []


def test_an_empty_range_is_one_missing_range() -> None:
    assert classify_minutes(window(10), [], {}) == [MinuteRange(m(0), m(10), "missing")]


def test_holes_are_merged_into_ranges_and_no_trade_minutes_kept_apart() -> None:
    present = [m(i) for i in (0, 1, 5, 6, 9)]
    no_trades = {m(7): ["coinbase"], m(8): ["kraken", "coinbase"]}
    assert classify_minutes(window(12), present, no_trades) == [
        MinuteRange(m(2), m(5), "missing"),
        MinuteRange(m(7), m(9), "no_trades", ("coinbase", "kraken")),
        MinuteRange(m(10), m(12), "missing"),
    ]


def test_missing_and_no_trades_side_by_side_are_separate_ranges() -> None:
    no_trades = {m(1): ["coinbase"], m(2): ["coinbase"]}
    assert classify_minutes(window(5), [m(4)], no_trades) == [
        MinuteRange(m(0), m(1), "missing"),
        MinuteRange(m(1), m(3), "no_trades", ("coinbase",)),
        MinuteRange(m(3), m(4), "missing"),
    ]


def test_a_candle_wins_over_a_no_trade_report_and_outside_minutes_are_ignored() -> None:
    no_trades = {m(0): ["coinbase"], m(20): ["coinbase"]}
    assert classify_minutes(window(2), [m(0), m(-5), m(30)], no_trades) == [MinuteRange(m(1), m(2), "missing")]


def test_report_counts() -> None:
    ranges = classify_minutes(window(12), [m(0), m(1), m(5)], {m(7): ["coinbase"], m(8): ["coinbase"]})
    report = GapReport(window(12), None, present=3, ranges=ranges)
    assert (report.missing_minutes, report.no_trade_minutes) == (7, 2)
    assert [r.minutes for r in report.missing] == [3, 1, 3]
    assert report.present + report.missing_minutes + report.no_trade_minutes == 12
    assert report.to_dict()["ranges"][0] == {
        "start": "2026-11-24T10:02:00Z",
        "end": "2026-11-24T10:05:00Z",
        "minutes": 3,
        "status": "missing",
        "sources": [],
    }


@pytest.mark.parametrize(
    ("minutes", "expected"),
    [
        ([], []),
        ([3], [(3, 4)]),
        ([5, 3, 4, 4, 9, 10, 0], [(0, 1), (3, 6), (9, 11)]),
        (list(range(1440)), [(0, 1440)]),
    ],
)
def test_merge_minutes(minutes: list[int], expected: list[tuple[int, int]]) -> None:
    assert merge_minutes(m(i) for i in minutes) == [Window(m(a), m(b)) for a, b in expected]


def test_classification_partitions_every_minute_exactly_once() -> None:
    rng = random.Random(7)
    w = window(3 * 1440)
    present = {t for t in w.minutes() if rng.random() < 0.9}
    no_trades = {t: ["coinbase"] for t in w.minutes() if t not in present and rng.random() < 0.3}
    ranges = classify_minutes(w, present, no_trades)
    covered = [t for r in ranges for t in r.window.minutes()]
    assert len(covered) == len(set(covered))
    assert set(covered) == set(w.minutes()) - present
    assert {t for r in ranges if r.status == "no_trades" for t in r.window.minutes()} == set(no_trades)
    for a, b in itertools.pairwise(ranges):  # maximal: equal neighbours would have merged
        assert a.end < b.start or a.status != b.status


def test_no_trade_documents_are_keyed_by_source_symbol_and_minute() -> None:
    reported = T0 + timedelta(hours=1)
    docs = no_trade_documents("coinbase", "BTC-USD", [m(0), m(1)], "run-1", reported)
    assert [d["_id"] for d in docs] == [
        "coinbase|BTC-USD|2026-11-24T10:00:00Z",
        "coinbase|BTC-USD|2026-11-24T10:01:00Z",
    ]
    assert docs[0]["ts"] == m(0) and docs[0]["reported_at"] == reported and docs[0]["run_id"] == "run-1"


def test_newer_reports_of_parts_combine_with_an_older_one_into_what_a_whole_query_finds() -> None:
    """What the backfill command reports at its end without a query of the whole range: the gaps
    before the run, with the chunks it looked at since replaced by their newer reports."""
    rng = random.Random(11)
    w = window(6 * 1440)
    parts = [Window(m(1440 * i), m(1440 * (i + 1))) for i in (1, 2, 4)]  # chunks the run filled
    before_present = {t for t in w.minutes() if rng.random() < 0.5}
    no_trades = {t: ["bitstamp"] for t in w.minutes() if t not in before_present and rng.random() < 0.2}
    after_present = before_present | {t for p in parts for t in p.minutes() if rng.random() < 0.97}

    def report(of: Window, present: set[datetime]) -> GapReport:
        inside = {t for t in present if of.contains(t)}
        return GapReport(of, None, len(inside), classify_minutes(of, inside, no_trades))

    combined = combine_reports(report(w, before_present), {p: report(p, after_present) for p in parts})
    assert combined == report(w, after_present)
