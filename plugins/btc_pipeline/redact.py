"""Credentials are never shown: the one helper every URI, and every message that may hold one, goes
through before it reaches a log, a page, an error or stderr.

- :func:`redact_uri` masks the password of one URI (``mongodb://btc:***@mongodb:27017/``) and the
  values of its options that carry secrets (``tlsCertificateKeyFilePassword``,
  ``authMechanismProperties``, any ``...password/secret/token/key=``).
- :func:`redact_text` does the same to every URI inside a text (a driver's exception message).
- :func:`redact_notify_url` and :func:`redact_notify_text` do it for notification (Apprise) URLs,
  whose tokens sit in the host and path as well: only the scheme (and a webhook's host) is shown.

A MongoDB URI is read with PyMongo's own parser, so the user name shown is the one the driver
logs in with; ``mongodb+srv://`` is parsed as its ``mongodb://`` twin, so nothing is looked up in
DNS. Every other scheme (Airflow connection URIs such as ``mongo://``, ``postgresql+psycopg2://``,
``http://``), and a MongoDB URI the parser refuses, is read the way PyMongo reads user information:
everything between ``://`` and the last ``@``. A malformed URI (an unescaped ``@``, ``/`` or ``?``
in its password) is therefore masked too, never shown as it is: what cannot be told apart from a
password is masked, the user name with it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from urllib.parse import quote_plus

#: What a secret is replaced with.
MASK = "***"

#: Schemes read with PyMongo's URI parser.
MONGODB_SCHEMES = ("mongodb", "mongodb+srv")

_URI_IN_TEXT = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://\S+")
_SECRET_OPTION = re.compile(
    r"(?i)(?P<key>[?&;](?:authMechanismProperties|[^=&;#?]*(?:password|passwd|secret|token|key)[^=&;#?]*)=)[^&;#]*"
)
#: A user name that can be shown as it is: unreserved characters and %-escapes only (RFC 3986).
_PLAIN_USER = re.compile(r"[A-Za-z0-9._~%+-]+")


def _driver_user(scheme: str, rest: str) -> str | None:
    """The user name PyMongo reads from a MongoDB URI (``rest``: what follows ``://``), or None
    when the scheme is another, the parser refuses the URI, or it names no user."""
    if scheme.lower() not in MONGODB_SCHEMES:
        return None
    from pymongo.errors import PyMongoError
    from pymongo.uri_parser import parse_uri

    try:
        # the +srv twin as mongodb://: the same user information, and no DNS lookup
        parsed = parse_uri(f"mongodb://{rest}", validate=False, warn=False)
    except (PyMongoError, ValueError):
        return None
    user = parsed.get("username")
    return None if user is None else str(user)


def redact_uri(uri: str) -> str:
    """``uri`` with its password (and the values of secret options) replaced by ``***``.

    Args:
        uri: Any URI, valid or not (``mongodb://btc:s3cret@mongodb:27017/?authSource=admin``).

    Returns:
        The URI fit to show (``mongodb://btc:***@mongodb:27017/?authSource=admin``): the user name
        stays when it can be read for certain, and is masked too otherwise (``https://***@host``
        for a token given as user name). Text without ``://`` is returned unchanged.
    """
    scheme, sep, rest = uri.partition("://")
    if not sep:
        return uri
    userinfo, at, tail = rest.rpartition("@")
    if at:
        # PyMongo takes the user information from the part before the first "/" or "?"; when that
        # is where the last "@" is, the driver's reading holds, and the password is all inside it.
        authority_userinfo = rest.partition("?")[0].partition("/")[0].rpartition("@")[0]
        driver_user = _driver_user(scheme, rest) if authority_userinfo == userinfo else None
        user, colon, _ = userinfo.partition(":")
        if driver_user is not None:
            shown = quote_plus(driver_user) + (f":{MASK}" if colon else "")
        elif colon and _PLAIN_USER.fullmatch(user):
            shown = f"{user}:{MASK}"
        elif not colon and scheme.lower() in MONGODB_SCHEMES and _PLAIN_USER.fullmatch(user):
            shown = user  # a user without a password (X.509, Kerberos): nothing secret
        else:
            shown = MASK
        rest = f"{shown}@{tail}"
    return f"{scheme}://{_SECRET_OPTION.sub(lambda m: m['key'] + MASK, rest)}"


def redact_text(text: str) -> str:
    """``text`` with every URI in it passed through :func:`redact_uri`.

    A URI ends at the first white space, so a password with white space in it can only be masked
    up to it: give :func:`redact_uri` a URI you hold whole.

    Args:
        text: A message, for example an exception's ``str()``.

    Returns:
        The message fit to show.
    """
    return _URI_IN_TEXT.sub(lambda match: redact_uri(match.group()), text)


#: Apprise schemes whose host is a web address that can be shown (the rest of the URL cannot):
#: generic webhooks, mail servers, self-hosted services. Every other scheme keeps its tokens in the
#: host and path (``slack://TokenA/TokenB/TokenC``, ``tgram://bottoken/chat``), so only the scheme is shown.
_SHOWN_HOST_SCHEMES = frozenset(
    {"json", "jsons", "form", "forms", "xml", "xmls", "mailto", "mailtos", "ntfy", "ntfys", "gotify", "gotifys"}
)
_HOST = re.compile(r"(?:[^@/?#]*@)?(?P<host>[^/?#:@]+(?::\d+)?)")


def redact_notify_url(url: str) -> str:
    """A notification (Apprise) URL fit to show: its scheme, the host when the scheme's host is
    not a token, and ``***`` for everything else (user, password, path, query).

    Apprise URLs carry their secrets anywhere (``slack://T1/B2/C3``, ``tgram://123:abc/456``,
    ``mailto://user:pass@example.com``), so unlike :func:`redact_uri` nothing but the scheme and
    a web host is kept.

    Args:
        url: An Apprise URL as configured (``BTC_NOTIFY_URLS``).

    Returns:
        e.g. ``json://127.0.0.1:8123/***``, ``slack://***``; text without ``://`` becomes ``***``.
    """
    scheme, sep, rest = url.strip().partition("://")
    if not sep or not scheme:
        return MASK
    scheme = scheme.lower()
    match = _HOST.match(rest)
    if scheme in _SHOWN_HOST_SCHEMES and match and match["host"]:
        return f"{scheme}://{match['host']}/{MASK}"
    return f"{scheme}://{MASK}"


def redact_notify_text(text: str, urls: Iterable[str]) -> str:
    """``text`` with each of ``urls`` (and every URI in it) made fit to show.

    Each configured URL, and each of its parts longer than 3 characters between ``/``, ``:``, ``@``,
    ``?``, ``&`` and ``=``, is masked: a library's message may quote a token without its URL.

    Args:
        text: A message, e.g. an exception's ``str()`` or a library's log lines.
        urls: The notification URLs that may appear in it.

    Returns:
        The message fit to show.
    """
    for url in sorted(urls, key=len, reverse=True):
        text = text.replace(url, redact_notify_url(url))
        _, _, rest = url.partition("://")
        for part in sorted(set(re.split(r"[/:@?&=,]+", rest)), key=len, reverse=True):
            if len(part) > 3 and part.lower() not in HARMLESS_PARTS:
                text = text.replace(part, MASK)
    return redact_text(text)


#: Parts of a URL that are no secret and would mask ordinary words if masked.
HARMLESS_PARTS = frozenset({"localhost", "json", "jsons", "http", "https", "format", "markdown", "text", "html"})
