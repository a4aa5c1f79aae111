"""The CLI's time arguments and exit codes for bad arguments (no services needed)."""

from __future__ import annotations

import argparse
import math
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from btc_pipeline.cli.common import EXIT_USAGE, argument_error, number_in
from btc_pipeline.cli.main import main
from btc_pipeline.cli.progress import progress_bar
from btc_pipeline.timeutil import floor_minute, parse_time
from btc_pipeline.window import RangeError, checked_range

NOW = datetime(2026, 11, 24, 12, 34, 56, 789_000, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-11-24T10:00:00Z", datetime(2026, 11, 24, 10, 0, tzinfo=UTC)),
        ("2026-11-24T10:00Z", datetime(2026, 11, 24, 10, 0, tzinfo=UTC)),
        ("2026-11-24T10:00:59.999Z", datetime(2026, 11, 24, 10, 0, tzinfo=UTC)),  # floored
        ("2026-11-24T11:30:00+01:00", datetime(2026, 11, 24, 10, 30, tzinfo=UTC)),
        ("2026-11-24T05:30:00-04:30", datetime(2026, 11, 24, 10, 0, tzinfo=UTC)),
        ("2026-11-24T10:15:00", datetime(2026, 11, 24, 10, 15, tzinfo=UTC)),  # naive = UTC
        ("2026-11-24 10:15", datetime(2026, 11, 24, 10, 15, tzinfo=UTC)),
        ("2026-11-24", datetime(2026, 11, 24, 0, 0, tzinfo=UTC)),
        ("now", datetime(2026, 11, 24, 12, 34, tzinfo=UTC)),
        ("NOW", datetime(2026, 11, 24, 12, 34, tzinfo=UTC)),
        ("90m", datetime(2026, 11, 24, 11, 4, tzinfo=UTC)),
        ("2h", datetime(2026, 11, 24, 10, 34, tzinfo=UTC)),
        ("3d", datetime(2026, 11, 21, 12, 34, tzinfo=UTC)),
        ("24H", datetime(2026, 11, 23, 12, 34, tzinfo=UTC)),
        (" 0m ", datetime(2026, 11, 24, 12, 34, tzinfo=UTC)),
    ],
)
def test_times_are_parsed_to_utc_minutes(text: str, expected: datetime) -> None:
    parsed = parse_time(text, now=NOW)
    assert parsed == expected
    assert parsed.tzinfo is not None and parsed.utcoffset() == timedelta(0)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "is not a time"),
        ("yesterday", "is not a time"),
        ("2x", "is not a time"),
        ("-2h", "is not a time"),
        ("2 hours", "is not a time"),
        ("1.5h", "is not a time"),
        ("2026-13-01T00:00Z", "is not a time"),
        ("2026-11-24T25:00Z", "is not a time"),
        ("2008-12-31T00:00Z", "before 2009-01-03"),
        ("9000d", "before 2009-01-03"),
        ("99999999999d", "before BTC existed"),
    ],
)
def test_bad_times_say_what_is_accepted(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_time(text, now=NOW)


def test_a_range_ends_after_it_starts_and_not_in_the_future() -> None:
    def refused(start: datetime, end: datetime) -> str:
        with pytest.raises(RangeError) as info:
            checked_range(start, end, latest=floor_minute(NOW))
        return argument_error(info.value)

    start = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)
    last_closed_end = datetime(2026, 11, 24, 12, 34, tzinfo=UTC)
    assert checked_range(start, last_closed_end, latest=floor_minute(NOW)).minute_count == 154
    future = refused(start, last_closed_end + timedelta(minutes=1))
    assert future.startswith("argument --to: 2026-11-24T12:35:00Z is in the future")
    assert future.endswith("(use --to now, or leave --to out)")
    assert refused(start, start).startswith("argument --from: 2026-11-24T10:00:00Z is not before the end")
    assert refused(start, start - timedelta(minutes=5)).startswith(
        "argument --from: 2026-11-24T10:00:00Z is not before the end 2026-11-24T09:55:00Z"
    )


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["gaps", "--from", "bogus"], "argument --from: 'bogus' is not a time"),
        (["gaps", "--since", "2x"], "argument --since: '2x' is not a time"),
        (["gaps", "--from", "1h", "--to", "2h"], "argument --from: "),
        (["gaps", "--from", "1h", "--to", "2999-01-01T00:00Z"], "is in the future"),
        (["gaps", "--to", "1h"], "one of the arguments --from --since is required"),
        (["gaps", "--from", "2h", "--since", "1h"], "not allowed with argument"),
        (["gaps", "--from", "2h", "--source", "ftx"], "argument --source: invalid choice: 'ftx'"),
        (["backfill", "--from", "2h", "--timeout", "0"], "argument --timeout: 0 is out of range"),
        (["backfill", "--missing"], "one of the arguments --from --since is required"),
        (["backfill", "--from", "2008-01-01T00:00Z"], "before 2009-01-03"),
        (["gaps", "--from", "0001-01-01T00:00:00+01:00"], "argument --from: '0001-01-01T00:00:00+01:00' is not a time"),
        (
            ["gaps", "--from", "1h", "--to", "9999-12-31T23:59:00-01:00"],
            "argument --to: '9999-12-31T23:59:00-01:00' is",
        ),
        (["gaps", "--from", "9999-12-30T00:00Z", "--to", "9999-12-31T23:59Z"], "9999-12-31T23:59:00Z is in the future"),
        (
            ["rollups", "rebuild", "--since", "9999-12-31T23:59:59.999999Z"],
            "argument --from: 9999-12-31T23:59:00Z is not before the end",
        ),
        (["frobnicate"], "invalid choice: 'frobnicate'"),
        ([], "the following arguments are required"),
    ],
)
def test_bad_arguments_exit_2_naming_the_argument(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == EXIT_USAGE
    assert message in capsys.readouterr().err


def test_a_bad_setting_exits_2_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("BTC_MONGO_URI", "postgres://nope")
    with pytest.raises(SystemExit) as info:
        main(["gaps", "--since", "1h"])
    assert info.value.code == EXIT_USAGE
    assert "BTC_MONGO_URI" in capsys.readouterr().err


def test_help_explains_time_forms_and_exit_codes(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["backfill", "--help"])
    assert info.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "without an offset = UTC" in text
    assert "90m, 2h, 3d" in text
    assert "1: minutes still missing or the run failed, 2: bad arguments" in text


@pytest.mark.parametrize(
    ("done", "total", "expected"),
    [
        (0, 9, "[..........] 0/9"),
        (3, 9, "[###.......] 3/9"),
        (9, 9, "[##########] 9/9"),
        (0, 0, "[..........] 0/0"),
        (12, 9, "[##########] 12/9"),
    ],
)
def test_progress_bar(done: int, total: int, expected: str) -> None:
    assert progress_bar(done, total, width=10) == expected


def test_the_cli_imports_without_airflow_or_database_clients() -> None:
    """What keeps `btc-pipeline --help` quick: none of the heavy clients is imported up front (the
    commands import them when they run). Checked by what is loaded, not by a wall-clock time."""
    code = (
        "import sys; import btc_pipeline.cli; "
        "print(sorted(m for m in ('airflow', 'pymongo', 'confluent_kafka', 'requests', 'pandas') if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert result.stdout.strip() == "[]"


def test_a_kraken_only_backfill_beyond_its_horizon_is_refused_before_any_request(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["backfill", "--from", "13h", "--to", "12h", "--source", "kraken"]) == EXIT_USAGE
    assert "beyond the horizon of kraken" in capsys.readouterr().err


def test_an_unreachable_database_is_named_with_what_to_set(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import socket

    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv("BTC_MONGO_URI", f"mongodb://127.0.0.1:{port}/")
    assert main(["gaps", "--since", "1h"]) == 1
    err = capsys.readouterr().err
    assert f"cannot reach MongoDB at mongodb://127.0.0.1:{port}/" in err and "BTC_MONGO_URI" in err


@given(st.one_of(st.text(max_size=12), st.floats(allow_nan=True).map(repr), st.integers().map(str)))
def test_a_bounded_number_argument_is_in_its_range_or_an_error_naming_it(text):
    parse = number_in("hours", 1, 720)
    try:
        value = parse(text)
    except argparse.ArgumentTypeError as exc:
        assert "hours" in str(exc)
    else:
        assert 1 <= value <= 720 and not math.isnan(value)
