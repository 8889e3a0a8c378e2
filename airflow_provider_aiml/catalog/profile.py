"""What one model takes, from its catalog entry and its schema, and the check of a request against it."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

from airflow_provider_aiml.catalog.entry import STRUCTURED_OUTPUT, TOOLS, VISION, ModelEntry
from airflow_provider_aiml.catalog.reasoning import ReasoningControl, control_from, known_family, thinks_only_streamed
from airflow_provider_aiml.catalog.schema import RequestSchema
from airflow_provider_aiml.exceptions import AimlParameterError

UNCHECKED_KEYS = frozenset({"model", "messages", "stream", "stream_options"})
"""Body keys the provider sets and checks itself."""


@dataclass(frozen=True)
class ModelProfile:
    """A model as the checks see it. Without an ``entry`` (the catalog could not be read, or does not list the
    model) no capability is refused; without a ``schema`` the seed model's built-in ranges apply, as before the
    catalog was read."""

    model: str
    entry: ModelEntry | None = None
    schema: RequestSchema | None = None
    reasoning: ReasoningControl | None = None

    @classmethod
    def build(cls, model: str, entry: ModelEntry | None = None, schema: RequestSchema | None = None) -> ModelProfile:
        control = control_from(schema.parameters) if schema is not None else known_family(model)
        return cls(model, entry, schema, control)

    @property
    def checks_parameters(self) -> bool:
        """Whether the parameters are checked against the model's own schema (else: the built-in ranges)."""
        return self.schema is not None

    def check(self, body: Mapping[str, Any], extra_keys: Collection[str] = ()) -> None:
        """Refuse a body the model would not take, naming the model and what is wrong; nothing is sent.

        Keys that only ``extra_body`` sets and that the schema does not know pass: ``extra_body`` is the way to
        send what a schema leaves out (several Qwen pages send ``enable_thinking`` that their schema lacks).
        """
        self._check_capabilities(body)
        self._check_streamed_thinking(body)
        schema = self.schema
        if schema is None:
            return
        for key, value in body.items():
            if key in UNCHECKED_KEYS:
                continue
            rule = schema.parameters.get(key)
            if rule is None:
                if key in extra_keys:
                    continue
                raise AimlParameterError(
                    f"{self.model!r} does not take {key!r}; its schema's parameters are "
                    f"{', '.join(sorted(set(schema.parameters) - UNCHECKED_KEYS))}"
                )
            problem = rule.problem(value)
            if problem is not None:
                raise AimlParameterError(f"{key!r} {problem} for {self.model!r}, got {_short(value)}")

    def check_messages(self, messages: Any) -> None:
        """Refuse messages the model cannot take (images to a model without vision): for batch records, whose
        parameters were checked once with the first record."""
        if self._lacks(VISION) and _has_images(messages):
            self._refuse_images()

    def _refuse_images(self) -> None:
        raise AimlParameterError(
            f"{self.model!r} does not take images ({self._missing(VISION)}): send text only, or choose a vision model"
        )

    def _check_capabilities(self, body: Mapping[str, Any]) -> None:
        if self._lacks(VISION) and _has_images(body["messages"]):
            self._refuse_images()
        if body.get("tools") and self._lacks(TOOLS):
            raise AimlParameterError(
                f"{self.model!r} does not take tools ({self._missing(TOOLS)}): choose a model that calls tools, "
                "or send none"
            )
        response_format = body.get("response_format")
        if (
            isinstance(response_format, Mapping)
            and response_format.get("type") == "json_schema"
            and self._lacks(STRUCTURED_OUTPUT)
        ):
            raise AimlParameterError(
                f"{self.model!r} does not take a json_schema response_format ({self._missing(STRUCTURED_OUTPUT)}): "
                "use {'type': 'json_object'} and describe the shape in the prompt, or choose another model"
            )

    def _check_streamed_thinking(self, body: Mapping[str, Any]) -> None:
        model = self.entry.id if self.entry is not None else self.model
        if body.get("enable_thinking") is True and body.get("stream") is not True and thinks_only_streamed(model):
            raise AimlParameterError(
                f"{self.model!r} thinks only on streamed calls (its page: enable_thinking must be false for "
                "non-streaming calls): set stream=True, or drop the reasoning switch / enable_thinking"
            )

    def _lacks(self, capability: str) -> bool:
        return self._missing(capability) is not None

    def _missing(self, capability: str) -> str | None:
        """Where it says the model lacks ``capability`` ("the catalog", "its schema"), or ``None``.

        The catalog's capabilities decide when it lists them: the schemas of some vision models (Claude's) show
        only their upstream's own image parts, not the ``image_url`` parts the API takes and converts."""
        entry = self.entry
        if entry is not None and entry.capabilities is not None:
            return f"no {capability!r} capability in the catalog" if entry.lacks(capability) else None
        schema = self.schema
        if schema is None:
            return None
        if capability == VISION:
            return "its schema takes no image parts" if schema.vision is False else None
        key = "tools" if capability == TOOLS else "response_format"
        return None if key in schema.parameters else f"its schema has no {key!r}"


def _has_images(messages: Any) -> bool:
    for message in messages:
        content = message.get("content")
        if isinstance(content, list) and any(
            isinstance(part, Mapping) and part.get("type") == "image_url" for part in content
        ):
            return True
    return False


def _short(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
