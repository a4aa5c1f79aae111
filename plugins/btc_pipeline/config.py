"""Configuration of the pipeline, read from environment variables in this one module.

Every key has a default that suits the local stack, and every value is validated when read:
a bad value raises :class:`ConfigError` naming the variable, the value and what is expected.
``.env.example`` lists every key. Secrets (Airflow connections, MongoDB credentials) are never
defaults here; they come from the environment or from Airflow connections.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from btc_pipeline.alerts import AlertRules
from btc_pipeline.errors import BtcPipelineError
from btc_pipeline.exchanges import EXCHANGES
from btc_pipeline.redact import redact_uri
from btc_pipeline.timeutil import DEFAULT_MAX_CLOCK_SKEW_S

log = logging.getLogger(__name__)

#: Old names still read, each with the key that replaced it (a warning says to rename it).
DEPRECATED_KEYS = {"BTC_PROVIDERS": "BTC_EXCHANGES"}

#: The names ``BTC_EXCHANGES`` accepts, in the default failover order (:data:`btc_pipeline.exchanges.EXCHANGES`).
KNOWN_EXCHANGES = DEFAULT_EXCHANGES = tuple(EXCHANGES)
#: Production base URLs of the exchanges' public REST APIs.
DEFAULT_BASE_URLS = {name: cls.base_url for name, cls in EXCHANGES.items()}

#: How ``btc_drain`` learns that messages arrived (``BTC_DRAIN_TRIGGER``): ``outlets``, the
#: producing tasks' asset events (the default); ``watcher``, a triggerer-side Kafka consumer
#: (``AssetWatcher``). See ``btc_pipeline.tasks.arrival`` and the README's comparison.
DRAIN_TRIGGERS = ("outlets", "watcher")


class ConfigError(BtcPipelineError, ValueError):
    """A configuration value is missing or invalid; the message says which and how to fix it."""


def read_env_file(path: Path) -> dict[str, str]:
    """The variables of a ``.env`` file, read as docker compose and python-dotenv read it
    (``KEY=VALUE``, ``#`` comments, quotes, ``export``); no file, no variables.

    Raises:
        ConfigError: A line is not ``KEY=VALUE``; the message names the file and the line number
            (not the line: it may hold a secret).
    """
    from dotenv import dotenv_values
    from dotenv.parser import parse_stream

    if not path.exists():
        return {}
    with path.open() as stream:
        for binding in parse_stream(stream):
            if binding.error:
                raise ConfigError(
                    f"{path}:{binding.original.line}: expected KEY=VALUE (the line is not shown: it may hold a secret)"
                )
    return {key: value or "" for key, value in dotenv_values(path).items()}


def _get(env: Mapping[str, str], key: str, default: str) -> str:
    value = env.get(key, "").strip()
    return value if value else default


def _int(env: Mapping[str, str], key: str, default: int, *, minimum: int, maximum: int) -> int:
    raw = _get(env, key, str(default))
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{key}={raw!r} is not an integer; set it to a whole number, e.g. {default}") from None
    if not minimum <= value <= maximum:
        raise ConfigError(f"{key}={value} is out of range; expected {minimum}..{maximum}")
    return value


def _float(env: Mapping[str, str], key: str, default: float, *, minimum: float, maximum: float) -> float:
    raw = _get(env, key, str(default))
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{key}={raw!r} is not a number; set it to e.g. {default}") from None
    if not minimum <= value <= maximum:
        raise ConfigError(f"{key}={value} is out of range; expected {minimum}..{maximum}")
    return value


def _choice(env: Mapping[str, str], key: str, default: str, choices: tuple[str, ...]) -> str:
    value = _get(env, key, default).lower()
    if value not in choices:
        raise ConfigError(f"{key}={value!r} is not one of: {', '.join(choices)}")
    return value


def _url(env: Mapping[str, str], key: str, default: str) -> str:
    value = _get(env, key, default).rstrip("/")
    if not value.startswith(("http://", "https://")):
        raise ConfigError(f"{key}={redact_uri(value)!r} is not an http(s) URL, e.g. {default}")
    return value


def _optional_price(env: Mapping[str, str], key: str) -> float | None:
    raw = _get(env, key, "")
    if not raw:
        return None
    return _float(env, key, 0.0, minimum=0.01, maximum=10_000_000)


def _periods(env: Mapping[str, str], key: str, default: str) -> tuple[int, ...]:
    raw = _get(env, key, default)
    try:
        periods = tuple(int(p) for p in raw.split(",") if p.strip())
    except ValueError:
        raise ConfigError(f"{key}={raw!r} is not a comma-separated list of bar counts, e.g. {default}") from None
    if any(not 2 <= p <= 500 for p in periods):
        raise ConfigError(f"{key}={raw!r}: each period must be 2..500 bars")
    return periods


def _exchanges(env: Mapping[str, str]) -> tuple[str, ...]:
    key = "BTC_EXCHANGES"
    if not _get(env, key, "") and _get(env, "BTC_PROVIDERS", ""):
        key = "BTC_PROVIDERS"  # the name before 0.2; still read so that an old .env keeps working
        log.warning("BTC_PROVIDERS is deprecated: rename it to %s in .env", DEPRECATED_KEYS[key])
    raw = _get(env, key, ",".join(DEFAULT_EXCHANGES))
    names = tuple(name.strip().lower() for name in raw.split(",") if name.strip())
    if not names:
        raise ConfigError(f"{key} is empty; list exchanges in failover order, e.g. coinbase,kraken")
    unknown = [name for name in names if name not in KNOWN_EXCHANGES]
    if unknown:
        raise ConfigError(f"{key} names unknown exchange(s) {unknown}; known: {', '.join(KNOWN_EXCHANGES)}")
    if len(set(names)) != len(names):
        raise ConfigError(f"{key}={raw!r} lists an exchange twice")
    return names


@dataclass(frozen=True)
class Settings:
    """Validated pipeline settings. Build with :func:`load_settings`."""

    symbol: str = "BTC-USD"
    exchanges: tuple[str, ...] = DEFAULT_EXCHANGES
    base_urls: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_BASE_URLS))
    http_timeout_s: float = 10.0
    http_retries: int = 3
    http_deadline_s: float = 30.0
    http_max_body_bytes: int = 4 * 1024 * 1024
    max_clock_skew_s: float = DEFAULT_MAX_CLOCK_SKEW_S
    topic: str = "btc-metrics"
    dlq_topic: str = "btc-metrics-dlq"
    kafka_conn_id: str = "btc_kafka"
    mongo_conn_id: str = "btc_mongo"
    kafka_bootstrap: str = "127.0.0.1:9092"
    #: May hold a password: left out of repr(); show it with :func:`btc_pipeline.redact.redact_uri`.
    mongo_uri: str = field(default="mongodb://127.0.0.1:27017/", repr=False)
    mongo_db: str = "btc"
    consumer_group: str = "btc-drain"
    drain_max_messages: int = 100_000
    drain_max_seconds: float = 240.0
    drain_idle_s: float = 30.0
    drain_batch_size: int = 2000
    drain_trigger: str = "outlets"
    live_tick_horizon_s: int = 300
    tick_interval_s: int = 10
    ingest_retries: int = 4
    ingest_retry_delay_s: int = 15
    ingest_delivery_timeout_s: float = 20.0
    max_deviation_pct: float = 1.0
    dashboard_refresh_s: int = 10
    heal_horizon_minutes: int = 360
    tick_retention_days: int = 0
    stale_after_s: int = 120
    sma_periods: tuple[int, ...] = (20, 50)
    ema_periods: tuple[int, ...] = (12,)
    alert_above: float | None = None
    alert_below: float | None = None
    alert_move_pct: float = 2.0
    alert_move_window_min: int = 60

    @property
    def alert_rules(self) -> AlertRules:
        """The price alerts to record (see :mod:`btc_pipeline.alerts`)."""
        return AlertRules(
            above=self.alert_above,
            below=self.alert_below,
            move_pct=self.alert_move_pct,
            move_window=timedelta(minutes=self.alert_move_window_min),
        )


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    """Read and validate settings from the environment.

    Args:
        env: The variables to read; ``os.environ`` when omitted (tests pass a dict).

    Returns:
        The validated settings.

    Raises:
        ConfigError: A variable holds a value that cannot be used.
    """
    env = os.environ if env is None else env
    symbol = _get(env, "BTC_SYMBOL", "BTC-USD").upper()
    if symbol != "BTC-USD":
        raise ConfigError(f"BTC_SYMBOL={symbol!r} is not supported; only BTC-USD is implemented")
    base_urls = {name: _url(env, f"BTC_{name.upper()}_URL", default) for name, default in DEFAULT_BASE_URLS.items()}
    settings = Settings(
        symbol=symbol,
        exchanges=_exchanges(env),
        base_urls=base_urls,
        http_timeout_s=_float(env, "BTC_HTTP_TIMEOUT_S", 10.0, minimum=0.1, maximum=120),
        http_retries=_int(env, "BTC_HTTP_RETRIES", 3, minimum=0, maximum=10),
        http_deadline_s=_float(env, "BTC_HTTP_DEADLINE_S", 30.0, minimum=0.5, maximum=600),
        http_max_body_bytes=_int(
            env, "BTC_HTTP_MAX_BODY_BYTES", 4 * 1024 * 1024, minimum=1024, maximum=256 * 1024 * 1024
        ),
        max_clock_skew_s=_float(env, "BTC_MAX_CLOCK_SKEW_S", DEFAULT_MAX_CLOCK_SKEW_S, minimum=0, maximum=86_400),
        topic=_get(env, "BTC_TOPIC", "btc-metrics"),
        dlq_topic=_get(env, "BTC_DLQ_TOPIC", "btc-metrics-dlq"),
        kafka_conn_id=_get(env, "BTC_KAFKA_CONN_ID", "btc_kafka"),
        mongo_conn_id=_get(env, "BTC_MONGO_CONN_ID", "btc_mongo"),
        kafka_bootstrap=_get(env, "BTC_KAFKA_BOOTSTRAP", "127.0.0.1:9092"),
        mongo_uri=_get(env, "BTC_MONGO_URI", "mongodb://127.0.0.1:27017/"),
        mongo_db=_get(env, "BTC_MONGO_DB", "btc"),
        consumer_group=_get(env, "BTC_CONSUMER_GROUP", "btc-drain"),
        drain_max_messages=_int(env, "BTC_DRAIN_MAX_MESSAGES", 100_000, minimum=1, maximum=1_000_000),
        drain_max_seconds=_float(env, "BTC_DRAIN_MAX_SECONDS", 240.0, minimum=1, maximum=1800),
        drain_idle_s=_float(env, "BTC_DRAIN_IDLE_S", 30.0, minimum=0, maximum=1800),
        drain_batch_size=_int(env, "BTC_DRAIN_BATCH_SIZE", 2000, minimum=1, maximum=50_000),
        drain_trigger=_choice(env, "BTC_DRAIN_TRIGGER", "outlets", DRAIN_TRIGGERS),
        live_tick_horizon_s=_int(env, "BTC_LIVE_TICK_HORIZON_S", 300, minimum=0, maximum=86_400),
        tick_interval_s=_int(env, "BTC_TICK_INTERVAL_S", 10, minimum=2, maximum=60),
        ingest_retries=_int(env, "BTC_INGEST_RETRIES", 4, minimum=0, maximum=10),
        ingest_retry_delay_s=_int(env, "BTC_INGEST_RETRY_DELAY_S", 15, minimum=1, maximum=600),
        ingest_delivery_timeout_s=_float(env, "BTC_INGEST_DELIVERY_TIMEOUT_S", 20.0, minimum=1, maximum=50),
        max_deviation_pct=_float(env, "BTC_MAX_DEVIATION_PCT", 1.0, minimum=0.001, maximum=50),
        dashboard_refresh_s=_int(env, "BTC_DASHBOARD_REFRESH_S", 10, minimum=1, maximum=3600),
        heal_horizon_minutes=_int(env, "BTC_HEAL_HORIZON_MINUTES", 360, minimum=1, maximum=10_080),
        tick_retention_days=_int(env, "BTC_TICK_RETENTION_DAYS", 0, minimum=0, maximum=36_500),
        stale_after_s=_int(env, "BTC_STALE_AFTER_S", 120, minimum=5, maximum=86_400),
        sma_periods=_periods(env, "BTC_SMA_PERIODS", "20,50"),
        ema_periods=_periods(env, "BTC_EMA_PERIODS", "12"),
        alert_above=_optional_price(env, "BTC_ALERT_ABOVE"),
        alert_below=_optional_price(env, "BTC_ALERT_BELOW"),
        alert_move_pct=_float(env, "BTC_ALERT_MOVE_PCT", 2.0, minimum=0, maximum=100),
        alert_move_window_min=_int(env, "BTC_ALERT_MOVE_WINDOW_MIN", 60, minimum=1, maximum=10_080),
    )
    if settings.topic == settings.dlq_topic:
        raise ConfigError("BTC_TOPIC and BTC_DLQ_TOPIC must differ, or bad messages would loop")
    if not settings.mongo_uri.startswith(("mongodb://", "mongodb+srv://")):
        shown = redact_uri(settings.mongo_uri)
        raise ConfigError(f"BTC_MONGO_URI={shown!r} must start with mongodb:// or mongodb+srv://")
    return settings


@dataclass(frozen=True)
class ApiSettings:
    """Where the ``btc-pipeline`` CLI reaches Airflow's REST API, and as whom. Build with :func:`load_api_settings`."""

    url: str = "http://127.0.0.1:8080"
    user: str = "admin"
    password: str = field(default="admin", repr=False)


def load_api_settings(env: Mapping[str, str] | None = None) -> ApiSettings:
    """Read the Airflow REST API settings of the CLI from the environment.

    ``AIRFLOW_API_URL`` (default ``http://127.0.0.1:${AIRFLOW_PORT:-8080}``), ``AIRFLOW_ADMIN_USER``
    and ``AIRFLOW_ADMIN_PASSWORD`` (default ``admin``/``admin``, the local stack's).

    Args:
        env: The variables to read; ``os.environ`` when omitted.

    Returns:
        The validated settings.

    Raises:
        ConfigError: ``AIRFLOW_PORT`` is not a port number or ``AIRFLOW_API_URL`` not an http(s) URL.
    """
    env = os.environ if env is None else env
    port = _int(env, "AIRFLOW_PORT", 8080, minimum=1, maximum=65_535)
    return ApiSettings(
        url=_url(env, "AIRFLOW_API_URL", f"http://127.0.0.1:{port}"),
        user=_get(env, "AIRFLOW_ADMIN_USER", "admin"),
        password=_get(env, "AIRFLOW_ADMIN_PASSWORD", "admin"),
    )
