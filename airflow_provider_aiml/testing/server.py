"""The HTTP/1.1 server and request handler that speak the AI/ML API wire format."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import re
import selectors
import socket
import socketserver
import struct
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

from airflow_provider_aiml.testing.admission import admission_error, model_refusal
from airflow_provider_aiml.testing.catalog_routes import catalog_answer, is_catalog_route
from airflow_provider_aiml.testing.control import CONTROL_PREFIX, handle_control
from airflow_provider_aiml.testing.embeddings import embedding_problem, embedding_response, model_id
from airflow_provider_aiml.testing.error_bodies import (
    EMPTY_KEY_MESSAGE,
    INVALID_KEY_MESSAGE,
    JSON_TYPE,
    MISSING_KEY_MESSAGE,
    PROBLEM_TYPE,
    VALIDATION_MESSAGE,
    default_message,
    error_body,
    format_retry_after,
    legacy_body,
    problem_body,
    reason_phrase,
)
from airflow_provider_aiml.testing.faults import Fault
from airflow_provider_aiml.testing.model_checks import model_errors
from airflow_provider_aiml.testing.model_specs import chat_spec
from airflow_provider_aiml.testing.pricing import TokenRates, credits_for
from airflow_provider_aiml.testing.records import CHAT_PATHS, EMBEDDINGS_PATHS, RecordedRequest
from airflow_provider_aiml.testing.replies import (
    Completion,
    build_completion,
    completion_id_for,
    format_usd,
    response_dict,
    stream_plan,
)
from airflow_provider_aiml.testing.scripts import BROKEN_DELIVERY_FAULTS, scripted_completion
from airflow_provider_aiml.testing.settings import EmulatorSettings
from airflow_provider_aiml.testing.state import EmulatorState
from airflow_provider_aiml.testing.usage_log import UsageRow
from airflow_provider_aiml.testing.validation import tool_call_id_errors, validate_chat_body

logger = logging.getLogger(__name__)

CLIENT_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
MAX_BODY_BYTES = 32 * 1024 * 1024
SLOW_BODY_PIECES = 8
LOGS_PATH = "/v2/logs"
EXPOSED_HEADERS = "x-inference-id, x-client-request-id, x-aimlapi-credits-used, x-aimlapi-usd-spent"
_PERIOD = re.compile(r"^(\d+)([mhdw])$")
_PERIOD_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


class EmulatorHTTPServer(ThreadingHTTPServer):
    """A threading HTTP server holding the emulator's settings, state and stop event."""

    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True
    request_queue_size = 1024

    def __init__(
        self,
        address: tuple[str, int],
        settings: EmulatorSettings,
        state: EmulatorState,
        stop_event: threading.Event,
    ) -> None:
        self.settings = settings
        self.state = state
        self.stop_event = stop_event
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        self._wake_reader, self._wake_writer = socket.socketpair()
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        try:
            super().__init__(address, EmulatorRequestHandler)
        except BaseException:
            self._close_wake_sockets()
            raise

    def serve_until_stopped(self) -> None:
        """Accept connections until ``stop_event`` is set and :meth:`wake` is called (no polling)."""
        with selectors.DefaultSelector() as selector:
            selector.register(self.socket, selectors.EVENT_READ, "accept")
            selector.register(self._wake_reader, selectors.EVENT_READ, "wake")
            while not self.stop_event.is_set():
                for key, _ in selector.select():
                    if key.data == "accept" and not self.stop_event.is_set():
                        self._accept_one()

    def _accept_one(self) -> None:
        try:
            request, client_address = self.get_request()
        except OSError:
            return
        try:
            self.process_request(request, client_address)
        except Exception:
            self.handle_error(request, client_address)
            self.shutdown_request(request)

    def wake(self) -> None:
        """Interrupt :meth:`serve_until_stopped` (call after setting ``stop_event``)."""
        with contextlib.suppress(OSError):
            self._wake_writer.send(b"\0")

    def server_close(self) -> None:
        """Close the listening socket and the wake-up socket pair."""
        super().server_close()
        self._close_wake_sockets()

    def _close_wake_sockets(self) -> None:
        self._wake_reader.close()
        self._wake_writer.close()

    def server_bind(self) -> None:
        """Bind without the reverse DNS lookup ``HTTPServer.server_bind`` does."""
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name = str(host)
        self.server_port = int(port)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Log handler crashes at debug level instead of printing to stderr."""
        logger.debug("emulator handler error for %s", client_address, exc_info=True)

    def track(self, connection: socket.socket) -> None:
        """Remember an open client connection (closed by :meth:`close_connections`)."""
        with self._connections_lock:
            self._connections.add(connection)
        self.state.connection_opened()

    def untrack(self, connection: socket.socket) -> None:
        """Forget a finished client connection."""
        with self._connections_lock:
            self._connections.discard(connection)

    def close_connections(self) -> None:
        """Shut down every open client connection (wakes idle keep-alive handler threads)."""
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)


class _Dropped(Exception):
    """The connection was dropped on purpose; stop handling the request."""


class EmulatorRequestHandler(BaseHTTPRequestHandler):
    """Routes one HTTP request to the emulated AI/ML API."""

    protocol_version = "HTTP/1.1"
    server_version = "aimlapi-emulator"
    sys_version = ""
    disable_nagle_algorithm = True
    server: EmulatorHTTPServer

    def setup(self) -> None:
        """Track the connection so ``stop()`` can close it."""
        super().setup()
        self.server.track(self.connection)

    def finish(self) -> None:
        """Untrack the connection."""
        try:
            super().finish()
        except OSError:
            pass
        finally:
            self.server.untrack(self.connection)

    def log_message(self, format: str, *args: Any) -> None:
        """Send the access log to ``logging`` at debug level instead of stderr."""
        logger.debug("%s - %s", self.address_string(), format % args)

    # ------------------------------------------------------------------------------ dispatching

    def _handle(self) -> None:
        self._status: int | None = None
        self._log_token: int | None = None
        self._in_chat = False
        self._request_id = str(uuid.uuid4())
        self._inference_id = str(uuid.uuid4())
        self._key: str | None = None
        self._charge: tuple[str, int, int] | None = None
        self._billed_credits: int | None = None
        self._usage_body: bytes | None = None
        """The body of a chat or embeddings request, whose ``GET /v2/logs`` row is still to be written."""
        self._common_headers: list[tuple[str, str]] = [
            ("x-inference-id", self._inference_id),
            ("x-request-id", self._request_id),
        ]
        raw_cid = self.headers.get("X-Client-Request-Id")
        self._client_request_id = raw_cid if raw_cid and CLIENT_REQUEST_ID.fullmatch(raw_cid) else None
        if self._client_request_id:
            self._common_headers.append(("x-client-request-id", self._client_request_id))
        body = self._read_body()
        if body is None:
            return
        route = self.path.partition("?")[0].rstrip("/") or "/"
        if route == CONTROL_PREFIX.rstrip("/") or route.startswith(CONTROL_PREFIX):
            self._guard(lambda: self._control(route, body))
            return
        self._log_token = token = self.server.state.record(
            RecordedRequest(
                method=self.command,
                path=self.path,
                headers={name.lower(): value for name, value in self.headers.items()},
                body=body,
                json=_loads_or_none(body),
                client_request_id=raw_cid,
                received_at=time.monotonic(),
            )
        )
        try:
            self._guard(lambda: self._route(route, body))
        finally:
            self.server.state.complete(token, self._status)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _handle

    def _guard(self, action: Callable[[], None]) -> None:
        """Run a route; turn drops, client disconnects and emulator bugs into a closed connection."""
        try:
            action()
        except _Dropped:
            self.close_connection = True
        except OSError as exc:  # the client went away
            logger.debug("connection error while answering %s %s: %s", self.command, self.path, exc)
            self.close_connection = True
        except Exception as exc:
            logger.debug("emulator bug while answering %s %s", self.command, self.path, exc_info=True)
            self.close_connection = True
            if self._status is None:
                with contextlib.suppress(OSError):
                    self._send_legacy(500, f"Emulator internal error: {exc!r}")

    def _route(self, route: str, body: bytes) -> None:
        method = self.command
        if method == "POST" and route in CHAT_PATHS | EMBEDDINGS_PATHS:
            self._usage_body = body
            try:
                (self._chat if route in CHAT_PATHS else self._embeddings)(route, body)
            finally:
                self._log_usage()  # an answer not delivered whole: failed, at no cost
        elif is_catalog_route(method, route):
            self._catalog(route)
        elif method == "GET" and route == LOGS_PATH:
            self._logs(route)
        elif method == "GET" and route == "/v2/billing":
            if self._authorize(route) is not None:
                self._send_json(200, {"current_balance": self.server.settings.balance_usd, "currency": "USD"})
        elif method == "GET" and route == "/v2/usage":
            key = self._authorize(route)
            if key is not None:
                self._send_json(200, self._usage(key))
        else:
            self._send_legacy(404, f"Cannot {method} {route}")

    def _catalog(self, route: str) -> None:
        """The public catalog routes; an outage set by ``catalog_status`` answers all of them."""
        outage = self.server.settings.catalog_status
        if outage is not None:
            self._send_legacy(outage, default_message(outage))
            return
        query = parse_qs(self.path.partition("?")[2])
        answer = catalog_answer(route, query, self.headers.get("If-None-Match"), self.server.state.catalog)
        if answer.status == 304:
            self._send(304, b"", None, answer.headers)
        elif answer.message is not None:
            self._send_legacy(answer.status, answer.message)
        else:
            self._send_json(answer.status, answer.payload, answer.headers)

    def _logs(self, route: str) -> None:
        """``GET /v2/logs``: the key's own rows, paged; 429 past ``logs_rate_limit`` reads a minute."""
        key = self._authorize(route)
        if key is None:
            return
        log = self.server.state.usage_log
        if not log.admit_read(self.server.settings.logs_rate_limit):
            self._send_legacy(429, default_message(429))
            return
        page = log.page(key, parse_qs(self.path.partition("?")[2]))
        if isinstance(page, tuple):
            self._send_legacy(*page)
        else:
            self._send_json(200, page)

    def _control(self, route: str, body: bytes) -> None:
        status, payload = handle_control(self.command, route, body, self.server.state, self.server.settings)
        self._send_json(status, payload)

    # ------------------------------------------------------------------------------ chat

    def _chat(self, route: str, body: bytes) -> None:
        state = self.server.state
        state.enter_chat()
        self._in_chat = True
        try:
            self._chat_reply(route, body, state.next_fault())
        finally:
            self._leave_chat()

    def _admitted_body(self, route: str, body: bytes, fault: Fault | None) -> Any:
        """Apply the faults that strike before an answer (reset, status, delay), check the key and decode the
        JSON body; returns it, or ``_REFUSED`` once an answer (or a dropped connection) was sent."""
        if fault is not None:
            logger.debug("injecting fault %s into %s", fault.kind, route)
        if fault is not None and fault.kind == "reset":
            self._drop(abortive=True)
        if fault is not None and fault.kind == "status":
            self._send_fault_status(fault, route)
            return _REFUSED
        if fault is not None and fault.kind == "delay":
            self._wait(fault.seconds)
        if self._authorize(route) is None:
            return _REFUSED
        try:
            return json.loads(body, parse_constant=_reject_constant)
        except ValueError as exc:
            self._send_legacy(400, f"{VALIDATION_MESSAGE} Expected a JSON object body, received invalid JSON ({exc})")
            return _REFUSED

    def _leave_chat(self) -> None:
        """Count the chat request as finished (before its last bytes go out, so clients see it done)."""
        if self._in_chat:
            self._in_chat = False
            self.server.state.exit_chat()

    def _chat_reply(self, route: str, body: bytes, fault: Fault | None) -> None:
        settings = self.server.settings
        payload = self._admitted_body(route, body, fault)
        if payload is _REFUSED:
            return
        state = self.server.state
        named = payload.get("model") if isinstance(payload, dict) else None
        entry = state.catalog.peek(named) if isinstance(named, str) else None
        spec = chat_spec(str(entry["id"]) if entry is not None else named) if isinstance(named, str) else None
        # The shared checks first; then a deprecated or out-of-scope model is refused; then a model with a schema
        # of its own is checked against it (its ranges, inputs and features), not against the seed model's ranges.
        errors = validate_chat_body(payload, ranges=spec is None)
        refusal = None if errors else model_refusal(str(named), entry, state.catalog, settings)
        if refusal is None and spec is not None:
            errors += _new_paths(model_errors(spec, payload), errors)
        errors = errors or tool_call_id_errors(payload)
        if errors:
            self._send_legacy(400, f"{VALIDATION_MESSAGE} " + "; ".join(errors))
            return
        model = str(named)
        completion = build_completion(payload, state.reply_override)
        if refusal is None:
            refusal = admission_error(payload, completion, entry, serve_unknown_models=settings.serve_unknown_models)
        if refusal is not None:
            self._send_legacy(*refusal)
            return
        # A scripted reply is used up only by an answer delivered whole; a broken one leaves it for the retry.
        broken = fault is not None and fault.kind in BROKEN_DELIVERY_FAULTS
        scripted = state.take_scripted(payload, consume=not broken)
        if scripted is not None:
            completion = scripted_completion(payload, scripted, completion, state.next_call_id)
        rates = None if entry is None else TokenRates.from_pricing(entry.get("pricing"))
        completion = dataclasses.replace(completion, rates=rates)
        self._charge = (str(entry["id"]) if entry else model, completion.prompt_tokens, completion.completion_tokens)
        completion_id = completion_id_for(payload["model"])
        created = int(time.time())
        if payload.get("stream") is True:
            self._stream_reply(completion, completion_id, created, fault)
            return
        self._wait(settings.latency)
        document = response_dict(
            completion,
            style=settings.reasoning_style,
            meta_usage=settings.meta_usage,
            completion_id=completion_id,
            created=created,
        )
        encoded = _dumps(document)
        headers: list[tuple[str, str]] = []
        if settings.cost_headers:
            headers += [
                ("x-aimlapi-credits-used", str(completion.credits)),
                ("x-aimlapi-usd-spent", format_usd(completion.usd)),
            ]
        self._send_answer(encoded, headers, fault, completion.credits)

    def _send_answer(self, encoded: bytes, headers: list[tuple[str, str]], fault: Fault | None, credits: int) -> None:
        """Send a 200 JSON answer (chat or embeddings), applying the faults that strike its body: half the JSON
        (``malformed_json``), half the body then a closed connection (``cut_stream``), or the body in slow
        pieces (``slow_stream``). Only an answer delivered whole is billed."""
        kind = fault.kind if fault is not None else None
        if kind == "malformed_json":
            self._send(200, encoded[: max(1, len(encoded) // 2)], JSON_TYPE, headers)
        elif kind == "cut_stream":
            head = self._head(200, [("Content-Type", JSON_TYPE), ("Content-Length", str(len(encoded))), *headers])
            self.wfile.write(head + encoded[: len(encoded) // 2])
            self._drop(abortive=False)
        elif kind == "slow_stream" and fault is not None:
            head = self._head(200, [("Content-Type", JSON_TYPE), ("Content-Length", str(len(encoded))), *headers])
            self.wfile.write(head)
            step = max(1, -(-len(encoded) // SLOW_BODY_PIECES))
            for start in range(0, len(encoded), step):
                if start:
                    self._wait(fault.seconds)
                if start + step >= len(encoded):
                    self._bill(credits)
                    self._leave_chat()
                self.wfile.write(encoded[start : start + step])
        else:
            self._bill(credits)
            self._send(200, encoded, JSON_TYPE, headers)

    def _stream_reply(self, completion: Completion, completion_id: str, created: int, fault: Fault | None) -> None:
        settings = self.server.settings
        plan = stream_plan(
            completion,
            style=settings.reasoning_style,
            meta_usage=settings.meta_usage if settings.stream_cost else None,
            completion_id=completion_id,
            created=created,
        )
        kind = fault.kind if fault is not None else None
        after = fault.after_chunks if fault is not None else 0
        delay = fault.seconds if fault is not None and kind == "slow_stream" else settings.chunk_delay
        chunks: Sequence[bytes] = [b"data: " + _dumps(chunk) + b"\n\n" for chunk in plan.chunks]
        if kind == "end_stream_early":
            chunks = chunks[: min(after, plan.finish_index)]
        elif kind == "cut_stream":
            chunks = chunks[:after]
        elif kind == "malformed_json":
            broken = b"data: " + _dumps(plan.chunks[1])[:20] + b"\n\n"
            chunks = [chunks[0], broken]
        elif settings.send_done:
            chunks = [*chunks, b"data: [DONE]\n\n"]
        head = self._head(
            200,
            [
                ("Content-Type", "text/event-stream"),
                ("Cache-Control", "no-cache"),
                ("Transfer-Encoding", "chunked"),
            ],
        )
        self.wfile.write(head)
        self._wait(settings.latency)
        for index, data in enumerate(chunks):
            if index:
                self._wait(delay)
            self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        if kind == "cut_stream":
            self._drop(abortive=False)
        if kind in (None, "delay", "slow_stream"):
            self._bill(completion.credits)
        self._leave_chat()
        self._log_usage()
        self.wfile.write(b"0\r\n\r\n")

    # ------------------------------------------------------------------------------ embeddings

    def _embeddings(self, route: str, body: bytes) -> None:
        """``POST /v1/embeddings``: the same faults, latency, auth and billing as chat, deterministic vectors."""
        fault = self.server.state.next_fault()
        payload = self._admitted_body(route, body, fault)
        if payload is _REFUSED:
            return
        problem = embedding_problem(payload)
        if problem is not None:
            self._send_legacy(*problem)
            return
        document, tokens, usd = embedding_response(payload)
        self._charge = (model_id(str(payload["model"])), tokens, 0)
        self._wait(self.server.settings.latency)
        credits = credits_for(usd)
        headers: list[tuple[str, str]] = []
        if self.server.settings.cost_headers:
            headers += [("x-aimlapi-credits-used", str(credits)), ("x-aimlapi-usd-spent", format_usd(usd))]
        self._send_answer(_dumps(document), headers, fault, credits)

    # ------------------------------------------------------------------------------ billing

    def _bill(self, credits: int) -> None:
        """Charge an answer about to be delivered whole (its row is written before its last bytes go out)."""
        self._billed_credits = credits
        self.server.state.bill(credits)
        self._log_usage()

    def _log_usage(self) -> None:
        """Write the request's ``GET /v2/logs`` row once: billed, or failed at no cost (when a key was taken)."""
        body, self._usage_body = self._usage_body, None
        if self._key is None or body is None:
            return
        billed = self._billed_credits
        if billed is not None and self._charge is not None:
            model, input_tokens, output_tokens = self._charge
        else:
            payload = _loads_or_none(body)
            named = payload.get("model") if isinstance(payload, dict) else None
            model = named if isinstance(named, str) else "unknown"
            entry = self.server.state.catalog.peek(model)
            model = str(entry["id"]) if entry is not None else model
            billed, input_tokens, output_tokens = None, 0, 0
        row = UsageRow(
            created=datetime.now(UTC),
            status="failed" if billed is None else "succeeded",
            model=model,
            credits=billed or 0,
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            request_id=self._request_id,
            inference_id=self._inference_id,
            client_request_id=self._client_request_id,
        )
        self.server.state.usage_log.add(self._key, row)

    def _send_fault_status(self, fault: Fault, route: str) -> None:
        status = fault.code or 500
        message = fault.message if fault.message is not None else default_message(status)
        body, content_type = error_body(fault.body, status, message, route, self._request_id)
        extra = [] if fault.retry_after is None else [("Retry-After", format_retry_after(fault.retry_after))]
        self._send(status, body, content_type, extra)

    # ------------------------------------------------------------------------------ auth & usage

    def _authorize(self, route: str) -> str | None:
        """Return the API key, or answer 401 and return ``None``."""
        header = self.headers.get("Authorization")
        if header is None:
            message = MISSING_KEY_MESSAGE
        else:
            scheme, _, key = header.strip().partition(" ")
            key = key.strip()
            allowed = self.server.settings.api_keys
            if scheme.lower() != "bearer":
                message = INVALID_KEY_MESSAGE
            elif not key:
                message = EMPTY_KEY_MESSAGE
            elif allowed is not None and key not in allowed:
                message = INVALID_KEY_MESSAGE
            else:
                self._key = key
                return key
        self._send(401, problem_body(401, message, route, self._request_id), PROBLEM_TYPE)
        return None

    def _usage(self, key: str) -> dict[str, Any]:
        query = parse_qs(self.path.partition("?")[2])
        end = datetime.now(UTC)
        match = _PERIOD.match((query.get("period") or ["24h"])[0])
        span = timedelta(**{_PERIOD_UNITS[match.group(2)]: int(match.group(1))}) if match else timedelta(hours=24)
        state = self.server.state
        return {
            "api_key_prefix": key[:6] + "...",
            "start": (query.get("start") or [_iso(end - span)])[0],
            "end": (query.get("end") or [_iso(end)])[0],
            "spend": state.usd_spent,
            "currency": "USD",
            "requests": state.billed_requests,
        }

    # ------------------------------------------------------------------------------ wire helpers

    def _read_body(self) -> bytes | None:
        """Read the whole request body (Content-Length or chunked); ``None`` after an error reply."""
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            return self._read_chunked()
        length_header = self.headers.get("Content-Length")
        if length_header is None:
            return b""
        try:
            length = int(length_header)
            if length < 0:
                raise ValueError(length_header)
        except ValueError:
            self.close_connection = True
            self._send_legacy(400, "Invalid Content-Length header")
            return None
        if length > MAX_BODY_BYTES:
            self.close_connection = True
            self._send_legacy(413, "request entity too large")
            return None
        body = self.rfile.read(length)
        if len(body) < length:
            self.close_connection = True
            return None
        return body

    def _read_chunked(self) -> bytes | None:
        parts: list[bytes] = []
        total = 0
        while True:
            line = self.rfile.readline(1024)
            try:
                size = int(line.split(b";", 1)[0].strip(), 16)
            except ValueError:
                self.close_connection = True
                self._send_legacy(400, "Invalid chunked request body")
                return None
            if size == 0:
                while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                    pass
                return b"".join(parts)
            total += size
            if total > MAX_BODY_BYTES:
                self.close_connection = True
                self._send_legacy(413, "request entity too large")
                return None
            parts.append(self.rfile.read(size))
            self.rfile.readline(1024)

    def _wait(self, seconds: float) -> None:
        """Sleep unless the emulator stops meanwhile (then drop the connection)."""
        if seconds > 0 and self.server.stop_event.wait(seconds):
            self._drop(abortive=False)
        if self.server.stop_event.is_set():
            self._drop(abortive=False)

    def _drop(self, *, abortive: bool) -> None:
        """Close the connection without (the rest of) a response; ``abortive`` sends a TCP reset."""
        self._log_usage()  # before the client can see the connection go
        self.close_connection = True
        connection = self.connection
        try:
            if abortive:
                connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                self.rfile.close()
                connection.close()
            else:
                connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        raise _Dropped

    def _head(self, status: int, headers: Sequence[tuple[str, str]]) -> bytes:
        """Status line and headers; also logs the status (and an error's usage row), before any byte reaches the
        client."""
        self._status = status
        if status >= 400:
            self._log_usage()
        if self._log_token is not None:
            self.server.state.complete(self._log_token, status)
        self.log_request(status)
        lines = [
            f"HTTP/1.1 {status} {reason_phrase(status)}",
            f"Date: {self.date_time_string()}",
            f"Server: {self.server_version}",
            *(f"{name}: {value}" for name, value in headers),
            *(f"{name}: {value}" for name, value in self._common_headers),
            f"Access-Control-Expose-Headers: {EXPOSED_HEADERS}",
        ]
        if self.close_connection:
            lines.append("Connection: close")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")

    def _send(
        self, status: int, body: bytes, content_type: str | None, headers: Sequence[tuple[str, str]] = ()
    ) -> None:
        fields = [("Content-Type", content_type)] if content_type else []
        fields += [("Content-Length", str(len(body))), *headers]
        data = self._head(status, fields) + body
        self._leave_chat()
        self._log_usage()  # the row is there before the answer is (a billed one's already is)
        self.wfile.write(data)

    def _send_json(self, status: int, payload: Any, headers: Sequence[tuple[str, str]] = ()) -> None:
        self._send(status, _dumps(payload), JSON_TYPE, headers)

    def _send_legacy(self, status: int, message: str) -> None:
        route = self.path.partition("?")[0]
        self._send(status, legacy_body(status, message, route, self._request_id), JSON_TYPE)


_REFUSED = object()
"""Returned by ``_admitted_body`` when the request was already answered."""


def _dumps(payload: Any) -> bytes:
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()


def _new_paths(errors: list[str], known: list[str]) -> list[str]:
    """The errors about places ``known`` says nothing of (one message per place, the shared checks' first)."""
    seen = {error.rpartition(" at ")[2] for error in known}
    return [error for error in errors if error.rpartition(" at ")[2] not in seen or " at " not in error]


def _loads_or_none(body: bytes) -> Any:
    if not body:
        return None
    try:
        return json.loads(body)
    except ValueError:
        return None


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")
