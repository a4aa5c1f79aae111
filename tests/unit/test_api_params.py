"""The read API's query parameters: defaults, pages, every 422 naming its parameter. No services
(the health verdict and the failover counts: test_health.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from btc_pipeline.api import params
from btc_pipeline.api.params import ParameterError, candle_query, gap_window

NOW = datetime(2026, 6, 2, 12, 0, 30, tzinfo=UTC)
MINUTE = timedelta(minutes=1)


def query(**overrides: object) -> params.CandleQuery:
    args: dict[str, object] = {
        "interval": "1m",
        "source": "consensus",
        "start": None,
        "end": None,
        "limit": params.DEFAULT_LIMIT,
        "fmt": "json",
        "now": NOW,
    }
    return candle_query(**{**args, **overrides})  # type: ignore[arg-type]


def test_candles_default_to_the_last_day_up_to_the_current_minute():
    q = query()
    assert q.window.end == datetime(2026, 6, 2, 12, 1, tzinfo=UTC)  # the bar of 12:00 has started
    assert q.window.end - q.window.start == timedelta(hours=24)
    assert q.page == q.window and q.next_from is None and q.series == "consensus"


@pytest.mark.parametrize(
    ("interval", "span"), [("5m", timedelta(days=7)), ("1h", timedelta(days=30)), ("1d", timedelta(days=365))]
)
def test_default_span_per_interval(interval: str, span: timedelta):
    q = query(interval=interval)
    assert q.window.end - q.window.start == span


def test_relative_and_iso_times_are_floored_to_the_minute():
    q = query(start="2h", end="2026-06-02T11:59:59+01:00")
    assert q.window.start == datetime(2026, 6, 2, 10, 0, tzinfo=UTC)
    assert q.window.end == datetime(2026, 6, 2, 10, 59, tzinfo=UTC)


def test_a_long_range_is_cut_into_pages_of_limit_bars():
    q = query(start="2026-06-01T00:00Z", end="2026-06-01T03:00Z", limit=50)
    assert q.page.start == q.window.start and q.page.end - q.page.start == 50 * MINUTE
    assert q.next_from == q.page.end
    last = query(start="2026-06-01T02:30Z", end="2026-06-01T03:00Z", limit=50)
    assert last.page == last.window and last.next_from is None


@pytest.mark.parametrize(
    ("overrides", "parameter", "words"),
    [
        ({"source": "ftx"}, "source", "'ftx' is not one of consensus"),
        ({"start": "yesterday"}, "from", "is not a time"),
        ({"end": "2026-13-01"}, "to", "is not a time"),
        ({"start": "2001-01-01T00:00Z"}, "from", "before 2009-01-03"),
        ({"start": "1h", "end": "2h"}, "from", "is not before the end"),
        ({"start": "2h", "end": "2h"}, "from", "is not before the end"),
        ({"start": "32d"}, "from", "spans 32 days, more than the 31 days allowed at interval=1m"),
        ({"interval": "5m", "start": "400d"}, "from", "allowed at interval=5m"),
        ({"start": "0001-01-01T00:00:00+01:00"}, "from", "is not a time"),
        ({"end": "9999-12-31T23:59:00-01:00"}, "to", "is not a time"),
        ({"start": "9999-12-30T00:00Z", "end": "9999-12-31T23:59Z"}, "from", "and end at 2026-06-02T12:01:00Z"),
        ({"interval": "1d", "start": "9999-12-31T23:59Z"}, "from", "is not before the end 2026-06-02T12:01:00Z"),
        ({"start": "2026-06-02T12:01Z", "end": "2030-01-01T00:00Z"}, "from", "is not before the end"),
    ],
)
def test_bad_candle_parameters_name_the_parameter(overrides: dict[str, object], parameter: str, words: str):
    with pytest.raises(ParameterError) as caught:
        query(**overrides)
    assert caught.value.parameter == parameter
    assert caught.value.message.startswith(parameter) and words in caught.value.message


@pytest.mark.parametrize("end", ["2026-06-02T12:01Z", "2030-01-01T00:00Z", "9999-12-31T23:59:59.999999Z"])
@pytest.mark.parametrize("interval", ["1m", "1d"])
def test_a_candles_to_after_now_is_cut_back_to_the_bar_that_has_started(end: str, interval: str):
    q = query(end=end, interval=interval)
    assert q.window.end == datetime(2026, 6, 2, 12, 1, tzinfo=UTC)
    assert q.window.end - q.window.start == params.DEFAULT_SPAN[interval]
    assert query(start="2026-06-02T11:00Z", end=end).window.end == q.window.end


def test_gaps_default_to_the_last_day_of_closed_minutes():
    window, source = gap_window(start=None, end=None, source=None, now=NOW)
    assert window.end == datetime(2026, 6, 2, 12, 0, tzinfo=UTC) and window.minute_count == 1440
    assert source is None
    assert gap_window(start="30m", end="now", source="kraken", now=NOW)[1] == "kraken"


@pytest.mark.parametrize(
    ("start", "end", "source", "parameter"),
    [
        (None, "2026-06-02T12:05Z", None, "to"),  # in the future
        ("40d", None, None, "from"),
        ("10m", "20m", None, "from"),
        (None, None, "consensus", "source"),
        ("soon", None, None, "from"),
        ("0001-01-01T00:00:00+01:00", None, None, "from"),
        (None, "9999-12-31T23:59:00-01:00", None, "to"),
        ("9999-12-30T00:00Z", "9999-12-31T23:59Z", None, "to"),
        ("9999-12-31T23:59Z", None, None, "from"),
    ],
)
def test_bad_gap_parameters_name_the_parameter(start: str | None, end: str | None, source: str | None, parameter: str):
    with pytest.raises(ParameterError) as caught:
        gap_window(start=start, end=end, source=source, now=NOW)
    assert caught.value.parameter == parameter and parameter in caught.value.message
