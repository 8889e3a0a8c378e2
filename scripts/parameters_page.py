"""Write the per-family tables of ``docs/parameters.md`` from the models' own request schemas.

    .venv/bin/python scripts/parameters_page.py          # rewrite the section
    .venv/bin/python scripts/parameters_page.py --check  # exit 1 when the page differs (the docs test runs this)

The tables are made by the code the checks run (:class:`~airflow_provider_aiml.catalog.schema.RequestSchema`
and :func:`~airflow_provider_aiml.catalog.reasoning.control_from`), over the schemas the emulator serves, which
copy the parameters and ranges of each model's published OpenAPI document. So the page says what the provider
checks, model by model.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
PAGE = REPO / "docs" / "parameters.md"
START, END = "<!-- model-families -->", "<!-- /model-families -->"
SET_BY_THE_PROVIDER = ("model", "messages", "stream", "stream_options")


def family_tables(documents: Mapping[str, Any]) -> str:
    """The Markdown of every model's table, in the order given."""
    from airflow_provider_aiml.catalog.reasoning import control_from
    from airflow_provider_aiml.catalog.schema import RequestSchema

    lines: list[str] = []
    for model, document in documents.items():
        schema = RequestSchema.from_openapi(document)
        if schema is None:
            continue
        control = control_from(schema.parameters)
        images = "takes images" if schema.vision else "text only"
        lines += [
            f"### `{model}`",
            "",
            f"{images.capitalize()}; reasoning: {control.describe() if control else 'no reasoning parameter'}.",
            "",
            "| Parameter | Accepts | Null allowed |",
            "| --- | --- | --- |",
        ]
        for name, rule in sorted(schema.parameters.items()):
            if name in SET_BY_THE_PROVIDER:
                continue
            accepts = rule.describe()
            if rule.fields:
                inner = ", ".join(f"`{key}`: {field.describe()}" for key, field in rule.fields.items())
                accepts = f"{accepts} ({inner})"
            lines.append(f"| `{name}` | {accepts.replace('|', chr(92) + '|')} | {'yes' if rule.nullable else 'no'} |")
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def emulator_documents() -> dict[str, Any]:
    """The request schemas of the emulator's chat models, by model id."""
    from airflow_provider_aiml.testing import model_specs

    return {model: model_specs.openapi_document(model) for model in model_specs.CHAT_MODELS}


def rendered_page(page: str, tables: str) -> str:
    """``page`` with the section between the markers replaced by ``tables``."""
    head, found, rest = page.partition(START)
    _, found_end, tail = rest.partition(END)
    if not found or not found_end:
        raise SystemExit(f"{PAGE} lacks the {START} ... {END} markers")
    return f"{head}{START}\n\n{tables}\n{END}{tail}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="exit 1 when the page is not up to date")
    args = parser.parse_args(argv)
    page = PAGE.read_text()
    wanted = rendered_page(page, family_tables(emulator_documents()))
    if args.check:
        if wanted != page:
            print(f"{PAGE} is out of date: run python scripts/parameters_page.py", file=sys.stderr)
            return 1
        return 0
    PAGE.write_text(wanted)
    return 0


if __name__ == "__main__":
    sys.exit(main())
