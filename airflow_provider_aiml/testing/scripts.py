"""Scripted replies: a queue of chat answers (tool calls, text, JSON) that tests line up, and the tool loop."""

from __future__ import annotations

import dataclasses
import json as _json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, get_args

from airflow_provider_aiml.testing.replies import Completion, ToolCall

ScriptKind = Literal["tool_calls", "from_tool_results", "text", "json"]
SCRIPT_KINDS: tuple[str, ...] = get_args(ScriptKind)
DEFAULT_RESULTS_PREFIX = "Based on the tools: "
NO_RESULTS = "(no tool results)"
BROKEN_DELIVERY_FAULTS = frozenset({"cut_stream", "end_stream_early", "malformed_json"})
"""Faults that deliver a broken answer: a scripted reply they carry stays at the head of the queue."""

ToolArguments = Mapping[str, Any] | str


@dataclass(frozen=True)
class ScriptedCall:
    """One tool call of a scripted reply; ``arguments`` is the exact text sent (it may be invalid JSON)."""

    name: str
    arguments: str

    @classmethod
    def build(cls, name: Any, arguments: Any = None, *, raw: bool = False) -> ScriptedCall:
        """Check and encode: a mapping becomes JSON text; a string must be JSON unless ``raw``."""
        if not isinstance(name, str) or not name:
            raise ValueError(f"a scripted tool call needs a non-empty name, got {name!r}")
        if arguments is None:
            arguments = {}
        if isinstance(arguments, str):
            if not raw:
                try:
                    _json.loads(arguments)
                except ValueError as exc:
                    raise ValueError(
                        f"arguments of {name!r} are not valid JSON ({exc}); pass raw=True to send them as they are"
                    ) from exc
            return cls(name=name, arguments=arguments)
        if raw:
            raise ValueError(f"raw=True needs the arguments of {name!r} as a string")
        if not isinstance(arguments, Mapping):
            raise ValueError(f"arguments of {name!r} must be a mapping or a JSON string, got {arguments!r}")
        return cls(name=name, arguments=_json.dumps(arguments, ensure_ascii=False))


@dataclass(frozen=True)
class ScriptedReply:
    """One scripted chat answer; build it with the class methods, e.g. ``ScriptedReply.text("hi")``.

    ``content`` is the answer text for ``text`` and ``json`` (encoded) and the prefix for ``from_tool_results``.
    ``finish_reason`` ``None`` means ``"tool_calls"`` for tool calls and ``"stop"`` otherwise.
    """

    kind: ScriptKind
    calls: tuple[ScriptedCall, ...] = ()
    content: str = ""
    reasoning: str = ""
    finish_reason: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in SCRIPT_KINDS:
            raise ValueError(f"unknown scripted reply kind {self.kind!r}; expected one of {SCRIPT_KINDS}")
        if self.kind == "tool_calls" and not self.calls:
            raise ValueError("a tool_calls reply needs at least one call")
        if not isinstance(self.reasoning, str):
            raise ValueError("reasoning must be a string")
        if self.finish_reason is not None and not isinstance(self.finish_reason, str):
            raise ValueError("finish_reason must be a string or None")

    # -- constructors -------------------------------------------------------------------------

    @classmethod
    def tool_calls(
        cls,
        *calls: tuple[str, ToolArguments],
        raw: bool = False,
        reasoning: str = "",
        finish_reason: str | None = None,
    ) -> ScriptedReply:
        """Call the tools ``(name, arguments)`` in one reply (several = parallel calls).

        Arguments are a mapping (sent as JSON) or JSON text; with ``raw=True`` strings are sent as they are, so
        malformed JSON reaches the client. A name the request did not offer is sent too (an unknown tool).
        """
        built = tuple(ScriptedCall.build(*_call_pair(call), raw=raw) for call in calls)
        return cls(kind="tool_calls", calls=built, reasoning=reasoning, finish_reason=finish_reason)

    @classmethod
    def from_tool_results(
        cls, prefix: str = DEFAULT_RESULTS_PREFIX, *, reasoning: str = "", finish_reason: str | None = None
    ) -> ScriptedReply:
        """Answer with ``prefix`` plus ``name: result`` for each ``role=tool`` message of the request, joined by
        ``"; "`` (``(no tool results)`` when there is none)."""
        if not isinstance(prefix, str):
            raise ValueError("prefix must be a string")
        return cls(kind="from_tool_results", content=prefix, reasoning=reasoning, finish_reason=finish_reason)

    @classmethod
    def text(cls, content: str, *, reasoning: str = "", finish_reason: str | None = None) -> ScriptedReply:
        """Answer with ``content``."""
        if not isinstance(content, str):
            raise ValueError("content must be a string")
        return cls(kind="text", content=content, reasoning=reasoning, finish_reason=finish_reason)

    @classmethod
    def json(cls, value: Any, *, reasoning: str = "", finish_reason: str | None = None) -> ScriptedReply:
        """Answer with ``value`` encoded as JSON (e.g. a branch choice ``{"choice": "b"}``)."""
        try:
            encoded = _json.dumps(value, ensure_ascii=False, allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"the value of a json reply must be JSON-serialisable: {exc}") from exc
        return cls(kind="json", content=encoded, reasoning=reasoning, finish_reason=finish_reason)

    # -- JSON form (control endpoint) ---------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """JSON view, accepted back by :meth:`from_dict`."""
        data: dict[str, Any] = {"kind": self.kind}
        if self.kind == "tool_calls":
            data["calls"] = [{"name": c.name, "arguments": c.arguments} for c in self.calls]
        elif self.kind == "from_tool_results":
            data["prefix"] = self.content
        elif self.kind == "json":
            data["value"] = _json.loads(self.content)
        else:
            data["content"] = self.content
        data["reasoning"] = self.reasoning
        data["finish_reason"] = self.finish_reason
        return data

    @classmethod
    def from_dict(cls, data: Any) -> ScriptedReply:
        """Build from ``{"kind": ..., ...}``; in ``calls`` a string ``arguments`` is sent as it is."""
        if not isinstance(data, Mapping):
            raise ValueError(f"a scripted reply must be a JSON object, got {data!r}")
        kind = data.get("kind")
        fields = {"tool_calls": "calls", "from_tool_results": "prefix", "json": "value", "text": "content"}
        if kind not in fields:
            raise ValueError(f"unknown scripted reply kind {kind!r}; expected one of {SCRIPT_KINDS}")
        unknown = sorted(set(data) - {"kind", "reasoning", "finish_reason", fields[kind]})
        if unknown:
            raise ValueError(f"unknown keys for a {kind} reply: {unknown}")
        options: dict[str, Any] = {
            "reasoning": data.get("reasoning") or "",
            "finish_reason": data.get("finish_reason"),
        }
        if kind == "tool_calls":
            calls = data.get("calls")
            if not isinstance(calls, list) or not calls:
                raise ValueError("a tool_calls reply needs 'calls': [{'name': ..., 'arguments': ...}, ...]")
            built: list[ScriptedCall] = []
            for call in calls:
                if not isinstance(call, Mapping) or set(call) - {"name", "arguments"}:
                    raise ValueError(f"each call must look like {{'name': ..., 'arguments': ...}}, got {call!r}")
                arguments = call.get("arguments")
                built.append(ScriptedCall.build(call.get("name"), arguments, raw=isinstance(arguments, str)))
            return cls(kind="tool_calls", calls=tuple(built), **options)
        if kind == "from_tool_results":
            return cls.from_tool_results(data.get("prefix", DEFAULT_RESULTS_PREFIX), **options)
        if kind == "json":
            if "value" not in data:
                raise ValueError("a json reply needs 'value'")
            return cls.json(data["value"], **options)
        content = data.get("content")
        if not isinstance(content, str):
            raise ValueError("a text reply needs 'content': a string")
        return cls.text(content, **options)


def _call_pair(call: Any) -> tuple[Any, Any]:
    if isinstance(call, ScriptedCall):
        return call.name, call.arguments
    if not isinstance(call, tuple | list) or len(call) != 2:
        raise ValueError(f"each tool call must be a (name, arguments) pair, got {call!r}")
    return call[0], call[1]


@dataclass(frozen=True)
class ToolLoop:
    """A never-ending tool loop: every request that offers ``name`` gets a call to it."""

    name: str
    arguments: str

    @property
    def reply(self) -> ScriptedReply:
        """The reply sent on each loop round."""
        return ScriptedReply(kind="tool_calls", calls=(ScriptedCall(self.name, self.arguments),))

    def applies_to(self, body: Mapping[str, Any]) -> bool:
        """Whether the request offers the tool and its ``tool_choice`` lets the model call it."""
        choice = body.get("tool_choice", "auto")
        if choice == "none":
            return False
        if isinstance(choice, Mapping):
            function = choice.get("function")
            if not isinstance(function, Mapping) or function.get("name") != self.name:
                return False
        return self.name in offered_tool_names(body)

    def to_dict(self) -> dict[str, Any]:
        """JSON view."""
        return {"name": self.name, "arguments": self.arguments}


def offered_tool_names(body: Mapping[str, Any]) -> list[str]:
    """The function names in the request's ``tools``."""
    names: list[str] = []
    for tool in body.get("tools") or []:
        function = tool.get("function") if isinstance(tool, Mapping) else None
        if isinstance(function, Mapping) and isinstance(function.get("name"), str):
            names.append(function["name"])
    return names


def tool_results_text(messages: Sequence[Any], prefix: str) -> str:
    """``prefix`` + ``name: content`` of each ``role=tool`` message (name found through its ``tool_call_id``)."""
    names: dict[str, str] = {}
    parts: list[str] = []
    for message in messages:
        if not isinstance(message, Mapping):
            continue
        if message.get("role") == "assistant":
            for call in message.get("tool_calls") or []:
                function = call.get("function") if isinstance(call, Mapping) else None
                if isinstance(function, Mapping) and isinstance(call.get("id"), str):
                    names[call["id"]] = str(function.get("name"))
        elif message.get("role") == "tool":
            call_id = message.get("tool_call_id")
            name = names.get(call_id) if isinstance(call_id, str) else None
            parts.append(f"{name or message.get('name') or call_id}: {_plain_text(message.get('content'))}")
    return prefix + ("; ".join(parts) if parts else NO_RESULTS)


def _plain_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(p["text"] for p in content if isinstance(p, Mapping) and isinstance(p.get("text"), str))
    return ""


def scripted_completion(
    body: Mapping[str, Any], reply: ScriptedReply, generated: Completion, next_call_id: Callable[[], str]
) -> Completion:
    """The completion for ``reply``: the generated one's prompt accounting, the scripted output."""
    tool_calls: tuple[ToolCall, ...] = ()
    content: str | None
    if reply.kind == "tool_calls":
        tool_calls = tuple(ToolCall(id=next_call_id(), name=c.name, arguments=c.arguments) for c in reply.calls)
        content = None
        finish_reason = reply.finish_reason or "tool_calls"
    else:
        content = reply.content
        if reply.kind == "from_tool_results":
            content = tool_results_text(body.get("messages") or [], reply.content)
        finish_reason = reply.finish_reason or "stop"
    return dataclasses.replace(
        generated, content=content, reasoning=reply.reasoning, finish_reason=finish_reason, tool_calls=tool_calls
    )
