"""Sending a message to its channels through Apprise, with bounded retries, and recording each
delivery: the one place a notification leaves the pipeline.

Delivery never raises and never waits long: each channel gets :data:`ATTEMPTS` tries (tenacity,
exponential wait), each bounded by Apprise's own timeouts and :data:`CALL_TIMEOUT_S`; whatever
happens ends as a :class:`Delivery` with an outcome, stored in ``btc.notifications`` when a store
is given. A URL is shown only redacted (:func:`btc_pipeline.redact.redact_notify_url`), also in
the errors Apprise reports.

:class:`Outbox` sends in a background thread, for callers that must not wait (the drain).
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal

from tenacity import Retrying, retry_if_result, stop_after_attempt, wait_exponential

from btc_pipeline.notify.messages import Message
from btc_pipeline.redact import redact_notify_text, redact_notify_url

if TYPE_CHECKING:
    from btc_pipeline.store import Store

log = logging.getLogger(__name__)

#: Tries per channel, and the exponential wait between them (seconds).
ATTEMPTS = 3
WAIT_MIN_S, WAIT_MAX_S = 1.0, 4.0
#: The longest one try may take (Apprise stops waiting then).
CALL_TIMEOUT_S = 10.0
#: The longest :func:`send` takes on one URL: every try timed out, with the longest waits between.
WORST_SEND_S = ATTEMPTS * CALL_TIMEOUT_S + (ATTEMPTS - 1) * WAIT_MAX_S

Outcome = Literal["sent", "failed", "invalid_url"]


@dataclass(frozen=True)
class Delivery:
    """One message to one channel: how it ended, after how many tries, and why (redacted)."""

    channel: str
    outcome: Outcome
    attempts: int
    detail: str = ""

    @property
    def ok(self) -> bool:
        return self.outcome == "sent"


class _RedactApprise(logging.Filter):
    """Apprise logs through the ``apprise`` logger (into Airflow's task logs): every URL this process
    sent to is masked in what it logs, whatever a plugin puts in its messages."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: set[str] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        if self.urls:
            record.msg, record.args = redact_notify_text(record.getMessage(), self.urls), None
        return True


_APPRISE_LOG = _RedactApprise()
logging.getLogger("apprise").addFilter(_APPRISE_LOG)


#: What :func:`_send_once` says of a URL no Apprise service reads (not retried).
_INVALID_URL = "invalid_url"


def _send_once(url: str, message: Message) -> str | None:
    """One try: ``None`` when it was sent, else why not."""
    import apprise

    _APPRISE_LOG.urls.add(url)
    client = apprise.Apprise()
    if not client.add(url):
        return _INVALID_URL
    try:
        result = client.notify(
            body=message.body,
            title=message.title,
            notify_type=apprise.NotifyType(message.level),
            body_format=apprise.NotifyFormat.MARKDOWN,
            timeout=CALL_TIMEOUT_S,
        )
        if result:
            return None
        problems = [e.message for r in result.results for e in r.logs() if e.level in ("WARNING", "ERROR", "CRITICAL")]
        return "; ".join(problems[-3:]) or f"apprise: {result.status.name.lower()}"
    except Exception as exc:  # noqa: BLE001 - a plugin's bug is a failed delivery, not a failed pipeline
        return f"{type(exc).__name__}: {exc}"


def send(message: Message, url: str, *, wait_min_s: float | None = None, wait_max_s: float | None = None) -> Delivery:
    """Send ``message`` to one Apprise URL: up to :data:`ATTEMPTS` tries of at most :data:`CALL_TIMEOUT_S`.

    Args:
        message: What to send.
        url: The Apprise URL.
        wait_min_s: The first wait between tries (default :data:`WAIT_MIN_S`), doubled each time...
        wait_max_s: ... up to this (default :data:`WAIT_MAX_S`).

    Returns:
        The delivery (never raises); an invalid URL is not retried.
    """
    wait_min_s = WAIT_MIN_S if wait_min_s is None else wait_min_s
    wait_max_s = WAIT_MAX_S if wait_max_s is None else wait_max_s
    retrying = Retrying(
        stop=stop_after_attempt(ATTEMPTS),
        wait=wait_exponential(multiplier=wait_min_s, min=wait_min_s, max=wait_max_s),
        retry=retry_if_result(lambda problem: problem not in (None, _INVALID_URL)),
        retry_error_callback=lambda state: state.outcome.result() if state.outcome else "no try",
    )
    problem = retrying(_send_once, url, message)
    channel, tries = redact_notify_url(url), retrying.statistics["attempt_number"]
    if problem is None:
        return Delivery(channel, "sent", tries)
    if problem == _INVALID_URL:
        return Delivery(channel, "invalid_url", tries, "no Apprise service has this URL's syntax (see Apprise's wiki)")
    return Delivery(channel, "failed", tries, redact_notify_text(problem, [url])[:500])


def delivery_document(message: Message, delivery: Delivery, at: datetime) -> dict[str, Any]:
    """The ``btc.notifications`` document of one delivery: what, to which channel (redacted), when, outcome."""
    return {
        "_id": f"{at:%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:12]}",
        "at": at,
        "topic": message.topic,
        "kind": message.kind,
        "key": message.key,
        "title": message.title,
        **asdict(delivery),
    }


def deliver(
    message: Message,
    urls: Sequence[str],
    store: Store | None,
    *,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    **send_options: Any,
) -> list[Delivery]:
    """Send ``message`` to every URL and record each delivery in ``store`` (when given).

    Nothing is sent, and nothing read or written, when ``urls`` is empty. Never raises: a store that
    cannot record is logged (redacted) and the deliveries are still returned.

    Args:
        message: What to send.
        urls: The Apprise URLs of its topic.
        store: Where to record the deliveries (``None``: not recorded, e.g. a store that is down).
        clock: The time recorded.
        send_options: Passed to :func:`send` (tests shorten the waits).

    Returns:
        One delivery per URL, in order.
    """
    if not urls:
        return []
    deliveries = [send(message, url, **send_options) for url in urls]
    for d in deliveries:
        level = logging.INFO if d.ok else logging.WARNING
        log.log(
            level,
            "notification %s %r to %s: %s after %d try(s) %s",
            message.kind,
            message.title,
            d.channel,
            d.outcome,
            d.attempts,
            d.detail,
        )
    if store is not None:
        at = clock()
        try:
            store.record_deliveries([delivery_document(message, d, at) for d in deliveries])
        except Exception as exc:  # noqa: BLE001 - recording is a courtesy; the message went out (or not) already
            log.warning(
                "could not record %d notification deliveries: %s", len(deliveries), redact_notify_text(str(exc), urls)
            )
    return deliveries


class Outbox:
    """Notification work (checks that decide what to send, and their deliveries) in one background
    thread, so the caller never waits on a receiver nor on the store's notification records.

    ``close(timeout_s)`` waits at most that long for what is queued (logged when it did not end);
    each delivery is bounded itself (:data:`ATTEMPTS` tries of at most :data:`CALL_TIMEOUT_S`).
    ``secret_urls`` (the configured notification URLs) are masked in the errors of a check it logs.
    """

    def __init__(self, *, secret_urls: Sequence[str] = ()) -> None:
        self.secret_urls = secret_urls
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="btc-notify")
        self._pending: list[Future[list[Delivery]]] = []
        self._lock = threading.Lock()

    def call(self, check: Callable[..., Sequence[Delivery]], *args: Any) -> None:
        """Run ``check(*args)`` (it delivers what it decides to) in the background; its errors are
        logged, redacted."""

        def guarded() -> list[Delivery]:
            try:
                return list(check(*args))
            except Exception as exc:  # noqa: BLE001 - a notification check never fails its caller
                error = redact_notify_text(str(exc), self.secret_urls)
                log.warning("notification check %s failed: %s", getattr(check, "__name__", check), error)
                return []

        with self._lock:
            self._pending.append(self._pool.submit(guarded))

    def close(self, timeout_s: float = 30.0) -> list[Delivery]:
        """Wait up to ``timeout_s`` for the queued deliveries; returns those that ended."""
        with self._lock:
            pending, self._pending = self._pending, []
        done, not_done = wait(pending, timeout=timeout_s)
        if not_done:
            log.warning(
                "%d notification(s) still being sent after %.0f s: left to finish in the background",
                len(not_done),
                timeout_s,
            )
        self._pool.shutdown(wait=False)
        return [d for f in done for d in f.result()]
