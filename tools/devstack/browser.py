"""Headless Chromium for the browser test and the first-chart benchmark: Debian's ``chromium`` and
``chromedriver`` (``make browser``), with the flags that keep it quiet and reproducible offline."""

from __future__ import annotations

from pathlib import Path
from typing import Any

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1400,1000",
)


def chromium(*, profile: Path | None = None, downloads: Path | None = None) -> Any:
    """A Selenium driver of headless Chromium at 1400x1000.

    Args:
        profile: The browser profile directory (a fresh one each time means an empty HTTP cache).
        downloads: Where downloads are saved.
    """
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in FLAGS:
        options.add_argument(flag)
    if profile is not None:
        options.add_argument(f"--user-data-dir={profile}")
    if downloads is not None:
        options.add_experimental_option("prefs", {"download.default_directory": str(downloads)})
    return webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
