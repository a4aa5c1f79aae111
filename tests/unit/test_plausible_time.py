"""The one rule for a believable time (timeutil.check_plausible) and the ISO reader at its edges."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from btc_pipeline.timeutil import EARLIEST, ImplausibleTimeError, check_plausible, parse_iso

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("ts", "reason"),
    [
        (datetime(9999, 12, 31, 23, 59, tzinfo=UTC), "future_ts"),
        (datetime(2096, 1, 1, tzinfo=UTC), "future_ts"),
        (NOW + timedelta(seconds=301), "future_ts"),
        (datetime(2009, 1, 2, 23, 59, tzinfo=UTC), "bad_ts"),
        (datetime(1970, 1, 1, tzinfo=UTC), "bad_ts"),
        (datetime(1, 1, 1, tzinfo=UTC), "bad_ts"),
        (datetime(9999, 12, 31, 23, 59, tzinfo=timezone(timedelta(hours=-1))), "bad_ts"),  # no UTC form
        (datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=1))), "bad_ts"),
    ],
)
def test_implausible_times_are_refused_with_their_reason(ts: datetime, reason: str) -> None:
    with pytest.raises(ImplausibleTimeError) as caught:
        check_plausible(ts, "ts", now=NOW)
    assert caught.value.reason == reason
    assert "ts=" in caught.value.detail


@pytest.mark.parametrize("ts", [EARLIEST, NOW, NOW + timedelta(seconds=300), datetime(2020, 5, 1, tzinfo=UTC)])
def test_plausible_times_pass_unchanged(ts: datetime) -> None:
    assert check_plausible(ts, "ts", now=NOW) == ts


def test_the_skew_is_a_setting() -> None:
    ahead = NOW + timedelta(seconds=30)
    assert check_plausible(ahead, "ts", now=NOW, max_skew_s=30) == ahead
    with pytest.raises(ImplausibleTimeError):
        check_plausible(ahead, "ts", now=NOW, max_skew_s=29)


def test_a_naive_time_is_taken_as_utc() -> None:
    assert check_plausible(datetime(2020, 1, 1), "ts", now=NOW) == datetime(2020, 1, 1, tzinfo=UTC)


@given(st.datetimes(timezones=st.one_of(st.just(UTC), st.timezones())))
def test_any_datetime_is_a_utc_time_or_the_projects_error(ts: datetime) -> None:
    try:
        result = check_plausible(ts, "ts", now=NOW)
    except ImplausibleTimeError as exc:
        assert exc.reason in ("future_ts", "bad_ts")
    else:
        assert result.tzinfo is UTC and EARLIEST <= result <= NOW + timedelta(seconds=300)


@pytest.mark.parametrize(
    "text", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:00-01:00", "", "2026-13-01", "2026-11-24T25:00Z"]
)
def test_parse_iso_refuses_texts_without_a_utc_instant(text: str) -> None:
    with pytest.raises(ValueError, match="is not an ISO-8601 time"):
        parse_iso(text, "from")


@given(st.text(max_size=40))
def test_parse_iso_of_any_text_is_a_utc_time_or_value_error(text: str) -> None:
    try:
        result = parse_iso(text)
    except ValueError:
        return
    assert result.tzinfo is UTC
