"""What the check measured and found, printed as it goes and summed up at the end."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field


class DeployCheckError(RuntimeError):
    """A phase found the deployment broken; the message says what and where to look."""


def human_bytes(n: float) -> str:
    """``1_190_000_000`` -> ``1.19 GB`` (decimal units, as ``docker images`` shows)."""
    for unit in ("B", "kB", "MB", "GB"):
        if abs(n) < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.2f} {unit}" if n < 10 else f"{n:.0f} {unit}"
        n /= 1000
    return f"{n:.2f} GB"  # not reached


def duration(seconds: float) -> str:
    """``75.2`` -> ``1 min 15 s``; under a minute ``12.3 s``."""
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes} min {rest:02d} s"


@dataclass
class Report:
    """Phases with their times, findings, and the lines of the final summary."""

    phases: list[tuple[str, float, str]] = field(default_factory=list)
    summary: list[str] = field(default_factory=list)
    started: float = field(default_factory=time.monotonic)

    def say(self, line: str) -> None:
        print(f"  {line}", flush=True)

    def note(self, line: str) -> None:
        """A line for the summary (also printed now)."""
        self.summary.append(line)
        self.say(line)

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        print(f"\n== {name}", flush=True)
        started = time.monotonic()
        try:
            yield
        except BaseException:
            self.phases.append((name, time.monotonic() - started, "FAILED"))
            raise
        self.phases.append((name, time.monotonic() - started, "ok"))

    def render(self, verdict: str) -> str:
        lines = ["", "== compose-check summary", ""]
        lines += [f"  {status:6} {duration(seconds):>12}  {name}" for name, seconds, status in self.phases]
        lines.append(f"  {'total':6} {duration(time.monotonic() - self.started):>12}")
        lines.append("")
        lines += [f"  {line}" for line in self.summary]
        lines += ["", f"compose-check: {verdict}"]
        return "\n".join(lines)
