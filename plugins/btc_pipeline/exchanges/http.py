"""The HTTP plumbing every exchange client shares: JSON over ``requests`` with explicit timeouts and
urllib3's :class:`~urllib3.util.Retry` for the failures worth retrying.

Retried: connection errors, read timeouts, HTTP 418/429 (rate limits) and 500/502/503/504, with
exponential backoff (``backoff_s``, ``2 * backoff_s``, ``4 * backoff_s``, ... capped) or, when the
exchange sends one, its ``Retry-After`` (capped at :data:`MAX_RETRY_AFTER_S`). Every other status,
and a body that is not JSON, fails at once. A failure is an
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

import logging
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import requests
from requests.adapters import HTTPAdapter
from urllib3.exceptions import MaxRetryError, ReadTimeoutError
from urllib3.util import Retry

from btc_pipeline.exchanges.base import ExchangeError
from btc_pipeline.exchanges.fields import text

log = logging.getLogger(__name__)

T = TypeVar("T")

RETRYABLE_STATUS = frozenset({418, 429, 500, 502, 503, 504})
#: Client errors that asking again will not fix (the rest, 408/425/429..., may pass later).
PERMANENT_STATUS = frozenset({400, 401, 403, 404, 405, 410, 451})
#: A ``Retry-After`` beyond this is not waited for in full (a task has a deadline).
MAX_RETRY_AFTER_S = 60.0
#: The longest backoff between two attempts without ``Retry-After``.
MAX_BACKOFF_S = 30.0


class ExchangeRetry(Retry):
    """urllib3's Retry with backoff from the first retry on, ``Retry-After`` on 418 too (Binance),
    a cap on ``Retry-After``, and a log line per retry."""

    RETRY_AFTER_STATUS_CODES = frozenset({413, 418, 429, 503})

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
        last = new.history[-1] if new.history else None
        why = f"HTTP {last.status}" if last is not None and last.status else str(getattr(last, "error", "error"))
        log.warning("%s: %s; retry %d", getattr(last, "url", "?"), why, len(new.history))
        return new


class HttpClient:
    """GETs JSON from one exchange's base URL with a timeout and bounded, backed-off retries."""

    def __init__(
        self,
        exchange: str,
        base_url: str,
        *,
        timeout_s: float,
        retries: int,
        backoff_s: float = 0.5,
        session: requests.Session | None = None,
    ) -> None:
        self.exchange = exchange
        self.base_url = base_url.rstrip("/")
        self.timeout_s = timeout_s
        self.retries = retries
        self.backoff_s = backoff_s
        self.session = session or requests.Session()
        self._adapters: dict[tuple[int, float], HTTPAdapter] = {}

    def retry_policy(self, retries: int) -> ExchangeRetry:
        """The urllib3 retry policy of a call with ``retries`` retries."""
        return ExchangeRetry(
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

    def _adapter(self, retries: int) -> HTTPAdapter:
        key = (retries, self.backoff_s)
        adapter = self._adapters.get(key)
        if adapter is None:
            adapter = self._adapters[key] = HTTPAdapter(max_retries=self.retry_policy(retries))
        return adapter

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
            ExchangeError: The retries are spent, or the answer is not retryable, or not JSON.
        """
        budget = self.retries if retries is None else max(0, retries)
        prepared = self.session.prepare_request(requests.Request("GET", self.base_url + endpoint, params=params))
        try:
            response = self._adapter(budget).send(prepared, timeout=self.timeout_s)
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
        if response.status_code != 200:
            snippet = response.text[:200].replace("\n", " ")
            tries = _attempts(response)
            note = f" (gave up after {tries} attempts)" if response.status_code in RETRYABLE_STATUS else ""
            raise ExchangeError(
                self.exchange,
                endpoint,
                f"HTTP {response.status_code}: {snippet}{note}",
                permanent=response.status_code in PERMANENT_STATUS,
            )
        try:
            return response.json(), _attempts(response)
        except (ValueError, RecursionError):  # RecursionError: JSON nested deeper than Python's stack
            snippet = response.text[:120].replace("\n", " ")
            raise ExchangeError(self.exchange, endpoint, f"body is not JSON: {snippet!r}") from None

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
