"""Wire models of the AI/ML API chat-completions endpoint, shared by the hook, operators and triggers.

Two halves:

* **Request parameters** (:class:`GenerationParams` and friends) encode the ranges documented for
  ``alibaba/qwen3-vl-32b-thinking`` so a bad value fails before any billed call. They validate only: the body
  that goes on the wire is built from the caller's own values, so nothing the caller did not set is sent.
* **Results** (:class:`ChatCompletionResult`, :class:`Usage`, :class:`StreamDelta`) are what the provider hands
  back: one typed shape whether the answer was streamed or not, whichever model family produced it.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag

from airflow_provider_aiml.parameters import NUMERIC_PARAMETERS, STOP_SEQUENCES_MAX

CREDITS_PER_USD = 2_000_000
"""The API's fixed rate: one US dollar buys two million credits."""

USD_DECIMALS = 7
"""The API's precision in US dollars: one credit is $0.0000005, so every ``usd_spent`` has 7 decimals at most."""

DEFAULT_MODEL = "alibaba/qwen3-vl-32b-thinking"
DEFAULT_BASE_URL = "https://api.aimlapi.com/v1"

NAME_PATTERN = r"^[a-zA-Z0-9_-]{1,64}$"


class _Strict(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True, defer_build=True)


class _Open(BaseModel):
    """A strict model that lets unknown keys through (the API adds keys over time)."""

    model_config = ConfigDict(strict=True, extra="allow", frozen=True, defer_build=True)


# --- request parameters -------------------------------------------------------------------------------------


class FunctionDefinition(_Strict):
    name: Annotated[str, Field(pattern=NAME_PATTERN)]
    description: str | None = None
    parameters: dict[str, Any]
    strict: bool | None = None


class ToolDefinition(_Strict):
    type: Literal["function"]
    function: FunctionDefinition


class _NamedFunction(_Strict):
    name: Annotated[str, Field(pattern=NAME_PATTERN)]


class ToolChoiceFunction(_Strict):
    type: Literal["function"]
    function: _NamedFunction


class TextFormat(_Strict):
    type: Literal["text"]


class JsonObjectFormat(_Strict):
    type: Literal["json_object"]


class JsonSchemaSpec(_Strict):
    name: Annotated[str, Field(pattern=NAME_PATTERN)]
    schema_: Annotated[dict[str, Any] | None, Field(alias="schema")] = None
    strict: bool | None = None
    description: str | None = None


class JsonSchemaFormat(_Strict):
    type: Literal["json_schema"]
    json_schema: JsonSchemaSpec


def _format_kind(value: Any) -> str | None:
    kind = value.get("type") if isinstance(value, dict) else getattr(value, "type", None)
    return f"type={kind}" if kind in ("text", "json_object", "json_schema") else None


ResponseFormat = Annotated[
    Annotated[TextFormat, Tag("type=text")]
    | Annotated[JsonObjectFormat, Tag("type=json_object")]
    | Annotated[JsonSchemaFormat, Tag("type=json_schema")],
    Discriminator(
        _format_kind,
        custom_error_type="response_format_type",
        custom_error_message="type must be one of 'text', 'json_object', 'json_schema'",
    ),
]


class StreamOptions(_Strict):
    include_usage: bool


class Prediction(_Strict):
    type: Literal["content"]
    content: str | list[dict[str, Any]]


def _range(name: str) -> Any:
    """The pydantic constraint of a numeric parameter, from the one table of ranges."""
    bounds = NUMERIC_PARAMETERS[name]
    return Field(ge=bounds.ge, le=bounds.le, gt=bounds.gt, allow_inf_nan=False if bounds.kind is float else None)


class GenerationParams(_Strict):
    """Every generation parameter of the seed model, with its documented range.

    ``None`` means "not set": such keys are never sent.
    """

    max_completion_tokens: Annotated[int, _range("max_completion_tokens")] | None = None
    max_tokens: Annotated[int, _range("max_tokens")] | None = None
    temperature: Annotated[float, _range("temperature")] | None = None
    top_p: Annotated[float, _range("top_p")] | None = None
    stop: str | Annotated[list[str], Field(min_length=1, max_length=STOP_SEQUENCES_MAX)] | None = None
    frequency_penalty: Annotated[float, _range("frequency_penalty")] | None = None
    presence_penalty: Annotated[float, _range("presence_penalty")] | None = None
    seed: Annotated[int, _range("seed")] | None = None
    repetition_penalty: Annotated[float, _range("repetition_penalty")] | None = None
    response_format: ResponseFormat | None = None
    tools: Annotated[list[ToolDefinition], Field(min_length=1, max_length=128)] | None = None
    tool_choice: Literal["none", "auto", "required"] | ToolChoiceFunction | None = None
    parallel_tool_calls: bool | None = None
    prediction: Prediction | None = None
    stream_options: StreamOptions | None = None


GENERATION_PARAMETERS: tuple[str, ...] = tuple(GenerationParams.model_fields)
"""Names of the generation parameters, in the order the seed documents them."""

RESERVED_BODY_KEYS = frozenset({"model", "messages", "stream"})
"""Body keys the provider sets itself; ``extra_body`` may not override them."""


# --- results ------------------------------------------------------------------------------------------------


def round_usd(amount: float) -> float:
    """A sum of dollar amounts at the API's precision: 0.00124 + 0.001287 is 0.002527, not 0.0025269999999999997.

    Each amount is a whole number of credits ($0.0000005 each), so rounding to :data:`USD_DECIMALS` only drops
    the binary floating-point error of the sum.
    """
    return round(amount, USD_DECIMALS)


def format_usd(amount: float) -> str:
    """Dollars for people, small amounts to the API's precision (7 decimals): $0.0013615, $0.0421, $12.34."""
    amount = round_usd(amount)
    if amount == 0:
        return "$0.00"
    if abs(amount) < 0.01:
        return "$" + f"{amount:.7f}".rstrip("0")
    if abs(amount) < 1:
        return f"${amount:.4f}"
    return f"${amount:,.2f}"


class Usage(_Strict):
    """Token counts and cost of one call.

    Reasoning tokens are part of ``completion_tokens``; cached tokens (prompt tokens served from the
    provider's prompt cache) are part of ``prompt_tokens``.
    """

    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0
    reasoning_tokens: int = 0
    cached_tokens: int = 0
    credits_used: int | None = None
    usd_spent: float | None = None

    def __add__(self, other: Usage) -> Usage:
        """The sum of two usages; a cost stays ``None`` only when neither side reported one."""
        credits = (self.credits_used or 0) + (other.credits_used or 0)
        usd = round_usd((self.usd_spent or 0.0) + (other.usd_spent or 0.0))
        return Usage(
            prompt_tokens=self.prompt_tokens + other.prompt_tokens,
            completion_tokens=self.completion_tokens + other.completion_tokens,
            total_tokens=self.total_tokens + other.total_tokens,
            reasoning_tokens=self.reasoning_tokens + other.reasoning_tokens,
            cached_tokens=self.cached_tokens + other.cached_tokens,
            credits_used=None if self.credits_used is None and other.credits_used is None else credits,
            usd_spent=None if self.usd_spent is None and other.usd_spent is None else usd,
        )


class FunctionCall(_Open):
    name: str = ""
    arguments: str = ""


class ToolCall(_Open):
    """A tool call the model asks for; ``function.arguments`` is a JSON string, as on the wire."""

    id: str = ""
    type: str = "function"
    function: FunctionCall = FunctionCall()


class ChatCompletionResult(_Strict):
    """One answer of the model, the same whether it was streamed or not."""

    id: str
    model: str
    """The model name the API reports; often differs from the requested id (e.g. without the vendor prefix)."""
    requested_model: str
    content: str
    reasoning: str = ""
    finish_reason: str | None
    tool_calls: list[ToolCall] = []
    usage: Usage
    client_request_id: str | None = None
    """The ``X-Client-Request-Id`` sent with the call, to find it in the API's logs."""
    inference_id: str | None = None
    """The API's billing handle (``x-inference-id``)."""
    request_id: str | None = None
    """The API's own request id (``x-request-id``), when it sends one."""
    latency_s: float = 0.0
    raw: dict[str, Any] = {}
    """The response payload as received (for a stream: the chunks folded into the non-streaming shape)."""
    fallback_from: list[str] = []
    """The models asked before ``requested_model`` that failed in a way a fallback may follow (in order)."""

    def response_summary(self) -> dict[str, Any]:
        """The ``response`` XCom value: ids and finish reason, enough to trace the call."""
        return {
            "id": self.id,
            "model": self.model,
            "requested_model": self.requested_model,
            "finish_reason": self.finish_reason,
            "client_request_id": self.client_request_id,
            "inference_id": self.inference_id,
            "request_id": self.request_id,
            "latency_s": round(self.latency_s, 3),
            "tool_calls": [call.model_dump() for call in self.tool_calls],
            "fallback_from": list(self.fallback_from),
        }


class StreamDelta(_Strict):
    """A piece of a streamed answer as it arrives."""

    content: str = ""
    reasoning: str = ""
    tool_calls: list[dict[str, Any]] = []
    finish_reason: str | None = None
    attempt: int = 1
    """Which try this piece belongs to; a retried stream starts again from the beginning."""


DEFAULT_EMBEDDING_MODEL = "text-embedding-3-small"
"""The embedding model used when neither the task nor the connection (``embedding_model`` extra) names one: the
smallest and cheapest of the embedding models the AI/ML API lists (text-embedding-3-small, -3-large, ada-002)."""


class EmbeddingResult(_Strict):
    """The vectors of a list of texts, in the texts' order, and what computing them cost."""

    model: str
    """The model the API reports."""
    requested_model: str
    vectors: list[list[float]]
    usage: Usage
    requests: int = 1
    """How many HTTP requests the texts were sent in."""
    attempts: int = 1
    """How many HTTP tries those requests took, retries included."""
    latency_s: float = 0.0
    """Wall-clock seconds of the request, or of the whole call for a combined result."""
    client_request_id: str | None = None
    """The ``X-Client-Request-Id`` of the request; for a combined result, the call's id (each request appends
    ``:b<n>``)."""

    @property
    def dimensions(self) -> int:
        """Length of the vectors (0 for no texts)."""
        return len(self.vectors[0]) if self.vectors else 0

    @classmethod
    def combine(
        cls,
        parts: list[EmbeddingResult],
        requested_model: str,
        *,
        latency_s: float,
        client_request_id: str | None,
    ) -> EmbeddingResult:
        """The results of consecutive batches as one result, in order, with their usage summed."""
        usage = Usage()
        vectors: list[list[float]] = []
        for part in parts:
            vectors.extend(part.vectors)
            usage = usage + part.usage
        return cls.model_construct(  # the parts were validated when they were parsed
            model=parts[0].model if parts else requested_model,
            requested_model=requested_model,
            vectors=vectors,
            usage=usage,
            requests=sum(part.requests for part in parts),
            attempts=sum(part.attempts for part in parts),
            latency_s=latency_s,
            client_request_id=client_request_id,
        )
