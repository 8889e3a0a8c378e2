"""The AI/ML API hook: connection, HTTP clients (sync and async), the chat-completions and embeddings calls.

Request building lives in :mod:`.building`, response parsing in :mod:`.parsing` and the retry decision in
:mod:`.retry`; this module only moves bytes and applies them the same way for the sync, async and streaming
paths.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager, suppress
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, TypeVar
from urllib.parse import quote

import httpx
from airflow.sdk import BaseHook

from airflow_provider_aiml.catalog.cache import Lookup
from airflow_provider_aiml.catalog.entry import ModelEntry
from airflow_provider_aiml.catalog.profile import ModelProfile
from airflow_provider_aiml.catalog.reasoning import SWITCHES as REASONING_SWITCHES
from airflow_provider_aiml.catalog.reasoning import reasoning_keys
from airflow_provider_aiml.exceptions import (
    AimlApiError,
    AimlConfigurationError,
    AimlParameterError,
    AimlResponseError,
    AimlTimeoutError,
    AimlTransportError,
)
from airflow_provider_aiml.hooks import DEFAULT_CONN_ID
from airflow_provider_aiml.hooks.account import (
    BILLING_PATH,
    USAGE_PATH,
    AccountBalance,
    KeyUsage,
    parse_balance,
    parse_key_usage,
    usage_query,
)
from airflow_provider_aiml.hooks.building import (
    DEFAULT_EMBEDDING_BATCH,
    EmbeddingRequest,
    build_chat_request,
    build_embedding_requests,
    call_headers,
    client_headers,
    encode_body,
    extend_messages,
    new_client_request_id,
)
from airflow_provider_aiml.hooks.building import client_request_id as make_client_request_id
from airflow_provider_aiml.hooks.catalog import CATALOG_TIMEOUT, CatalogReader
from airflow_provider_aiml.hooks.parsing import (
    CallInfo,
    StreamAccumulator,
    parse_completion,
    parse_embeddings,
    parse_error,
)
from airflow_provider_aiml.hooks.retry import RetryPolicy, fallback_reason
from airflow_provider_aiml.hooks.settings import ConnectionSettings
from airflow_provider_aiml.hooks.sizing import (
    CHARS_PER_TOKEN_AT_MOST,
    CONTEXT_LOOKUP_FROM_TOKENS,
    DEFAULT_CONTEXT_LENGTHS,
    check_body_size,
    check_context_length,
    context_length_from,
    prompt_tokens_at_least,
)
from airflow_provider_aiml.limits.limiter import ConnectionLimiter, NoSlot, Slot, limiter_for
from airflow_provider_aiml.models import ChatCompletionResult, EmbeddingResult, StreamDelta, Usage

if TYPE_CHECKING:
    from datetime import datetime

    from airflow_provider_aiml.hooks.logs import BilledUsage


class _Billed(Protocol):
    """An answer with its usage: a chat completion or an embeddings result."""

    @property
    def usage(self) -> Usage: ...


R = TypeVar("R", bound=_Billed)
Call = TypeVar("Call", "PreparedChat", "PreparedEmbeddings")
CHAT_COMPLETIONS_PATH = "/chat/completions"
EMBEDDINGS_PATH = "/embeddings"
CONNECT_TIMEOUT = 10.0
CONNECTIONS_PER_ASYNC_CLIENT = 8
TEST_CONNECTION_TIMEOUT = 15.0
_UNSET = object()


@dataclass(frozen=True)
class PreparedChat:
    """A validated call, ready to send (and to resend on a retry). Build it with :meth:`PreparedChat.build`."""

    model: str
    body: dict[str, Any]
    client_request_id: str
    payload: bytes | None = None
    """``body`` encoded as sent, when building it already did (batch calls are encoded when they are sent)."""
    fallbacks: tuple[PreparedChat, ...] = ()
    """The same call for each of its ``fallback_models``, checked for that model, in the order they are tried."""

    @classmethod
    def build(
        cls,
        settings: ConnectionSettings,
        messages: Sequence[Mapping[str, Any]],
        model: str | None,
        client_request_id: str | None,
        extra_body: Mapping[str, Any] | None,
        params: Mapping[str, Any],
        *,
        stream: bool,
        profile: ModelProfile | None = None,
    ) -> PreparedChat:
        """Validate everything and build the body; raises before any request is sent.

        ``profile`` is what the catalog says of the model (its capabilities, its own parameter ranges and its
        reasoning keys); without one the seed model's built-in ranges apply.
        """
        chosen = model or settings.model
        profile = profile if profile is not None else ModelProfile.build(chosen)
        generation = {key: value for key, value in params.items() if key not in REASONING_SWITCHES}
        extra = with_reasoning_keys(chosen, profile, params, generation, extra_body)
        request = build_chat_request(
            chosen, messages, generation, stream=stream, extra_body=extra, ranges_from_schema=profile.checks_parameters
        )
        profile.check(request.body, extra_keys=(extra_body or {}).keys())
        check_body_size(len(request.payload), settings.max_request_mb)
        request_id = make_client_request_id(client_request_id) if client_request_id else new_client_request_id()
        return cls(chosen, request.body, request_id, request.payload)

    def for_body(self, body: dict[str, Any], client_request_id: str) -> PreparedChat:
        """This call's model and fallbacks over another body built from this one (a batch record's messages):
        each fallback keeps its own keys (its reasoning keys may differ) with the record's messages."""
        fallbacks = tuple(
            PreparedChat(
                fallback.model,
                {**fallback.body, "messages": body["messages"]},
                make_client_request_id(client_request_id, f"f{number}"),
            )
            for number, fallback in enumerate(self.fallbacks, start=1)
        )
        return PreparedChat(self.model, body, client_request_id, None, fallbacks)

    def chain(self) -> tuple[PreparedChat, ...]:
        """This call, then its fallbacks."""
        return (self, *self.fallbacks)

    def extended(
        self, settings: ConnectionSettings, messages: Sequence[Mapping[str, Any]], client_request_id: str
    ) -> PreparedChat:
        """The same call over a longer conversation (``messages`` starts with this call's own): the new messages
        and the body's size are checked, the rest was checked when this call was built."""
        body = extend_messages(self.body, messages, len(self.body["messages"]))
        payload = encode_body(body)
        check_body_size(len(payload), settings.max_request_mb)
        fallbacks = tuple(
            fallback.extended(settings, messages, make_client_request_id(client_request_id, f"f{number}"))
            for number, fallback in enumerate(self.fallbacks, start=1)
        )
        return PreparedChat(self.model, body, make_client_request_id(client_request_id), payload, fallbacks)

    def request_args(self) -> dict[str, Any]:
        """``content`` and ``headers`` of the HTTP request; the key and the user agent are set on the client."""
        payload = self.payload if self.payload is not None else encode_body(self.body)
        return {"content": payload, "headers": call_headers(self.client_request_id)}

    def info(self, response: httpx.Response | None = None, started: float | None = None) -> CallInfo:
        latency = time.monotonic() - started if started is not None else 0.0
        headers = response.headers if response is not None else None
        return CallInfo(self.model, self.client_request_id, headers, latency)


@dataclass(frozen=True)
class PreparedEmbeddings:
    """One checked embeddings request, ready to send (and to resend on a retry)."""

    request: EmbeddingRequest
    client_request_id: str

    @property
    def model(self) -> str:
        return self.request.model

    def request_args(self) -> dict[str, Any]:
        return {"content": self.request.payload, "headers": call_headers(self.client_request_id)}


class AimlApiHook(BaseHook):
    """Talks to the AI/ML API: chat completions (sync, async, streamed) and embeddings.

    :param aiml_conn_id: Airflow connection of type ``aimlapi``: password = API key, host = base URL (empty
        means ``https://api.aimlapi.com/v1``), extras ``model``, ``embedding_model``, ``timeout`` (seconds),
        ``max_retries``.
    :param retry_policy: override the retry behaviour (the connection's ``max_retries`` is used otherwise).
    :param log_calls: log one summary line per call (batch work may turn this off and log progress instead).
    :param max_concurrency: how many async calls may run at once; sizes the async connection pools.
    """

    conn_name_attr = "aiml_conn_id"
    default_conn_name = DEFAULT_CONN_ID
    conn_type = "aimlapi"
    hook_name = "AI/ML API"

    def __init__(
        self,
        aiml_conn_id: str = default_conn_name,
        *,
        retry_policy: RetryPolicy | None = None,
        log_calls: bool = True,
        max_concurrency: int = CONNECTIONS_PER_ASYNC_CLIENT,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.aiml_conn_id = aiml_conn_id
        self.log_calls = log_calls
        self._retry_policy = retry_policy
        self._settings: ConnectionSettings | None = None
        self._client: httpx.Client | None = None
        self.max_concurrency = max_concurrency
        self._async_clients: list[httpx.AsyncClient] = []
        self._async_clients_loop: asyncio.AbstractEventLoop | None = None
        self._next_async_client = 0
        self._ssl_context: ssl.SSLContext | None = None
        self._context_lengths: dict[str, int | None] = {}
        self._limiter: ConnectionLimiter | object | None = _UNSET
        self.catalog = CatalogReader(self)
        """Reads the model catalog (cached for the whole process, and on disk)."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}(aiml_conn_id={self.aiml_conn_id!r})"

    # --- connection and clients -----------------------------------------------------------------------------

    @property
    def settings(self) -> ConnectionSettings:
        """The connection's settings, read once per hook."""
        if self._settings is None:
            self._settings = self._load_settings(self.get_connection(self.aiml_conn_id))
        return self._settings

    async def asettings(self) -> ConnectionSettings:
        """The connection's settings, read without blocking the event loop (triggers, async tasks)."""
        if self._settings is None:
            self._settings = self._load_settings(await self.aget_connection(self.aiml_conn_id))
        return self._settings

    def _load_settings(self, conn: Any) -> ConnectionSettings:
        settings = ConnectionSettings.from_connection(conn, self.aiml_conn_id)
        from airflow.sdk.log import mask_secret

        mask_secret(settings.api_key.get_secret_value())
        return settings

    @property
    def retry_policy(self) -> RetryPolicy:
        return self._retry_policy or RetryPolicy(max_retries=self.settings.max_retries)

    def _client_options(self, settings: ConnectionSettings) -> dict[str, Any]:
        if self._ssl_context is None:  # loading the CA bundle costs ~25 ms: once per hook, shared by its clients
            self._ssl_context = httpx.create_ssl_context()
        return {
            "verify": self._ssl_context,
            "base_url": settings.base_url,
            "headers": client_headers(settings.api_key.get_secret_value()),
            "timeout": httpx.Timeout(settings.timeout, connect=min(CONNECT_TIMEOUT, settings.timeout)),
            "follow_redirects": False,
        }

    def get_conn(self) -> httpx.Client:
        """The hook's HTTP client (created once, keeps connections alive between calls)."""
        if self._client is None:
            self._client = httpx.Client(**self._client_options(self.settings))
        return self._client

    async def get_async_conn(self) -> httpx.AsyncClient:
        """An async HTTP client for the running event loop.

        The hook keeps one client per :data:`CONNECTIONS_PER_ASYNC_CLIENT` concurrent calls and hands them out
        in turn: httpcore's pool gets slow when one pool serves many connections (measured: 640 calls at
        concurrency 128 took 10 s through one client, 0.8 s through 32 small ones).
        """
        loop = asyncio.get_running_loop()
        if not self._async_clients or self._async_clients_loop is not loop:
            settings = await self.asettings()
            if not self._async_clients or self._async_clients_loop is not loop:  # another call may have won
                size = CONNECTIONS_PER_ASYNC_CLIENT
                limits = httpx.Limits(max_connections=size, max_keepalive_connections=size)
                count = max(1, -(-self.max_concurrency // size))
                self._async_clients = [
                    httpx.AsyncClient(**self._client_options(settings), limits=limits) for _ in range(count)
                ]
                self._async_clients_loop = loop
        self._next_async_client = (self._next_async_client + 1) % len(self._async_clients)
        return self._async_clients[self._next_async_client]

    def close(self) -> None:
        """Close the sync client; the hook can be used again afterwards."""
        if self._client is not None:
            self._client.close()
            self._client = None

    async def aclose(self) -> None:
        """Close the async clients of the running loop."""
        clients, self._async_clients = self._async_clients, []
        for client in clients:
            await client.aclose()

    # --- chat completions -----------------------------------------------------------------------------------

    def chat_completion(
        self,
        messages: Sequence[Mapping[str, Any]],
        *,
        model: str | None = None,
        client_request_id: str | None = None,
        extra_body: Mapping[str, Any] | None = None,
        fallback_models: Sequence[str] = (),
        **params: Any,
    ) -> ChatCompletionResult:
        """Ask the model and wait for the whole answer.

        :param messages: OpenAI-style messages (text and ``image_url`` parts).
        :param model: model id; the connection's default model when not given.
        :param client_request_id: id sent as ``X-Client-Request-Id`` to trace the call in the API's logs.
        :param extra_body: model-specific keys merged into the body (``enable_thinking``, ``reasoning_effort``).
        :param fallback_models: models to send the same call to, in order, when ``model`` is deprecated (404),
            not allowed by the key's scopes (403), or keeps failing (5xx, timeouts) once its retries are spent;
            never after a 400, 401 or 429. Each is checked for the call before anything is sent.
        :param params: generation parameters by their API names (``temperature``, ``max_completion_tokens``...),
            and the reasoning switch ``reasoning_effort`` (``"low"|"medium"|"high"``) and/or
            ``reasoning_budget_tokens``, sent in the model's own keys.
        """
        call = self.prepare_chat(
            messages, model, client_request_id, extra_body, params, stream=False, fallback_models=fallback_models
        )
        return self.send_chat(call)

    def prepare_chat(
        self,
        messages: Sequence[Mapping[str, Any]],
        model: str | None,
        client_request_id: str | None,
        extra_body: Mapping[str, Any] | None,
        params: Mapping[str, Any],
        *,
        stream: bool,
        fallback_models: Sequence[str] = (),
    ) -> PreparedChat:
        """Check a call (the model's catalog entry and schema, parameters, messages, body size, context length)
        and build it, and one for each fallback model; nothing is sent, so whatever is wrong raises
        :class:`AimlParameterError` before anything is billed."""
        settings = self.settings
        calls = []
        if fallback_models and client_request_id is None:  # one id for the call, so its fallbacks are traced under it
            client_request_id = new_client_request_id()
        for number, chosen in enumerate(_models_of(model or settings.model, fallback_models)):
            request_id = _fallback_request_id(client_request_id, number)
            profile = self.model_profile(chosen)
            call = PreparedChat.build(
                settings, messages, chosen, request_id, extra_body, params, stream=stream, profile=profile
            )
            if _needs_context_check(call.body):
                known = profile.entry.context_length if profile.entry is not None else None
                check_context_length(call.model, call.body, known or self.context_length(call.model))
            calls.append(call)
        return _with_fallbacks(calls)

    def check_context(self, model: str, body: Mapping[str, Any]) -> None:
        """Refuse a body whose prompt is over ``model``'s context length for certain (see :mod:`.sizing`); the
        context length is looked up only for prompts long enough to matter."""
        if _needs_context_check(body):
            check_context_length(model, body, self.context_length(model))

    async def aprepare_chat(
        self,
        messages: Sequence[Mapping[str, Any]],
        model: str | None,
        client_request_id: str | None,
        extra_body: Mapping[str, Any] | None,
        params: Mapping[str, Any],
        *,
        stream: bool,
        fallback_models: Sequence[str] = (),
    ) -> PreparedChat:
        """Async :meth:`prepare_chat` (the catalog is read without blocking the event loop)."""
        settings = await self.asettings()
        calls = []
        if fallback_models and client_request_id is None:  # one id for the call, so its fallbacks are traced under it
            client_request_id = new_client_request_id()
        for number, chosen in enumerate(_models_of(model or settings.model, fallback_models)):
            request_id = _fallback_request_id(client_request_id, number)
            profile = await self.amodel_profile(chosen)
            call = PreparedChat.build(
                settings, messages, chosen, request_id, extra_body, params, stream=stream, profile=profile
            )
            if _needs_context_check(call.body):
                known = profile.entry.context_length if profile.entry is not None else None
                check_context_length(call.model, call.body, known or await self.acontext_length(call.model))
            calls.append(call)
        return _with_fallbacks(calls)

    async def aextend_chat(
        self, call: PreparedChat, messages: Sequence[Mapping[str, Any]], client_request_id: str
    ) -> PreparedChat:
        """``call`` over a longer conversation, checked like :meth:`aprepare_chat` but for the messages ``call``
        already holds (an agent's next step)."""
        settings = await self.asettings()
        extended = call.extended(settings, messages, client_request_id)
        size = None if extended.payload is None else len(extended.payload)
        if _needs_context_check(extended.body, size):
            check_context_length(extended.model, extended.body, await self.acontext_length(extended.model))
        return extended

    # --- the model catalog ----------------------------------------------------------------------------------

    def model_profile(self, model: str) -> ModelProfile:
        """What the catalog says ``model`` takes (read once per process and cached on disk, revalidated by
        ETag); the built-in profile when the connection's ``catalog_checks`` is off or the catalog is down."""
        return self.catalog.profile(model)

    async def amodel_profile(self, model: str) -> ModelProfile:
        """Async :meth:`model_profile`."""
        return await self.catalog.aprofile(model)

    def get_model(self, model: str) -> ModelEntry | None:
        """``model``'s catalog entry (``GET /model/{id}?include=all``, matched on id or alias): capabilities,
        context length, pricing, schema link; ``None`` when the catalog does not list it. Raises
        :class:`~airflow_provider_aiml.exceptions.AimlTransportError` when the catalog cannot be read."""
        return self.catalog.get_model(model)

    async def aget_model(self, model: str) -> ModelEntry | None:
        """Async :meth:`get_model`."""
        return await self.catalog.aget_model(model)

    def _catalog_get(self, lookup: Lookup) -> httpx.Response:
        timeout = min(self.settings.timeout, CATALOG_TIMEOUT)
        return self.get_conn().get(lookup.url, headers=lookup.headers(), timeout=timeout)

    async def _acatalog_get(self, lookup: Lookup) -> httpx.Response:
        settings = await self.asettings()
        client = await self.get_async_conn()
        return await client.get(lookup.url, headers=lookup.headers(), timeout=min(settings.timeout, CATALOG_TIMEOUT))

    def context_length(self, model: str) -> int | None:
        """``model``'s context length: the catalog's ``contextLength`` (``GET /model/{id}``, read once per hook),
        else the documented default for the seed model, else ``None`` (then it is not checked)."""
        if model not in self._context_lengths:
            try:
                response: httpx.Response | Exception = self._get(
                    _catalog_url(self.settings, model), min(self.settings.timeout, CATALOG_TIMEOUT)
                )
            except (httpx.HTTPError, OSError) as error:
                response = error
            self._context_lengths[model] = self._context_length_in(model, response)
        return self._context_lengths[model]

    async def acontext_length(self, model: str) -> int | None:
        """Async :meth:`context_length`."""
        if model not in self._context_lengths:
            settings = await self.asettings()
            try:
                client = await self.get_async_conn()
                response: httpx.Response | Exception = await client.get(
                    _catalog_url(settings, model), timeout=min(settings.timeout, CATALOG_TIMEOUT)
                )
            except (httpx.HTTPError, OSError) as error:
                response = error
            self._context_lengths[model] = self._context_length_in(model, response)
        return self._context_lengths[model]

    def _context_length_in(self, model: str, response: httpx.Response | Exception) -> int | None:
        """The catalog's figure; on any failure the default, logged: an outage of the catalog never blocks a call."""
        found = None
        if isinstance(response, httpx.Response) and response.status_code == 200:
            with suppress(ValueError):
                found = context_length_from(response.json())
        if found is None:
            found = DEFAULT_CONTEXT_LENGTHS.get(model)
            reason = f"HTTP {response.status_code}" if isinstance(response, httpx.Response) else type(response).__name__
            self.log.info(
                "The catalog gave no context length for %s (%s); %s",
                model,
                reason,
                f"checking against the documented {found:,} tokens" if found else "the prompt's length is not checked",
            )
        return found

    def send_chat(self, call: PreparedChat) -> ChatCompletionResult:
        """Send a call built by :meth:`prepare_chat` and wait for the whole answer (retrying what is transient,
        then going to its fallback models when :func:`.retry.fallback_reason` allows)."""
        failed: list[str] = []
        for current in call.chain():
            try:
                result = self._post(CHAT_COMPLETIONS_PATH, current, self._completion_from, self._finish)
            except AimlApiError as error:
                self._fall_back_or_raise(error, current, call, failed)
                continue
            return _answered_after(result, failed)
        raise AssertionError("unreachable: the last model's failure is raised")  # pragma: no cover

    async def achat_completion(
        self,
        messages: Sequence[Mapping[str, Any]],
        *,
        model: str | None = None,
        client_request_id: str | None = None,
        extra_body: Mapping[str, Any] | None = None,
        fallback_models: Sequence[str] = (),
        **params: Any,
    ) -> ChatCompletionResult:
        """Async :meth:`chat_completion`, for triggers and concurrent batch work."""
        call = await self.aprepare_chat(
            messages, model, client_request_id, extra_body, params, stream=False, fallback_models=fallback_models
        )
        return await self.asend_chat(call)

    async def asend_chat(self, call: PreparedChat) -> ChatCompletionResult:
        """Send a call that was already validated and built (batch work prepares all of them up front)."""
        failed: list[str] = []
        for current in call.chain():
            try:
                result = await self._apost(CHAT_COMPLETIONS_PATH, current, self._completion_from, self._finish)
            except AimlApiError as error:
                self._fall_back_or_raise(error, current, call, failed)
                continue
            return _answered_after(result, failed)
        raise AssertionError("unreachable: the last model's failure is raised")  # pragma: no cover

    def _fall_back_or_raise(
        self, error: AimlApiError, current: PreparedChat, call: PreparedChat, failed: list[str]
    ) -> None:
        """Log the switch to the next fallback model, or raise ``error`` when there is none or it may not."""
        chain = call.chain()
        position = chain.index(current)
        reason = fallback_reason(error)
        if reason is None or position == len(chain) - 1:
            raise error
        failed.append(current.model)
        self.log.warning(
            "AI/ML API call %s: %s failed (%s: %s); falling back to %s",
            current.client_request_id,
            current.model,
            reason,
            error.message,
            chain[position + 1].model,
        )

    def stream_chat_completion(
        self,
        messages: Sequence[Mapping[str, Any]],
        *,
        model: str | None = None,
        client_request_id: str | None = None,
        extra_body: Mapping[str, Any] | None = None,
        fallback_models: Sequence[str] = (),
        **params: Any,
    ) -> Iterator[StreamDelta | ChatCompletionResult]:
        """Stream the answer: yields :class:`StreamDelta` pieces as they arrive, then the aggregated result.

        A stream that breaks or ends without a finish reason is retried like any transient failure; the
        pieces of the new try carry ``attempt`` + 1 and start again from the beginning (so do those of a
        fallback model).
        """
        call = self.prepare_chat(
            messages, model, client_request_id, extra_body, params, stream=True, fallback_models=fallback_models
        )
        yield from self.send_chat_stream(call)

    def send_chat_stream(self, call: PreparedChat) -> Iterator[StreamDelta | ChatCompletionResult]:
        """Stream a call built by :meth:`prepare_chat` with ``stream=True`` (see :meth:`stream_chat_completion`)."""
        failed: list[str] = []
        first_attempt = 1
        for current in call.chain():
            try:
                for item in self._stream_tries(current, first_attempt):
                    if isinstance(item, StreamDelta):
                        first_attempt = item.attempt + 1
                        yield item
                    else:
                        yield _answered_after(item, failed)
                return
            except AimlApiError as error:
                self._fall_back_or_raise(error, current, call, failed)

    def _stream_tries(self, call: PreparedChat, first_attempt: int) -> Iterator[StreamDelta | ChatCompletionResult]:
        client = self.get_conn()
        attempt = first_attempt
        while True:
            with self._slot(call) as slot:  # held while the stream runs
                started = time.monotonic()
                try:
                    with (
                        self._transport_errors(call),
                        client.stream("POST", CHAT_COMPLETIONS_PATH, **call.request_args()) as response,
                    ):
                        slot.answered(response.headers)
                        if response.status_code >= 400 or not _is_event_stream(response):
                            response.read()
                            result = self._completion_from(response, call, started)
                        else:
                            accumulator = StreamAccumulator(call.info(response), attempt)
                            try:
                                for line in response.iter_lines():
                                    if delta := accumulator.feed_line(line):
                                        yield delta
                                    if accumulator.done:
                                        break
                            except httpx.TransportError as error:
                                self._keep_finished_stream(accumulator, error)
                            result = self._stream_result(accumulator, started)
                except AimlApiError as error:
                    delay = self._delay_or_raise(error, attempt - first_attempt + 1, call)
                else:
                    slot.cost = result.usage.usd_spent
                    break  # the slot is given back before the result is handed over
            self._sleep(delay)
            attempt += 1
        yield self._finish(result, attempt - first_attempt + 1)

    async def astream_chat_completion(
        self,
        messages: Sequence[Mapping[str, Any]],
        *,
        model: str | None = None,
        client_request_id: str | None = None,
        extra_body: Mapping[str, Any] | None = None,
        fallback_models: Sequence[str] = (),
        **params: Any,
    ) -> AsyncIterator[StreamDelta | ChatCompletionResult]:
        """Async :meth:`stream_chat_completion`."""
        call = await self.aprepare_chat(
            messages, model, client_request_id, extra_body, params, stream=True, fallback_models=fallback_models
        )
        failed: list[str] = []
        first_attempt = 1
        for current in call.chain():
            try:
                async for item in self._astream_tries(current, first_attempt):
                    if isinstance(item, StreamDelta):
                        first_attempt = item.attempt + 1
                        yield item
                    else:
                        yield _answered_after(item, failed)
                return
            except AimlApiError as error:
                self._fall_back_or_raise(error, current, call, failed)

    async def _astream_tries(
        self, call: PreparedChat, first_attempt: int
    ) -> AsyncIterator[StreamDelta | ChatCompletionResult]:
        client = await self.get_async_conn()
        attempt = first_attempt
        while True:
            async with self._slot(call) as slot:
                started = time.monotonic()
                try:
                    with self._transport_errors(call):
                        async with client.stream("POST", CHAT_COMPLETIONS_PATH, **call.request_args()) as response:
                            slot.answered(response.headers)
                            if response.status_code >= 400 or not _is_event_stream(response):
                                await response.aread()
                                result = self._completion_from(response, call, started)
                            else:
                                accumulator = StreamAccumulator(call.info(response), attempt)
                                try:
                                    async for line in response.aiter_lines():
                                        if delta := accumulator.feed_line(line):
                                            yield delta
                                        if accumulator.done:
                                            break
                                except httpx.TransportError as error:
                                    self._keep_finished_stream(accumulator, error)
                                result = self._stream_result(accumulator, started)
                except AimlApiError as error:
                    delay = self._delay_or_raise(error, attempt - first_attempt + 1, call)
                else:
                    slot.cost = result.usage.usd_spent
                    break
            await self._async_sleep(delay)
            attempt += 1
        yield self._finish(result, attempt - first_attempt + 1)

    # --- shared pieces of the call paths --------------------------------------------------------------------

    def _post(
        self,
        path: str,
        call: Call,
        parse: Callable[[httpx.Response, Call, float], R],
        finish: Callable[[R, int], R],
    ) -> R:
        """POST a prepared call and parse the answer, retrying what the policy says is transient."""
        client = self.get_conn()
        attempt = 1
        while True:
            with self._slot(call) as slot:  # each try waits for the connection's limits and holds a slot
                started = time.monotonic()
                try:
                    with self._transport_errors(call):
                        response = client.post(path, **call.request_args())
                    slot.answered(response.headers)  # its cost counts even if the body cannot be read
                    result = finish(parse(response, call, started), attempt)
                except AimlApiError as error:
                    delay = self._delay_or_raise(error, attempt, call)
                else:
                    slot.cost = result.usage.usd_spent
                    return result
            self._sleep(delay)  # with the slot given back
            attempt += 1

    async def _apost(
        self,
        path: str,
        call: Call,
        parse: Callable[[httpx.Response, Call, float], R],
        finish: Callable[[R, int], R],
    ) -> R:
        """Async :meth:`_post`."""
        client = await self.get_async_conn()
        attempt = 1
        while True:
            async with self._slot(call) as slot:
                started = time.monotonic()
                try:
                    with self._transport_errors(call):
                        response = await client.post(path, **call.request_args())
                    slot.answered(response.headers)
                    result = finish(parse(response, call, started), attempt)
                except AimlApiError as error:
                    delay = self._delay_or_raise(error, attempt, call)
                else:
                    slot.cost = result.usage.usd_spent
                    return result
            await self._async_sleep(delay)
            attempt += 1

    @property
    def limiter(self) -> ConnectionLimiter | None:
        """The connection's shared limits in this process (``None`` when it sets none)."""
        if self._limiter is _UNSET:
            self._limiter = limiter_for(self.aiml_conn_id, self.settings.limits)
        return self._limiter  # type: ignore[return-value]

    def _slot(self, call: PreparedChat | PreparedEmbeddings) -> Slot | NoSlot:
        limiter = self.limiter
        return NoSlot() if limiter is None else limiter.slot(call.client_request_id, self.log)

    def _sleep(self, seconds: float) -> None:
        time.sleep(seconds)

    async def _async_sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)

    def _completion_from(self, response: httpx.Response, call: PreparedChat, started: float) -> ChatCompletionResult:
        if response.status_code >= 400:
            raise self._status_error(response, call.client_request_id)
        return parse_completion(response.content, call.info(response, started))

    def _status_error(self, response: httpx.Response, client_request_id: str | None) -> AimlApiError:
        """The error of a failed response; should the body quote the key, it is blanked out first."""
        key = self.settings.api_key.get_secret_value().encode()
        body = response.content.replace(key, b"***")
        return parse_error(response.status_code, response.headers, body, client_request_id)

    def _keep_finished_stream(self, accumulator: StreamAccumulator, error: httpx.TransportError) -> None:
        """A stream that broke after its finish reason is a finished answer: keep it rather than pay again."""
        if accumulator.finish_reason is None:
            raise error
        self.log.warning(
            "The stream broke after the answer was complete (%s); keeping the answer, usage may be incomplete",
            type(error).__name__,
        )

    @staticmethod
    def _stream_result(accumulator: StreamAccumulator, started: float) -> ChatCompletionResult:
        result = accumulator.finish()
        return result.model_copy(update={"latency_s": time.monotonic() - started})

    def _transport_errors(self, call: PreparedChat | PreparedEmbeddings) -> AbstractContextManager[None]:
        return translate_transport_errors(self.settings.timeout, call.client_request_id)

    def _delay_or_raise(self, error: AimlApiError, attempt: int, call: PreparedChat | PreparedEmbeddings) -> float:
        """Apply the retry policy: return the wait before the next try, or raise ``error``."""
        policy = self.retry_policy
        delay = policy.delay_before_retry(error, attempt)
        if delay is None:
            if policy.is_retryable(error) and attempt > 1:
                self.log.error("AI/ML API call %s failed after %d tries: %s", call.client_request_id, attempt, error)
            raise error
        self.log.warning(
            "AI/ML API call %s failed (%s); retry %d of %d in %.1fs",
            call.client_request_id,
            error.message,
            attempt,
            policy.max_retries,
            delay,
        )
        return delay

    def _finish(self, result: ChatCompletionResult, attempts: int) -> ChatCompletionResult:
        """Log the call's one summary line and hand the result back."""
        if self.log_calls:
            self._log_summary(result, attempts)
            if result.finish_reason == "length":
                self.log.warning(
                    "The answer was cut off at the token limit%s: raise max_completion_tokens (it includes the "
                    "reasoning tokens of a thinking model).",
                    " before the model finished thinking" if not result.content else "",
                )
        return result

    def _log_summary(self, result: ChatCompletionResult, attempts: int) -> None:
        usage = result.usage
        cost = f"${usage.usd_spent:.6f} ({usage.credits_used} credits)" if usage.usd_spent is not None else "unknown"
        self.log.info(
            "AI/ML API %s -> %s: finish=%s, tokens prompt=%d%s completion=%d (reasoning=%d) total=%d, cost %s, "
            "%.2fs%s, client request id %s",
            result.requested_model,
            result.model,
            result.finish_reason,
            usage.prompt_tokens,
            f" (cached={usage.cached_tokens})" if usage.cached_tokens else "",
            usage.completion_tokens,
            usage.reasoning_tokens,
            usage.total_tokens,
            cost,
            result.latency_s,
            f" after {attempts} tries" if attempts > 1 else "",
            result.client_request_id,
        )

    # --- embeddings -----------------------------------------------------------------------------------------

    def embed(
        self,
        texts: Sequence[str],
        *,
        model: str | None = None,
        dimensions: int | None = None,
        batch_size: int = DEFAULT_EMBEDDING_BATCH,
        client_request_id: str | None = None,
    ) -> EmbeddingResult:
        """The vectors of ``texts``, in their order, sent ``batch_size`` texts a request (``POST /embeddings``).

        Every text and option is checked before the first request; each request is retried like a chat call,
        and the call logs one summary line (texts, requests, tokens and cost summed).

        :param model: the embedding model; the connection's ``embedding_model`` extra, else
            ``text-embedding-3-small``.
        :param dimensions: shorter vectors, for the models that allow it (the ``text-embedding-3`` ones).
        :param batch_size: texts per request, at most 2,048. The default, 256, makes few requests for many short
            texts while a request of long ones stays about 0.5 MB (see :data:`.building.DEFAULT_EMBEDDING_BATCH`).
        :param client_request_id: traces the requests in the API's logs (``:b<n>`` is appended per request).
        """
        started = time.monotonic()
        call_id, calls = self.prepare_embeddings(texts, model, dimensions, batch_size, client_request_id)
        parts = [self.send_embeddings(call) for call in calls]
        return self._embedded(parts, calls, call_id, started)

    async def aembed(
        self,
        texts: Sequence[str],
        *,
        model: str | None = None,
        dimensions: int | None = None,
        batch_size: int = DEFAULT_EMBEDDING_BATCH,
        client_request_id: str | None = None,
        concurrency: int | None = None,
    ) -> EmbeddingResult:
        """Async :meth:`embed`: the requests run concurrently, at most ``concurrency`` at once (the hook's
        ``max_concurrency`` by default). When one fails for good, the requests not yet answered are cancelled,
        so nothing more is sent (and billed) for a call that has failed."""
        started = time.monotonic()
        if concurrency is not None and (
            isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1
        ):
            raise AimlParameterError(f"'concurrency' must be a whole number >= 1, got {concurrency!r}")
        await self.asettings()
        call_id, calls = self.prepare_embeddings(texts, model, dimensions, batch_size, client_request_id)
        slots = asyncio.Semaphore(concurrency or self.max_concurrency)
        failed = asyncio.Event()

        async def bounded(call: PreparedEmbeddings) -> EmbeddingResult:
            async with slots:
                if failed.is_set():
                    raise _Abandoned
                try:
                    return await self.asend_embeddings(call)
                except BaseException:
                    failed.set()
                    raise

        tasks = [asyncio.ensure_future(bounded(call)) for call in calls]
        try:
            parts = await asyncio.gather(*tasks)
        except BaseException:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            raise
        return self._embedded(list(parts), calls, call_id, started)

    def prepare_embeddings(
        self,
        texts: Sequence[str],
        model: str | None,
        dimensions: int | None,
        batch_size: int,
        client_request_id: str | None,
    ) -> tuple[str, list[PreparedEmbeddings]]:
        """Check the texts and options and build every request; nothing is sent. Returns the call's client
        request id and the requests (each traced as ``<id>:b<n>`` when there are several)."""
        settings = self.settings
        chosen = model if model is not None else settings.embedding_model
        requests = build_embedding_requests(texts, chosen, dimensions, batch_size)
        call_id = make_client_request_id(client_request_id) if client_request_id else new_client_request_id()
        calls = []
        for number, request in enumerate(requests):
            check_body_size(len(request.payload), settings.max_request_mb)
            request_id = call_id if len(requests) == 1 else make_client_request_id(call_id, f"b{number}")
            calls.append(PreparedEmbeddings(request, request_id))
        return call_id, calls

    def send_embeddings(self, call: PreparedEmbeddings) -> EmbeddingResult:
        """Send one embeddings request and wait for its vectors (retrying what is transient)."""
        return self._post(EMBEDDINGS_PATH, call, self._embeddings_from, _with_attempts)

    async def asend_embeddings(self, call: PreparedEmbeddings) -> EmbeddingResult:
        """Async :meth:`send_embeddings`."""
        return await self._apost(EMBEDDINGS_PATH, call, self._embeddings_from, _with_attempts)

    def _embeddings_from(self, response: httpx.Response, call: PreparedEmbeddings, started: float) -> EmbeddingResult:
        if response.status_code >= 400:
            raise self._status_error(response, call.client_request_id)
        info = CallInfo(call.model, call.client_request_id, response.headers, time.monotonic() - started)
        return parse_embeddings(response.content, call.request.size, info)

    def _embedded(
        self, parts: list[EmbeddingResult], calls: list[PreparedEmbeddings], call_id: str, started: float
    ) -> EmbeddingResult:
        """The batches as one result, logged as the call's one summary line."""
        result = EmbeddingResult.combine(
            parts, calls[0].model, latency_s=time.monotonic() - started, client_request_id=call_id
        )
        if self.log_calls:
            usage = result.usage
            retries = result.attempts - result.requests
            self.log.info(
                "AI/ML API embeddings %s -> %s: %d texts in %d request%s, %d dimensions, tokens %d, cost %s, "
                "%.2fs%s, client request id %s",
                result.requested_model,
                result.model,
                len(result.vectors),
                result.requests,
                "" if result.requests == 1 else "s",
                result.dimensions,
                usage.total_tokens,
                _cost_text(usage),
                result.latency_s,
                f", {retries} {'retry' if retries == 1 else 'retries'}" if retries else "",
                result.client_request_id,
            )
        return result

    # --- other endpoints ------------------------------------------------------------------------------------

    def list_models(
        self, include: Sequence[str] = (), timeout: float | None = None, **filters: str | Sequence[str]
    ) -> list[dict[str, Any]]:
        """The models the base URL serves (``GET /v1/models``; needs no key, starts no generation), cached like
        every catalog read (in the process and on disk, revalidated by ETag).

        :param include: sections to add to each item: ``pricing``, ``modalities``, ``capabilities`` or ``all``.
        :param filters: the catalog's own filters (``id``, ``type``, ``tags``, ``modalities``,
            ``input_modalities``, ``output_modalities``, ``capabilities``); a list ORs its values.
        """
        if isinstance(include, str):
            include = [include]
        with translate_transport_errors(timeout or self.settings.timeout):
            return self.catalog.list_models(include, filters)

    def test_connection(self) -> tuple[bool, str]:
        """Check the key and the base URL without starting a billed generation.

        ``/models`` is public, so it cannot prove the key; the billing balance (``GET /v2/billing``) needs a
        valid key and costs nothing. Every outcome is a short message an ops person can act on, never the key.
        """
        try:
            settings = self.settings
            timeout = min(settings.timeout, TEST_CONNECTION_TIMEOUT)
            with translate_transport_errors(timeout):
                billing = self._get(f"{settings.api_root}/v2/billing", timeout)
        except AimlConfigurationError as error:
            return False, error.message
        except AimlTimeoutError:
            return False, f"Timed out after {timeout:g}s waiting for {settings.base_url}: is the Base URL right?"
        except AimlTransportError as error:
            reason = error.message.removeprefix("Connection to the AI/ML API failed: ")
            return False, f"Cannot reach {settings.base_url} ({reason}). Check the Base URL."
        status = billing.status_code
        if status in (401, 403):
            return False, f"The API key was rejected: {self._status_error(billing, None).message}"
        if status == 404:
            return False, f"{settings.base_url} does not look like the AI/ML API (no /v2/billing there, HTTP 404)."
        if status >= 400:
            return False, self._status_error(billing, None).message
        if status >= 300:
            where = billing.headers.get("location", "another address")
            return False, f"{settings.api_root}/v2/billing redirects (HTTP {status}) to {where}: fix the Base URL."
        balance = _balance_text(billing)
        if not balance:
            return False, f"{settings.base_url} answered, but not like the AI/ML API (no balance at /v2/billing)."
        message = f"API key accepted by {settings.base_url}. Balance: {balance}."
        try:
            message += f" {len(self.list_models(timeout=timeout))} models available."
        except AimlApiError:
            message += " The model list could not be read."
        return True, message

    def billing(self, timeout: float | None = None) -> AccountBalance:
        """The account's balance (``GET /v2/billing``): no generation is started, nothing is billed.

        A failed answer raises the provider's own error, as a chat call would (401
        :class:`~airflow_provider_aiml.exceptions.AimlAuthenticationError`, 403, 5xx, timeouts, ...); neither the
        result nor an error holds the key.

        :param timeout: seconds to wait; the connection's timeout, at most 15 s, when not given.
        """
        return parse_balance(self._account_get(BILLING_PATH, timeout))

    def key_usage(self, period: str = "24h", timeout: float | None = None) -> KeyUsage:
        """What this connection's key spent in the last ``period`` (``GET /v2/usage``; any key may read its own
        spend, nothing is billed). Errors as for :meth:`billing`.

        :param period: the window, a count and a unit (``m``, ``h``, ``d``, ``w``): ``"24h"``, ``"7d"``.
        """
        response = self._account_get(USAGE_PATH + usage_query(period), timeout)
        return parse_key_usage(response, self.settings.api_key.get_secret_value())

    def billed_usage(
        self,
        client_request_ids: Iterable[str] | None = None,
        *,
        period: str | None = None,
        start: datetime | str | None = None,
        end: datetime | str | None = None,
        **options: Any,
    ) -> BilledUsage:
        """What the API billed (``GET /v2/logs``): every request of a window (``period`` such as ``"24h"``, or
        ``start`` and ``end``), kept to ``client_request_ids`` when given, summed. Paced to the endpoint's 200
        requests a minute for the whole process; see :func:`.logs.billed_usage` for ``models``, ``statuses``,
        ``timeout`` and ``max_pages``. Charges land after the response, so a call made seconds ago may be
        missing (``BilledUsage.missing``)."""
        from airflow_provider_aiml.hooks.logs import billed_usage

        return billed_usage(self, client_request_ids, period=period, start=start, end=end, **options)

    async def abilled_usage(
        self,
        client_request_ids: Iterable[str] | None = None,
        *,
        period: str | None = None,
        start: datetime | str | None = None,
        end: datetime | str | None = None,
        **options: Any,
    ) -> BilledUsage:
        """Async :meth:`billed_usage`."""
        from airflow_provider_aiml.hooks.logs import abilled_usage

        return await abilled_usage(self, client_request_ids, period=period, start=start, end=end, **options)

    def _account_get(self, path: str, timeout: float | None) -> httpx.Response:
        """``GET`` an endpoint under the API root; any status but 2xx raises. Redirects are not followed, so the
        key is never sent anywhere else."""
        settings = self.settings
        timeout = min(settings.timeout, TEST_CONNECTION_TIMEOUT) if timeout is None else timeout
        with translate_transport_errors(timeout):
            response = self._get(f"{settings.api_root}{path}", timeout)
        if response.status_code >= 400:
            raise self._status_error(response, None)
        if response.status_code >= 300:
            where = path.partition("?")[0]
            raise AimlResponseError(
                f"{settings.api_root}{where} redirects (HTTP {response.status_code}) to "
                f"{response.headers.get('location', 'another address')}: fix the Base URL"
            )
        return response

    def _get(self, url: str, timeout: float) -> httpx.Response:
        return self.get_conn().get(url, timeout=timeout)


def _models_of(model: str, fallback_models: Sequence[str]) -> list[str]:
    """The model, then its fallbacks (each once, in order); a fallback that is not a model id raises."""
    if isinstance(fallback_models, str) or not isinstance(fallback_models, Sequence):
        raise AimlParameterError(f"'fallback_models' must be a list of model ids, got {fallback_models!r}")
    chosen = [model]
    for fallback in fallback_models:
        if not isinstance(fallback, str) or not fallback.strip():
            raise AimlParameterError(f"'fallback_models' must hold model ids, got {fallback!r}")
        if fallback not in chosen:
            chosen.append(fallback)
    return chosen


def _fallback_request_id(client_request_id: str | None, number: int) -> str | None:
    """A fallback's calls are traced as ``<id>:f<n>``, so the API's logs tell the tries apart."""
    if number == 0 or client_request_id is None:
        return client_request_id
    return make_client_request_id(client_request_id, f"f{number}")


def _with_fallbacks(calls: list[PreparedChat]) -> PreparedChat:
    first = calls[0]
    if len(calls) == 1:
        return first
    return PreparedChat(first.model, first.body, first.client_request_id, first.payload, tuple(calls[1:]))


def _answered_after(result: ChatCompletionResult, failed: list[str]) -> ChatCompletionResult:
    """The answer, noting the models that failed before the one that answered."""
    return result.model_copy(update={"fallback_from": list(failed)}) if failed else result


def with_reasoning_keys(
    model: str,
    profile: ModelProfile,
    params: Mapping[str, Any],
    generation: Mapping[str, Any],
    extra_body: Mapping[str, Any] | None,
) -> Mapping[str, Any] | None:
    """``extra_body`` with the wire keys of the reasoning switch added (a key set both ways raises)."""
    extra = extra_body or {}
    max_tokens = generation.get("max_tokens", extra.get("max_tokens") if isinstance(extra, Mapping) else None)
    keys = reasoning_keys(
        model, profile.reasoning, params.get("reasoning_effort"), params.get("reasoning_budget_tokens"), max_tokens
    )
    if not keys:
        return extra_body
    clashing = sorted(set(keys) & set(extra))
    if clashing:
        raise AimlParameterError(
            f"extra_body sets {', '.join(map(repr, clashing))}, which the reasoning switch sets too: use one of them"
        )
    return {**keys, **extra}


class _Abandoned(Exception):
    """A request of a call that already failed: not sent (the call raises the first failure)."""


def _cost_text(usage: Usage) -> str:
    """The cost of an embeddings call as its summary line shows it: to 8 decimals, as embeddings are cheap (a
    short text costs well under a millionth of a dollar)."""
    if usage.usd_spent is None:
        return "unknown"
    credits = f" ({usage.credits_used} credits)" if usage.credits_used is not None else ""
    return f"${usage.usd_spent:.8f}{credits}"


def _with_attempts(result: EmbeddingResult, attempts: int) -> EmbeddingResult:
    """One request's result with the tries it took (the call logs one line for all its requests)."""
    return result if attempts == 1 else result.model_copy(update={"attempts": attempts})


def _catalog_url(settings: ConnectionSettings, model: str) -> str:
    """``GET /model/{id}``: singular, and not under ``/v1``."""
    return f"{settings.api_root}/model/{quote(model, safe='/:')}"


def _needs_context_check(body: Mapping[str, Any], payload_size: int | None = None) -> bool:
    """Only a prompt this long can pass a chat model's context length; shorter ones are not looked up.

    With the encoded body's size, a body too small to hold that much text is passed without reading its
    messages (their characters are fewer than its bytes)."""
    if payload_size is not None and payload_size // CHARS_PER_TOKEN_AT_MOST < CONTEXT_LOOKUP_FROM_TOKENS:
        return False
    return prompt_tokens_at_least(body["messages"]) >= CONTEXT_LOOKUP_FROM_TOKENS


@contextmanager
def translate_transport_errors(timeout: float, client_request_id: str | None = None) -> Iterator[None]:
    """Turn httpx's network errors into the provider's own.

    Only the messages of errors about the network itself are kept: an error about the request (an illegal
    header, say) could quote the ``Authorization`` header, so for those only the error type is given.
    """
    try:
        yield
    except httpx.TimeoutException as error:
        raise AimlTimeoutError(
            f"No answer from the AI/ML API within {timeout:g}s ({type(error).__name__})",
            client_request_id=client_request_id,
        ) from None
    except httpx.TransportError as error:
        detail = f"{type(error).__name__}: {error}" if isinstance(error, _NETWORK_ERRORS) else type(error).__name__
        raise AimlTransportError(
            f"Connection to the AI/ML API failed: {detail}", client_request_id=client_request_id
        ) from None


_NETWORK_ERRORS = (httpx.ConnectError, httpx.ReadError, httpx.WriteError, httpx.RemoteProtocolError)


def _is_event_stream(response: httpx.Response) -> bool:
    return response.headers.get("content-type", "").startswith("text/event-stream")


def _balance_text(response: httpx.Response) -> str:
    try:
        payload = response.json()
        return f"{float(payload['current_balance']):.2f} {payload.get('currency') or 'USD'}"
    except (ValueError, KeyError, TypeError):
        return ""
