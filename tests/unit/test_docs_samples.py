"""Every Python sample in the README and the docs is code that the test suite runs.

A sample is either included into the page from a file (``--8<-- "path"`` or ``--8<-- "path:section"``,
pymdownx.snippets) or written out in the page; in both cases its lines must appear, in order and together, in
one of the executed files below. Those files are run by the tests: the example DAGs and the docs snippet DAGs
through ``dag.test()`` against the emulator, the other snippets by ``tests/e2e/test_docs_snippets.py``. So a
sample cannot drift from code that works.
"""

from __future__ import annotations

import ast
import re
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PAGES = [REPO / "README.md", *sorted(p for p in (REPO / "docs").rglob("*.md") if "snippets" not in p.parts)]
EXECUTED = [
    *sorted((REPO / "example_dags").glob("*.py")),
    *sorted((REPO / "docs" / "snippets").rglob("*.py")),
    REPO / "tests" / "dags" / "aiml_docs_dags.py",  # run by tests/e2e/test_docs_xcom_shapes.py
    REPO / "airflow_provider_aiml" / "testing" / "pytest_plugin.py",
]
FENCE = re.compile(r"^(?P<indent>[ \t]*)```python\n(?P<code>.*?)^(?P=indent)```", re.DOTALL | re.MULTILINE)
INCLUDE = re.compile(r'^[ \t]*--8<-- "(?P<path>[^":]+)(?::(?P<section>[a-z][-_0-9a-z]*))?"[ \t]*$', re.MULTILINE)
MARKER = re.compile(r"^\s*# --8<-- \[(?P<kind>start|end):(?P<name>[a-z][-_0-9a-z]*)\]\s*$")


def included_text(path: str, section: str | None) -> str:
    """What pymdownx.snippets puts in the page: the file or one section of it, dedented, markers removed."""
    lines = (REPO / path).read_text().splitlines()
    if section is not None:
        starts = [n for n, line in enumerate(lines) if (m := MARKER.match(line)) and m["name"] == section]
        assert starts, f"{path} has no section {section!r}"
        end = next(n for n in range(starts[0] + 1, len(lines)) if MARKER.match(lines[n]))
        assert MARKER.match(lines[end])["kind"] == "end", f"section {section!r} of {path} is not closed"  # type: ignore[index]
        lines = lines[starts[0] + 1 : end]
    kept = [line for line in lines if not MARKER.match(line)]
    return textwrap.dedent("\n".join(kept)) + "\n"


def expand(code: str) -> str:
    return INCLUDE.sub(lambda m: included_text(m["path"], m["section"]), code)


def samples() -> list[tuple[str, str, str]]:
    """(where, the code as written in the page, the code as the reader sees it)."""
    found = []
    for page in PAGES:
        for number, match in enumerate(FENCE.finditer(page.read_text()), start=1):
            written = textwrap.dedent(match["code"])
            found.append((f"{page.relative_to(REPO)}#{number}", written, expand(written)))
    return found


def code_lines(text: str) -> list[str]:
    """The lines that carry code: stripped, without blank lines, comment-only lines (a sample may start with
    its file name) or section markers."""
    return [line.strip() for line in text.splitlines() if line.strip() and not line.strip().startswith("#")]


EXECUTED_LINES = {path: code_lines(path.read_text()) for path in EXECUTED}


def executed_file_containing(code: str) -> Path | None:
    wanted = code_lines(code)
    for path, lines in EXECUTED_LINES.items():
        for start in range(len(lines) - len(wanted) + 1):
            if lines[start : start + len(wanted)] == wanted:
                return path
    return None


SAMPLES = samples()


def test_the_docs_have_python_samples_and_most_are_included_from_files():
    assert len(SAMPLES) >= 40
    included = [where for where, written, _ in SAMPLES if INCLUDE.search(written)]
    assert len(included) >= 30


def test_an_included_section_is_dedented_and_loses_its_markers():
    shown = included_text("docs/snippets/dags/operator_guide.py", "prompt")
    assert shown.startswith("summarize = AimlChatCompletionOperator(\n")
    assert "--8<--" not in included_text("example_dags/example_aiml_summarize.py", None)


def test_a_sample_that_is_not_in_an_executed_file_is_caught():
    assert executed_file_containing("hook = AimlApiHook()\nresult = hook.chat_completion(") is not None
    assert executed_file_containing("hook = AimlApiHook()\nresult = hook.chat_completion(typo=1)") is None


@pytest.mark.parametrize(("where", "written", "code"), SAMPLES, ids=[where for where, _, _ in SAMPLES])
def test_python_sample_compiles_and_is_executed_code(where, written, code):
    compile(code, where, "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT, dont_inherit=True)
    includes = list(INCLUDE.finditer(written))
    if includes and len(includes) == len(code_lines(written)):  # only includes: each comes from its file
        for include in includes:
            assert REPO / include["path"] in EXECUTED, f"{where}: {include['path']} is not a file the tests run"
        return
    assert executed_file_containing(code) is not None, (
        f"{where}: this sample is not part of any file the tests run; include it from one with "
        '--8<-- "path:section" or copy it from one'
    )


CONNECTION_EXPORT = re.compile(r"export AIRFLOW_CONN_AIML_DEFAULT='(?P<value>[^']+)'")
CONNECTIONS = [
    (f"{page.relative_to(REPO)}:{text[: m.start()].count(chr(10)) + 1}", m["value"])
    for page in PAGES
    for text in [page.read_text()]
    for m in CONNECTION_EXPORT.finditer(text)
]


@pytest.mark.parametrize(("where", "value"), CONNECTIONS, ids=[where for where, _ in CONNECTIONS])
def test_every_connection_in_the_docs_is_read_by_the_hook(where, value, monkeypatch):
    from airflow_provider_aiml.hooks.aiml import AimlApiHook

    key = "sk-docs-sample-key-123"
    monkeypatch.setenv("AIRFLOW_CONN_AIML_DEFAULT", value.replace("<your key>", key).replace("<key>", key))
    settings = AimlApiHook().settings

    assert settings.api_key.get_secret_value() in {key, "sk-anything"}
    assert settings.base_url in {"https://api.aimlapi.com/v1", "http://127.0.0.1:8080/v1"}
    if "timeout=600" in value or '"timeout": 600' in value:
        assert settings.timeout == 600


def test_the_docs_show_connections_in_both_forms():
    assert len(CONNECTIONS) >= 6
    assert any(value.startswith("aimlapi://") for _, value in CONNECTIONS)
