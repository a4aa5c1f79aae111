"""What every ``btc-pipeline`` command shares: exit codes, the context, range errors."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TextIO, cast

from btc_pipeline.config import Settings
from btc_pipeline.redact import redact_text
from btc_pipeline.window import RangeError, Window

EXIT_OK, EXIT_INCOMPLETE, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


def number_in(unit: str, low: float, high: float) -> Callable[[str], float]:
    """An argparse type: a number of ``unit`` in ``[low, high]``; anything else is an error naming the range."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number of {unit}") from None
        if not low <= value <= high:  # also NaN
            raise argparse.ArgumentTypeError(f"{text} is out of range: {low:g} .. {high:g} {unit}")
        return value

    return parse


def argument_error(exc: RangeError) -> str:
    """A range check's error as the CLI says it, naming the argument: ``argument --to: ...``."""
    argument = {"from": "--from", "to": "--to", "range": "--from/--to"}[exc.bound]
    hint = " (use --to now, or leave --to out)" if exc.bound == "to" else ""
    return f"argument {argument}: {exc}{hint}"


@dataclass(frozen=True)
class Context:
    """What every command needs: the range, the settings and the output streams."""

    window: Window
    source: str | None
    settings: Settings
    out: TextIO
    err: TextIO


class _RedactedStream:
    """A text stream that writes what it is given through :func:`~btc_pipeline.redact.redact_text`."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        return self._stream.write(redact_text(text))

    def __getattr__(self, name: str) -> Any:  # flush, isatty, ...: the stream's own
        return getattr(self._stream, name)


def redacted(stream: TextIO) -> TextIO:
    """``stream`` with every URI written to it passed through the redaction helper (the CLI's stderr)."""
    return cast(TextIO, _RedactedStream(stream))
