"""The HTTP plumbing every exchange client shares: JSON over ``requests`` with explicit timeouts and
urllib3's :class:`~urllib3.util.Retry` for the failures worth retrying.

Retried: connection errors, read timeouts, HTTP 418/429 (rate limits) and 500/502/503/504, with
exponential backoff (``backoff_s``, ``2 * backoff_s``, ``4 * backoff_s``, ... capped) or, when the
exchange sends one, its ``Retry-After`` (capped at :data:`MAX_RETRY_AFTER_S`). Every other status,
and a body that is not JSON, fails at once.

Each call has a total deadline (``deadline_s``, ``BTC_HTTP_DEADLINE_S``) over all its attempts,
waits and the reading of the body: urllib3's timeout bounds each socket read only, so a server
dripping one byte a second would otherwise hold a call for as long as it likes. No retry starts
(nor is waited for) past the deadline; the body is read in pieces as they arrive, and the call fails
once the deadline passes or the body outgrows ``max_body_bytes`` (``BTC_HTTP_MAX_BODY_BYTES``). A
single socket read still waits at most ``timeout_s``, so a call ends within ``deadline_s +
timeout_s``. A failure is an
:class:`~btc_pipeline.exchanges.base.ExchangeError` that names the exchange, the endpoint and what
went wrong, and how many requests were made.

Every client reads a reply through :meth:`HttpClient.get_parsed`, the one boundary between a
reply and the pipeline: whatever a parser raises besides ``ExchangeError`` (a bug meeting a body
nobody foresaw) becomes an ``ExchangeError`` naming the exchange, the endpoint and the exception
class, so failover still goes on to the next exchange.

A call can be given a smaller retry budget than the configured one (``retries=``): Kraken's client
retries its HTTP-200 error answers itself and passes on what is left of the budget, so one logical
call never makes more than ``retries + 1`` requests in all.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import requests
from requests.adapters import HTTPAdapter
from urllib3 import PoolManager
from urllib3.exceptions import HTTPError, MaxRetryError, ReadTimeoutError
from urllib3.util import Retry

from btc_pipeline.exchanges.base import MAX_BACKOFF_S, ExchangeError
from btc_pipeline.exchanges.fields import text

log = logging.getLogger(__name__)

T = TypeVar("T")

RETRYABLE_STATUS = frozenset({418, 429, 500, 502, 503, 504})
#: Client errors that asking again will not fix (the rest, 408/425/429..., may pass later).
PERMANENT_STATUS = frozenset({400, 401, 403, 404, 405, 410, 451})
#: A ``Retry-After`` beyond this is not waited for in full (a task has a deadline).
MAX_RETRY_AFTER_S = 60.0
#: The body is read in pieces of at most this size, the deadline checked between them.
READ_CHUNK_BYTES = 64 * 1024


class DeadlinePassed(Exception):  # noqa: N818 - not an error of ours: a signal out of urllib3's retry loop
    """Raised inside urllib3's retry loop when the next attempt would start past the call's deadline.

    Deliberately not a urllib3 or OS error, so that neither urllib3 nor requests catches it.
    """


def decode_json(raw: bytes, exchange: str, endpoint: str) -> Any:
    """The JSON value of a body (UTF-8, -16 or -32, as :func:`json.loads` detects).

    Raises:
        ExchangeError: The body is not JSON (or nests deeper than Python's stack).
    """
    try:
        return json.loads(raw)
    except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
        snippet = raw[:120].decode("utf-8", "replace").replace("\n", " ")
        raise ExchangeError(exchange, endpoint, f"body is not JSON: {snippet!r}") from None


class ExchangeRetry(Retry):
    """urllib3's Retry with backoff from the first retry on, ``Retry-After`` on 418 too (Binance),
    a cap on ``Retry-After``, and a log line per retry."""

    RETRY_AFTER_STATUS_CODES = frozenset({413, 418, 429, 503})

    def __init__(self, *args: Any, deadline: float | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        #: ``time.monotonic()`` past which no retry starts (``None``: no deadline).
        self.deadline = deadline

    def new(self, **kw: Any) -> ExchangeRetry:
        new = super().new(**kw)
        new.deadline = self.deadline
        return new

    def sleep(self, response: Any = None) -> None:
        """Wait as urllib3 does (``Retry-After``, else the backoff), unless that ends past the deadline.

        Raises:
            DeadlinePassed: The next attempt would start past the deadline.
        """
        retry_after = self.get_retry_after(response) if response is not None else None
        wait = retry_after or self.get_backoff_time()
        if self.deadline is not None and time.monotonic() + wait >= self.deadline:
            raise DeadlinePassed(f"after {len(self.history)} attempts (last: {self.last_failure()})")
        super().sleep(response)

    def get_backoff_time(self) -> float:
        """``backoff_factor * 2 ** (n - 1)`` for the n-th consecutive retry (urllib3 waits 0 before the first)."""
        failures = len(self.history)
        if failures < 1 or self.backoff_factor <= 0:
            return 0.0
        return float(min(self.backoff_max, self.backoff_factor * 2 ** (failures - 1)))

    def parse_retry_after(self, retry_after: str) -> float:
        """Seconds to wait: delta-seconds (a decimal fraction is accepted too) or an HTTP date."""
        try:
            return max(0.0, float(retry_after))
        except ValueError:
            return float(super().parse_retry_after(retry_after))

    def get_retry_after(self, response: Any) -> float | None:
        value = super().get_retry_after(response)
        return None if value is None else min(value, MAX_RETRY_AFTER_S)

    def increment(self, *args: Any, **kwargs: Any) -> ExchangeRetry:
        new = super().increment(*args, **kwargs)
        log.warning("%s: %s; retry %d", new.history[-1].url, new.last_failure(), len(new.history))
        return new

    def last_failure(self) -> str:
        """What the last attempt met: its HTTP status, or its error."""
        last = self.history[-1] if self.history else None
        return f"HTTP {last.status}" if last is not None and last.status else str(getattr(last, "error", "?"))


class _CallAdapter(HTTPAdapter):
    """The adapter of one call: the call's own retry policy (it carries the call's deadline) over
    the connection pool that the client's calls share."""

    def __init__(self, pool: PoolManager, retry: ExchangeRetry) -> None:
        self._shared_pool = pool
        super().__init__(max_retries=retry)

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        self.poolmanager = self._shared_pool


class HttpClient:
    """GETs JSON from one exchange's base URL with a timeout, a total deadline, a body-size cap and
    bounded, backed-off retries."""

    def __init__(
        self,
        exchange: str,
        base_url: str,
        *,
        timeout_s: float,
        deadline_s: float,
        max_body_bytes: int,
        retries: int,
        backoff_s: float = 0.5,
    ) -> None:
        self.exchange = exchange
        self.base_url = base_url.rstrip("/")
        self.timeout_s = timeout_s
        self.deadline_s = deadline_s
        self.max_body_bytes = max_body_bytes
        self.retries = retries
        self.backoff_s = backoff_s
        self.session = requests.Session()  # prepares each request with requests' default headers
        self._pool = PoolManager(num_pools=4, maxsize=4)

    def retry_policy(self, retries: int, deadline: float | None = None) -> ExchangeRetry:
        """The urllib3 retry policy of a call with ``retries`` retries and a ``time.monotonic()`` deadline."""
        return ExchangeRetry(
            deadline=deadline,
            total=retries,
            connect=retries,
            read=retries,
            status=retries,
            other=0,
            allowed_methods=frozenset({"GET"}),
            status_forcelist=RETRYABLE_STATUS,
            backoff_factor=self.backoff_s,
            backoff_max=MAX_BACKOFF_S,
            respect_retry_after_header=True,
            raise_on_status=False,  # the last answer is reported with its status and body
        )

    def get_json(self, endpoint: str, params: Mapping[str, Any] | None = None) -> Any:
        """GET ``base_url + endpoint`` and return the decoded JSON body (see :meth:`get_json_counted`)."""
        return self.get_json_counted(endpoint, params)[0]

    def get_parsed(self, endpoint: str, parse: Callable[[Any], T], params: Mapping[str, Any] | None = None) -> T:
        """GET ``base_url + endpoint`` and parse the decoded body (see :meth:`parse_reply`)."""
        return self.parse_reply(endpoint, parse, self.get_json(endpoint, params))

    def parse_reply(self, endpoint: str, parse: Callable[[Any], T], body: Any) -> T:
        """``parse(body)``, where any exception but ``ExchangeError`` becomes one.

        Args:
            endpoint: Path below the base URL, for the error message.
            parse: Turns the decoded body into values (raises ExchangeError for a body it refuses).
            body: The decoded JSON body.

        Returns:
            What ``parse`` returns.

        Raises:
            ExchangeError: ``parse`` refused the body, or failed on it in a way nobody foresaw.
        """
        try:
            return parse(body)
        except ExchangeError:
            raise
        except Exception as exc:  # the boundary: a parser bug fails this exchange, never the failover
            log.exception("%s %s: the parser failed on a reply", self.exchange, endpoint)
            problem = f"unusable reply: the parser raised {type(exc).__name__}: {text(str(exc))}"
            raise ExchangeError(self.exchange, endpoint, problem) from exc

    def get_json_counted(
        self, endpoint: str, params: Mapping[str, Any] | None = None, *, retries: int | None = None
    ) -> tuple[Any, int]:
        """GET ``base_url + endpoint``: the decoded JSON body and how many requests it took.

        Args:
            endpoint: Path below the base URL.
            params: Query parameters.
            retries: Retries for this call; the configured ``retries`` when omitted.

        Returns:
            The decoded body of an HTTP 200 answer, and the number of requests made (retries included).

        Raises:
            ExchangeError: The retries are spent, the answer is not retryable, or not JSON, or
                the deadline passed, or the body is larger than ``max_body_bytes``.
        """
        budget = self.retries if retries is None else max(0, retries)
        deadline = time.monotonic() + self.deadline_s
        prepared = self.session.prepare_request(requests.Request("GET", self.base_url + endpoint, params=params))
        adapter = _CallAdapter(self._pool, self.retry_policy(budget, deadline))
        try:
            response = adapter.send(prepared, stream=True, timeout=self.timeout_s)
        except DeadlinePassed as exc:
            problem = f"gave up {exc} at the {self.deadline_s:g}s deadline (BTC_HTTP_DEADLINE_S)"
            raise ExchangeError(self.exchange, endpoint, problem) from None
        except requests.exceptions.ConnectTimeout as exc:
            raise self._error(endpoint, f"connection timed out after {self.timeout_s}s", budget, exc) from None
        except requests.exceptions.ReadTimeout as exc:
            raise self._error(endpoint, f"timed out after {self.timeout_s}s", budget, exc) from None
        except requests.exceptions.RetryError as exc:
            raise self._error(endpoint, f"gave up: {_reason(exc)}", budget, exc) from None
        except requests.exceptions.ConnectionError as exc:
            if _timed_out(exc):
                raise self._error(endpoint, f"timed out after {self.timeout_s}s", budget, exc) from None
            raise self._error(endpoint, f"connection failed: {_reason(exc)}", budget, exc) from None
        try:
            raw = self._read_body(response, endpoint, deadline)
        finally:
            response.close()
        if response.status_code != 200:
            snippet = raw[:200].decode("utf-8", "replace").replace("\n", " ")
            tries = _attempts(response)
            note = f" (gave up after {tries} attempts)" if response.status_code in RETRYABLE_STATUS else ""
            raise ExchangeError(
                self.exchange,
                endpoint,
                f"HTTP {response.status_code}: {snippet}{note}",
                permanent=response.status_code in PERMANENT_STATUS,
            )
        return decode_json(raw, self.exchange, endpoint), _attempts(response)

    def _read_body(self, response: requests.Response, endpoint: str, deadline: float) -> bytes:
        """The body, read in pieces as they arrive, within the deadline and the size cap.

        Raises:
            ExchangeError: The deadline passed or the body outgrew ``max_body_bytes`` while reading,
                or the connection failed.
        """
        body = bytearray()
        try:
            while piece := response.raw.read1(READ_CHUNK_BYTES, decode_content=True):
                body += piece
                if len(body) > self.max_body_bytes:
                    problem = f"body larger than {self.max_body_bytes} bytes (BTC_HTTP_MAX_BODY_BYTES)"
                    raise ExchangeError(self.exchange, endpoint, problem)
                if time.monotonic() > deadline:
                    problem = (
                        f"body not complete at the {self.deadline_s:g}s deadline (BTC_HTTP_DEADLINE_S): "
                        f"{len(body)} bytes read"
                    )
                    raise ExchangeError(self.exchange, endpoint, problem)
        except (HTTPError, OSError) as exc:  # a read timeout or a broken connection in the middle of the body
            raise ExchangeError(self.exchange, endpoint, f"reading the body failed: {exc}") from None
        return bytes(body)

    def _error(self, endpoint: str, problem: str, budget: int, exc: Exception) -> ExchangeError:
        log.debug("%s %s failed: %r", self.exchange, endpoint, exc)
        return ExchangeError(self.exchange, endpoint, f"{problem} (gave up after {budget + 1} attempts)")


def _reason(exc: Exception) -> str:
    inner = exc.args[0] if exc.args else exc
    if isinstance(inner, MaxRetryError) and inner.reason is not None:
        return str(inner.reason)
    return str(inner)


def _timed_out(exc: Exception) -> bool:
    inner = exc.args[0] if exc.args else None
    return isinstance(inner, MaxRetryError) and isinstance(inner.reason, ReadTimeoutError)


def _attempts(response: requests.Response) -> int:
    """How many requests the answer took (urllib3 keeps the retry history on the raw response)."""
    retries = getattr(response.raw, "retries", None)
    return len(retries.history) + 1 if retries is not None else 1
