"""The live quote shared by the dashboard and the API: the consensus is the median of the exchanges'
latest readings; stale readings can be left out."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from btc_pipeline.health import LatestObservation
from btc_pipeline.quotes import quote

NOW = datetime(2026, 11, 26, 16, 0, 30, tzinfo=UTC)


def reading(source: str, price: float, seconds_ago: float, kind: str = "tick") -> LatestObservation:
    return LatestObservation(source, kind, NOW - timedelta(seconds=seconds_ago), price)


def test_consensus_is_the_median_and_each_exchange_has_its_deviation_and_age():
    q = quote(
        [
            reading("coinbase", 100.0, 5),
            reading("kraken", 101.0, 2),
            reading("bitstamp", 99.0, 9),
            reading("binance", 150.0, 1, "candle_1m"),
        ],
        NOW,
    )
    assert q.consensus == 100.0
    assert [(x.source, x.deviation_pct, x.age_s) for x in q.exchanges] == [
        ("bitstamp", -1.0, 9.0),
        ("coinbase", 0.0, 5.0),
        ("kraken", 1.0, 2.0),
    ]
    assert q.age_s == 2.0 and q.newest == NOW - timedelta(seconds=2)


def test_stale_readings_are_left_out_when_asked():
    q = quote([reading("coinbase", 100.0, 5), reading("kraken", 200.0, 600)], NOW, max_age_s=60)
    assert q.consensus == 100.0 and [x.source for x in q.exchanges] == ["coinbase"]


def test_no_reading_no_price():
    assert quote([], NOW).consensus is None and quote([], NOW).age_s is None
