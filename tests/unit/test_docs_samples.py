"""Every Python sample in the README and the docs at least compiles, so the docs cannot drift into broken code.

(The example DAGs the docs walk through are executed by the end-to-end tests.)
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PAGES = [REPO / "README.md", *sorted((REPO / "docs").rglob("*.md"))]
FENCE = re.compile(r"^```python\n(?P<code>.*?)^```", re.DOTALL | re.MULTILINE)
SNIPPET = re.compile(r'^--8<-- "(?P<path>[^"]+)"$', re.MULTILINE)


def expand_snippets(code: str) -> str:
    """Inline the files that pymdownx.snippets includes (``--8<-- "path"``), as the built site does."""
    return SNIPPET.sub(lambda match: (REPO / match.group("path")).read_text(), code)


def samples() -> list[tuple[str, str]]:
    found = []
    for page in PAGES:
        for number, match in enumerate(FENCE.finditer(page.read_text()), start=1):
            found.append((f"{page.relative_to(REPO)}#{number}", expand_snippets(match.group("code"))))
    return found


def test_the_docs_have_python_samples():
    assert len(samples()) >= 20


def test_included_example_dags_are_inlined():
    included = [code for where, code in samples() if where.startswith("docs/getting-started.md")]
    assert included
    assert "AimlChatCompletionOperator(" in included[0]
    assert "--8<--" not in included[0]


@pytest.mark.parametrize(("where", "code"), samples(), ids=[where for where, _ in samples()])
def test_python_sample_compiles(where, code):
    compile(code, where, "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT, dont_inherit=True)
