"""What every ``btc-pipeline`` command shares: exit codes, the context, argument errors."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TextIO

from btc_pipeline.config import Settings
from btc_pipeline.window import Window

EXIT_OK, EXIT_INCOMPLETE, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


class RangeArgumentError(ValueError):
    """An argument cannot be used; ``argument`` names it (``--to``)."""

    def __init__(self, argument: str, message: str) -> None:
        super().__init__(f"argument {argument}: {message}")
        self.argument = argument


@dataclass(frozen=True)
class Context:
    """What every command needs: the range, the settings and the output streams."""

    window: Window
    source: str | None
    settings: Settings
    out: TextIO
    err: TextIO
