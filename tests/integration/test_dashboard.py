"""The dashboard on the real stack: Streamlit's AppTest runs the real app script against databases of
the stack's FerretDB in the states a user meets (empty, stale, an exchange without data, alerts),
and a real headless Chromium uses the page the stack serves: range buttons, source and view
selectors, an export downloaded and read back, screenshots at two widths."""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from pymongo import MongoClient

from btc_pipeline.alerts import Alert
from btc_pipeline.schema import Observation
from btc_pipeline.store import CONSENSUS, Store
from btc_pipeline.timeutil import floor_minute
from btc_pipeline.window import MINUTE, Window
from dashboard.plot import BUNDLE
from devstack import Stack
from devstack.processes import http_ok

from .conftest import ARTIFACTS, ROOT, wait_for

pytestmark = pytest.mark.integration

APP = ROOT / "dashboard" / "app.py"


def observations(start: datetime, minutes: int) -> list[Observation]:
    out = []
    for m in range(minutes):
        ts = start + MINUTE * m
        price = 95_000.0 + 10 * m
        c = Observation(
            "coinbase",
            "BTC-USD",
            "candle_1m",
            ts,
            price + 5,
            ts + MINUTE,
            "t",
            price,
            price + 20,
            price - 20,
            price + 5,
            1.5,
        )
        out.append(c)
        for i, x in enumerate(("coinbase", "kraken", "bitstamp")):
            tick_ts = ts + timedelta(seconds=20 + i)
            out.append(Observation(x, "BTC-USD", "tick", tick_ts, price + i, tick_ts, "t", volume=0.01))
    return out


@pytest.fixture
def app_env(stack: Stack, mongo: MongoClient[Any], monkeypatch: pytest.MonkeyPatch) -> Iterator[Store]:
    """The app pointed at a database of this test's own (dropped afterwards)."""
    name = f"dash_{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("BTC_MONGO_URI", stack.mongo_uri)
    monkeypatch.setenv("BTC_MONGO_DB", name)
    yield Store(mongo[name])
    mongo.drop_database(name)


def run_app() -> Any:
    from streamlit.testing.v1 import AppTest

    app = AppTest.from_file(str(APP), default_timeout=60).run()
    assert not app.exception, app.exception
    return app


def texts(app: Any) -> str:
    parts = [e.value for kind in ("error", "warning", "info", "markdown", "caption") for e in getattr(app, kind)]
    parts += [f"{m.label} {m.value}" for m in app.metric]
    return "\n".join(str(p) for p in parts)


def test_an_empty_database_says_there_is_no_data_yet(app_env: Store):
    shown = texts(run_app())
    assert "No data yet" in shown and "make demo" in shown


def test_stale_data_gets_a_warning(app_env: Store):
    app_env.write_observations(observations(floor_minute(datetime.now(UTC)) - timedelta(minutes=40), 30))
    shown = texts(run_app())
    assert "Stale data" in shown and "BTC_STALE_AFTER_S" in shown
    assert "Consensus price" in shown


def test_fresh_data_an_exchange_without_candles_and_alerts(app_env: Store, monkeypatch: pytest.MonkeyPatch):
    now = datetime.now(UTC)
    app_env.write_observations(observations(floor_minute(now) - timedelta(minutes=30), 31))
    app_env.record_alerts([Alert("above", now, 95_300, 95_250, 95_200, "BTC-USD rose above 95,250.00: 95,300.00")])
    monkeypatch.setenv("BTC_ALERT_ABOVE", "90000")
    app = run_app()
    shown = texts(app)
    assert "Stale data" not in shown and "No data yet" not in shown
    assert "Alert (this page): BTC-USD" in shown and "is above 90,000.00" in shown
    assert "Recorded by the pipeline" in shown and "rose above 95,250.00" in shown
    assert any(m.label == "24 h change" for m in app.metric)
    app.selectbox(key="source").set_value("kraken").run()
    assert "No kraken candles in this range yet" in texts(app) and "choose consensus" in texts(app)


@pytest.mark.parametrize(("window_min", "alerted"), [(60, True), (10, False)])
def test_the_page_measures_a_move_over_the_pipelines_window(
    app_env: Store, monkeypatch: pytest.MonkeyPatch, window_min: int, alerted: bool
):
    """The consensus rises 10 USD a minute: +0.63 % in 60 min crosses a 0.5 % threshold, +0.1 % in 10
    min does not. The page says which window it uses (BTC_ALERT_MOVE_WINDOW_MIN, the pipeline's)."""
    app_env.write_observations(observations(floor_minute(datetime.now(UTC)) - timedelta(minutes=70), 71))
    monkeypatch.setenv("BTC_ALERT_MOVE_PCT", "0.5")
    monkeypatch.setenv("BTC_ALERT_MOVE_WINDOW_MIN", str(window_min))
    app = run_app()
    assert f"Move over {window_min} min (%, 0 = off)" in [n.label for n in app.number_input]
    assert "BTC_ALERT_MOVE_WINDOW_MIN" in texts(app)
    moved = [e.value for e in app.error if "Alert (this page): BTC-USD moved" in e.value]
    assert bool(moved) == alerted, moved
    if alerted:
        assert "in 60 min" in moved[0] and "(threshold 0.5 %)" in moved[0]


def test_mongodb_unreachable_is_a_clear_message(monkeypatch: pytest.MonkeyPatch):
    from devstack.processes import free_port

    monkeypatch.setenv("BTC_MONGO_URI", f"mongodb://127.0.0.1:{free_port()}/")
    assert "MongoDB is not reachable at the configured BTC_MONGO_URI" in texts(run_app())


# --- in a real browser -----------------------------------------------------------------------


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Any]:
    from devstack.browser import chromium

    driver = chromium(downloads=tmp_path)
    driver.downloads = tmp_path
    try:
        yield driver
    finally:
        driver.quit()


def click(driver: Any, text: str) -> None:
    from selenium.webdriver.common.by import By

    found = [e for e in driver.find_elements(By.XPATH, f"//*[normalize-space(text())='{text}']") if e.is_displayed()]
    assert found, f"nothing labelled {text!r} on the page"
    press(driver, found[0])


def press(driver: Any, element: Any) -> None:
    """Click ``element`` once it is in the middle of the view (not under Streamlit's top bar)."""
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", element)
    element.click()


def page_text(driver: Any) -> str:
    from selenium.webdriver.common.by import By

    return str(driver.find_element(By.TAG_NAME, "body").text)


def app_idle(driver: Any) -> bool:
    """Streamlit is not running the script (or a fragment of it): what the page shows is complete."""
    state = "return document.querySelector('[data-testid=stApp]')?.getAttribute('data-test-script-state')"
    return driver.execute_script(state) == "notRunning"  # type: ignore[no-any-return]


def scroll_into_view(driver: Any, element: Any) -> None:
    """Scroll ``element`` to the middle of the view and wait until it is there (scrolling may be smooth)."""
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", element)
    centred = (
        "const r = arguments[0].getBoundingClientRect(), middle = (r.top + r.bottom) / 2;"
        "return middle >= 0 && middle <= window.innerHeight;"
    )
    wait_for(lambda: driver.execute_script(centred, element), 5, "the element scrolled into view", 0.05)


def screenshots(driver: Any, name: str) -> None:
    """``name.png``: the top of the page (header, controls); ``name-chart.png``: scrolled to the chart."""
    from selenium.webdriver.common.by import By

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    wait_for(lambda: app_idle(driver), 30, "the app to finish its run", 0.1)
    driver.execute_script("window.scrollTo(0, 0); document.querySelector('[data-testid=stMain]')?.scrollTo(0, 0)")
    at_top = "return window.scrollY === 0 && (document.querySelector('[data-testid=stMain]')?.scrollTop ?? 0) === 0"
    wait_for(lambda: driver.execute_script(at_top), 5, "the page scrolled to its top", 0.05)
    driver.save_screenshot(str(ARTIFACTS / f"{name}.png"))
    scroll_into_view(driver, driver.find_element(By.CSS_SELECTOR, ".js-plotly-plot"))
    driver.save_screenshot(str(ARTIFACTS / f"{name}-chart.png"))


def refreshed(driver: Any) -> str:
    """The time the page says it last refreshed."""
    return re.search(r"Refreshed (\S+) UTC", page_text(driver)).group(1)  # type: ignore[union-attr]


def the_chart_follows_the_theme(driver: Any) -> None:
    """Dark from the page's menu: the chart's text takes the page's new colour without a reload."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    colours = (
        "return [getComputedStyle(document.querySelector('[data-testid=stApp]')).color, "
        "document.querySelector('.js-plotly-plot')._fullLayout.font.color];"
    )
    light_page, light_chart = driver.execute_script(colours)
    assert light_chart == light_page
    # right after a refresh, so that the next one (10 s) cannot be what redraws the chart in time
    before = refreshed(driver)
    wait_for(lambda: refreshed(driver) != before, 15, "an auto-refresh", 0.2)
    press(driver, driver.find_element(By.CSS_SELECTOR, "[data-testid='stMainMenu'] button"))
    dark = "[data-testid='stMainMenuItem-theme-Dark']"
    press(driver, wait_for(lambda: driver.find_elements(By.CSS_SELECTOR, dark), 10, "the theme menu", 0.2)[0])
    dark_page, dark_chart = wait_for(
        lambda: (c := driver.execute_script(colours))[0] != light_page and c[1] == c[0] and c, 2, "the dark chart", 0.2
    )
    # at once (within 2 s), not at the next refresh's redraw (8 s or more away)
    assert dark_chart == dark_page != light_page
    driver.find_element(By.TAG_NAME, "body").send_keys(Keys.ESCAPE)  # closes the menu


def zoom_survives_the_refresh(driver: Any) -> None:
    """Drag-zoom into the chart as a user does; after a redraw with new data (an auto-refresh) the
    same chart element still shows the zoomed range."""
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    area = driver.find_element(By.CSS_SELECTOR, ".js-plotly-plot .nsewdrag")  # the upper pane's plot area
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", area)
    driver.execute_script("document.querySelector('.js-plotly-plot').__probe = 'the chart zoomed into'")
    width = area.size["width"]
    drag = ActionChains(driver).move_to_element_with_offset(area, -width // 4, 0).click_and_hold()
    drag.move_by_offset(width // 8, 0).move_by_offset(width // 8, 0).release().perform()
    shown = (
        "const g = document.querySelector('.js-plotly-plot'); "
        "return [g.__probe, g._fullLayout.xaxis.autorange, g._fullLayout.xaxis.range];"
    )
    probe, _, zoomed = wait_for(
        lambda: (view := driver.execute_script(shown))[1] is False and view, 10, "the zoomed range", interval_s=0.2
    )

    # count the redraws from here on: Streamlit draws again only when a refresh brought new data
    # (the next tick round), and only a redraw can lose the zoom
    driver.execute_script(
        "const g = document.querySelector('.js-plotly-plot'); g.__redraws = 0;"
        "g.on('plotly_afterplot', () => { g.__redraws += 1; });"
    )
    redraws = "return document.querySelector('.js-plotly-plot').__redraws;"
    wait_for(lambda: driver.execute_script(redraws) >= 1, 60, "a redraw of the chart with new data", 0.5)
    assert driver.execute_script(shown) == [probe, False, zoomed], "the refresh lost the zoom or drew a new chart"


def test_the_page_in_chromium_ranges_sources_export_and_screenshots(
    stack: Stack, browser: Any, mongo: MongoClient[Any]
):
    from selenium.webdriver.common.by import By

    assert http_ok(f"{stack.dashboard_url}/_stcore/health")
    store = Store(mongo["btc"])
    # two days of history, 12 to 14 days ago (no other test writes there), and the live ticks
    history = [
        o for o in observations(floor_minute(datetime.now(UTC)) - timedelta(days=14), 2880) if o.kind == "candle_1m"
    ]
    for i in range(0, len(history), 500):
        store.write_observations(history[i : i + 500])
    wait_for(lambda: len(store.latest()) >= 4, 240, "live ticks of the exchanges")
    started = time.monotonic()
    browser.get(stack.dashboard_url)

    def chart_drawn() -> bool:
        return bool(
            browser.find_elements(By.CSS_SELECTOR, ".js-plotly-plot g.trace")
        ) and "Consensus price" in page_text(browser)

    wait_for(chart_drawn, 60, "the chart and the consensus price", interval_s=0.2)
    print(f"\nfirst chart {time.monotonic() - started:.1f} s after navigation")
    screenshots(browser, "dashboard-1400")
    for exchange in ("coinbase", "kraken", "bitstamp", "binance"):
        assert exchange in page_text(browser), f"{exchange} missing from the exchanges table"
    scripts = browser.execute_script("return performance.getEntriesByType('resource').map(e => e.name)")
    assert any(s.endswith(f"/app/static/{BUNDLE}") for s in scripts), scripts
    assert not any("/PlotlyChart." in s for s in scripts), "Streamlit's 4.7 MB Plotly chunk was loaded"

    # the operator's view: the pipeline's health, below the chart
    click(browser, "Pipeline health")
    parts = ("Consumer lag", "Last finished run of each DAG", "Rejected messages", "Missing minutes in the last 24 h")
    # the panel's lines arrive one after the other
    wait_for(lambda: all(p in page_text(browser) for p in parts), 30, "the whole health panel", interval_s=0.5)
    assert "Traceback" not in page_text(browser)
    lag = browser.find_element(By.XPATH, "//*[starts-with(normalize-space(.), 'Consumer lag')]")
    scroll_into_view(browser, lag)
    browser.save_screenshot(str(ARTIFACTS / "dashboard-health-1400.png"))
    click(browser, "Pipeline health")

    click(browser, "30d")
    wait_for(lambda: "1h candles" in page_text(browser), 30, "the 30-day chart at 1-hour bars", interval_s=0.5)
    click(browser, "CSV")
    csv_file = wait_for(lambda: next(iter(browser.downloads.glob("*.csv")), None), 30, "the CSV download")
    exported = pd.read_csv(csv_file)
    assert list(exported.columns) == ["ts", "open", "high", "low", "close", "volume", "n"]
    end = floor_minute(datetime.now(UTC)) + MINUTE
    stored = store.bars(CONSENSUS, "1h", Window(end - timedelta(days=30), end))
    assert 48 <= len(exported) <= len(stored) + 1  # what the chart showed, give or take the bar that just started
    first = pd.Timestamp(exported["ts"].iloc[0])
    assert exported["close"].iloc[0] == pytest.approx(float(stored.set_index("ts").loc[first, "close"]))

    click(browser, "Parquet")
    parquet = wait_for(lambda: next(iter(browser.downloads.glob("*.parquet")), None), 30, "the Parquet download")
    assert len(pd.read_parquet(parquet)) == len(exported)

    # the source selector: Coinbase's own candles
    press(browser, browser.find_element(By.CSS_SELECTOR, "input[role='combobox'][aria-label='Source']"))
    option = wait_for(
        lambda: [e for e in browser.find_elements(By.CSS_SELECTOR, "[role='option']") if e.text.strip() == "coinbase"],
        10,
        "the source options",
        interval_s=0.2,
    )
    press(browser, option[0])
    wait_for(
        lambda: "1h candles, coinbase" in page_text(browser), 30, "the chart of Coinbase's candles", interval_s=0.5
    )
    click(browser, "Compare exchanges")
    wait_for(lambda: "Exchanges compared" in page_text(browser), 30, "the comparison view", interval_s=0.5)
    click(browser, "1h")
    wait_for(lambda: "1m bars of their ticker" in page_text(browser), 30, "the 1-hour comparison", interval_s=0.5)
    wait_for(chart_drawn, 30, "the comparison chart", interval_s=0.5)
    screenshots(browser, "dashboard-compare-1400")
    # the exchanges' ticker bars change with every tick round (10 s): a redraw with new data soon
    zoom_survives_the_refresh(browser)
    browser.set_window_size(800, 1000)
    click(browser, "Candles")
    wait_for(chart_drawn, 30, "the candles again", interval_s=0.5)
    screenshots(browser, "dashboard-800")
    assert "Traceback" not in page_text(browser)
    the_chart_follows_the_theme(browser)
    screenshots(browser, "dashboard-800-dark")


# --- no credentials on the page --------------------------------------------------------------


@pytest.fixture
def dashboard_without_database(tmp_path: Path) -> Iterator[tuple[str, str]]:
    """A real Streamlit server of the app (the dev stack's dashboard service, alone) whose BTC_MONGO_URI
    holds a known password and points at a port nobody listens on (as in Docker when MongoDB is down:
    the URI of the read-only user). Yields the page's URL and the password; the server is stopped by
    its pid, also on failure."""
    from devstack.config import free_ports
    from devstack.web import dashboard_service

    password = f"pw-{uuid.uuid4().hex}"
    stack = Stack("test", state_dir=tmp_path / "state", ports=free_ports())
    dashboard = dashboard_service(stack)
    nowhere = f"mongodb://btc_reader:{password}@127.0.0.1:{stack.ports['mongo']}/?authSource=admin"
    dashboard.env.update(BTC_MONGO_URI=nowhere, BTC_DASHBOARD_REFRESH_S="5")
    try:
        stack.start(dashboard)
        yield stack.dashboard_url, password
        assert password not in (stack.logs / "dashboard.log").read_text(), "the password is in the server's log"
    finally:
        stack.stop("dashboard", timeout_s=10)


def test_the_page_never_shows_the_password_while_mongodb_is_down(
    dashboard_without_database: tuple[str, str], browser: Any
) -> None:
    url, password = dashboard_without_database
    browser.get(url)
    message = "MongoDB is not reachable at the configured BTC_MONGO_URI"
    wait_for(lambda: message in page_text(browser), 60, "the unreachable message", 0.5)
    shown = page_text(browser)
    assert "mongodb://btc_reader:***@127.0.0.1:" in shown  # where it tried, as who, without the secret
    # the retried message too: count the app's runs from here on (each auto-refresh, every
    # BTC_DASHBOARD_REFRESH_S=5 s, runs the page's fragment) and wait for one to have ended
    browser.execute_script(
        "const app = document.querySelector('[data-testid=stApp]'); window.__runs = 0;"
        "new MutationObserver(() => {"
        "  if (app.getAttribute('data-test-script-state') === 'running') window.__runs += 1;"
        "})"
        ".observe(app, {attributes: true, attributeFilter: ['data-test-script-state']});"
    )
    wait_for(
        lambda: browser.execute_script("return window.__runs") >= 1 and app_idle(browser), 30, "an auto-refresh", 0.2
    )
    assert message in page_text(browser)
    assert password not in page_text(browser) and password not in browser.page_source
