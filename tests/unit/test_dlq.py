"""The pure parts of ``btc-pipeline dlq``: what a dead letter says, the filters, the replay record,
de-duplication, the summary by reason and its text, the header a replay keeps when it fails
again, and the arguments. No services (the commands against Kafka: tests/integration/test_dlq_cli.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from btc_pipeline.cli.common import EXIT_USAGE
from btc_pipeline.cli.dlq import Pass, shown
from btc_pipeline.cli.main import main
from btc_pipeline.stream import REPLAYED_FROM, DeadLetter, dead_letter, distinct, replay_record, selected
from btc_pipeline.stream.consume import Consumed

T0 = datetime(2026, 6, 2, 12, 0, tzinfo=UTC)


def summarise(letters, examples: int = 3) -> Pass:
    """A pass without filters that read ``letters``."""
    scan = Pass(None, None, examples)
    for _ in scan.select(letters):
        pass
    return scan


def letter(offset: int, reason: str | None, *, at: datetime | None = T0, key: bytes = b"k", value: bytes = b"v"):
    bad = Consumed("btc-metrics", 2, 100 + offset, key, value)
    headers = dead_letter(bad, reason, f"detail {offset}").headers if reason else ()
    return DeadLetter("btc-metrics-dlq", 0, offset, at, key, value, headers)


def test_a_dead_letter_reads_the_headers_the_drain_writes():
    d = letter(7, "bad_price", key=b"coinbase|BTC-USD|tick|x")
    assert (d.reason, d.header("dlq.detail")) == ("bad_price", "detail 7")
    assert d.origin == "btc-metrics|2|107" and d.where == "btc-metrics-dlq|0|7"
    assert letter(1, None).reason == "unknown" and letter(1, None).header("dlq.detail") == ""


@pytest.mark.parametrize(
    ("reason", "since", "expected"),
    [
        (None, None, [0, 1, 2, 3]),
        ("bad_ts", None, [1, 3]),
        ("nope", None, []),
        (None, T0 + timedelta(minutes=1), [2, 3]),  # inclusive; no timestamp: never after
        ("bad_ts", T0 + timedelta(minutes=2), [3]),
    ],
)
def test_selected_by_reason_and_time_of_dead_lettering(reason, since, expected):
    letters = [
        letter(0, "not_json", at=T0),
        letter(1, "bad_ts", at=None),
        letter(2, "not_json", at=T0 + timedelta(minutes=1)),
        letter(3, "bad_ts", at=T0 + timedelta(minutes=2)),
    ]
    assert [x.offset for x in letters if selected(x, reason=reason, since=since)] == expected


def test_a_replay_has_the_original_key_and_value_and_names_its_dead_letter():
    d = letter(5, "future_ts", key=b"kraken|BTC-USD|tick|2096", value=b'{"v":1}')
    record = replay_record(d)
    assert (record.key, record.value) == (b"kraken|BTC-USD|tick|2096", b'{"v":1}')
    assert record.headers == ((REPLAYED_FROM, b"btc-metrics-dlq|0|5"),)


def test_a_replay_that_fails_again_keeps_its_replay_header_and_nothing_else_of_its_own():
    replayed = Consumed("btc-metrics", 1, 9, b"k", b"v", ((REPLAYED_FROM, b"dlq|0|5"), ("trace", b"x")))
    headers = dict(dead_letter(replayed, "bad_ts", "again").headers)
    assert headers[REPLAYED_FROM] == b"dlq|0|5" and "trace" not in headers
    assert headers["dlq.offset"] == b"9"
    assert REPLAYED_FROM not in dict(dead_letter(Consumed("t", 0, 1, b"k", b"v"), "bad_ts", "x").headers)


def test_distinct_drops_a_key_and_value_seen_before():
    letters = [
        letter(0, "bad_ts", key=b"a", value=b"1"),
        letter(1, "bad_ts", key=b"a", value=b"2"),
        letter(2, "bad_ts", key=b"a", value=b"1"),  # dead-lettered again after a replay
        letter(3, "bad_ts", key=b"b", value=b"1"),
    ]
    assert [x.offset for x in distinct(letters)] == [0, 1, 3]


def test_the_summary_counts_by_reason_with_first_last_and_the_newest_examples():
    letters = [letter(i, "not_json", at=T0 + timedelta(minutes=i)) for i in range(5)]
    letters += [letter(10, "bad_price", at=T0 + timedelta(hours=1)), letter(11, "bad_price", at=None)]
    summary = summarise(letters, examples=2)
    assert summary.total == 7
    assert [(reason, s.count) for reason, s in summary.by_count()] == [("not_json", 5), ("bad_price", 2)]
    not_json = summary.chosen["not_json"]
    assert (not_json.first, not_json.last) == (T0, T0 + timedelta(minutes=4))
    assert [x.offset for x in not_json.examples] == [3, 4]
    bad_price = summary.chosen["bad_price"]
    assert bad_price.first == bad_price.last == T0 + timedelta(hours=1)


def test_the_summary_text_has_a_row_per_reason_and_the_examples_newest_first():
    letters = [letter(i, "not_json", at=T0 + timedelta(minutes=i), value=b"garbage %d" % i) for i in range(3)]
    letters.append(letter(9, "bad_price", key=b"coinbase|BTC-USD|tick|t"))
    lines = summarise(letters, examples=2).lines()
    assert lines[1].split() == ["not_json", "3", "2026-06-02T12:00:00Z", "2026-06-02T12:02:00Z"]
    assert lines[2].split() == ["bad_price", "1", "2026-06-02T12:00:00Z", "2026-06-02T12:00:00Z"]
    assert lines[3] == "newest 2 of each reason:"
    offsets = [line.split()[2] for line in lines if line.startswith("  ") and "offset" in line]
    assert offsets == ["0:2", "0:1", "0:9"]
    assert "    value   garbage 2" in lines and "    detail  detail 9" in lines
    assert Pass(None, None).lines() == []


def test_a_value_is_shown_as_one_safe_line():
    assert shown(b"plain") == "plain"
    assert shown(b"\x1b[2Jline\nnext") == "\\x1b[2Jline\\nnext"  # no terminal control
    assert shown(b"x" * 200, 10) == "xxxxxxxxxx... (200 bytes)"
    assert shown("prix €".encode()) == "prix \\u20ac"
    assert shown(b"\xff\xfe") == "\\ufffd\\ufffd"


def test_a_selection_that_matches_nothing_names_the_reasons_there_are():
    scan = Pass("bad_prise", None)
    assert list(scan.select([letter(0, "bad_price"), letter(1, "bad_price"), letter(2, "not_json")])) == []
    assert scan.headline("dlq", "shown") == (
        "dlq: 3 dead letter(s); 0 shown with reason bad_prise (reasons in the DLQ: bad_price 2, not_json 1)"
    )
    once = Pass(None, T0)
    assert [x.offset for x in once.select([letter(0, "a"), letter(1, "a"), letter(2, "b", value=b"w")], once=True)] == [
        0,
        2,
    ]
    assert (
        once.headline("dlq", "replayed") == "dlq: 3 dead letter(s); 2 replayed dead-lettered since 2026-06-02T12:00:00Z"
    )


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["dlq"], "the following arguments are required: {list,replay}"),
        (["dlq", "list", "--since", "bogus"], "argument --since: 'bogus' is not a time"),
        (["dlq", "list", "--since", "9999-12-31T23:59:00-01:00"], "argument --since: '9999-12-31T23:59:00-01:00'"),
        (["dlq", "list", "--examples", "101"], "argument --examples: '101' is not a number of examples"),
        (["dlq", "replay", "--examples", "-1"], "argument --examples: '-1'"),
        (["dlq", "replay", "--from", "2h"], "unrecognized arguments: --from"),
    ],
)
def test_bad_dlq_arguments_exit_2_naming_the_argument(argv, message, capsys):
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == EXIT_USAGE
    assert message in capsys.readouterr().err
