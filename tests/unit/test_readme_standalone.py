"""The README's `airflow standalone` note names real Airflow options and keeps the two ports in step."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urlsplit

from airflow.configuration import conf

README = Path(__file__).resolve().parents[2] / "README.md"


def _standalone_exports() -> dict[str, str]:
    text = README.read_text(encoding="utf-8")
    section = text.split("### Trying it in `airflow standalone`", 1)[1].split("\n## ", 1)[0]
    return dict(re.findall(r"^export (AIRFLOW__\w+)=(\S+)$", section, flags=re.MULTILINE))


def test_the_standalone_note_sets_the_execution_api_url_on_the_api_port():
    exports = _standalone_exports()
    assert set(exports) == {"AIRFLOW__API__PORT", "AIRFLOW__CORE__EXECUTION_API_SERVER_URL"}
    for name in exports:
        _, section, key = name.split("__", 2)
        options = conf.configuration_description[section.lower()]["options"]
        assert key.lower() in options, f"{name} is not an Airflow option"
    url = urlsplit(exports["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"])
    assert url.port == int(exports["AIRFLOW__API__PORT"])
    assert url.path == "/execution/"
