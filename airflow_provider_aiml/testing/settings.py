"""Behaviour options of the emulator (read by the request handler on every request)."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields
from typing import Any, Literal, get_args

ReasoningStyle = Literal["reasoning_content", "reasoning", "think_tag"]
MetaUsage = Literal["credits_and_usd", "credits_only", "tokens_used"]

REASONING_STYLES: tuple[str, ...] = get_args(ReasoningStyle)
META_USAGE_VARIANTS: tuple[str, ...] = get_args(MetaUsage)
_RUNTIME_KEYS = (
    "latency",
    "chunk_delay",
    "send_done",
    "reasoning_style",
    "meta_usage",
    "cost_headers",
    "balance_usd",
    "stream_cost",
    "serve_unknown_models",
    "catalog_status",
    "denied_models",
    "logs_rate_limit",
)


@dataclass
class EmulatorSettings:
    """Mutable options; change them between requests (e.g. ``emu.settings.latency = 0.1``)."""

    api_keys: frozenset[str] | None = None
    latency: float = 0.0
    chunk_delay: float = 0.0
    send_done: bool = False
    reasoning_style: ReasoningStyle = "reasoning_content"
    meta_usage: MetaUsage | None = "credits_and_usd"
    cost_headers: bool = True
    balance_usd: float = 42.5
    stream_cost: bool = False
    """Put ``meta.usage`` (credits and USD) in a stream's last chunk. The request-tracing page says it comes
    there, but no documented transcript shows it, so it is off by default."""
    serve_unknown_models: bool = False
    """Answer for model ids the catalog does not have, instead of the API's 404."""
    catalog_status: int | None = None
    """Answer the catalog routes (``/v1/models``, ``/model/{id}``, ``/docs-json``) with this error status: an
    outage of the catalog, while chat goes on."""
    denied_models: tuple[str, ...] = ()
    """Model ids (or aliases) the key's scopes do not cover: chat answers 403, as for a key restricted to models."""
    logs_rate_limit: int = 200
    """``GET /v2/logs`` reads allowed per 60 s before it answers 429 (the API's figure)."""

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Raise ``ValueError`` when an option is out of range."""
        for name in ("latency", "chunk_delay"):
            value = getattr(self, name)
            if not _is_number(value) or not math.isfinite(value) or value < 0:
                raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
        if not _is_number(self.balance_usd):
            raise ValueError(f"balance_usd must be a number, got {self.balance_usd!r}")
        if self.reasoning_style not in REASONING_STYLES:
            raise ValueError(f"reasoning_style must be one of {REASONING_STYLES}, got {self.reasoning_style!r}")
        if self.meta_usage is not None and self.meta_usage not in META_USAGE_VARIANTS:
            raise ValueError(f"meta_usage must be None or one of {META_USAGE_VARIANTS}, got {self.meta_usage!r}")
        if self.catalog_status is not None and (
            isinstance(self.catalog_status, bool)
            or not isinstance(self.catalog_status, int)
            or not 400 <= self.catalog_status <= 599
        ):
            raise ValueError(
                f"catalog_status must be None or an HTTP error status 400-599, got {self.catalog_status!r}"
            )
        denied = self.denied_models
        if not isinstance(denied, list | tuple) or not all(isinstance(m, str) for m in denied):
            raise ValueError(f"denied_models must be a list of model ids, got {self.denied_models!r}")
        self.denied_models = tuple(self.denied_models)
        if (
            isinstance(self.logs_rate_limit, bool)
            or not isinstance(self.logs_rate_limit, int)
            or self.logs_rate_limit < 1
        ):
            raise ValueError(f"logs_rate_limit must be a whole number >= 1, got {self.logs_rate_limit!r}")
        for name in ("send_done", "cost_headers", "stream_cost", "serve_unknown_models"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name} must be a boolean")

    def update(self, changes: Mapping[str, Any]) -> None:
        """Apply a partial update of the runtime options (all-or-nothing)."""
        unknown = sorted(set(changes) - set(_RUNTIME_KEYS))
        if unknown:
            raise ValueError(f"unknown settings: {unknown}; allowed: {list(_RUNTIME_KEYS)}")
        candidate = EmulatorSettings(**{f.name: getattr(self, f.name) for f in fields(self)})
        for key, value in changes.items():
            setattr(candidate, key, value)
        candidate.validate()
        for key in changes:
            setattr(self, key, getattr(candidate, key))

    def to_dict(self) -> dict[str, Any]:
        """The runtime options as JSON (API keys are not included)."""
        return {key: list(value) if isinstance(value := getattr(self, key), tuple) else value for key in _RUNTIME_KEYS}


def normalize_api_keys(api_keys: Iterable[str] | None) -> frozenset[str] | None:
    """``None`` stays ``None`` (any non-empty key is accepted); otherwise a frozenset of keys."""
    if api_keys is None:
        return None
    if isinstance(api_keys, str):
        return frozenset({api_keys})
    return frozenset(api_keys)


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)
