"""Tools for the agent operator: schemas from type hints and docstrings, as_tools' checks, and Tool.run."""

from __future__ import annotations

import asyncio
import json
import threading
from typing import Literal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from airflow_provider_aiml.agents import MAX_TOOLS, Tool, ToolOutcome, ToolRefusal, as_tools, make_tool, tool
from airflow_provider_aiml.exceptions import AimlParameterError


class Address(BaseModel):
    city: str
    zip_code: int


def search(
    query: str,
    limit: int = 10,
    order: Literal["asc", "desc"] = "asc",
    tags: list[str] | None = None,
    address: Address | None = None,
) -> list[str]:
    """Search the catalogue for items.

    A longer explanation the model does not need.

    :param query: words to look for,
        over two lines.
    :param limit: the most results.
    """
    return [query] * limit


def google_style(city: str, days: int) -> str:
    """Forecast the weather.

    Args:
        city (str): the city's name.
        days: how many days ahead.
    """
    return f"{city}:{days}"


def run(t: Tool, arguments: str) -> ToolOutcome:
    return asyncio.run(t.run(arguments))


def test_schema_from_type_hints_and_defaults() -> None:
    spec = make_tool(search).spec()
    assert spec["type"] == "function"
    function = spec["function"]
    assert function["name"] == "search"
    assert function["description"] == "Search the catalogue for items."
    params = function["parameters"]
    assert params["type"] == "object"
    assert params["required"] == ["query"]
    assert params["additionalProperties"] is False
    props = params["properties"]
    assert props["query"] == {"type": "string", "description": "words to look for, over two lines."}
    assert props["limit"] == {"type": "integer", "default": 10, "description": "the most results."}
    assert props["order"] == {"type": "string", "enum": ["asc", "desc"], "default": "asc"}
    assert props["tags"]["anyOf"] == [{"type": "array", "items": {"type": "string"}}, {"type": "null"}]
    assert props["address"]["anyOf"][0] == {"$ref": "#/$defs/Address"}
    assert params["$defs"]["Address"]["properties"] == {"city": {"type": "string"}, "zip_code": {"type": "integer"}}
    assert "title" not in json.dumps(params)


def test_google_style_docstring() -> None:
    props = make_tool(google_style).parameters["properties"]
    assert props["city"]["description"] == "the city's name."
    assert props["days"]["description"] == "how many days ahead."
    assert make_tool(google_style).description == "Forecast the weather."


def test_parameter_named_like_a_model_attribute() -> None:
    def lookup(json: str, schema: int = 1) -> str:
        """Look up."""
        return f"{json}{schema}"

    t = make_tool(lookup)
    assert set(t.parameters["properties"]) == {"json", "schema"}
    assert run(t, '{"json": "a", "schema": 2}').content == "a2"


def test_no_docstring_is_refused() -> None:
    def nodoc(x: int) -> int:
        return x

    with pytest.raises(AimlParameterError, match="no docstring"):
        make_tool(nodoc)


def test_var_args_are_refused() -> None:
    def star(*items: int) -> int:
        """Sum."""
        return sum(items)

    def kwargs(**options: str) -> str:
        """Join."""
        return ""

    with pytest.raises(AimlParameterError, match=r"\*items"):
        make_tool(star)
    with pytest.raises(AimlParameterError, match=r"\*\*options"):
        make_tool(kwargs)


def test_decorator_overrides_name_and_description() -> None:
    @tool(name="find", description="Find things.")
    def nodoc(x: int) -> int:
        return x

    assert isinstance(nodoc, Tool)
    assert (nodoc.name, nodoc.description) == ("find", "Find things.")
    bare = tool(search)
    assert bare.name == "search"


# --- as_tools ---------------------------------------------------------------------------------------------


class TwoTools:
    def tools(self) -> list[Tool]:
        return [make_tool(search), make_tool(google_style)]


def test_as_tools_flattens_functions_tools_and_toolsets() -> None:
    def ping() -> str:
        """Ping."""
        return "pong"

    names = [t.name for t in as_tools([ping, tool(name="other", description="d")(ping), TwoTools()])]
    assert names == ["ping", "other", "search", "google_style"]


@pytest.mark.parametrize("bad_name", ["has space", "", "x" * 65, "dot.name", "trailing\n"])
def test_as_tools_refuses_bad_names(bad_name: str) -> None:
    with pytest.raises(AimlParameterError, match=r"must match \^\[a-zA-Z0-9_-\]\{1,64\}\$"):
        as_tools([tool(name=bad_name, description="d")(search)])


def test_as_tools_refuses_duplicates() -> None:
    with pytest.raises(AimlParameterError, match="two tools are named 'search'"):
        as_tools([search, TwoTools()])


def test_as_tools_refuses_too_many() -> None:
    many = [tool(name=f"t{i}", description="d")(search) for i in range(MAX_TOOLS + 1)]
    assert len(as_tools(many[:MAX_TOOLS])) == MAX_TOOLS
    with pytest.raises(AimlParameterError, match="at most 128"):
        as_tools(many)


@pytest.mark.parametrize("item", [42, "search", None, TwoTools])
def test_as_tools_refuses_what_is_neither(item: object) -> None:
    with pytest.raises(AimlParameterError, match=r"tools\[0\] is .*neither a function, a Tool nor a toolset"):
        as_tools([item])  # type: ignore[list-item]


def test_as_tools_refuses_a_toolset_returning_non_tools() -> None:
    class Bad:
        def tools(self) -> list[object]:
            return [search]

    with pytest.raises(AimlParameterError, match="not a Tool"):
        as_tools([Bad()])  # type: ignore[list-item]


# --- Tool.run -----------------------------------------------------------------------------------------------


def test_run_sync_tool_in_a_worker_thread() -> None:
    seen: list[str] = []

    def where(label: str) -> dict[str, object]:
        """Report the thread."""
        seen.append(threading.current_thread().name)
        return {"label": label, "n": 1}

    outcome = run(make_tool(where), '{"label": "x"}')
    assert outcome.error is None
    assert json.loads(outcome.content) == {"label": "x", "n": 1}
    assert seen
    assert seen[0] != threading.main_thread().name


def test_run_async_tool_and_pydantic_argument() -> None:
    async def locate(address: Address) -> Address:
        """Echo an address."""
        await asyncio.sleep(0)
        assert isinstance(address, Address)
        return address

    outcome = run(make_tool(locate), '{"address": {"city": "Oslo", "zip_code": "150"}}')
    assert outcome.error is None
    assert json.loads(outcome.content) == {"city": "Oslo", "zip_code": 150}


def test_run_passes_defaults_and_strings_as_is() -> None:
    outcome = run(make_tool(search), '{"query": "q", "limit": 2}')
    assert outcome.content == '["q","q"]'
    assert run(make_tool(google_style), '{"city": "Rome", "days": 3}').content == "Rome:3"


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        ('{"query": "q", "limit": "many"}', "'limit': Input should be a valid integer"),
        ('{"limit": 3}', "'query' is required but missing"),
        ('{"query": "q", "colour": "red"}', "'colour' is not a parameter of this tool (its parameters: query,"),
        ('{"query": "q", "order": "sideways"}', "'order': Input should be 'asc' or 'desc'"),
        ('{"query": "q", "address": {"city": "x"}}', "'address.zip_code' is required but missing"),
        ("{not json", "not valid JSON"),
        ("[1, 2]", "expected a JSON object of the arguments, got list"),
    ],
)
def test_bad_arguments_are_error_outcomes(arguments: str, expected: str) -> None:
    outcome = run(make_tool(search), arguments)
    assert outcome.error is not None
    assert expected in outcome.content
    assert outcome.content.startswith("Invalid arguments for tool 'search'")


def test_empty_arguments_mean_none() -> None:
    def ping() -> str:
        """Ping."""
        return "pong"

    assert run(make_tool(ping), "").content == "pong"


def test_exception_in_tool_is_an_error_outcome() -> None:
    def broken(x: int) -> int:
        """Fail."""
        raise KeyError(f"no row {x}")

    outcome = run(make_tool(broken), '{"x": 4}')
    assert outcome.content == "ToolError: KeyError: 'no row 4'"
    assert outcome.error == outcome.content


def test_refusal_is_an_error_outcome() -> None:
    def careful() -> str:
        """Refuse."""
        raise ToolRefusal("not today")

    outcome = run(make_tool(careful), "{}")
    assert outcome.content == "Refused: not today"
    assert outcome.error is not None


def test_secrets_are_masked_in_results_and_errors() -> None:
    from airflow.sdk.log import mask_secret

    mask_secret("s3cr3t-value")

    def read_password() -> dict[str, str]:
        """Read."""
        return {"password": "s3cr3t-value", "user": "bob"}

    def leak() -> str:
        """Leak in an error."""
        raise RuntimeError("login failed with s3cr3t-value")

    outcome = run(make_tool(read_password), "{}")
    assert "s3cr3t-value" not in outcome.content
    assert json.loads(outcome.content) == {"password": "***", "user": "bob"}
    error = run(make_tool(leak), "{}")
    assert error.content == "ToolError: RuntimeError: login failed with ***"


def test_a_secret_with_quotes_and_backslashes_is_masked_in_a_structured_result() -> None:
    from airflow.sdk.log import mask_secret

    secret = 'pa"ss\\word-9f'
    mask_secret(secret)

    def read_config() -> dict[str, object]:
        """Read."""
        return {"password": secret, "hosts": [{"address": f"db://u:{secret}@h"}]}

    outcome = run(make_tool(read_config), "{}")
    assert json.loads(outcome.content) == {"password": "***", "hosts": [{"address": "db://u:***@h"}]}
    assert "word-9f" not in outcome.content


def test_non_json_results_become_text() -> None:
    class Odd:
        def __str__(self) -> str:
            return "odd"

    def odd() -> dict[str, object]:
        """Odd values."""
        return {"o": Odd(), "s": {1, 2}}

    outcome = run(make_tool(odd), "{}")
    assert outcome.error is None
    assert json.loads(outcome.content)["o"] == "odd"


@settings(max_examples=200, deadline=None)
@given(st.one_of(st.text(), st.binary().map(lambda b: b.decode("latin-1")), st.from_regex(r"\{.*\}")))
def test_run_never_raises(arguments: str) -> None:
    outcome = asyncio.run(make_tool(search).run(arguments))
    assert isinstance(outcome.content, str)
    assert (outcome.error is None) == (outcome.content.startswith("[") and not outcome.content.startswith("Invalid"))


@settings(max_examples=100, deadline=None)
@given(st.dictionaries(st.text(max_size=8), st.recursive(st.none() | st.integers() | st.text(), st.lists)))
def test_run_never_raises_for_json_objects(arguments: dict[str, object]) -> None:
    outcome = asyncio.run(make_tool(search).run(json.dumps(arguments)))
    assert isinstance(outcome.content, str)
