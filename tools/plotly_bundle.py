"""Refresh the dashboard's vendored Plotly bundle (``dashboard/static/``) from npm (``make plotly-bundle``).

The dashboard draws its charts with plotly.js's official *finance* partial bundle (the npm package
``plotly.js-finance-dist-min``), at the plotly.js version of the Python ``plotly`` package in the
lock (``plotly.offline.get_plotlyjs_version()``), so that the figures the Python side builds are drawn
by the plotly.js they were written for. It is committed so that a clone and the dashboard's image
need neither npm nor a network; this script is for the maintainer who upgrades ``plotly``:

    make plotly-bundle        # then: git add dashboard/static dashboard/plot.py

It fetches the package with ``npm pack`` (the npm registry, by its ordinary client), checks the file
names its version, replaces the old bundle, records the new one's checksum in ``static/README.md``
and points ``dashboard/plot.py``'s ``BUNDLE`` at it. ``tests/unit/test_dashboard_charts.py`` checks
all three against each other and that every trace type the dashboard draws is in the bundle.
"""

from __future__ import annotations

import hashlib
import re
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import plotly

ROOT = Path(__file__).resolve().parents[1]
STATIC = ROOT / "dashboard" / "static"
PLOT = ROOT / "dashboard" / "plot.py"
PACKAGE = "plotly.js-finance-dist-min"


def main() -> int:
    version = plotly.offline.get_plotlyjs_version()
    name = f"plotly-finance-{version}.min.js"
    with tempfile.TemporaryDirectory(prefix="plotly-bundle-") as tmp:
        packed = subprocess.run(
            ["npm", "pack", f"{PACKAGE}@{version}", "--pack-destination", tmp, "--silent"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.split()[-1]
        with tarfile.open(Path(tmp) / packed) as archive:
            code = archive.extractfile("package/plotly-finance.min.js")
            licence = archive.extractfile("package/LICENSE")
            if code is None or licence is None:
                sys.exit(f"{packed} has no package/plotly-finance.min.js or LICENSE")
            body, licence_text = code.read(), licence.read()
    if f"v{version}".encode() not in body[:200]:
        sys.exit(f"{packed}: the bundle does not name plotly.js v{version} in its header")
    for old in STATIC.glob("plotly-finance-*.min.js"):
        old.unlink()
    (STATIC / name).write_bytes(body)
    (STATIC / "LICENSE.plotly.txt").write_bytes(licence_text)
    digest = hashlib.sha256(body).hexdigest()
    readme = STATIC / "README.md"
    text = readme.read_text()
    text = re.sub(r"`plotly-finance-[\d.]+\.min\.js` sha256 [0-9a-f]{64}", f"`{name}` sha256 {digest}", text)
    text = re.sub(rf"{re.escape(PACKAGE)}@\d+(?:\.\d+)*", f"{PACKAGE}@{version}", text)
    readme.write_text(text)
    PLOT.write_text(re.sub(r'^BUNDLE = ".*"$', f'BUNDLE = "{name}"', PLOT.read_text(), flags=re.MULTILINE))
    print(f"dashboard/static/{name}: {PACKAGE}@{version}, {len(body):,} bytes, sha256 {digest}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
