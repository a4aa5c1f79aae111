"""Field readers the exchange parsers share: numbers sent as strings or numbers, epoch times, and
short renderings of raw values for error messages.

Every reader raises :class:`~btc_pipeline.exchanges.base.ExchangeError` naming the exchange, the
endpoint and the offending field, so a bad body is reported as a failure of that exchange. A body
may hold anything JSON can (400-digit numbers, lists nested thousands deep): messages show raw
values through :func:`shown`, never ``repr``, which would raise ``RecursionError`` on deep nesting.
"""

from __future__ import annotations

import math
import reprlib
from datetime import UTC, datetime, timedelta
from typing import Any

from btc_pipeline.exchanges.base import ExchangeError

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


_EARLIEST_S = 1_230_768_000  # 2009-01-01: nothing BTC is older
_LATEST_S = 4_102_444_800  # 2100-01-01


def epoch_seconds(value: Any, exchange: str, endpoint: str, what: str) -> datetime:
    """Read an epoch time in seconds (a JSON number or a digit string) as an aware UTC datetime.

    Args:
        value: The raw JSON value.
        exchange: Exchange name, for the error message.
        endpoint: Endpoint path, for the error message.
        what: Field name, for the error message.

    Returns:
        The instant, in UTC.

    Raises:
        ExchangeError: The value is not a number or not a plausible time in seconds (2009..2100).
    """
    seconds = number(value, exchange, endpoint, what)
    if not _EARLIEST_S <= seconds <= _LATEST_S:
        raise ExchangeError(exchange, endpoint, f"{what}={shown(value)} is not a plausible epoch time in seconds")
    return datetime.fromtimestamp(seconds, UTC)


def epoch_millis(value: Any, exchange: str, endpoint: str, what: str) -> datetime:
    """Read an epoch time in milliseconds (a JSON number or a digit string) as an aware UTC datetime.

    Args:
        value: The raw JSON value.
        exchange: Exchange name, for the error message.
        endpoint: Endpoint path, for the error message.
        what: Field name, for the error message.

    Returns:
        The instant, in UTC, exact to the millisecond.

    Raises:
        ExchangeError: The value is not a whole number or not a plausible time in milliseconds.
    """
    millis = number(value, exchange, endpoint, what)
    if millis != int(millis) or not _EARLIEST_S * 1000 <= millis <= _LATEST_S * 1000:
        raise ExchangeError(exchange, endpoint, f"{what}={shown(value)} is not a plausible epoch time in milliseconds")
    whole = int(millis)
    return datetime.fromtimestamp(whole // 1000, UTC) + timedelta(milliseconds=whole % 1000)
