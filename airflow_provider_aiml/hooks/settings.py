"""Reads an ``aimlapi`` Airflow connection into checked, typed settings.

The same connection can come from the UI form (flat extras with JSON types, empty fields saved as null), from
``AIRFLOW_CONN_...`` in JSON form, or in URI form (extras arrive as strings, an un-encoded URL loses its scheme),
or from a secrets backend; all of them end up here.
"""

from __future__ import annotations

import math
import re
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from pydantic import BaseModel, ConfigDict, SecretStr

from airflow_provider_aiml.exceptions import AimlConfigurationError
from airflow_provider_aiml.hooks.sizing import DEFAULT_MAX_REQUEST_MB
from airflow_provider_aiml.models import DEFAULT_BASE_URL, DEFAULT_EMBEDDING_MODEL, DEFAULT_MODEL

DEFAULT_TIMEOUT = 300.0
DEFAULT_LEASE_SECONDS = 60.0
DEFAULT_CATALOG_TTL = 3600.0
DEFAULT_MAX_RETRIES = 2
MAX_RETRIES_LIMIT = 10
_LOOPBACK_HOST = re.compile(r"^(localhost|127(\.\d{1,3}){3}|\[::1\])(:\d+)?(/|$)")
_HEADER_SAFE = re.compile(r"[\x21-\x7e]+")  # printable ASCII without spaces


class LimitSettings(BaseModel):
    """The connection's shared limits (extras); ``None`` means no limit of that kind."""

    model_config = ConfigDict(frozen=True)

    max_usd_per_day: float | None = None
    """US dollars the connection may spend per UTC day; then new calls fail before sending."""
    max_requests_per_minute: int | None = None
    """Requests the connection may start in any 60 seconds (every try of a call counts)."""
    max_concurrency: int | None = None
    """Requests the connection may have in flight at once."""
    redis_conn_id: str | None = None
    """The Redis connection holding the shared state (``limits_redis_conn_id``); ``None``: the local store."""
    local_path: str | None = None
    """The local store's SQLite file (``limits_local_path``); ``None``: ``$AIRFLOW_HOME/aiml-limits.sqlite``."""
    lease_seconds: float = DEFAULT_LEASE_SECONDS
    """How long a concurrency slot stays taken without being renewed (``limits_lease_seconds``): the slots of a
    worker killed mid-call come back after this long."""

    @property
    def enabled(self) -> bool:
        return any(v is not None for v in (self.max_usd_per_day, self.max_requests_per_minute, self.max_concurrency))


class ConnectionSettings(BaseModel):
    """Everything the hook needs from the connection. The key is a ``SecretStr``: its repr is masked."""

    model_config = ConfigDict(frozen=True)

    conn_id: str
    base_url: str
    api_key: SecretStr
    model: str
    timeout: float
    max_retries: int
    embedding_model: str = DEFAULT_EMBEDDING_MODEL
    """Model of :meth:`~airflow_provider_aiml.hooks.aiml.AimlApiHook.embed` when a call names none
    (``embedding_model`` extra)."""
    max_request_mb: float = DEFAULT_MAX_REQUEST_MB
    """Bodies over this many MiB are refused before they are sent (``max_request_mb`` extra)."""
    confine_images_to_dag_folder: bool | None = None
    """Where local image files may be read from (``confine_images_to_dag_folder`` extra; see
    :mod:`airflow_provider_aiml.messages`): ``None`` confines templated values only."""
    limits: LimitSettings = LimitSettings()
    catalog_checks: bool = True
    """Check each call against the model's catalog entry and schema (``catalog_checks`` extra; ``false`` keeps
    only the seed model's built-in ranges and sends no catalog request)."""
    catalog_cache_dir: str | None = None
    """Where the catalog is cached on disk (``catalog_cache_dir`` extra); ``None``: ``$AIRFLOW_HOME/aiml-catalog``."""
    catalog_ttl: float = DEFAULT_CATALOG_TTL
    """Seconds a cached catalog answer is used without asking again (``catalog_ttl`` extra)."""
    """The connection-wide limits every task, worker and triggerer using the connection shares (see
    :mod:`airflow_provider_aiml.limits`)."""

    @classmethod
    def from_connection(cls, conn: Any, conn_id: str) -> ConnectionSettings:
        """Build settings from an Airflow ``Connection``; raise :class:`AimlConfigurationError` naming the field."""
        api_key = (conn.password or "").strip()
        if not api_key:
            raise AimlConfigurationError(
                f"Connection {conn_id!r} has no API key: set its password (the 'API Key' field in the UI)."
            )
        if not _HEADER_SAFE.fullmatch(api_key):
            # Never echo the key: an HTTP library's error about it would print it.
            raise AimlConfigurationError(
                f"Connection {conn_id!r}: the API key contains characters that cannot be sent in an HTTP header "
                "(a space, a line break or an invisible character pasted with it?). Paste the key again."
            )
        extra = _extra_of(conn)
        return cls(
            conn_id=conn_id,
            base_url=_base_url(conn, conn_id),
            api_key=SecretStr(api_key),
            model=str(_field(extra, "model") or DEFAULT_MODEL).strip(),
            embedding_model=str(_field(extra, "embedding_model") or DEFAULT_EMBEDDING_MODEL).strip(),
            timeout=_number(extra, "timeout", DEFAULT_TIMEOUT, conn_id, minimum=0.001, cast=float),
            max_retries=int(
                _number(
                    extra, "max_retries", DEFAULT_MAX_RETRIES, conn_id, minimum=0, cast=int, maximum=MAX_RETRIES_LIMIT
                )
            ),
            max_request_mb=_number(extra, "max_request_mb", DEFAULT_MAX_REQUEST_MB, conn_id, minimum=0.001, cast=float),
            confine_images_to_dag_folder=_switch(extra, "confine_images_to_dag_folder", conn_id),
            limits=_limits(extra, conn_id),
            catalog_checks=_switch(extra, "catalog_checks", conn_id) is not False,
            catalog_cache_dir=str(_field(extra, "catalog_cache_dir")).strip() or None
            if _field(extra, "catalog_cache_dir") is not None
            else None,
            catalog_ttl=_number(extra, "catalog_ttl", DEFAULT_CATALOG_TTL, conn_id, minimum=0.0, cast=float),
        )

    @property
    def api_root(self) -> str:
        """The base URL without its ``/v1``: the billing and usage endpoints live under ``/v2``."""
        return self.base_url[: -len("/v1")] if self.base_url.endswith("/v1") else self.base_url


def _limits(extra: dict[str, Any], conn_id: str) -> LimitSettings:
    def optional(name: str, cast: type[int] | type[float], minimum: float) -> Any:
        if _field(extra, name) is None:
            return None
        return _number(extra, name, 0, conn_id, minimum=minimum, cast=cast)

    redis_conn_id = _field(extra, "limits_redis_conn_id")
    local_path = _field(extra, "limits_local_path")
    return LimitSettings(
        max_usd_per_day=optional("max_usd_per_day", float, 0.0),
        max_requests_per_minute=optional("max_requests_per_minute", int, 1),
        max_concurrency=optional("max_concurrency", int, 1),
        redis_conn_id=str(redis_conn_id).strip() or None if redis_conn_id is not None else None,
        local_path=str(local_path).strip() or None if local_path is not None else None,
        lease_seconds=_number(extra, "limits_lease_seconds", DEFAULT_LEASE_SECONDS, conn_id, minimum=1.0, cast=float),
    )


def _extra_of(conn: Any) -> dict[str, Any]:
    try:
        extra = conn.extra_dejson
    except Exception as error:
        raise AimlConfigurationError(f"The connection's extra is not valid JSON: {type(error).__name__}") from None
    return extra if isinstance(extra, dict) else {}


def _field(extra: dict[str, Any], name: str) -> Any:
    """Read an extra by its plain name, or by the ``extra__aimlapi__`` name older forms used."""
    value = extra.get(name)
    if value in (None, ""):
        value = extra.get(f"extra__aimlapi__{name}")
    return None if value in (None, "") else value


def _switch(extra: dict[str, Any], name: str, conn_id: str) -> bool | None:
    """An optional yes/no extra: JSON booleans from the form, ``"true"``/``"false"`` from a URI."""
    raw = _field(extra, name)
    if raw is None or isinstance(raw, bool):
        return raw
    text = str(raw).strip().lower()
    if text in ("true", "false"):
        return text == "true"
    raise AimlConfigurationError(f"Connection {conn_id!r}: extra field {name!r} must be true or false, got {raw!r}")


def _number(
    extra: dict[str, Any],
    name: str,
    default: float,
    conn_id: str,
    *,
    minimum: float,
    cast: type[int] | type[float],
    maximum: float | None = None,
) -> float:
    raw = _field(extra, name)
    if raw is None:
        return default
    try:
        if isinstance(raw, bool):
            raise ValueError
        number = float(raw)
        if not math.isfinite(number) or (cast is int and not number.is_integer()):
            raise ValueError
    except (TypeError, ValueError):
        kind = "a whole number" if cast is int else "a number"
        raise AimlConfigurationError(
            f"Connection {conn_id!r}: extra field {name!r} must be {kind}, got {raw!r}"
        ) from None
    value = cast(number)
    if value < minimum or (maximum is not None and value > maximum):
        bounds = f"at least {minimum:g}" if maximum is None else f"between {minimum:g} and {maximum:g}"
        raise AimlConfigurationError(f"Connection {conn_id!r}: extra field {name!r} must be {bounds}, got {raw!r}")
    return value


def _base_url(conn: Any, conn_id: str) -> str:
    host = (conn.host or "").strip()
    if not host:
        return DEFAULT_BASE_URL
    if "://" not in host:
        # URI form without encoding: "aimlapi://:key@api.aimlapi.com/v1" arrives as host + schema, scheme lost.
        scheme = "http" if _LOOPBACK_HOST.match(host) else "https"
        host = f"{scheme}://{host}"
    parts = urlsplit(host)
    if "@" in parts.netloc:
        # httpx would send these as Basic auth instead of the Bearer key (a misleading 401); never echo them.
        raise AimlConfigurationError(
            f"Connection {conn_id!r}: the Base URL carries a user name or password ('user:password@host'). "
            "Remove them from the Base URL: the API key goes in the connection's password (the 'API Key' field)."
        )
    netloc, path = parts.netloc, parts.path.rstrip("/")
    # The URI forms Airflow itself writes ("aimlapi://https://:key@host:8080/v1") keep port and path apart.
    if getattr(conn, "port", None) and parts.port is None:
        netloc = f"{netloc}:{conn.port}"
    schema = (getattr(conn, "schema", None) or "").strip("/")
    if schema and not path:
        path = f"/{schema}"
    url = urlunsplit((parts.scheme, netloc, path, parts.query, "")).rstrip("/")
    try:
        valid = parts.scheme in ("http", "https") and bool(parts.hostname) and (urlsplit(url).port or 0) >= 0
    except ValueError:  # a port that is not a number
        valid = False
    if not valid:
        raise AimlConfigurationError(
            f"Connection {conn_id!r}: the Base URL {url!r} is not an http(s) URL with a host "
            "(expected something like https://api.aimlapi.com/v1)."
        )
    return url
