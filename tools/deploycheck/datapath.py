"""The data path, seen from inside the running deployment: Kafka and MongoDB from a container of the
stack, the read API and the dashboard on their published ports."""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from deploycheck.report import DeployCheckError

T = TypeVar("T")

#: Run with ``python -c`` in an Airflow container (it has the pipeline's settings and clients):
#: the topics' partitions, how many messages were produced and how many the drain's group
#: committed, and what MongoDB holds. Argument: a window start (ISO) for the candles counted in it.
PIPELINE_PROBE = r"""
import json, os, sys
from datetime import datetime
from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import AdminClient
from pymongo import MongoClient

boot = os.environ["BTC_KAFKA_BOOTSTRAP"]
topic, dlq = os.environ.get("BTC_TOPIC", "btc-metrics"), os.environ.get("BTC_DLQ_TOPIC", "btc-metrics-dlq")
meta = AdminClient({"bootstrap.servers": boot}).list_topics(timeout=15)
partitions = {t: len(meta.topics[t].partitions) for t in (topic, dlq) if t in meta.topics}
consumer = Consumer({"bootstrap.servers": boot, "group.id": os.environ.get("BTC_CONSUMER_GROUP", "btc-drain"),
                     "enable.auto.commit": False})
tps = [TopicPartition(topic, p) for p in range(partitions.get(topic, 0))]
committed = consumer.committed(tps, timeout=15) if tps else []
produced = sum(consumer.get_watermark_offsets(tp, timeout=15)[1] for tp in tps)
consumer.close()
db = MongoClient(os.environ["BTC_MONGO_URI"], serverSelectionTimeoutMS=15000)[os.environ.get("BTC_MONGO_DB", "btc")]
since = datetime.fromisoformat(sys.argv[1]) if len(sys.argv) > 1 else None
in_window = set()
if since is not None:
    for doc in db.prices.find({"kind": "candle_1m", "ts": {"$gte": since}}, {"ts": 1}):
        in_window.add(doc["ts"].isoformat())
print(json.dumps({
    "partitions": partitions,
    "produced": produced,
    "committed": sum(max(0, tp.offset) for tp in committed),
    "candles": db.prices.count_documents({"kind": "candle_1m"}),
    "ticks": db.prices.count_documents({"kind": "tick"}),
    "minutes_in_window": len(in_window),
}))
"""


def wait_for(probe: Callable[[], T | None], timeout_s: float, what: str, interval_s: float = 2.0) -> T:
    """Call ``probe`` until it returns something truthy; its last error or value goes in the failure.

    Raises:
        DeployCheckError: Nothing truthy within ``timeout_s``.
    """
    deadline = time.monotonic() + timeout_s
    last: object = None
    while True:
        try:
            value = probe()
            if value:
                return value
            last = value
        except DeployCheckError:
            raise  # a verdict, not "not yet"
        except Exception as exc:  # noqa: BLE001 - any other failure of a probe means "not yet"; shown at the end
            last = f"{type(exc).__name__}: {exc}"
        if time.monotonic() >= deadline:
            raise DeployCheckError(f"{what}: not seen within {timeout_s:.0f} s (last: {str(last)[:500]})")
        time.sleep(interval_s)


def get_json(url: str, timeout_s: float = 10) -> Any:
    with urllib.request.urlopen(url, timeout=timeout_s) as response:  # noqa: S310 - the stack on localhost
        return json.loads(response.read())


@dataclass
class Latest:
    """``/v1/prices/latest`` at one moment."""

    consensus: float
    age_s: float
    exchanges: dict[str, float]

    @property
    def shown(self) -> str:
        """The consensus as the dashboard writes it."""
        return f"${self.consensus:,.2f}"


def latest_price(api_url: str) -> Latest | None:
    """The read API's latest consensus, or None while it has none."""
    answer = get_json(f"{api_url}/v1/prices/latest")
    if answer.get("consensus") is None or answer.get("age_s") is None:
        return None
    return Latest(
        float(answer["consensus"]),
        float(answer["age_s"]),
        {x["source"]: float(x["price"]) for x in answer["exchanges"]},
    )


def dashboard_shows_price(
    dashboard_url: str, api_url: str, screenshot: Path, timeout_s: float = 120
) -> tuple[Latest, float]:
    """Open the dashboard in headless Chromium until its page shows the consensus price the API serves
    (the one it served at most 30 s earlier: both refresh every few seconds), then save a screenshot.

    Returns:
        The API's answer the page showed, and the seconds from navigation to seeing it.

    Raises:
        DeployCheckError: The page never showed it.
    """
    from selenium.webdriver.common.by import By

    from devstack.browser import chromium

    driver = chromium()
    try:
        started = time.monotonic()
        driver.get(dashboard_url)
        recent: list[tuple[float, Latest]] = []

        def shown() -> Latest | None:
            now = time.monotonic()
            latest = latest_price(api_url)
            if latest is not None:
                recent.append((now, latest))
            del recent[: max(0, len([t for t, _ in recent if now - t > 30]))]
            text = str(driver.find_element(By.TAG_NAME, "body").text)
            if "Traceback" in text:
                raise DeployCheckError(f"the dashboard shows a traceback: {text[:800]}")
            return next((x for _, x in reversed(recent) if "Consensus price" in text and x.shown in text), None)

        match = wait_for(shown, timeout_s, "the dashboard showing the API's consensus price", interval_s=1.0)
        seen_after = time.monotonic() - started
        time.sleep(1)
        screenshot.parent.mkdir(parents=True, exist_ok=True)
        driver.save_screenshot(str(screenshot))
        return match, seen_after
    finally:
        driver.quit()
