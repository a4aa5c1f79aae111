"""``btc-pipeline dlq``: what the dead-letter topic holds, and replaying it to the data topic after a fix.

    btc-pipeline dlq list [--since 24h] [--reason bad_price] [--examples 3]
    btc-pipeline dlq replay [--reason bad_price] [--since 24h] [--dry-run]

Both read the DLQ (``BTC_DLQ_TOPIC``) itself, from its beginning to its end when the command
started, without a consumer group: it holds every message the drain could not store, even while
MongoDB was down (``btc.rejects`` has the same with the start of each value). ``replay`` produces
the selected dead letters to ``BTC_TOPIC`` with their original key and value and a
``dlq.replayed_from`` header, confirmed by the broker; the drain stores them at its next run.
Replaying twice is harmless: keys are natural and the drain upserts on them.
"""

from __future__ import annotations

import argparse
from collections import Counter, deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import TextIO

from btc_pipeline.cli.common import EXIT_INCOMPLETE, EXIT_OK
from btc_pipeline.config import Settings
from btc_pipeline.stream import (
    REPLAYED_FROM,
    DeadLetter,
    DeadLetterReadError,
    DeliveryError,
    distinct,
    open_producer,
    open_reader,
    produce_all,
    read_dead_letters,
    replay_record,
    selected,
)
from btc_pipeline.timeutil import format_ts

#: How long the commands wait for the broker's answers.
KAFKA_TIMEOUT_S = 10.0
#: How much of a value an example shows.
VALUE_SHOWN = 120


@dataclass
class ReasonSummary:
    """The selected dead letters of one reason: how many, when the first and the last came, the newest few."""

    count: int = 0
    first: datetime | None = None
    last: datetime | None = None
    examples: deque[DeadLetter] = field(default_factory=deque)


def shown(data: bytes, limit: int = VALUE_SHOWN) -> str:
    """The start of ``data`` as one line of safe text (control characters and non-ASCII escaped,
    so a hostile value cannot drive the terminal), with its size when cut."""
    text = data[:limit].decode("utf-8", "replace").encode("unicode_escape").decode("ascii")
    return text + (f"... ({len(data):,} bytes)" if len(data) > limit else "")


def when(ts: datetime | None) -> str:
    """A time of dead-lettering to the second (``-`` when unknown), so that the columns line up."""
    return format_ts(ts.replace(microsecond=0)) if ts else "-"


def example_lines(letter: DeadLetter) -> list[str]:
    """An example dead letter in a few indented lines: where it is, key, origin, detail, value."""
    at = when(letter.at)
    lines = [
        f"  {letter.reason}  offset {letter.partition}:{letter.offset}  dead-lettered {at}",
        f"    key     {shown(letter.key)}   from {letter.origin}",
    ]
    if replayed := letter.header(REPLAYED_FROM):
        lines.append(f"    replay  of the dead letter at {replayed}, failed again")
    lines.append(f"    detail  {shown(letter.header('dlq.detail').encode(), 300)}")
    lines.append(f"    value   {shown(letter.value)}")
    return lines


def selection(reason: str | None, since: datetime | None) -> str:
    """The filters in words: ``with reason bad_price, dead-lettered since 2026-...``."""
    words = ([f"with reason {reason}"] if reason else []) + (
        [f"dead-lettered since {format_ts(since)}"] if since else []
    )
    return " " + ", ".join(words) if words else ""


@dataclass
class Pass:
    """One read of the DLQ: every letter counted by reason, and the selected ones summarised by
    reason with the newest ``examples`` of each."""

    reason: str | None
    since: datetime | None
    examples: int = 3
    read: Counter[str] = field(default_factory=Counter)
    chosen: dict[str, ReasonSummary] = field(default_factory=dict)

    def select(self, letters: Iterable[DeadLetter], *, once: bool = False) -> Iterator[DeadLetter]:
        """The letters that pass the filters (each key and value only once with ``once``), counting
        all of them by reason and summarising those."""

        def counted() -> Iterator[DeadLetter]:
            for letter in letters:
                self.read[letter.reason] += 1
                if selected(letter, reason=self.reason, since=self.since):
                    yield letter

        for letter in distinct(counted()) if once else counted():
            s = self.chosen.setdefault(letter.reason, ReasonSummary(examples=deque(maxlen=self.examples)))
            s.count += 1
            if letter.at is not None:
                s.first = min(s.first or letter.at, letter.at)
                s.last = max(s.last or letter.at, letter.at)
            s.examples.append(letter)
            yield letter

    @property
    def total(self) -> int:
        """How many letters were selected."""
        return sum(s.count for s in self.chosen.values())

    def by_count(self) -> list[tuple[str, ReasonSummary]]:
        """The selected reasons, most frequent first (ties: by name)."""
        return sorted(self.chosen.items(), key=lambda item: (-item[1].count, item[0]))

    def headline(self, topic: str, verb: str) -> str:
        """``<topic>: 12 dead letter(s); 3 <verb>, with reason ...``, naming the reasons when none match."""
        read = sum(self.read.values())
        line = f"{topic}: {read:,} dead letter(s); {self.total:,} {verb}{selection(self.reason, self.since)}"
        if read and not self.total:
            line += " (reasons in the DLQ: " + ", ".join(f"{r} {n}" for r, n in self.read.most_common()) + ")"
        return line

    def lines(self) -> list[str]:
        """The table of selected reasons (count, first and last dead-lettered) and the examples of each."""
        if not self.total:
            return []
        width = max(len("reason"), *(len(r) for r in self.chosen))
        lines = [f"  {'reason':<{width}}  {'count':>7}  {'first':<20}  last"]
        for reason, s in self.by_count():
            lines.append(f"  {reason:<{width}}  {s.count:>7,}  {when(s.first):<20}  {when(s.last)}")
        if self.examples:
            lines.append(f"newest {self.examples} of each reason:")
            for _, s in self.by_count():
                lines += [line for letter in reversed(s.examples) for line in example_lines(letter)]
        return lines


def run_dlq(settings: Settings, args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    """``dlq list``: summarise the dead letters of ``BTC_DLQ_TOPIC`` by reason, with the newest
    examples of each. ``dlq replay``: the same for the selected letters (each key and value once),
    produced to ``BTC_TOPIC``, or with ``--dry-run`` only said which would be.

    Args:
        settings: Where Kafka is, and the topics.
        args: The parsed arguments (``action``, ``reason``, ``since``, ``examples``, ``dry_run``).
        out: Where the summary goes.
        err: Where errors go.

    Returns:
        0 done (every replayed message acknowledged by the broker), 1 the broker did not answer,
        the DLQ does not exist, or a replayed message was not acknowledged (running it again is safe).
    """
    replay = args.action == "replay"
    produce = replay and not args.dry_run
    scan = Pass(args.reason, args.since, args.examples)
    reader = open_reader(settings.kafka_bootstrap)
    try:
        letters = scan.select(read_dead_letters(reader, settings.dlq_topic, timeout_s=KAFKA_TIMEOUT_S), once=replay)
        if produce:
            produce_all(open_producer(settings.kafka_bootstrap), settings.topic, map(replay_record, letters))
        else:
            for _ in letters:  # the pass summarises as it reads
                pass
    except DeadLetterReadError as exc:
        err.write(
            f"btc-pipeline dlq {args.action}: error: {exc} (Kafka at {settings.kafka_bootstrap}, "
            f"BTC_KAFKA_BOOTSTRAP; DLQ {settings.dlq_topic}, BTC_DLQ_TOPIC): is the broker up?\n"
        )
        return EXIT_INCOMPLETE
    except DeliveryError as exc:
        err.write(f"btc-pipeline dlq replay: error: {exc}; running it again is safe\n")
        return EXIT_INCOMPLETE
    finally:
        reader.close()
    if not replay:
        verb = "shown"
    else:
        verb = f"replayed to {settings.topic}" if produce else "would be replayed (dry run: nothing produced)"
    out.write(scan.headline(settings.dlq_topic, verb) + "\n")
    out.writelines(line + "\n" for line in scan.lines())
    if scan.total and produce:
        out.write(
            "the drain stores them at its next run; one that fails again returns to the DLQ "
            f"with the header {REPLAYED_FROM}\n"
        )
    return EXIT_OK
