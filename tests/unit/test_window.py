from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta, timezone

import pendulum
import pytest

from btc_pipeline.window import Window

T0 = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)


def test_window_from_pendulum_is_plain_utc():
    w = Window.of(
        pendulum.datetime(2026, 11, 24, 12, 0, tz="Europe/Paris"),
        pendulum.datetime(2026, 11, 24, 12, 1, tz="Europe/Paris"),
    )
    assert w.start == datetime(2026, 11, 24, 11, 0, tzinfo=UTC)
    assert type(w.start) is datetime


@pytest.mark.parametrize(
    ("start", "end", "message"),
    [
        (T0, T0, "not after"),
        (T0.replace(tzinfo=None), T0 + timedelta(minutes=1), "naive"),
        (T0 + timedelta(seconds=30), T0 + timedelta(minutes=1), "whole minute"),
    ],
)
def test_bad_windows_are_refused(start, end, message):
    with pytest.raises(ValueError, match=message):
        Window(start, end)


def test_chunks_cover_the_window_exactly():
    w = Window(T0, T0 + timedelta(minutes=701))
    chunks = list(w.chunks(300))
    assert [c.minute_count for c in chunks] == [300, 300, 101]
    assert chunks[0].start == w.start and chunks[-1].end == w.end
    assert all(a.end == b.start for a, b in itertools.pairwise(chunks))
    assert len(list(w.minutes())) == 701


def test_contains_is_half_open():
    w = Window(T0, T0 + timedelta(minutes=1))
    assert w.contains(T0)
    assert not w.contains(T0 + timedelta(minutes=1))
    assert w.contains(datetime(2026, 11, 24, 12, 0, 59, tzinfo=timezone(timedelta(hours=2))))
