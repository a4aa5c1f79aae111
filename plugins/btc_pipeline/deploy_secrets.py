"""The Docker deployment's secrets: which ``.env`` keys are secrets, how a fresh one is made, and
which values are refused.

``btc-pipeline init-env`` (``make env``) writes ``.env`` from ``.env.example`` with every secret
made here; ``btc-pipeline check-secrets`` runs :func:`check_secrets` in the compose file's
one-shot ``check-secrets`` service, on which every other service waits, so that the deployment
refuses to start on a placeholder, the way Apache Superset refuses its default ``SECRET_KEY``.
The local stack (``make up`` / ``make demo``) listens on 127.0.0.1 only and keeps its local
defaults; nothing here applies to it.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from btc_pipeline.errors import BtcPipelineError

#: The command that makes every secret, named by each refusal.
MAKE_ONE = "make env"


@dataclass(frozen=True)
class Secret:
    """One secret key of ``.env``: how a value is made, and what a value must be."""

    key: str
    make: Callable[[], str]
    #: What a good value is, said in a refusal.
    rule: str
    #: The least number of bytes (UTF-8).
    min_bytes: int = 16
    #: The ``.env`` key of the user it belongs to (a password equal to its user name is refused).
    user_key: str | None = None
    #: Goes into a URI or a connection's JSON unescaped: letters, digits, ``-._~`` only.
    url_safe: bool = False
    #: An extra check: the refusal's reason, or None.
    valid: Callable[[str], str | None] | None = None


def make_password() -> str:
    """A random password that can go into a URI as it is (``secrets.token_urlsafe``: A-Z a-z 0-9 - _)."""
    return secrets.token_urlsafe(32)


def make_jwt_secret() -> str:
    """A random JWT signing secret of 86 characters (64 random bytes; HS512 wants 64 or more)."""
    return secrets.token_urlsafe(64)


def make_fernet_key() -> str:
    """A Fernet key for Airflow's encrypted connections and variables."""
    from cryptography.fernet import Fernet

    return Fernet.generate_key().decode()


def fernet_problem(value: str) -> str | None:
    """Why ``value`` is not a Fernet key (32 url-safe base64-encoded bytes), or None."""
    from cryptography.fernet import Fernet

    try:
        Fernet(value.encode())
    except (ValueError, TypeError):
        return "is not a Fernet key (32 url-safe base64-encoded bytes)"
    return None


_PASSWORD = f"a random password of 16+ characters (`{MAKE_ONE}` makes one)"
_URI_PASSWORD = f"a random password of 16+ URL-safe characters: it goes into URIs (`{MAKE_ONE}` makes one)"

#: Every secret of the deployment, in the order ``.env.example`` lists them.
SECRETS: tuple[Secret, ...] = (
    Secret("AIRFLOW_ADMIN_PASSWORD", make_password, _PASSWORD, user_key="AIRFLOW_ADMIN_USER"),
    Secret(
        "AIRFLOW_JWT_SECRET",
        make_jwt_secret,
        f"a random secret of 64+ bytes: Airflow signs its tokens with it (HS512; `{MAKE_ONE}` makes one)",
        min_bytes=64,
    ),
    Secret("AIRFLOW_API_SECRET_KEY", make_password, f"a random secret of 32+ bytes (`{MAKE_ONE}` makes one)", 32),
    Secret(
        "AIRFLOW_FERNET_KEY",
        make_fernet_key,
        f"a Fernet key, which encrypts Airflow's connections and variables (`{MAKE_ONE}` makes one)",
        min_bytes=44,
        valid=fernet_problem,
    ),
    Secret("POSTGRES_PASSWORD", make_password, _URI_PASSWORD, user_key="POSTGRES_USER", url_safe=True),
    Secret("MONGO_ROOT_PASSWORD", make_password, _URI_PASSWORD, user_key="MONGO_ROOT_USER", url_safe=True),
    Secret("MONGO_READER_PASSWORD", make_password, _URI_PASSWORD, user_key="MONGO_READER_USER", url_safe=True),
)
SECRET_KEYS = tuple(secret.key for secret in SECRETS)

#: Values anyone would try first (compared case-insensitively, also as the start of ``change-me``).
WELL_KNOWN = frozenset(
    {"admin", "airflow", "password", "passwd", "postgres", "mongo", "mongodb", "root", "secret", "changeme", "btc"}
)
_URL_SAFE = re.compile(r"[A-Za-z0-9._~-]+")
_KEY_LINE = re.compile(r"^(?P<key>[A-Z][A-Z0-9_]*)=(?P<value>.*)$")


def secret_problems(env: Mapping[str, str]) -> list[str]:
    """Every secret of the deployment that cannot be used, one message each.

    Args:
        env: The deployment's variables (a parsed ``.env``, or a container's environment).

    Returns:
        One line per refused secret, naming the variable, why, and the command that makes one; an
        empty list when every secret is fit to use. The values themselves are never quoted.
    """
    problems = []
    for secret in SECRETS:
        value = env.get(secret.key, "")
        why = _why_refused(secret, value, env)
        if why is not None:
            problems.append(f"{secret.key} {why}: set {secret.rule}")
    root, reader = env.get("MONGO_ROOT_PASSWORD", ""), env.get("MONGO_READER_PASSWORD", "")
    if root and root == reader:
        problems.append(
            f"MONGO_READER_PASSWORD is MONGO_ROOT_PASSWORD: the read-only user needs a password of its own "
            f"(`{MAKE_ONE}` makes one)"
        )
    return problems


def _why_refused(secret: Secret, value: str, env: Mapping[str, str]) -> str | None:
    if not value.strip():
        return "is empty"
    lowered = value.strip().lower()
    if lowered.startswith(("change-me", "changeme", "change_me")):
        return "is the placeholder of .env.example"
    if lowered in WELL_KNOWN or (secret.user_key and lowered == env.get(secret.user_key, "").strip().lower()):
        return "is a well-known or guessable value"
    if len(value.encode()) < secret.min_bytes:
        return f"is too short ({len(value.encode())} bytes, at least {secret.min_bytes})"
    if secret.url_safe and not _URL_SAFE.fullmatch(value):
        return "has characters that break the URIs it goes into (only letters, digits and - . _ ~)"
    return secret.valid(value) if secret.valid else None


class EnvFileExistsError(BtcPipelineError, FileExistsError):
    """``.env`` is there already and was not to be overwritten; the message says how."""


def env_with_secrets(example: str, make: Mapping[str, Callable[[], str]] | None = None) -> str:
    """The text of ``.env.example`` with a fresh value for every secret key.

    Every other line (comments, the other settings) stays as it is.

    Args:
        example: The text of ``.env.example``.
        make: How each secret is made (tests pass fixed makers); :data:`SECRETS`' own by default.

    Returns:
        The text of a ``.env``.

    Raises:
        ValueError: ``example`` lacks a secret key (it no longer lists what the deployment needs).
    """
    makers = {secret.key: secret.make for secret in SECRETS} | dict(make or {})
    seen: set[str] = set()
    lines = []
    for line in example.splitlines():
        match = _KEY_LINE.match(line)
        if match and match["key"] in makers:
            seen.add(match["key"])
            line = f"{match['key']}={makers[match['key']]()}"
        lines.append(line)
    missing = [key for key in SECRET_KEYS if key not in seen]
    if missing:
        raise ValueError(f".env.example has no line for {', '.join(missing)}")
    return "\n".join(lines) + "\n"


def write_env(path: Path, example: Path, *, force: bool = False) -> None:
    """Write ``path`` (``.env``) from ``example`` (``.env.example``) with fresh secrets, readable
    by its owner only.

    Args:
        path: Where to write.
        example: The example file to copy.
        force: Replace an existing file (its secrets are lost: volumes made with them keep the old ones).

    Raises:
        EnvFileExistsError: ``path`` exists and ``force`` is false.
        OSError: ``example`` cannot be read or ``path`` written.
    """
    text = env_with_secrets(example.read_text())
    if path.exists() and not force:
        raise EnvFileExistsError(
            f"{path} exists already and is left as it is: its secrets may be in use by the stack's volumes "
            "(MongoDB and PostgreSQL keep the passwords they were first started with). "
            "To replace it, run `btc-pipeline init-env --force` (or `make env FORCE=1`)"
        )
    path.unlink(missing_ok=True)  # a new file, so that it is created with the mode below
    path.touch(mode=0o600)
    path.write_text(text)
