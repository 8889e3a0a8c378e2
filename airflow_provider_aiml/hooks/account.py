"""The account endpoints the hook reads for ops (no generation, nothing billed): the balance
(``GET /v2/billing``) and a key's own spend (``GET /v2/usage``), parsed into small models."""

from __future__ import annotations

import re
from typing import Any

import httpx
from pydantic import BaseModel, ConfigDict, ValidationError

from airflow_provider_aiml.exceptions import AimlParameterError, AimlResponseError

BILLING_PATH = "/v2/billing"
USAGE_PATH = "/v2/usage"
USAGE_PERIOD = re.compile(r"[1-9][0-9]{0,3}[mhdw]")
"""``period`` of ``GET /v2/usage``: a count and a unit (minutes, hours, days, weeks), as in ``24h`` or ``7d``."""


class AccountBalance(BaseModel):
    """The account's balance as ``GET /v2/billing`` reports it."""

    model_config = ConfigDict(frozen=True)

    current_balance: float
    """What is left, in ``currency`` (US dollars)."""
    currency: str = "USD"


class KeyUsage(BaseModel):
    """What one API key spent in a window, as ``GET /v2/usage`` reports it (any key may read its own)."""

    model_config = ConfigDict(frozen=True)

    spend: float
    """Spent in the window, in ``currency``."""
    currency: str = "USD"
    requests: int | None = None
    """Requests the key made in the window, when the API says."""
    start: str | None = None
    end: str | None = None
    """The window, as the API gives it (ISO 8601 timestamps)."""
    api_key_prefix: str | None = None
    """The first characters of the key, as the API shows them to tell keys apart (never the whole key)."""


def usage_query(period: str) -> str:
    """The query string of ``GET /v2/usage`` for ``period``; a malformed period fails before any request."""
    if not isinstance(period, str) or not USAGE_PERIOD.fullmatch(period):
        raise AimlParameterError(f"'period' must be a count and a unit (m, h, d or w) such as '24h', got {period!r}")
    return f"?period={period}"


def parse_balance(response: httpx.Response) -> AccountBalance:
    """The balance in a ``GET /v2/billing`` answer, or :class:`AimlResponseError` for another shape."""
    return _parse(response, AccountBalance, f"GET {BILLING_PATH}", "{current_balance, currency}")


def parse_key_usage(response: httpx.Response, api_key: str) -> KeyUsage:
    """The spend in a ``GET /v2/usage`` answer. Should ``api_key_prefix`` hold the whole key (a misbehaving
    proxy), it is dropped, so the key never leaves the hook."""
    usage = _parse(response, KeyUsage, f"GET {USAGE_PATH}", "{spend, currency, requests, ...}")
    if usage.api_key_prefix is not None and api_key and api_key in usage.api_key_prefix:
        usage = usage.model_copy(update={"api_key_prefix": None})
    return usage


def _parse(response: httpx.Response, model: type[Any], call: str, shape: str) -> Any:
    try:
        return model.model_validate(response.json())
    except (ValueError, ValidationError):  # ValidationError is a ValueError; both named for the reader
        raise AimlResponseError(f"The answer of {call} is not the documented {shape} shape") from None
