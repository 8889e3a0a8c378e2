"""Python functions as tools the model can call: their JSON schema, and a run that never raises.

A tool is described to the model by its name, the first paragraph of its docstring and a JSON schema built by
pydantic from its signature and type hints. :meth:`Tool.run` takes the model's JSON argument string, validates
it against the signature and calls the function; everything that goes wrong (bad JSON, a wrong or missing
argument, an exception in the tool) comes back as an error :class:`ToolOutcome` the model can act on. Every
result goes through Airflow's secrets masker first, so a secret a tool read never reaches the model or the log.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import re
import time
import typing
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, overload, runtime_checkable

import pydantic
from pydantic_core import to_jsonable_python

from airflow_provider_aiml.agents.threads import ToolThreads
from airflow_provider_aiml.exceptions import AimlParameterError
from airflow_provider_aiml.hooks.parsing import well_formed
from airflow_provider_aiml.models import NAME_PATTERN

MAX_TOOLS = 128
"""The most tools one request may declare (the API's limit)."""

_NAME = re.compile(NAME_PATTERN)


class ToolRefusal(Exception):  # a refusal, not an error of the tool
    """Raised by a tool that will not do what the model asked; the model is told why, as an error outcome."""


@dataclass(frozen=True)
class ToolOutcome:
    """What one tool call produced."""

    content: str
    """The text sent back to the model (for an error, a short explanation it can act on)."""
    error: str | None
    """``None`` when the tool ran and returned."""
    duration_s: float


@dataclass(frozen=True)
class Tool:
    """A function the model can call, with the JSON schema of its arguments."""

    name: str
    description: str
    parameters: dict[str, Any]
    function: Callable[..., Any]
    side_effects: bool = True
    """Whether a call may change something. A call that was started but never finished (the worker died) is
    not run again by a retried task when this is true (at most once); a read-only tool is simply run again.
    A recorded result is never run again either way."""
    _arguments: type[pydantic.BaseModel] | None = field(default=None, init=False, repr=False, compare=False)
    _is_async: bool = field(default=False, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        try:
            model = _arguments_model(self.function, self.name, {})
        except AimlParameterError:
            model = None  # *args/**kwargs or an unmodellable hint: the parsed object is passed as is
        object.__setattr__(self, "_arguments", model)
        is_async = inspect.iscoroutinefunction(inspect.unwrap(self.function)) or inspect.iscoroutinefunction(
            getattr(self.function, "__call__", None)  # noqa: B004  # async callable objects
        )
        object.__setattr__(self, "_is_async", is_async)

    def spec(self) -> dict[str, Any]:
        """The tool as the chat request's ``tools`` list declares it."""
        return {
            "type": "function",
            "function": {"name": self.name, "description": self.description, "parameters": self.parameters},
        }

    async def run(self, arguments: str, threads: ToolThreads | None = None, *, exclusive: bool = False) -> ToolOutcome:
        """Run the tool with the model's JSON arguments; never raises for anything the model sent.

        A sync function runs in one of ``threads`` (an agent run's own), else through ``asyncio.to_thread``.
        ``exclusive`` says the event loop has nothing else to run meanwhile (an agent step asking for one call),
        so its thread may wait for the tool's directly (see :mod:`.threads`)."""
        started = time.perf_counter()
        try:
            kwargs = self._parse(arguments)
        except _BadArguments as bad:
            return _outcome(f"Invalid arguments for tool {self.name!r}: {bad}", True, started)
        try:
            result = await self._call(kwargs, threads, exclusive)
        except ToolRefusal as refusal:
            return _outcome(f"Refused: {refusal}", True, started)
        except Exception as error:
            return _outcome(f"ToolError: {type(error).__name__}: {error}", True, started)
        try:
            text = _as_text(result)
        except Exception as error:
            return _outcome(f"ToolError: the result could not be turned into text: {error}", True, started)
        return _outcome(text, False, started)

    def _parse(self, arguments: str) -> dict[str, Any]:
        if not isinstance(arguments, str):
            raise _BadArguments(f"expected a JSON string, got {type(arguments).__name__}")
        if not arguments.strip():
            parsed: Any = {}
        else:
            try:
                parsed = json.loads(arguments)
            except (ValueError, RecursionError) as error:
                raise _BadArguments(f"not valid JSON ({error}); send a JSON object of the arguments") from None
        if not isinstance(parsed, dict):
            raise _BadArguments(f"expected a JSON object of the arguments, got {type(parsed).__name__}")
        if self._arguments is None:
            return parsed
        try:
            validated = self._arguments.model_validate(parsed)
        except pydantic.ValidationError as error:
            raise _BadArguments(_describe_errors(error, self._arguments)) from None
        except RecursionError:
            raise _BadArguments("the arguments are nested too deeply") from None
        model_fields = type(validated).model_fields
        return {info.alias or key: getattr(validated, key) for key, info in model_fields.items()}

    async def _call(self, kwargs: dict[str, Any], threads: ToolThreads | None, exclusive: bool) -> Any:
        if self._is_async:
            return await self.function(**kwargs)
        # A plain function runs in a thread: it may block, or run an event loop of its own.
        if threads is None:
            result = await asyncio.to_thread(self.function, **kwargs)
        elif exclusive:
            result = threads.call(self.function, **kwargs)
        else:
            result = await threads.run(self.function, **kwargs)
        if inspect.isawaitable(result):
            result = await result
        return result


class _BadArguments(Exception):
    pass


@runtime_checkable
class Toolset(Protocol):
    """Something that provides several tools, such as :class:`~airflow_provider_aiml.agents.sql.SqlToolset`."""

    def tools(self) -> list[Tool]: ...


@overload
def tool(
    function: Callable[..., Any], *, name: str | None = None, description: str | None = None, side_effects: bool = True
) -> Tool: ...


@overload
def tool(
    function: None = None, *, name: str | None = None, description: str | None = None, side_effects: bool = True
) -> Callable[[Callable[..., Any]], Tool]: ...


def tool(
    function: Callable[..., Any] | None = None,
    *,
    name: str | None = None,
    description: str | None = None,
    side_effects: bool = True,
) -> Tool | Callable[[Callable[..., Any]], Tool]:
    """Make a :class:`Tool` of a function, optionally with another name or description than its own.

    Use as ``@tool`` or ``@tool(name="lookup", description="...", side_effects=False)``; ``side_effects=False``
    declares a read-only tool, which a retried task may run again when an earlier try died while it ran.
    """

    def decorate(fn: Callable[..., Any]) -> Tool:
        return _make(fn, name=name, description=description, side_effects=side_effects)

    return decorate if function is None else decorate(function)


def make_tool(function: Callable[..., Any]) -> Tool:
    """A :class:`Tool` named after the function, described by its docstring's first paragraph.

    The parameters' JSON schema comes from the signature and type hints (through pydantic); the docstring's
    ``:param x:`` lines or Google-style ``Args:`` section describe each parameter.
    """
    return _make(function)


def as_tools(items: Sequence[Callable[..., Any] | Tool | Toolset]) -> list[Tool]:
    """Flatten functions, tools and toolsets into a checked list of tools (cheap, no I/O)."""
    if isinstance(items, str | bytes) or not isinstance(items, Sequence):
        raise AimlParameterError(f"tools must be a list of functions, Tool objects or toolsets, not {items!r}")
    tools: list[Tool] = []
    for position, item in enumerate(items):
        if isinstance(item, Tool):
            tools.append(item)
        elif isinstance(item, Toolset) and not isinstance(item, type):
            provided = item.tools()
            for each in provided:
                if not isinstance(each, Tool):
                    raise AimlParameterError(
                        f"the toolset {type(item).__name__} at tools[{position}] returned {each!r}, not a Tool"
                    )
            tools.extend(provided)
        elif callable(item) and not isinstance(item, type):
            tools.append(make_tool(item))
        else:
            raise AimlParameterError(
                f"tools[{position}] is {item!r} ({type(item).__name__}): neither a function, a Tool nor a toolset "
                "(an object with a tools() method)"
            )
    seen: set[str] = set()
    for each in tools:
        if not isinstance(each.name, str) or not _NAME.fullmatch(each.name):
            raise AimlParameterError(
                f"tool name {each.name!r} is not allowed: names must match {NAME_PATTERN} (letters, digits, _ "
                "and -, 1 to 64 characters)"
            )
        if each.name in seen:
            raise AimlParameterError(
                f"two tools are named {each.name!r}; tool names must be unique (rename one with @tool(name=...))"
            )
        seen.add(each.name)
    if len(tools) > MAX_TOOLS:
        raise AimlParameterError(f"{len(tools)} tools given; the API accepts at most {MAX_TOOLS} per request")
    return tools


# --- building a tool ----------------------------------------------------------------------------------------


def _make(
    function: Callable[..., Any], *, name: str | None = None, description: str | None = None, side_effects: bool = True
) -> Tool:
    if not callable(function):
        raise AimlParameterError(f"a tool must be a function, got {function!r}")
    tool_name = name if name is not None else getattr(function, "__name__", None) or type(function).__name__
    docstring = inspect.getdoc(function) or ""
    summary, param_docs = _parse_docstring(docstring)
    if description is None:
        if not summary:
            raise AimlParameterError(
                f"the tool {tool_name!r} has no docstring: add one whose first paragraph says what the tool does "
                "(the model reads it to decide when to call the tool), or pass @tool(description=...)"
            )
        description = summary
    model = _arguments_model(function, tool_name, param_docs)
    parameters = _parameters_schema(model)
    return Tool(tool_name, description, parameters, function, side_effects=side_effects)


def _arguments_model(
    function: Callable[..., Any], tool_name: str, param_docs: dict[str, str]
) -> type[pydantic.BaseModel]:
    try:
        signature = inspect.signature(function)
    except (TypeError, ValueError) as error:
        raise AimlParameterError(f"the tool {tool_name!r} has no readable signature: {error}") from None
    try:
        hints = typing.get_type_hints(function, include_extras=True)
    except Exception:
        hints = {}
    fields: dict[str, Any] = {}
    for index, (param_name, param) in enumerate(signature.parameters.items()):
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            raise AimlParameterError(
                f"the tool {tool_name!r} takes {'*' if param.kind is param.VAR_POSITIONAL else '**'}{param_name}: "
                "a tool's parameters must be named one by one, so the model knows what to send"
            )
        if param.kind is param.POSITIONAL_ONLY:
            raise AimlParameterError(
                f"the tool {tool_name!r} has the positional-only parameter {param_name!r}; the model sends "
                "arguments by name"
            )
        annotation = hints.get(param_name, param.annotation)
        if annotation is inspect.Parameter.empty:
            annotation = Any
        default = ... if param.default is inspect.Parameter.empty else param.default
        # Aliased so that parameters named like BaseModel attributes (json, schema, ...) cannot clash.
        fields[f"p{index}"] = (
            annotation,
            pydantic.Field(default, alias=param_name, description=param_docs.get(param_name)),
        )
    try:
        return pydantic.create_model(f"{tool_name}_arguments", __config__=pydantic.ConfigDict(extra="forbid"), **fields)
    except Exception as error:
        raise AimlParameterError(
            f"the parameters of tool {tool_name!r} cannot be described as JSON schema: {error}"
        ) from None


def _parameters_schema(model: type[pydantic.BaseModel]) -> dict[str, Any]:
    try:
        schema = _strip_titles(model.model_json_schema(by_alias=True))
    except Exception as error:
        raise AimlParameterError(f"the tool's parameters cannot be described as JSON schema: {error}") from None
    result: dict[str, Any] = {
        "type": "object",
        "properties": schema.get("properties", {}),
        "required": schema.get("required", []),
        "additionalProperties": False,
    }
    if "$defs" in schema:
        result["$defs"] = schema["$defs"]
    return result


_SUBSCHEMA_LISTS = ("anyOf", "oneOf", "allOf", "prefixItems")
_SUBSCHEMA_MAPS = ("properties", "$defs", "patternProperties")
_SUBSCHEMAS = ("items", "additionalProperties", "not")


def _strip_titles(schema: Any) -> Any:
    """Drop pydantic's generated ``title`` keywords (noise for the model), keeping defaults and enums intact."""
    if not isinstance(schema, dict):
        return schema
    out = {key: value for key, value in schema.items() if not (key == "title" and isinstance(value, str))}
    for key in _SUBSCHEMA_MAPS:
        if isinstance(out.get(key), dict):
            out[key] = {name: _strip_titles(sub) for name, sub in out[key].items()}
    for key in _SUBSCHEMA_LISTS:
        if isinstance(out.get(key), list):
            out[key] = [_strip_titles(sub) for sub in out[key]]
    for key in _SUBSCHEMAS:
        if isinstance(out.get(key), dict):
            out[key] = _strip_titles(out[key])
    return out


_SPHINX_PARAM = re.compile(r"^:param\s+(?:[^:\s]+\s+)?(\w+):\s*(.*)$")
_GOOGLE_SECTION = re.compile(r"^(Args|Arguments|Parameters|Params):\s*$")
_GOOGLE_PARAM = re.compile(r"^(\w+)\s*(?:\([^)]*\))?\s*:\s*(.*)$")


def _parse_docstring(docstring: str) -> tuple[str, dict[str, str]]:
    """The first paragraph (whitespace collapsed) and the parameter descriptions of a docstring."""
    lines = docstring.splitlines()
    summary_lines: list[str] = []
    for line in lines:
        if not line.strip():
            break
        if line.lstrip().startswith(":") or _GOOGLE_SECTION.match(line.strip()):
            break
        summary_lines.append(line.strip())
    params: dict[str, str] = {}
    current: str | None = None
    in_google = False
    google_indent = 0
    for line in lines:
        stripped = line.strip()
        indent = len(line) - len(line.lstrip())
        sphinx = _SPHINX_PARAM.match(stripped)
        if sphinx:
            current, in_google = sphinx.group(1), False
            params[current] = sphinx.group(2).strip()
            continue
        if _GOOGLE_SECTION.match(stripped):
            in_google, current, google_indent = True, None, -1
            continue
        if in_google and stripped:
            if google_indent < 0:
                google_indent = indent
            if indent == google_indent and (google := _GOOGLE_PARAM.match(stripped)):
                current = google.group(1)
                params[current] = google.group(2).strip()
                continue
            if indent < google_indent:
                in_google, current = False, None
                continue
        if current is not None and stripped and not stripped.startswith(":") and indent > 0:
            params[current] = f"{params[current]} {stripped}".strip()
        elif not stripped or stripped.startswith(":"):
            current = None if not in_google else current
    return " ".join(summary_lines), {name: text for name, text in params.items() if text}


# --- running a tool -----------------------------------------------------------------------------------------


def _describe_errors(error: pydantic.ValidationError, model: type[pydantic.BaseModel]) -> str:
    known = ", ".join(info.alias or key for key, info in model.model_fields.items()) or "none"
    problems = []
    for item in error.errors(include_url=False)[:10]:
        where = ".".join(str(part) for part in item["loc"]) or "(arguments)"
        if item["type"] == "extra_forbidden":
            problems.append(f"{where!r} is not a parameter of this tool (its parameters: {known})")
        elif item["type"] == "missing":
            problems.append(f"{where!r} is required but missing")
        else:
            got = repr(item.get("input"))
            got = got if len(got) <= 80 else got[:77] + "..."
            problems.append(f"{where!r}: {item['msg']} (got {got})")
    return "; ".join(problems)


def _as_text(result: Any) -> str:
    """The result as the model reads it: a string as it is, anything else as compact JSON. A structure is
    masked before it is encoded: once in JSON, a secret with a quote or a backslash in it is escaped, and the
    masker would no longer recognise it."""
    if isinstance(result, str):
        return result
    value = to_jsonable_python(result, fallback=str)
    if _redact is not None:
        value = _redact(value)
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str)


def _outcome(text: str, failed: bool, started: float) -> ToolOutcome:
    masked = well_formed(mask(text))  # a lone surrogate the model sent in an argument may come back in the text
    return ToolOutcome(content=masked, error=masked if failed else None, duration_s=time.perf_counter() - started)


def _load_redact() -> Callable[[str], Any] | None:
    # The task SDK's masker is the one its log and mask_secret() use; core's is the fallback.
    try:
        from airflow.sdk.log import redact as sdk_redact

        return sdk_redact
    except ImportError:
        pass
    try:
        from airflow.sdk._shared.secrets_masker import redact as shared_redact

        return shared_redact
    except ImportError:
        pass
    try:
        from airflow._shared.secrets_masker import redact as core_redact

        return core_redact
    except ImportError:
        return None


_redact = _load_redact()


def mask(text: str) -> str:
    """``text`` with every secret registered with Airflow's secrets masker replaced by ``***``."""
    if _redact is None:
        return text
    try:
        masked = _redact(text)
    except Exception:
        return "[tool output withheld: Airflow's secrets masker failed on it]"
    return masked if isinstance(masked, str) else str(masked)
