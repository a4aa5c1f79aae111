"""Seconds each integration module took in a test run, from pytest's JUnit XML (``make test`` writes
``state/test-artifacts/junit.xml``): the figures ``MODULE_SECONDS`` in tests/conftest.py shares the
stacks out by.

    .venv/bin/python tools/test_durations.py [state/test-artifacts/junit.xml]
"""

from __future__ import annotations

import sys
import xml.etree.ElementTree as ET
from collections import defaultdict
from pathlib import Path


def module_seconds(report: Path) -> dict[str, float]:
    """Seconds per integration module (setup and teardown included), longest first."""
    totals: dict[str, float] = defaultdict(float)
    for case in ET.parse(report).iter("testcase"):  # noqa: S314 - our own test report
        classname = case.get("classname", "")
        if classname.startswith("tests.integration."):
            totals[classname.split(".")[2] + ".py"] += float(case.get("time", 0))
    return dict(sorted(totals.items(), key=lambda item: -item[1]))


if __name__ == "__main__":
    path = Path(sys.argv[1] if len(sys.argv) > 1 else "state/test-artifacts/junit.xml")
    for module, seconds in module_seconds(path).items():
        print(f'    "{module}": {round(seconds)},')
