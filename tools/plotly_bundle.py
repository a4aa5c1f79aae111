"""Refresh the dashboard's vendored Plotly bundle (``dashboard/static/``) from npm (``make plotly-bundle``).

The dashboard draws its charts with plotly.js's official *finance* partial bundle (the npm package
``plotly.js-finance-dist-min``), at the plotly.js version of the Python ``plotly`` package in the
lock (``plotly.offline.get_plotlyjs_version()``), so that the figures the Python side builds are drawn
by the plotly.js they were written for. It is committed so that a clone and the dashboard's image
need neither npm nor a network; this script is for the maintainer who upgrades ``plotly``:

    make plotly-bundle        # then: git add dashboard/static dashboard/plot.py

It fetches the package with ``npm pack`` (the npm registry, by its ordinary client), checks the file
names its version, replaces the old bundle, records the new one's checksum and the package's npm
integrity (which a reviewer can compare with ``npm view <package>@<version> dist.integrity``) in
``static/README.md`` and points ``dashboard/plot.py``'s ``BUNDLE`` at it. ``tests/unit/test_dashboard_charts.py`` checks
all three against each other and that every trace type the dashboard draws is in the bundle.
"""

from __future__ import annotations

import hashlib
import json
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


def rewrite(path: Path, pattern: str, replacement: str, *, flags: int = 0, once: bool = True) -> None:
    """Replace ``pattern`` in ``path``, which must match (exactly once, with ``once``)."""
    text, count = re.subn(pattern, replacement, path.read_text(encoding="utf-8"), flags=flags)
    if count == 0 or (once and count != 1):
        sys.exit(f"{path.relative_to(ROOT)}: {pattern!r} matched {count} times: edit it by hand")
    path.write_text(text, encoding="utf-8")


def main() -> int:
    version = plotly.offline.get_plotlyjs_version()
    name = f"plotly-finance-{version}.min.js"
    with tempfile.TemporaryDirectory(prefix="plotly-bundle-") as tmp:
        try:
            packed = subprocess.run(
                ["npm", "pack", f"{PACKAGE}@{version}", "--pack-destination", tmp, "--json"],
                check=True,
                capture_output=True,
                text=True,
            )
        except (OSError, subprocess.CalledProcessError) as exc:
            sys.exit(f"npm pack {PACKAGE}@{version} failed: {getattr(exc, 'stderr', '') or exc}")
        (meta,) = json.loads(packed.stdout)
        with tarfile.open(Path(tmp) / meta["filename"]) as archive:
            code = archive.extractfile("package/plotly-finance.min.js")
            licence = archive.extractfile("package/LICENSE")
            if code is None or licence is None:
                sys.exit(f"{meta['filename']} has no package/plotly-finance.min.js or LICENSE")
            body, licence_text = code.read(), licence.read()
    if f"v{version}".encode() not in body[:200]:
        sys.exit(f"{meta['filename']}: the bundle does not name plotly.js v{version} in its header")
    for old in STATIC.glob("plotly-finance-*.min.js"):
        old.unlink()
    (STATIC / name).write_bytes(body)
    (STATIC / "LICENSE.plotly.txt").write_bytes(licence_text)
    digest = hashlib.sha256(body).hexdigest()
    readme = STATIC / "README.md"
    rewrite(readme, r"`plotly-finance-[\d.]+\.min\.js` sha256 [0-9a-f]{64}", f"`{name}` sha256 {digest}")
    rewrite(readme, rf"{re.escape(PACKAGE)}@\d+(?:\.\d+)*", f"{PACKAGE}@{version}", once=False)
    rewrite(readme, r"npm integrity `sha512-[A-Za-z0-9+/=]+`", f"npm integrity `{meta['integrity']}`")
    rewrite(PLOT, r'^BUNDLE = ".*"$', f'BUNDLE = "{name}"', flags=re.MULTILINE)
    print(
        f"dashboard/static/{name}: {PACKAGE}@{version}, {len(body):,} bytes, sha256 {digest}, "
        f"npm integrity {meta['integrity']} (compare: npm view {PACKAGE}@{version} dist.integrity)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
