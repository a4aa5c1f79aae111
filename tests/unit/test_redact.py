"""The redaction helper (btc_pipeline.redact): a password never survives it, whatever its text."""

from __future__ import annotations

from urllib.parse import quote_plus

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from btc_pipeline.redact import MASK, redact_text, redact_uri

SCHEMES = ("mongodb", "mongodb+srv", "mongo", "postgresql+psycopg2", "https", "redis")
#: Each rendering the helper may give the property tests' URIs: a password that is a substring of
#: one of them cannot be told from the rest of the text, so the properties skip it.
TAIL = "db.example:27017/btc?authSource=admin"
RENDERINGS = tuple(f"{scheme}://{user}{MASK}@{TAIL}" for scheme in SCHEMES for user in ("btc:", ""))


def shown_anywhere(secret: str) -> bool:
    return any(secret in rendering for rendering in RENDERINGS)


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        (
            "mongodb://btc:s3cret@mongodb:27017/?authSource=admin",
            "mongodb://btc:***@mongodb:27017/?authSource=admin",
        ),
        # no DNS lookup: the host does not exist
        ("mongodb+srv://u:p4ss@cluster0.invalid/db", "mongodb+srv://u:***@cluster0.invalid/db"),
        ("mongodb://127.0.0.1:27017/", "mongodb://127.0.0.1:27017/"),
        ("mongodb://alice@host/", "mongodb://alice@host/"),  # a user without a password
        ("mongodb://b%40c:p%3Aw@h/", "mongodb://b%40c:***@h/"),  # the escaped user as the driver reads it
        # an Airflow connection URI and the metadata database's
        ("mongo://btc:pw@mongodb:27017/btc?authSource=admin", "mongo://btc:***@mongodb:27017/btc?authSource=admin"),
        (
            "postgresql+psycopg2://airflow:pw@postgres:5432/airflow",
            "postgresql+psycopg2://airflow:***@postgres:5432/airflow",
        ),
        ("https://ghp_token@github.com/x", "https://***@github.com/x"),  # a token as user name
        ("redis://:tok@r:6379/0", "redis://***@r:6379/0"),
        # malformed: an unescaped @ or ? in the password; PyMongo would read no password in the second
        ("mongodb://btc:p@ss@host/", "mongodb://btc:***@host/"),
        ("mongodb://btc:1?a=b@host/", "mongodb://btc:***@host/"),
        ("mongodb://btc:pa/ss@host/", "mongodb://btc:***@host/"),
        # secrets in options
        (
            "mongodb://h/?tlsCertificateKeyFilePassword=xyz&authSource=admin",
            "mongodb://h/?tlsCertificateKeyFilePassword=***&authSource=admin",
        ),
        ("mongodb://h/?authMechanismProperties=AWS_SESSION_TOKEN:abc", "mongodb://h/?authMechanismProperties=***"),
        ("not a uri: btc@host", "not a uri: btc@host"),
    ],
)
def test_redact_uri(uri: str, expected: str) -> None:
    assert redact_uri(uri) == expected


def test_redact_text_masks_every_uri_in_a_message() -> None:
    text = "cannot reach 'mongodb://btc:pw1@h:1/' (ServerSelectionTimeoutError), nor redis://:pw2@r:6379/0."
    assert (
        redact_text(text)
        == "cannot reach 'mongodb://btc:***@h:1/' (ServerSelectionTimeoutError), nor redis://***@r:6379/0."
    )


@given(password=st.text(min_size=1), scheme=st.sampled_from(SCHEMES))
def test_no_password_survives_as_given(password: str, scheme: str) -> None:
    """Any text as password, escaped or not (an unescaped one makes the URI malformed)."""
    assume(not shown_anywhere(password))
    for written in {password, quote_plus(password)}:
        assume(not shown_anywhere(written))
        redacted = redact_uri(f"{scheme}://btc:{written}@{TAIL}")
        assert password not in redacted and written not in redacted


@given(
    password=st.text(st.characters(blacklist_categories=("Zs", "Zl", "Zp", "Cc")), min_size=1),
    before=st.text(),
    after=st.text(),
)
def test_no_password_survives_in_a_message(password: str, before: str, after: str) -> None:
    """In a message, a URI ends at white space: any password without white space is masked."""
    uri = f"mongodb://btc:{password}@{TAIL}"
    assume(not shown_anywhere(password) and password not in before and password not in after)
    redacted = redact_text(f"{before} {uri} {after}")
    assert password not in redacted
