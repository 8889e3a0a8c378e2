"""docs/xcom.md shows the XCom values the tasks really push: real DAG runs against the emulator.

The page marks each example with an HTML comment: ``<!-- xcom: NAME -->`` before a ```json block, and
``<!-- xcom-keys: chat|batch -->`` before the table of keys a task pushes. The DAGs are in
``tests/dags/aiml_docs_dags.py``, which also holds the page's Python samples; each DAG runs once for the whole
module.

How a documented example is compared with a real value (:func:`mismatches`):

* an object has exactly the documented keys, each compared again (recursively);
* a list is compared by its first element (an empty real list leaves nothing to compare; the tests below
  make sure the lists that matter are not empty);
* a string, an integer, a boolean has that JSON type; a documented number with a fraction (``0.00124``)
  also takes a whole number;
* a documented ``null`` matches ``null`` or a single value of the type the table under the example names
  (not an object or a list, which the example would show as such).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_aiml.testing import AimlApiEmulator, Fault
from airflow_provider_aiml.testing.pytest_plugin import CONNECTION_ENV, EMULATOR_API_KEY

PAGE = Path(__file__).resolve().parents[2] / "docs" / "xcom.md"
SHAPE = re.compile(r"^<!-- xcom: (?P<name>[\w.]+) -->\n```json\n(?P<body>.*?)^```$", re.DOTALL | re.MULTILINE)
CHAT_DAG = "aiml_docs_xcom_chat"
BATCH_DAG = "aiml_docs_xcom_batch"
JSON_TYPES: dict[str, type | tuple[type, ...]] = {"string": str, "object": dict, "list": list, "any": object}


# --- reading the page ---------------------------------------------------------------------------------------


def documented_shapes() -> dict[str, Any]:
    text = PAGE.read_text(encoding="utf-8")
    shapes: dict[str, Any] = {}
    for match in SHAPE.finditer(text):
        assert match.group("name") not in shapes, f"two examples are marked {match.group('name')}"
        shapes[match.group("name")] = json.loads(match.group("body"))
    assert text.count("<!-- xcom: ") == len(shapes), "a <!-- xcom: ... --> marker is not right before a json block"
    return shapes


def documented_keys(operator: str) -> dict[str, str]:
    """``{key: JSON type}`` from the table after ``<!-- xcom-keys: operator -->``."""
    lines = PAGE.read_text(encoding="utf-8").splitlines()
    start = lines.index(f"<!-- xcom-keys: {operator} -->") + 1
    keys = {}
    for line in lines[start + 2 :]:  # after the header and the separator
        if not line.startswith("|"):
            break
        key, json_type = (cell.strip() for cell in line.strip("|").split("|")[:2])
        keys[key.strip("`")] = json_type
    return keys


def mismatches(documented: Any, real: Any, path: str = "$") -> list[str]:
    """Where ``real`` differs in keys or JSON types from the documented example (rules: module docstring)."""
    if documented is None:
        return [] if real is None or isinstance(real, str | int | float | bool) else [f"{path}: {real!r} for null"]
    if isinstance(documented, dict):
        if not isinstance(real, dict):
            return [f"{path}: documented as an object, got {real!r}"]
        found = [f"{path}: keys differ: documented {sorted(documented)}, real {sorted(real)}"]
        if set(documented) == set(real):
            found = []
        for key in documented.keys() & real.keys():
            found += mismatches(documented[key], real[key], f"{path}.{key}")
        return found
    if isinstance(documented, list):
        if not isinstance(real, list):
            return [f"{path}: documented as a list, got {real!r}"]
        return mismatches(documented[0], real[0], f"{path}[0]") if documented and real else []
    if isinstance(documented, bool):
        expected: type | tuple[type, ...] = bool
    elif isinstance(documented, int):
        expected = int
    elif isinstance(documented, float):
        expected = (int, float)
    else:
        expected = type(documented)
    if isinstance(real, expected) and (isinstance(documented, bool) or not isinstance(real, bool)):
        return []
    return [f"{path}: documented as {type(documented).__name__} ({documented!r}), got {real!r}"]


def without(shape: Any, key: str) -> Any:
    """A documented shape minus one key (in each item, for a list), for a key the page says is conditional."""
    if isinstance(shape, list):
        return [without(item, key) for item in shape]
    return {name: value for name, value in shape.items() if name != key}


# --- the runs -----------------------------------------------------------------------------------------------


def _pushed(dag_run: Any) -> dict[str, dict[str, Any]]:
    """``{task_id: {key: value}}`` as stored (read from the table, as tests/e2e/test_operator_dags.py does)."""
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        rows = (
            session.query(XComModel.task_id, XComModel.key, XComModel.value)
            .filter_by(dag_id=dag_run.dag_id, run_id=dag_run.run_id, map_index=-1)
            .all()
        )
    pushed: dict[str, dict[str, Any]] = {}
    for row in rows:
        pushed.setdefault(row.task_id, {})[row.key] = row.value
    return pushed


def _trigger_kwargs() -> str:
    from airflow.models.trigger import Trigger
    from airflow.utils.session import create_session

    with create_session() as session:
        return " ".join(json.dumps(row.kwargs, default=str) for row in session.query(Trigger).all())


class Runs:
    """The two DAG runs and what they pushed, made once for this module."""

    def __init__(self, dagbag: Any, emulator: AimlApiEmulator) -> None:
        self.chat = dagbag.dags[CHAT_DAG].test()
        self.triggers = _trigger_kwargs()
        # One record of the batch fails: with concurrency=1 the first call gets the fault.
        emulator.add_fault(Fault.status(400))
        self.batch = dagbag.dags[BATCH_DAG].test()
        self.xcom = {**_pushed(self.chat), **_pushed(self.batch)}
        self.requests = [request.json for request in emulator.chat_requests]


@pytest.fixture(scope="module")
def runs(dagbag: Any) -> Iterator[Runs]:
    """Like the ``aiml_connection`` fixture of the pytest plugin, but shared by the module's tests."""
    # The pages show a cost for every call, streamed ones included: the emulator adds it to streams when asked.
    with AimlApiEmulator(stream_cost=True) as emulator, pytest.MonkeyPatch.context() as patch:
        connection = {
            "conn_type": "aimlapi",
            "password": EMULATOR_API_KEY,
            "host": emulator.base_url,
            "extra": {"timeout": 10, "max_retries": 2},
        }
        patch.setenv(CONNECTION_ENV, json.dumps(connection))
        yield Runs(dagbag, emulator)


# --- what is compared with what -----------------------------------------------------------------------------

Pick = Callable[[Runs], list[Any]]


def value(task_id: str, key: str) -> Pick:
    return lambda runs: [runs.xcom[task_id][key]]


def records(task_id: str, *, failed: bool) -> Pick:
    """The records of a batch result that succeeded (or failed)."""
    return lambda runs: [item for item in runs.xcom[task_id]["return_value"] if (item["error"] is not None) == failed]


CHAT_TASKS = ["summarize", "extract", "call_tool", "summarize_later", "summarize_streamed", "translate", "label_review"]
CHECKS: list[tuple[str, Callable[[Any], Any], Pick]] = [
    *[("chat.usage", lambda shape: shape, value(task, "usage")) for task in CHAT_TASKS],
    ("chat.usage", lambda shape: shape, value("one_line", "usage")),  # @task.aiml
    ("chat.usage", lambda shape: shape, value("label_reviews", "usage")),  # batch totals: the same fields
    *[("chat.response", lambda shape: shape, value(task, "response")) for task in CHAT_TASKS],
    ("chat.response", lambda shape: shape, value("city_facts", "response")),
    *[("chat.aiml_spend", lambda shape: shape, value(task, "aiml_spend")) for task in [*CHAT_TASKS, "one_line"]],
    ("chat.aiml_spend", lambda shape: shape, value("label_reviews", "aiml_spend")),  # a batch: the same shape
    ("chat.parsed", lambda shape: shape, value("extract", "parsed")),
    ("batch.return_value", lambda shape: shape[0], records("label_reviews", failed=False)),
    # Without a JSON format the records have no "parsed" key, as the page says.
    ("batch.return_value", lambda shape: without(shape, "parsed")[0], records("people", failed=False)),
    ("batch.failed_record", lambda shape: shape, records("label_reviews", failed=True)),
    ("batch.batch", lambda shape: shape, value("label_reviews", "batch")),
    ("batch.batch", lambda shape: shape, value("people", "batch")),  # @task.aiml_batch
    ("taskflow.aiml.return_value", lambda shape: shape, value("city_facts", "return_value")),
]


def _check_id(check: tuple[str, Callable[[Any], Any], Pick], number: int) -> str:
    return f"{number}-{check[0]}"


# --- the tests ----------------------------------------------------------------------------------------------


def test_the_dags_succeeded(runs):
    assert runs.chat.state == "success"
    assert runs.batch.state == "success"


def test_every_example_on_the_page_is_checked():
    assert set(documented_shapes()) == {name for name, _, _ in CHECKS}


@pytest.mark.parametrize("check", CHECKS, ids=[_check_id(check, n) for n, check in enumerate(CHECKS)])
def test_the_documented_shape_matches_the_real_value(runs, check):
    name, adapt, pick = check
    documented = adapt(documented_shapes()[name])
    reals = pick(runs)
    assert reals, f"the run gave no value to compare with {name}"
    for real in reals:
        assert mismatches(documented, real) == [], f"{name} vs {json.dumps(real)}"


def test_the_lists_the_examples_describe_were_not_empty(runs):
    """An empty real list matches any documented list, so make sure the runs filled the ones shown."""
    assert runs.xcom["call_tool"]["response"]["tool_calls"]
    assert len(runs.xcom["label_reviews"]["return_value"]) == 3
    assert runs.xcom["label_reviews"]["batch"]["failed"] == 1


CHAT_KEY_CASES = [
    ("summarize", False),
    ("call_tool", False),
    ("summarize_later", False),  # deferrable: the same keys
    ("summarize_streamed", False),
    ("translate", False),
    ("label_review", False),
    ("one_line", False),  # @task.aiml
    ("extract", True),  # JSON asked for: parsed too
    ("city_facts", True),  # @task.aiml with output_type: returns the object (the decorators' table says so)
]


@pytest.mark.parametrize(("task_id", "with_parsed"), CHAT_KEY_CASES)
def test_a_chat_task_pushes_the_documented_keys(runs, task_id, with_parsed):
    keys = documented_keys("chat")
    if not with_parsed:
        del keys["parsed"]
    if task_id == "city_facts":
        keys["return_value"] = "object"
    pushed = runs.xcom[task_id]
    assert set(pushed) == set(keys)
    for key, json_type in keys.items():
        assert isinstance(pushed[key], JSON_TYPES[json_type]), f"{task_id}.{key} is not a JSON {json_type}"


@pytest.mark.parametrize("task_id", ["label_reviews", "people"])
def test_a_batch_task_pushes_the_documented_keys(runs, task_id):
    keys = documented_keys("batch")
    pushed = runs.xcom[task_id]
    assert set(pushed) == set(keys)
    for key, json_type in keys.items():
        assert isinstance(pushed[key], JSON_TYPES[json_type]), f"{task_id}.{key} is not a JSON {json_type}"


def test_the_batch_result_is_aligned_with_the_inputs(runs):
    results = runs.xcom["label_reviews"]["return_value"]
    assert [item["index"] for item in results] == [0, 1, 2]
    assert results[0]["error"] is not None  # the faulted first call
    assert results[0]["content"] is None
    assert results[0]["parsed"] is None


def test_return_value_is_the_answer_or_the_validated_object(runs):
    assert runs.xcom["summarize"]["return_value"] == runs.xcom["summarize"]["content"]
    assert runs.xcom["one_line"]["return_value"] == runs.xcom["one_line"]["content"]
    assert runs.xcom["city_facts"]["return_value"] == runs.xcom["city_facts"]["parsed"]


def test_a_deferred_task_pushes_when_it_resumes(runs):
    assert f"{CHAT_DAG}:summarize_later:" in runs.triggers, "summarize_later did not defer"
    assert set(runs.xcom["summarize_later"]) == set(runs.xcom["summarize"])


def test_do_xcom_push_false_pushes_nothing(runs):
    assert "quiet" not in runs.xcom
    assert any(request["messages"][-1]["content"] == "Say hello." for request in runs.requests), "quiet made no call"


def test_the_ways_to_pull_that_the_page_shows(runs):
    summarize = runs.xcom["summarize"]
    # .output and .output["usage"] as TaskFlow arguments.
    assert (
        runs.xcom["report"]["return_value"] == f"{summarize['content']} ({summarize['usage']['total_tokens']} tokens)"
    )
    # ti.xcom_pull(task_ids=..., key=...) inside a task.
    assert runs.chat.get_task_instance("check").state == "success"
    # {{ ti.xcom_pull(task_ids='summarize') }} in a templated prompt.
    prompts = [request["messages"][-1]["content"] for request in runs.requests]
    assert f"Translate to French: {summarize['content']}" in prompts
    # Filtering a batch result on "error".
    labels = runs.xcom["keep_labels"]["return_value"]
    assert len(labels) == 2
    assert set(labels) <= {"positive", "neutral", "negative"}


def test_the_parameters_page_sample_sends_its_values(runs):
    """docs/parameters.md includes the label_review task: its parameters go out under their API names."""
    body = next(
        request for request in runs.requests if "as positive, neutral or negative" in request["messages"][-1]["content"]
    )
    assert body["max_completion_tokens"] == 2048
    assert body["temperature"] == 0.2
    assert body["stop"] == ["\n\n"]


def test_the_comparison_catches_a_wrong_shape():
    """The rules of :func:`mismatches`, so a passing comparison means something."""
    assert mismatches({"a": 1, "b": "x"}, {"a": 2, "b": "y"}) == []
    assert mismatches({"a": 1}, {"a": 1, "b": 2})  # an undocumented key
    assert mismatches({"a": 1, "b": 2}, {"a": 1})  # a documented key that is missing
    assert mismatches({"a": 1}, {"a": "1"})  # another type
    assert mismatches({"a": 1}, {"a": 1.5})  # a number with a fraction where a whole number is documented
    assert mismatches({"a": 1}, {"a": True})  # a boolean is not an integer
    assert mismatches({"a": 1.5}, {"a": 2}) == []  # a whole number is a number
    assert mismatches({"a": "x"}, {"a": None})  # null only where the page shows null
    assert mismatches({"a": None}, {"a": None}) == []
    assert mismatches({"a": None}, {"a": "error text"}) == []
    assert mismatches({"a": None}, {"a": {"b": 1}})
    assert mismatches([{"a": 1}], [{"a": 1}, {"c": 2}]) == []  # only the first element
    assert mismatches([{"a": 1}], [{"c": 1}])
    assert mismatches({"a": {"b": [{"c": 1}]}}, {"a": {"b": [{"c": "x"}]}}) == [
        "$.a.b[0].c: documented as int (1), got 'x'"
    ]
