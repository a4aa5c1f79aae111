"""Configuration, read from environment variables in this one module: each setting is declared once,
on :class:`Settings` (``BTC_*``) or :class:`ApiSettings` (the CLI's ``AIRFLOW_*``), with its type,
default, bounds and description. An empty value means the default; a bad one raises
:class:`ConfigError` naming the variable, the value (URIs redacted) and what is accepted.
``.env.example`` lists every key with its default (tests/unit/test_config.py holds it to the model).
Secrets are never defaults here: they come from the environment or from Airflow connections.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar, get_args

from annotated_types import Ge, Le
from pydantic import (
    AfterValidator,
    BeforeValidator,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import ErrorDetails
from pydantic_settings import BaseSettings, EnvSettingsSource, NoDecode, SettingsConfigDict

from btc_pipeline.alerts import AlertRules
from btc_pipeline.errors import BtcPipelineError
from btc_pipeline.exchanges import EXCHANGES
from btc_pipeline.redact import redact_notify_text, redact_notify_url, redact_uri
from btc_pipeline.timeutil import DEFAULT_MAX_CLOCK_SKEW_S, parse_age

log = logging.getLogger(__name__)

#: Old names still read, each with the key that replaced it (a warning says to rename it).
DEPRECATED_KEYS = {"BTC_PROVIDERS": "BTC_EXCHANGES"}

#: The names ``BTC_EXCHANGES`` accepts, in the default failover order (:data:`btc_pipeline.exchanges.EXCHANGES`).
KNOWN_EXCHANGES = tuple(EXCHANGES)


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


def url_key(exchange: str) -> str:
    """The variable holding exchange ``exchange``'s base URL: ``BTC_<NAME>_URL``."""
    return f"BTC_{exchange.upper()}_URL"


def _http_url(value: str) -> str:
    if not value.startswith(("http://", "https://")):
        raise ValueError("is not an http(s) URL")
    return value.rstrip("/")


def _mongodb_uri(value: str) -> str:
    if not value.startswith(("mongodb://", "mongodb+srv://")):
        raise ValueError("must start with mongodb:// or mongodb+srv://")
    return value


def _csv(value: Any) -> Any:
    return tuple(part.strip() for part in value.split(",") if part.strip()) if isinstance(value, str) else value


def _exchange_names(value: Any) -> Any:
    names = _csv(value.lower() if isinstance(value, str) else value)
    if not names:
        raise ValueError("lists no exchange; list them in failover order, e.g. coinbase,kraken")
    if unknown := [name for name in names if name not in EXCHANGES]:
        raise ValueError(f"names unknown exchange(s) {unknown}; known: {', '.join(EXCHANGES)}")
    if len(set(names)) != len(names):
        raise ValueError("lists an exchange twice")
    return names


def _age(value: Any) -> Any:
    """An age such as ``24h`` (``BTC_HISTORY_ON_START``); ``0``: none; empty: not set (``None``)."""
    if isinstance(value, str):
        try:
            return parse_age(value) if value.strip() else None
        except ValueError as exc:  # the variable's name and value lead the message already
            raise ValueError(str(exc).removeprefix(f"{value!r} ")) from None
    return value


def _periods(value: Any) -> tuple[int, ...]:
    try:
        periods = tuple(int(p) for p in _csv(value))
    except ValueError:
        raise ValueError("is not a comma-separated list of bar counts, e.g. 20,50") from None
    if any(not 2 <= p <= 500 for p in periods):
        raise ValueError("has a period outside 2..500 bars")
    return periods


def _notify_urls(value: Any) -> Any:
    """Apprise URLs, separated by white space or by commas before a scheme (a comma may sit inside
    one, ``mailto://...?to=a@x.org,b@x.org``); each must name its scheme."""
    if not isinstance(value, str):
        return value
    urls = tuple(u for u in re.split(r"\s+|,\s*(?=[A-Za-z][A-Za-z0-9+.-]*://)", value.strip()) if u)
    if bad := [u for u in urls if not _NOTIFY_URL.match(u)]:
        shown = ", ".join(redact_notify_url(u) for u in bad)
        raise ValueError(f"holds {shown}, which is no Apprise URL (scheme://...), e.g. json://host:port/path")
    return urls


_NOTIFY_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://\S+")

WebUrl = Annotated[str, AfterValidator(_http_url)]
#: Notification URLs (secrets: shown only through :func:`btc_pipeline.redact.redact_notify_url`).
NotifyUrls = Annotated[tuple[str, ...], NoDecode, BeforeValidator(_notify_urls)]
MongoUri = Annotated[str, AfterValidator(_mongodb_uri)]
Periods = Annotated[tuple[int, ...], NoDecode, BeforeValidator(_periods)]
Price = Annotated[float | None, Field(ge=0.01, le=10_000_000)]


class _Environment(EnvSettingsSource):
    """pydantic-settings' environment source over any mapping (``os.environ``, a ``.env``, a test's
    dict): values stripped, blank ones dropped (= the default), deprecated keys renamed with a
    warning, and ``base_urls`` read from the ``BTC_<NAME>_URL`` of every exchange in :data:`EXCHANGES`."""

    def __init__(self, settings_cls: type[BaseSettings], env: Mapping[str, str]) -> None:
        self.given = {key: value.strip() for key, value in env.items() if value and value.strip()}
        self.renamed: dict[str, str] = {}
        keys = {env_key(settings_cls, field) for field in settings_cls.model_fields}
        for old, new in DEPRECATED_KEYS.items():
            if new in keys and old in self.given and new not in self.given:
                log.warning("%s is deprecated: rename it to %s in .env", old, new)
                self.given[new] = self.given.pop(old)
                self.renamed[new] = old
        super().__init__(settings_cls)

    def _load_env_vars(self) -> Mapping[str, str | None]:
        return {key.lower(): value for key, value in self.given.items()}  # names are not case-sensitive

    def __call__(self) -> dict[str, Any]:
        values = super().__call__()
        if "base_urls" in self.settings_cls.model_fields:
            values["base_urls"] = {name: self.given.get(url_key(name), c.base_url) for name, c in EXCHANGES.items()}
        return values


class Settings(BaseSettings):
    """Validated pipeline settings: field ``x`` is read from ``BTC_X``. Build with :func:`load_settings`."""

    model_config = SettingsConfigDict(env_prefix="BTC_", frozen=True, extra="ignore")

    symbol: Annotated[Literal["BTC-USD"], BeforeValidator(str.upper)] = Field("BTC-USD", description="Only BTC-USD.")
    exchanges: Annotated[tuple[str, ...], NoDecode, BeforeValidator(_exchange_names)] = Field(
        KNOWN_EXCHANGES, description="Exchanges in failover order."
    )
    base_urls: dict[str, WebUrl] = Field(
        default_factory=lambda: {name: cls.base_url for name, cls in EXCHANGES.items()},
        description="Each exchange's REST base URL, from BTC_<NAME>_URL (default: the live exchange's).",
    )
    http_timeout_s: float = Field(10.0, ge=0.1, le=120, description="Timeout of each read from an exchange.")
    http_retries: int = Field(3, ge=0, le=10, description="Retries of a failed exchange request.")
    http_deadline_s: float = Field(30.0, ge=0.5, le=600, description="The longest an exchange request may take.")
    http_max_body_bytes: int = Field(4 * 1024 * 1024, ge=1024, le=256 * 1024 * 1024, description="Largest body.")
    max_clock_skew_s: float = Field(DEFAULT_MAX_CLOCK_SKEW_S, ge=0, le=86_400, description="Exchanges' clock drift.")
    topic: str = Field("btc-metrics", description="The Kafka topic of observations.")
    dlq_topic: str = Field("btc-metrics-dlq", description="The dead-letter topic.")
    kafka_conn_id: str = Field("btc_kafka", description="The Airflow connection of the tasks' Kafka.")
    mongo_conn_id: str = Field("btc_mongo", description="The Airflow connection of the tasks' MongoDB.")
    kafka_bootstrap: str = Field("127.0.0.1:9092", description="The broker of the CLI's dlq commands.")
    #: May hold a password: left out of repr(); show it with :func:`btc_pipeline.redact.redact_uri`.
    mongo_uri: MongoUri = Field("mongodb://127.0.0.1:27017/", repr=False, description="The readers' MongoDB.")
    mongo_db: str = Field("btc", description="The MongoDB database.")
    history_topic: str = Field("btc-metrics-history", description="The topic of history backfills.")
    consumer_group: str = Field("btc-drain", description="The drain's Kafka consumer group.")
    history_consumer_group: str = Field("btc-drain-history", description="The history drain's consumer group.")
    history_batch_size: int = Field(10_000, ge=1, le=100_000, description="Messages per history drain batch.")
    history_on_start: Annotated[timedelta | None, BeforeValidator(_age)] = Field(
        None,
        description="History the local stack loads on its first start (empty: 24h for make demo, none for make up).",
    )
    drain_max_messages: int = Field(100_000, ge=1, le=1_000_000, description="Messages one drain run stores at most.")
    drain_max_seconds: float = Field(240.0, ge=1, le=1800, description="How long one drain run lasts at most.")
    drain_idle_s: float = Field(30.0, ge=0, le=1800, description="A drain run ends after this long without a message.")
    drain_batch_size: int = Field(2000, ge=1, le=50_000, description="Messages per stored batch.")
    drain_trigger: Annotated[Literal["outlets", "watcher"], BeforeValidator(str.lower)] = Field(
        "outlets", description="What starts a drain run besides its timer."
    )
    live_tick_horizon_s: int = Field(300, ge=0, le=86_400, description="Windows closed this recently read tickers.")
    tick_interval_s: int = Field(10, ge=2, le=60, description="Seconds between ticker reads in a live run.")
    ingest_retries: int = Field(4, ge=0, le=10, description="Airflow retries of btc_ingest's produce_window.")
    ingest_retry_delay_s: int = Field(15, ge=1, le=600, description="The first retry delay (exponential backoff).")
    ingest_delivery_timeout_s: float = Field(20.0, ge=1, le=50, description="How long the broker may take to ack.")
    max_deviation_pct: float = Field(1.0, ge=0.001, le=50, description="Cross-exchange check: tolerance in percent.")
    dashboard_refresh_s: int = Field(10, ge=1, le=3600, description="How often the dashboard refreshes.")
    heal_horizon_minutes: int = Field(360, ge=1, le=10_080, description="How far back btc_heal looks for holes.")
    tick_retention_days: int = Field(0, ge=0, le=36_500, description="Raw ticks older are deleted (0: never).")
    airflow_retention_days: int = Field(
        30, ge=0, le=36_500, description="Airflow's task logs and run history older are deleted (0: never)."
    )
    stale_after_s: int = Field(120, ge=5, le=86_400, description="Data older than this is stale.")
    sma_periods: Periods = Field((20, 50), description="The dashboard's simple moving averages, in bars.")
    ema_periods: Periods = Field((12,), description="The dashboard's exponential moving averages, in bars.")
    alert_above: Price = Field(None, description="Alert when the price rises above this (empty: off).")
    alert_below: Price = Field(None, description="Alert when the price falls below this (empty: off).")
    alert_move_pct: float = Field(2.0, ge=0, le=100, description="Alert on a move of this many percent (0: off).")
    alert_move_window_min: int = Field(60, ge=1, le=10_080, description="The window of that move, in minutes.")
    notify_urls: NotifyUrls = Field((), repr=False, description="Apprise URLs messages go to (empty: none sent).")
    notify_price_urls: NotifyUrls = Field((), repr=False, description="Price alerts' URLs (empty: BTC_NOTIFY_URLS).")
    notify_failure_urls: NotifyUrls = Field((), repr=False, description="Failed runs' URLs (empty: BTC_NOTIFY_URLS).")
    notify_stale_urls: NotifyUrls = Field((), repr=False, description="Staleness URLs (empty: BTC_NOTIFY_URLS).")
    notify_repeat_min: int = Field(60, ge=1, le=10_080, description="Minutes between reminders of a failing DAG.")
    dashboard_url: WebUrl = Field("http://127.0.0.1:8501", description="The dashboard, linked from messages.")
    airflow_ui_url: WebUrl = Field("http://127.0.0.1:8080", description="Airflow's UI, for links to task logs.")

    @model_validator(mode="after")
    def _topics_differ(self) -> Settings:
        if self.topic == self.dlq_topic:
            raise ValueError("BTC_TOPIC and BTC_DLQ_TOPIC must differ, or bad messages would loop")
        if self.history_topic in (self.topic, self.dlq_topic):
            raise ValueError(
                "BTC_HISTORY_TOPIC must differ from BTC_TOPIC and BTC_DLQ_TOPIC: history has a lane of its own"
            )
        return self

    def notify_targets(self, topic: Literal["price", "failure", "stale"]) -> tuple[str, ...]:
        """Where messages of ``topic`` go: its own list, else ``BTC_NOTIFY_URLS`` (empty: nowhere)."""
        own = {"price": self.notify_price_urls, "failure": self.notify_failure_urls, "stale": self.notify_stale_urls}
        return own[topic] or self.notify_urls

    @property
    def all_notify_urls(self) -> tuple[str, ...]:
        """Every configured notification URL once, in the order declared."""
        urls = (*self.notify_urls, *self.notify_price_urls, *self.notify_failure_urls, *self.notify_stale_urls)
        return tuple(dict.fromkeys(urls))

    @property
    def alert_rules(self) -> AlertRules:
        """The price alerts to record (see :mod:`btc_pipeline.alerts`)."""
        return AlertRules(
            above=self.alert_above,
            below=self.alert_below,
            move_pct=self.alert_move_pct,
            move_window=timedelta(minutes=self.alert_move_window_min),
        )


class ApiSettings(BaseSettings):
    """Where the ``btc-pipeline`` CLI reaches Airflow's REST API, and as whom. Build with :func:`load_api_settings`."""

    model_config = SettingsConfigDict(frozen=True, extra="ignore", validate_by_name=True)

    airflow_port: int = Field(default=8080, ge=1, le=65_535, validation_alias="AIRFLOW_PORT", description="Its port.")
    url: WebUrl = Field(
        default="",  # http://127.0.0.1:AIRFLOW_PORT
        validate_default=True,
        validation_alias="AIRFLOW_API_URL",
        description="Airflow's REST API (default: http://127.0.0.1:AIRFLOW_PORT).",
    )
    user: str = Field(default="admin", validation_alias="AIRFLOW_ADMIN_USER", description="The Airflow user.")
    password: str = Field(default="admin", repr=False, validation_alias="AIRFLOW_ADMIN_PASSWORD")

    @field_validator("url", mode="before")
    @classmethod
    def _local_by_default(cls, value: Any, info: ValidationInfo) -> Any:
        return value or f"http://127.0.0.1:{info.data.get('airflow_port', 8080)}"


def env_key(model: type[BaseSettings], field: str) -> str:
    """The variable that sets ``field`` of ``model`` (``exchanges`` -> ``BTC_EXCHANGES``)."""
    alias = model.model_fields[field].validation_alias
    return alias if isinstance(alias, str) else f"{model.model_config.get('env_prefix', '')}{field}".upper()


def _explain(error: ErrorDetails, model: type[BaseSettings], source: _Environment) -> str:
    """One validation error as ``KEY='value' <what is wrong>; <what is accepted>`` (URIs redacted)."""
    if not error["loc"]:  # a rule over several settings: its message names them
        return str(error.get("ctx", {}).get("error", error["msg"]))
    by_key = {env_key(model, name): name for name in model.model_fields}
    field, *rest = (by_key.get(str(part), str(part)) for part in error["loc"])  # an alias names its field
    key = url_key(rest[0]) if field == "base_urls" and rest else env_key(model, field)
    given = str(source.given.get(key, error["input"]))
    hidden = redact_notify_text(given, given.split()) if field.startswith("notify_") else redact_uri(given)
    shown = f"{source.renamed.get(key, key)}={hidden!r}"
    info, kind = model.model_fields[field], error["type"]
    example = "" if info.default is None else f"; set it to e.g. {info.default}"
    low = next((m.ge for m in info.metadata if isinstance(m, Ge)), None)
    high = next((m.le for m in info.metadata if isinstance(m, Le)), None)
    messages = {
        "greater_than_equal": f"is out of range; expected {low}..{high}",
        "less_than_equal": f"is out of range; expected {low}..{high}",
        "int_parsing": f"is not an integer{example}",
        "float_parsing": f"is not a number{example}",
        "literal_error": f"is not one of: {', '.join(map(str, get_args(info.annotation)))}",
        "value_error": str(error.get("ctx", {}).get("error")),
    }
    return f"{shown} {messages.get(kind, error['msg'])}"


Model = TypeVar("Model", bound=BaseSettings)


def _load(model: type[Model], env: Mapping[str, str] | None) -> Model:
    source = _Environment(model, os.environ if env is None else env)
    try:
        return model(_build_sources=((source,), {}))
    except ValidationError as exc:
        raise ConfigError("; ".join(_explain(error, model, source) for error in exc.errors())) from None


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    """Read and validate settings from the environment.

    Args:
        env: The variables to read; ``os.environ`` when omitted (tests pass a dict).

    Returns:
        The validated settings.

    Raises:
        ConfigError: A variable holds a value that cannot be used; the message names it and what is accepted.
    """
    return _load(Settings, env)


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
    return _load(ApiSettings, env)
