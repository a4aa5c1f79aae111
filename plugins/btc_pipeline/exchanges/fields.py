"""Field readers the exchange parsers share: numbers sent as strings or numbers, times (epoch or
ISO-8601, every one checked by the project's one rule for a plausible time), and short renderings
of raw values for error messages.

Every reader raises :class:`~btc_pipeline.exchanges.base.ExchangeError` naming the exchange, the
endpoint and the offending field, so a bad body is reported as a failure of that exchange. A body
may hold anything JSON can (400-digit numbers, lists nested thousands deep): messages show raw
values through :func:`shown`, never ``repr``, which would raise ``RecursionError`` on deep nesting.
"""

from __future__ import annotations

import math
import reprlib
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from btc_pipeline.exchanges.base import Candle, ExchangeError, TimeRule

_SHOWN = reprlib.Repr()
_SHOWN.maxlevel, _SHOWN.maxstring, _SHOWN.maxlong, _SHOWN.maxother = 3, 80, 40, 80


def shown(value: Any) -> str:
    """A raw JSON value as a short ``repr`` for an error message, bounded in depth and length."""
    return _SHOWN.repr(value)


def text(value: Any) -> str:
    """A raw JSON value as message text: a string as it is (cut to 200 characters), anything else :func:`shown`."""
    return value[:200] if isinstance(value, str) else shown(value)


def number(value: Any, exchange: str, endpoint: str, what: str) -> float:
    """Read a finite number sent as a JSON number or a decimal string.

    Args:
        value: The raw JSON value.
        exchange: Exchange name, for the error message.
        endpoint: Endpoint path, for the error message.
        what: Field name, for the error message.

    Returns:
        The value as a float.

    Raises:
        ExchangeError: The value is a bool, not numeric, or not finite.
    """
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ExchangeError(exchange, endpoint, f"{what}={shown(value)} is not a number")
    try:
        result = float(value)
    except ValueError:
        raise ExchangeError(exchange, endpoint, f"{what}={shown(value)} is not a number") from None
    except OverflowError:  # an integer beyond float's range (a 400-digit number)
        raise ExchangeError(exchange, endpoint, f"{what}={shown(value)} is not a finite number") from None
    if not math.isfinite(result):
        raise ExchangeError(exchange, endpoint, f"{what}={shown(value)} is not a finite number")
    return result


def candle(ts: datetime, raw: Mapping[str, Any], exchange: str, endpoint: str) -> Candle:
    """The candle at ``ts`` with the open, high, low, close and volume of ``raw``, each read by :func:`number`."""
    return Candle(ts, *(number(raw[n], exchange, endpoint, n) for n in ("open", "high", "low", "close", "volume")))


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _since_epoch(
    amount: float, unit: timedelta, value: Any, exchange: str, endpoint: str, what: str, times: TimeRule
) -> datetime:
    try:
        ts = _EPOCH + unit * amount
    except OverflowError:  # beyond datetime's years 1..9999
        raise ExchangeError(exchange, endpoint, f"{what}={shown(value)} is no representable time") from None
    return times.check(ts, exchange, endpoint, what)


def epoch_seconds(value: Any, exchange: str, endpoint: str, what: str, times: TimeRule) -> datetime:
    """Read an epoch time in seconds (a JSON number or a digit string) that ``times`` believes.

    Args:
        value: The raw JSON value.
        exchange: Exchange name, for the error message.
        endpoint: Endpoint path, for the error message.
        what: Field name, for the error message.
        times: The rule the time must pass.

    Returns:
        The instant, in UTC.

    Raises:
        ExchangeError: The value is not a number, or not a plausible time.
    """
    seconds = number(value, exchange, endpoint, what)
    return _since_epoch(seconds, timedelta(seconds=1), value, exchange, endpoint, what, times)


def epoch_millis(value: Any, exchange: str, endpoint: str, what: str, times: TimeRule) -> datetime:
    """Read an epoch time in whole milliseconds (a JSON number or a digit string) that ``times`` believes.

    Returns:
        The instant, in UTC, exact to the millisecond.

    Raises:
        ExchangeError: The value is not a whole number, or not a plausible time.
    """
    millis = number(value, exchange, endpoint, what)
    if millis != int(millis):
        raise ExchangeError(exchange, endpoint, f"{what}={shown(value)} is not a whole number of milliseconds")
    return _since_epoch(int(millis), timedelta(milliseconds=1), value, exchange, endpoint, what, times)


def iso_time(value: Any, exchange: str, endpoint: str, what: str, times: TimeRule) -> datetime:
    """Read an ISO-8601 date and time with its UTC offset (``Z`` or ``+hh:mm``) that ``times`` believes.

    A time without an offset, or a bare date, is refused: the exchange did not say which instant it means.

    Returns:
        The instant, in UTC.

    Raises:
        ExchangeError: The value is not such a text, or not a plausible time.
    """
    if not isinstance(value, str):
        raise ExchangeError(exchange, endpoint, f"{what}={shown(value)} is not a string")
    try:
        ts = datetime.fromisoformat(value)
    except ValueError:
        raise ExchangeError(exchange, endpoint, f"{what}={shown(value)} is not ISO-8601") from None
    if ts.tzinfo is None:
        raise ExchangeError(exchange, endpoint, f"{what}={shown(value)} has no UTC offset (Z or +hh:mm)")
    return times.check(ts, exchange, endpoint, what)
