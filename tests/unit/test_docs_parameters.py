"""docs/parameters.md agrees with the code, so the page cannot drift from ``GenerationParams``.

* The table after ``<!-- generation-parameters -->`` names exactly ``GENERATION_PARAMETERS``; none is left out
  (``stream_options``, which the provider sets itself on streamed calls, has its own row too).
* Its **Range** column gives the same bounds as the pydantic constraints (``ge``/``gt``/``le``/``lt`` and
  ``min_length``/``max_length``) found in ``GenerationParams.model_fields``; its **Type** column names every
  kind of value the field accepts.
* Every row of the table after ``<!-- parameter-errors -->`` is a real call and the real message it fails with.
* The typing rules the page states (strict integers and numbers, no inf/NaN, tuples sent as lists) hold.
"""

from __future__ import annotations

import math
import re
import types
from pathlib import Path
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import pytest
from pydantic import BaseModel

from airflow_provider_aiml.exceptions import AimlParameterError
from airflow_provider_aiml.hooks.building import build_chat_body, validate_params
from airflow_provider_aiml.models import DEFAULT_MODEL, GENERATION_PARAMETERS, GenerationParams

PAGE = Path(__file__).resolve().parents[2] / "docs" / "parameters.md"
MESSAGES = [{"role": "user", "content": "Hi"}]
BOUNDS = ("ge", "gt", "le", "lt", "min_length", "max_length")
_CELL_SPLIT = re.compile(r"(?<!\\)\|")
DASH = "\N{EN DASH}"  # between the two ends of a range, with a space on each side
MINUS = "\N{MINUS SIGN}"  # accepted in place of "-" before a number
_NUMBER = rf"[-{MINUS}]?\d+(?:\.\d+)?"
# The Range notation the page explains; each form maps to the pydantic constraints it stands for.
_RANGE_FORMS: list[tuple[re.Pattern[str], tuple[str, ...]]] = [
    (re.compile(rf"^({_NUMBER}) {DASH} ({_NUMBER}) items$"), ("min_length", "max_length")),
    (re.compile(rf"^≥ ({_NUMBER}) items$"), ("min_length",)),
    (re.compile(rf"^≤ ({_NUMBER}) items$"), ("max_length",)),
    (re.compile(rf"^({_NUMBER}) {DASH} ({_NUMBER})$"), ("ge", "le")),
    (re.compile(rf"^≥ ({_NUMBER})$"), ("ge",)),
    (re.compile(rf"^> ({_NUMBER})$"), ("gt",)),
    (re.compile(rf"^≤ ({_NUMBER})$"), ("le",)),
    (re.compile(rf"^< ({_NUMBER})$"), ("lt",)),
]


# --- reading the page ---------------------------------------------------------------------------------------


def table_after(marker: str) -> list[dict[str, str]]:
    """The rows of the Markdown table that follows ``<!-- marker -->``, as ``{header: cell}``."""
    lines = PAGE.read_text(encoding="utf-8").splitlines()
    start = lines.index(f"<!-- {marker} -->") + 1
    table = []
    for line in lines[start:]:
        if not line.startswith("|"):
            break
        table.append([cell.strip().replace("\\|", "|") for cell in _CELL_SPLIT.split(line.strip())[1:-1]])
    header, separator, *rows = table
    assert all(set(cell) <= set("-: ") for cell in separator), f"no table right after <!-- {marker} -->"
    return [dict(zip(header, row, strict=True)) for row in rows]


def unquote(cell: str) -> str:
    """The text inside a cell that is one code span: `` `x` `` -> ``x``."""
    match = re.fullmatch(r"`([^`]+)`", cell)
    assert match, f"expected one code span, got {cell!r}"
    return match.group(1)


def documented_rows() -> dict[str, dict[str, str]]:
    rows = {}
    for row in table_after("generation-parameters"):
        name = unquote(row["Parameter"])
        assert name not in rows, f"{name} has two rows"
        rows[name] = row
    return rows


def page_bounds(cell: str) -> dict[str, float]:
    """The constraints a Range cell stands for (see the notation table on the page)."""
    text = unquote(cell) if cell.startswith("`") else cell
    if text == "—":
        return {}
    for pattern, names in _RANGE_FORMS:
        match = pattern.fullmatch(text)
        if match:
            return {name: float(value.replace(MINUS, "-")) for name, value in zip(names, match.groups(), strict=True)}
    pytest.fail(f"Range {text!r} is not in the page's notation (a {DASH} b, ≥ a, > a, a {DASH} b items, —)")


# --- reading the code ---------------------------------------------------------------------------------------


def _metadata_bounds(item: Any) -> dict[str, float]:
    """Bounds of one metadata entry: an annotated-types constraint (``Ge``, ``MaxLen``, ``Interval``...) or a
    ``Field(...)`` (a ``FieldInfo``, whose own metadata holds the constraints)."""
    found = {name: float(getattr(item, name)) for name in BOUNDS if getattr(item, name, None) is not None}
    for nested in getattr(item, "metadata", None) or ():
        found.update(_metadata_bounds(nested))
    return found


def _annotation_bounds(annotation: Any) -> dict[str, float]:
    """Bounds found anywhere in an annotation: in ``Annotated[...]`` and in each member of a union."""
    found: dict[str, float] = {}
    if get_origin(annotation) is Annotated:
        for item in annotation.__metadata__:
            found.update(_metadata_bounds(item))
        return found | _annotation_bounds(get_args(annotation)[0])
    if get_origin(annotation) in (Union, types.UnionType):
        for member in get_args(annotation):
            found.update(_annotation_bounds(member))
    return found


def code_bounds(name: str) -> dict[str, float]:
    field = GenerationParams.model_fields[name]
    found = _annotation_bounds(field.annotation)
    for item in field.metadata:
        found.update(_metadata_bounds(item))
    return found


def _kinds(annotation: Any) -> set[str]:
    """The words the Type column must contain for the values an annotation accepts."""
    origin = get_origin(annotation)
    if origin is Annotated:
        return _kinds(get_args(annotation)[0])
    if origin in (Union, types.UnionType):
        return set().union(*(_kinds(member) for member in get_args(annotation)))
    if origin is Literal:
        return set().union(*(_kinds(type(value)) for value in get_args(annotation)))
    if origin is list:
        return {"list"}
    if origin is dict:
        return {"object"}
    if annotation is type(None):
        return set()
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return {"object"}
    words = {bool: "boolean", int: "integer", float: "number", str: "string"}
    assert annotation in words, f"no Type word for {annotation!r}: extend _kinds"
    return {words[annotation]}


def kinds(name: str) -> set[str]:
    return _kinds(GenerationParams.model_fields[name].annotation)


def _accepts(name: str, kind: str) -> bool:
    return kind in kinds(name)


INTEGER_PARAMETERS = [name for name in GENERATION_PARAMETERS if _accepts(name, "integer")]
NUMBER_PARAMETERS = [name for name in GENERATION_PARAMETERS if _accepts(name, "number")]


# --- the table ----------------------------------------------------------------------------------------------


def test_the_table_lists_every_generation_parameter():
    assert set(documented_rows()) == set(GENERATION_PARAMETERS)


@pytest.mark.parametrize("name", GENERATION_PARAMETERS)
def test_the_range_column_matches_the_pydantic_constraints(name):
    row = documented_rows()[name]
    assert page_bounds(row["Range"]) == code_bounds(name), f"{name}: the page says {row['Range']}"


@pytest.mark.parametrize("name", GENERATION_PARAMETERS)
def test_the_type_column_names_every_accepted_kind(name):
    cell = documented_rows()[name]["Type"]
    missing = {kind for kind in kinds(name) if not re.search(rf"\b{kind}", cell)}
    assert not missing, f"{name}: the Type column {cell!r} does not say {sorted(missing)}"


def test_the_numeric_parameters_have_ranges():
    """Guards the reader of the constraints: if it found nothing, every comparison above would pass vacuously."""
    assert code_bounds("temperature") == {"ge": 0, "le": 2}
    assert code_bounds("stop") == {"min_length": 1, "max_length": 4}
    assert all(code_bounds(name) for name in INTEGER_PARAMETERS + NUMBER_PARAMETERS)


def test_the_range_notation_is_read_as_the_page_explains():
    assert page_bounds(f"`-2 {DASH} 2`") == {"ge": -2, "le": 2}
    assert page_bounds(f"`0.01 {DASH} 1`") == {"ge": 0.01, "le": 1}
    assert page_bounds("`≥ 1`") == {"ge": 1}
    assert page_bounds("`> 0`") == {"gt": 0}
    assert page_bounds(f"`1 {DASH} 128 items`") == {"min_length": 1, "max_length": 128}
    assert page_bounds("`—`") == {}
    assert page_bounds(f"`{MINUS}2 {DASH} 2`") == {"ge": -2, "le": 2}


# --- the error messages -------------------------------------------------------------------------------------


ERROR_ROWS = table_after("parameter-errors")


@pytest.mark.parametrize("row", ERROR_ROWS, ids=[unquote(row["You pass"]) for row in ERROR_ROWS])
def test_each_documented_error_message_is_the_real_one(row):
    arguments = eval(f"dict({unquote(row['You pass'])})", {"__builtins__": {}, "dict": dict, "float": float})
    extra_body = arguments.pop("extra_body", None)
    with pytest.raises(AimlParameterError) as raised:
        build_chat_body(DEFAULT_MODEL, MESSAGES, arguments, stream=False, extra_body=extra_body)
    assert str(raised.value) == unquote(row["The task fails with"])


# --- the typing rules ---------------------------------------------------------------------------------------


def test_the_integer_and_number_parameters_are_the_ones_the_page_names():
    assert INTEGER_PARAMETERS == ["max_completion_tokens", "max_tokens", "seed"]
    assert set(NUMBER_PARAMETERS) >= {"temperature", "top_p", "repetition_penalty"}


@pytest.mark.parametrize("name", INTEGER_PARAMETERS)
@pytest.mark.parametrize("value", [4096.0, True, "4096"])
def test_integers_refuse_floats_bools_and_strings(name, value):
    with pytest.raises(AimlParameterError, match="valid integer"):
        validate_params({name: value})


@pytest.mark.parametrize("name", NUMBER_PARAMETERS)
@pytest.mark.parametrize("value", [True, "0.5"])
def test_numbers_refuse_bools_and_strings(name, value):
    with pytest.raises(AimlParameterError, match="valid number"):
        validate_params({name: value})


@pytest.mark.parametrize("name", NUMBER_PARAMETERS)
@pytest.mark.parametrize("value", [math.inf, -math.inf, math.nan])
def test_numbers_refuse_inf_and_nan(name, value):
    with pytest.raises(AimlParameterError, match="finite number"):
        validate_params({name: value})


def test_tuples_are_sent_as_lists():
    tool = {"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}
    body = build_chat_body(DEFAULT_MODEL, MESSAGES, {"stop": ("END", "STOP"), "tools": (tool,)}, stream=False)
    assert body["stop"] == ["END", "STOP"]
    assert body["tools"] == [tool]


def test_a_streamed_call_asks_for_usage_unless_told_otherwise():
    assert build_chat_body(DEFAULT_MODEL, MESSAGES, {}, stream=True)["stream_options"] == {"include_usage": True}
    plain = build_chat_body(DEFAULT_MODEL, MESSAGES, {}, stream=False)
    assert "stream_options" not in plain
    own = {"stream_options": {"include_usage": False}}
    assert build_chat_body(DEFAULT_MODEL, MESSAGES, {}, stream=True, extra_body=own)["stream_options"] == {
        "include_usage": False
    }


# --- the family tables --------------------------------------------------------------------------------------


def test_the_family_tables_are_those_the_checks_make():
    """``scripts/parameters_page.py --check``: the section between the model-families markers is what the
    schema reader makes of each emulated model's schema today (rerun the script after changing either)."""
    import subprocess
    import sys

    script = PAGE.parents[1] / "scripts" / "parameters_page.py"
    done = subprocess.run([sys.executable, str(script), "--check"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    section = PAGE.read_text(encoding="utf-8").split("<!-- model-families -->")[1]
    assert section.count("\n### `") == 9  # one table per chat model of the emulator's catalog
    assert "| `temperature` | number, from 0 to 1 | no |" in section  # Claude's narrower range
