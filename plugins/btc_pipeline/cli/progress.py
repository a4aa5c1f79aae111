"""Progress output of the CLI: one status line on stderr."""

from __future__ import annotations

from typing import TextIO


def progress_bar(done: int, total: int, width: int = 30) -> str:
    """A text progress bar such as ``[#######.......] 3/9``.

    Args:
        done: Units finished.
        total: Units in all.
        width: Characters between the brackets.

    Returns:
        The bar.
    """
    filled = 0 if total <= 0 else round(width * min(max(done, 0), total) / total)
    return f"[{'#' * filled}{'.' * (width - filled)}] {done}/{total}"


class Progress:
    """One status line on a stream: rewritten in place on a terminal, a new line per change otherwise."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.tty = stream.isatty()
        self.last = ""

    def update(self, text: str) -> None:
        """Show ``text`` (nothing happens when it is the line already shown)."""
        if text == self.last:
            return
        if self.tty:
            self.stream.write("\r\x1b[2K" + text)
        else:
            self.stream.write(text + "\n")
        self.stream.flush()
        self.last = text

    def done(self) -> None:
        """End the status line."""
        if self.tty and self.last:
            self.stream.write("\n")
            self.stream.flush()
        self.last = ""
