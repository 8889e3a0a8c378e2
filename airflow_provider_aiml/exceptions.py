"""The provider's own exception types.

Every failure the provider raises is an :class:`AimlApiError`, so a DAG can catch one type. Errors that come
from an HTTP response carry the status, the API's own message (its error bodies are not OpenAI-shaped) and the
ids needed to find the call in the API's logs. No exception ever holds the API key or the request headers.
"""

from __future__ import annotations

from airflow.sdk.exceptions import AirflowException, AirflowFailException


class AimlApiError(AirflowException):
    """Base class of every error raised by the AI/ML API provider."""

    status_code: int | None  # type: ignore[assignment]  # the API's HTTP status, not Airflow's REST mapping

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        client_request_id: str | None = None,
        api_request_id: str | None = None,
        inference_id: str | None = None,
        retry_after: str | None = None,
    ) -> None:
        self.message = message
        self.retry_after = retry_after
        """The server's ``Retry-After`` header, when it sent one."""
        self.status_code = status_code
        self.client_request_id = client_request_id
        self.api_request_id = api_request_id
        self.inference_id = inference_id
        super().__init__(self._describe())

    def _describe(self) -> str:
        parts = [self.message]
        ids = [
            f"HTTP {self.status_code}" if self.status_code is not None else None,
            f"client request id {self.client_request_id}" if self.client_request_id else None,
            f"API request id {self.api_request_id}" if self.api_request_id else None,
            f"inference id {self.inference_id}" if self.inference_id else None,
        ]
        details = ", ".join(part for part in ids if part)
        if details:
            parts.append(f"({details})")
        return " ".join(parts)

    def __reduce__(self) -> tuple[object, ...]:
        # Keyword-only arguments do not survive the default pickling; Airflow pickles exceptions across processes.
        return (_rebuild, (type(self), self.message, self.__dict__.copy()))


def _rebuild(cls: type[AimlApiError], message: str, state: dict[str, object]) -> AimlApiError:
    error = cls.__new__(cls)
    error.__dict__.update(state)
    Exception.__init__(error, error._describe())
    return error


class AimlPermanentError(AimlApiError, AirflowFailException):
    """An error that trying again cannot fix: Airflow fails the task without using its retries (each of which
    could be another billed call)."""


class AimlConfigurationError(AimlPermanentError):
    """The connection or the operator is configured wrongly (missing key, bad timeout, ...)."""


class AimlParameterError(AimlPermanentError, ValueError):
    """A request parameter or message is invalid; raised before anything is sent."""


class AimlImageError(AimlParameterError):
    """An image given to the operator is missing, unreadable or not an image."""


class AimlFileError(AimlImageError):
    """An input file is missing, forbidden, too large, or not an image or PDF the provider can send."""


class AimlStorageError(AimlApiError):
    """Object storage failed while reading or writing a file (not the file's fault: a retry may succeed)."""


class AimlTransportError(AimlApiError):
    """The API could not be reached, or the connection broke before a full response arrived."""


class AimlTimeoutError(AimlTransportError):
    """The API did not answer within the connection's timeout."""


class AimlResponseError(AimlApiError):
    """The API answered with a body the provider cannot understand (bad JSON, missing fields, bad SSE)."""


class AimlStreamIncompleteError(AimlResponseError):
    """A streamed answer ended before the model sent a finish reason."""


class AimlOutputParseError(AimlApiError):
    """The model was asked for JSON but its answer does not decode as JSON."""


class AimlOutputValidationError(AimlOutputParseError):
    """The answer is JSON but does not match the requested ``output_type``."""


class AimlBatchError(AimlApiError):
    """A batch ended with failed or unrun records; the results obtained are in XCom all the same."""


class AimlAgentError(AimlPermanentError):
    """An agent run stopped: ``max_steps`` reached, too many tool errors, or a budget spent. Retrying would
    replay the same recorded steps to the same end, so the task fails without Airflow retries; the steps and
    usage so far are in XCom."""


class AimlDailyBudgetError(AimlPermanentError):
    """The connection's ``max_usd_per_day`` is spent: no new call is sent until the next UTC day. Retrying the
    task today would be refused the same way, so Airflow does not retry it."""


class AimlLimitStoreError(AimlApiError):
    """The store of the connection-wide limits (Redis, or the local file) could not be used; nothing was sent.
    A retry of the task may succeed once the store is back."""


class AimlStatusError(AimlApiError):
    """The API answered with an HTTP error status."""


class AimlBadRequestError(AimlStatusError, AimlPermanentError):
    """400 or 422: the API rejected the request body."""


class AimlAuthenticationError(AimlStatusError, AimlPermanentError):
    """401: the API key is missing, invalid, expired or disabled."""


class AimlPermissionError(AimlStatusError, AimlPermanentError):
    """403: the key is valid but not allowed (out of credits, spend limit, scope)."""


class AimlNotFoundError(AimlStatusError, AimlPermanentError):
    """404: wrong base URL, unknown or deprecated model."""


class AimlRateLimitError(AimlStatusError):
    """429: rate or concurrency limit hit."""


class AimlServerError(AimlStatusError):
    """5xx: the API or its upstream model provider failed."""


_STATUS_ERRORS: dict[int, type[AimlStatusError]] = {
    400: AimlBadRequestError,
    401: AimlAuthenticationError,
    403: AimlPermissionError,
    404: AimlNotFoundError,
    422: AimlBadRequestError,
    429: AimlRateLimitError,
}


def status_error_class(status_code: int) -> type[AimlStatusError]:
    """Return the exception type for an HTTP error status."""
    if status_code >= 500:
        return AimlServerError
    return _STATUS_ERRORS.get(status_code, AimlStatusError)
