"""Where the read model puts each bar: bucket, slot and collection at every level, across month,
leap-year and year boundaries, and the names series may have."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from btc_pipeline.store.layout import D1, H1, M1, M5, exchange_of, tick_series, valid_series


def t(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


@pytest.mark.parametrize(
    ("level", "ts", "bucket", "slot", "slots", "collection"),
    [
        (M1, t(2026, 11, 26, 16, 37), t(2026, 11, 26, 16), 37, 60, "bars.1m.coinbase.2026-11-26"),
        (M5, t(2026, 11, 26, 16, 37), t(2026, 11, 26), 16 * 12 + 7, 288, "bars.5m.coinbase.2026-11"),
        (H1, t(2026, 11, 26, 16, 37), t(2026, 11, 1), 25 * 24 + 16, 720, "bars.1h.coinbase.2026"),
        (H1, t(2028, 2, 29, 23), t(2028, 2, 1), 28 * 24 + 23, 29 * 24, "bars.1h.coinbase.2028"),
        (D1, t(2026, 11, 26, 16), t(2026, 1, 1), 329, 365, "bars.1d.coinbase"),
        (D1, t(2028, 12, 31), t(2028, 1, 1), 365, 366, "bars.1d.coinbase"),
    ],
)
def test_bucket_slot_and_collection(level, ts, bucket, slot, slots, collection):
    assert level.bucket_of(ts) == bucket
    assert level.slot(bucket, level.bar_start(ts)) == slot
    assert level.slots(bucket) == slots
    assert level.collection("coinbase", bucket) == collection


def test_buckets_cover_a_range_across_a_year_boundary():
    start, end = t(2026, 12, 31, 22, 30), t(2027, 1, 1, 1, 15)
    assert list(M1.buckets(start, end)) == [
        t(2026, 12, 31, 22),
        t(2026, 12, 31, 23),
        t(2027, 1, 1, 0),
        t(2027, 1, 1, 1),
    ]
    assert list(H1.buckets(start, end)) == [t(2026, 12, 1), t(2027, 1, 1)]
    assert list(D1.buckets(start, end)) == [t(2026, 1, 1), t(2027, 1, 1)]


def test_every_minute_has_one_slot_of_each_level():
    start = t(2026, 2, 27)
    for minute in range(0, 3 * 1440, 7):
        ts = start + timedelta(minutes=minute)
        for level in (M1, M5, H1, D1):
            bucket = level.bucket_of(ts)
            assert 0 <= level.slot(bucket, ts) < level.slots(bucket)
            assert bucket + level.bar * level.slot(bucket, ts) == level.bar_start(ts)


@pytest.mark.parametrize("name", ["coinbase", "consensus", "coinbase-ticks", "my_exchange2"])
def test_series_names_that_can_name_collections(name):
    assert valid_series(name)


@pytest.mark.parametrize("name", ["", "Coinbase", "coin.base", "x" * 40, "a|b", "../x", "coinbase-ticks-ticks"])
def test_series_names_that_cannot(name):
    assert not valid_series(name)


def test_tick_series_names():
    assert tick_series("kraken") == "kraken-ticks" and exchange_of("kraken-ticks") == "kraken"


@pytest.mark.parametrize(
    ("start", "end", "names"),
    [
        (
            datetime(2026, 11, 30, 23, 0, tzinfo=UTC),
            datetime(2027, 2, 1, tzinfo=UTC),
            ["x.2026-11", "x.2026-12", "x.2027-01"],
        ),
        (
            datetime(2026, 1, 31, tzinfo=UTC),
            datetime(2026, 3, 1, 0, 1, tzinfo=UTC),
            ["x.2026-01", "x.2026-02", "x.2026-03"],
        ),
        (datetime(2026, 5, 5, tzinfo=UTC), datetime(2026, 5, 6, tzinfo=UTC), ["x.2026-05"]),
        (datetime(2026, 5, 5, tzinfo=UTC), datetime(2026, 5, 5, tzinfo=UTC), []),
    ],
)
def test_month_partitions_hold_every_month_of_a_range_once(start, end, names):
    from btc_pipeline.store.layout import month_partitions

    assert month_partitions("x", start, end) == names
