"""Request pacing shared by every process on this machine: a backfill's chunk tasks (Airflow runs
several at once, each fetching pages from several threads) together never send an exchange more
requests per second than its :attr:`~btc_pipeline.exchanges.base.ExchangeLimits.requests_per_second`.

The next free start time of each exchange is kept in a small file, updated under an exclusive
``flock``: calls are spaced evenly (no bursts) whatever process or thread makes them. Airflow's
LocalExecutor (the local stack and the compose deployment) runs every task on one machine, which is
what this covers; workers on several machines would each keep their own pace.
"""

from __future__ import annotations

import fcntl
import os
import tempfile
import time
from pathlib import Path


class Pacer:
    """Spaces the calls for one exchange at ``per_second`` at most, across threads and processes.

    Args:
        name: The exchange (one pace file each).
        per_second: The most calls started in any second.
        directory: Where the pace file lives (the system's temporary directory by default).
    """

    def __init__(self, name: str, per_second: float, *, directory: Path | None = None) -> None:
        self.interval = 1.0 / per_second
        self.path = (directory or Path(tempfile.gettempdir())) / f"btc-pipeline-pace-{name}"

    def wait(self) -> float:
        """Block until the next call may start; returns that start (``time.time()`` seconds) as
        booked in the pace file, which spaces the calls whatever the threads' wake-up jitter."""
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            raw = os.pread(fd, 64, 0)
            try:
                booked = float(raw.decode() or 0)
            except ValueError:  # a torn or foreign file: start afresh
                booked = 0.0
            now = time.time()
            start = max(now, booked)
            text = repr(start + self.interval).encode()
            os.ftruncate(fd, 0)
            os.pwrite(fd, text, 0)
        finally:
            os.close(fd)  # releases the flock
        if start > now:
            time.sleep(start - now)
        return start
