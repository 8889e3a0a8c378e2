"""AI/ML API error bodies: the documented legacy JSON, the observed problem+json, HTML and empty."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from http import HTTPStatus

from airflow_provider_aiml.testing.faults import ErrorBodyStyle

KEYS_PAGE = "You can create a new API key on the Billing page: https://aimlapi.com/app/keys"
MISSING_KEY_MESSAGE = f"You did not provide an API key. {KEYS_PAGE}"
EMPTY_KEY_MESSAGE = f"You provided an empty string instead of valid API key. {KEYS_PAGE}"
INVALID_KEY_MESSAGE = f"This request requires a valid API key. {KEYS_PAGE}"
VALIDATION_MESSAGE = "Body validation error!"

DEFAULT_MESSAGES: dict[int, str] = {
    400: VALIDATION_MESSAGE,
    401: INVALID_KEY_MESSAGE,
    403: "You've run out of credits. Please top up your balance to continue: https://aimlapi.com/app/billing",
    404: "Not Found",
    429: "Too Many Requests",
    500: "Internal server error",
    502: "Bad Gateway",
    503: "Service unavailable",
    504: "Generation timeout",
}
_EXCEPTION_NAMES: dict[int, str] = {
    400: "BadRequestException",
    401: "UnauthorizedException",
    403: "ForbiddenException",
    404: "NotFoundException",
    408: "RequestTimeoutException",
    409: "ConflictException",
    413: "PayloadTooLargeException",
    422: "UnprocessableEntityException",
    429: "ThrottlerException",
    500: "InternalServerErrorException",
    502: "BadGatewayException",
    503: "ServiceUnavailableException",
    504: "GatewayTimeoutException",
}
JSON_TYPE = "application/json; charset=utf-8"
PROBLEM_TYPE = "application/problem+json"
HTML_TYPE = "text/html"


def reason_phrase(status: int) -> str:
    """The standard reason phrase, or ``Error``."""
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def default_message(status: int) -> str:
    """The documented message for a status (falls back to the reason phrase)."""
    return DEFAULT_MESSAGES.get(status, reason_phrase(status))


def iso_timestamp() -> str:
    """Current UTC time like ``2025-03-11T07:13:27.813Z``."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def legacy_body(status: int, message: str, path: str, request_id: str) -> bytes:
    """``{message, path, requestId, statusCode (a string), timestamp}`` as valid JSON."""
    payload = {
        "message": message,
        "path": path,
        "requestId": request_id,
        "statusCode": str(status),
        "timestamp": iso_timestamp(),
    }
    return json.dumps(payload, ensure_ascii=False).encode()


def problem_body(status: int, message: str, path: str, request_id: str) -> bytes:
    """The observed ``application/problem+json`` body (title/status/message/instance/.../error)."""
    payload = {
        "title": reason_phrase(status),
        "status": status,
        "message": message,
        "instance": path,
        "requestId": request_id,
        "timestamp": iso_timestamp(),
        "error": {"name": _EXCEPTION_NAMES.get(status, "HttpException"), "message": message},
    }
    return json.dumps(payload, ensure_ascii=False).encode()


def html_body(status: int) -> bytes:
    """An nginx-style error page, e.g. ``502 Bad Gateway``."""
    title = f"{status} {reason_phrase(status)}"
    return (
        f"<html>\r\n<head><title>{title}</title></head>\r\n<body>\r\n"
        f"<center><h1>{title}</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
    ).encode()


def error_body(
    style: ErrorBodyStyle, status: int, message: str, path: str, request_id: str
) -> tuple[bytes, str | None]:
    """``(body, content_type)`` for an error in the given style (``None`` type for an empty body)."""
    if style == "problem":
        return problem_body(status, message, path, request_id), PROBLEM_TYPE
    if style == "html":
        return html_body(status), HTML_TYPE
    if style == "empty":
        return b"", None
    return legacy_body(status, message, path, request_id), JSON_TYPE


def format_retry_after(value: float | str) -> str:
    """``Retry-After`` value: integral seconds without a decimal point, strings verbatim."""
    if isinstance(value, str):
        return value
    return str(int(value)) if float(value).is_integer() else f"{value:g}"
