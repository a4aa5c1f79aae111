"""The dashboard's history-loading line: shown while a history backfill's minutes are being stored
(with how many of all, and an ETA from the rate so far), gone once they are, or after a failed run."""

from __future__ import annotations

import sys
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from btc_pipeline.store import HistoryLoad
from btc_pipeline.window import Window

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "dashboard"))
from view import load_history

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
YEAR = Window(NOW - timedelta(days=365), NOW)
LOAD = HistoryLoad("r1", YEAR, YEAR.minute_count, 1440, NOW - timedelta(minutes=2), "running")


class Loads:
    """What ``load_history`` asks the store: the latest load, and the minutes of a range with a candle."""

    def __init__(self, load: HistoryLoad | None, stored: int) -> None:
        self.load, self.stored = load, stored

    def history_load(self) -> HistoryLoad | None:
        return self.load

    def minutes_with_candles(self, window: Window) -> int:
        return self.stored


def test_a_load_in_progress_shows_its_share_and_an_eta_from_the_rate_so_far() -> None:
    progress = load_history(Loads(LOAD, 1440 + 105_120), NOW)  # a fifth stored in 2 minutes
    assert progress is not None and (progress.done, progress.total) == (106_560, 525_600)
    assert progress.eta_s == pytest.approx((525_600 - 106_560) * 120 / 105_120)
    assert "106,560 of 525,600 minutes (20 %)" in progress.text and "min" in progress.text


@pytest.mark.parametrize(
    ("load", "stored"),
    [
        (None, 0),
        (replace(LOAD, state="success", finished_at=NOW - timedelta(minutes=1)), 525_600),  # all stored
        (replace(LOAD, state="failed", finished_at=NOW), 1000),  # the run says why; nothing is loading
        (replace(LOAD, state="success", finished_at=NOW - timedelta(hours=1)), 1000),  # long over
        (replace(LOAD, started_at=NOW - timedelta(hours=7)), 1000),  # its run never recorded an end
    ],
)
def test_nothing_is_shown_when_no_history_is_loading(load: HistoryLoad | None, stored: int) -> None:
    assert load_history(Loads(load, stored), NOW) is None
