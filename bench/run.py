"""Run every benchmark under bench/ (``make bench``)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent

if __name__ == "__main__":
    failed = 0
    for script in sorted(HERE.glob("*.py")):
        if script.name.startswith("_") or script.name == "run.py":
            continue  # modules the benchmarks share
        if script.name in ("freshness.py", "first_chart.py", "drain_trigger.py", "history.py"):
            continue  # these measure a running stack (make demo), see their docstrings
        print(f"== {script.name}", flush=True)
        failed |= subprocess.run([sys.executable, str(script)], check=False).returncode
    sys.exit(failed)
