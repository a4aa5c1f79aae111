"""Time to the first chart in Chromium on a running stack (``make demo``), against Streamlit's own floor.

    .venv/bin/python bench/first_chart.py [--loads 5] [--url http://127.0.0.1:8501] [--against URL]

A load opens headless Chromium (Debian's ``chromium`` + ``chromedriver``, as the browser test
uses) that opens the dashboard and waits until

- the **shell**: Streamlit's app container is in the page (the framework's floor: its JavaScript
  bundle loaded and the websocket session started; our code has not drawn anything yet), and
- the **first chart**: a Plotly trace is drawn and the header shows the consensus price.

Both are measured in the page's own clock from the navigation's start (a script installed before
the page's own records when each appeared), so "chart - shell" is what the dashboard's reads and
rendering add; each load also prints when the header's price appeared, when the largest script
(the chart library: ``dashboard/static``'s 1.2 MB Plotly bundle, or Streamlit's 4.7 MB Plotly chunk
for a dashboard that uses ``st.plotly_chart``) was requested and received, and how long the main
thread was blocked.

Cold loads use a new browser profile each (a first visit); warm loads reuse one browser, as a
trader's open tab or a returning visitor does (the scripts come from the HTTP cache). ``--against``
names a second dashboard to compare with in the same run, e.g. an older commit's served on another
port (``git archive <commit> dashboard | tar -x -C /tmp/old`` and ``streamlit run app.py
--server.port 8503`` in ``/tmp/old/dashboard``): cold loads of the two alternate, so both meet the
same load on the stack. The issue's target: first chart <= 3 s after navigation on the demo stack.
Not part of ``make bench`` (it needs the stack up), like ``freshness.py``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from selenium.webdriver.common.by import By

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))
from devstack.browser import chromium


def wait_until(predicate: Any, timeout_s: float, what: str) -> float:
    """Poll ``predicate`` every 50 ms; the monotonic time it first held."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return time.monotonic()
        time.sleep(0.05)
    raise TimeoutError(f"no {what} within {timeout_s:.0f} s")


#: Installed before the page's own scripts: records, in the page's clock (ms since navigation),
#: when the shell, the header's price and the first Plotly trace appeared, and the main thread's
#: long tasks (JavaScript that blocked rendering for more than 50 ms).
MARKS = """
window.__marks = {}; window.__long = [];
new PerformanceObserver(l => l.getEntries().forEach(e => window.__long.push([e.startTime, e.duration])))
  .observe({type: 'longtask', buffered: true});
const mark = (name, test) => { if (!(name in window.__marks) && test()) window.__marks[name] = performance.now(); };
new MutationObserver(() => {
  mark('shell', () => document.querySelector("[data-testid='stApp']"));
  mark('header', () => document.body && document.body.innerText.includes('Consensus price'));
  mark('chart', () => document.querySelector('.js-plotly-plot g.trace'));
}).observe(document, {childList: true, subtree: true, characterData: true});
"""

#: The page's largest script (the chart library), from the browser's resource timings.
BUNDLE_TIMING = """
const scripts = performance.getEntriesByType('resource').filter(e => e.name.endsWith('.js'));
const big = scripts.reduce((a, b) => (b.decodedBodySize > a.decodedBodySize ? b : a));
return [big.name, big.decodedBodySize, big.startTime, big.responseEnd, window.__marks, window.__long];
"""


def timed_load(driver: Any, url: str) -> tuple[float, float]:
    """Seconds from navigation to the Streamlit shell and to the first drawn chart, as the page saw
    them; prints where the time went (the header's price, the largest script, long tasks)."""
    driver.set_page_load_timeout(30)
    driver.get(url)  # returns at the document's load event; the app renders after it
    wait_until(lambda: bool(driver.find_elements(By.CSS_SELECTOR, ".js-plotly-plot g.trace")), 60, "chart")
    wait_until(lambda: "Consensus price" in driver.find_element(By.TAG_NAME, "body").text, 60, "header")
    name, size, requested, received, marks, long_tasks = driver.execute_script(BUNDLE_TIMING)
    blocked = sum(d for _, d in long_tasks)
    longest = max((d for _, d in long_tasks), default=0)
    print(
        f"  header {marks['header'] / 1e3:.2f} s; {name.rsplit('/', 1)[-1]} ({size / 1e6:.1f} MB) requested "
        f"{requested / 1e3:.2f} s, received {received / 1e3:.2f} s; main thread blocked {blocked / 1e3:.2f} s "
        f"in {len(long_tasks)} long task(s), longest {longest / 1e3:.2f} s"
    )
    return marks["shell"] / 1e3, marks["chart"] / 1e3


def new_browser(profile: Path) -> Any:
    driver = chromium(profile=profile)
    driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": MARKS})
    return driver


def cold_load(url: str) -> tuple[float, float]:
    """A first visit: a new browser with an empty profile (nothing cached)."""
    with tempfile.TemporaryDirectory(prefix="first-chart-") as profile:
        driver = new_browser(Path(profile))
        try:
            return timed_load(driver, url)
        finally:
            driver.quit()


def report(kind: str, loads: list[tuple[float, float]]) -> None:
    for i, (shell, chart) in enumerate(loads, 1):
        print(f"{kind} load {i}: shell {shell:.2f} s, first chart {chart:.2f} s (dashboard adds {chart - shell:.2f} s)")
    charts = [chart for _, chart in loads]
    p50, worst = statistics.median(charts), max(charts)
    print(
        f"{kind}: first chart p50 {p50:.2f} s ({'met' if p50 <= 3.0 else 'MISSED'}), max {worst:.2f} s "
        f"({'met' if worst <= 3.0 else 'missed'}) against the 3 s target; Streamlit shell p50 "
        f"{statistics.median(s for s, _ in loads):.2f} s (baseline: the framework's floor)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--url", default="http://127.0.0.1:8501")
    parser.add_argument("--loads", type=int, default=5)
    parser.add_argument(
        "--against",
        metavar="URL",
        help="another dashboard to compare with (e.g. an older checkout on another port): its cold loads "
        "alternate with these, so both meet the same load on the stack",
    )
    args = parser.parse_args()
    if args.against:
        ours: list[tuple[float, float]] = []
        theirs: list[tuple[float, float]] = []
        for _ in range(args.loads):
            print(f"{args.url}:")
            ours.append(cold_load(args.url))
            print(f"{args.against}:")
            theirs.append(cold_load(args.against))
        report(f"cold {args.against}", theirs)
        report(f"cold {args.url}", ours)
    else:
        report("cold", [cold_load(args.url) for _ in range(args.loads)])
    # a returning visitor: one browser, its HTTP cache warm (the chart library among it)
    with tempfile.TemporaryDirectory(prefix="first-chart-") as profile:
        driver = new_browser(Path(profile))
        try:
            timed_load(driver, args.url)  # the first visit fills the cache
            report("warm", [timed_load(driver, args.url) for _ in range(args.loads)])
        finally:
            driver.quit()


if __name__ == "__main__":
    main()
