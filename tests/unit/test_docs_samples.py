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


def samples() -> list[tuple[str, str]]:
    found = []
    for page in PAGES:
        for number, match in enumerate(FENCE.finditer(page.read_text()), start=1):
            found.append((f"{page.relative_to(REPO)}#{number}", match.group("code")))
    return found


def test_the_docs_have_python_samples():
    assert len(samples()) >= 20


@pytest.mark.parametrize(("where", "code"), samples(), ids=[where for where, _ in samples()])
def test_python_sample_compiles(where, code):
    compile(code, where, "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT, dont_inherit=True)
