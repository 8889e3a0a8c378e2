"""One model of the catalog (``GET /model/{id}?include=all``), read into what the provider checks."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from airflow_provider_aiml.catalog.pricing import TokenPricing

VISION = "vision"
TOOLS = "tools"
STRUCTURED_OUTPUT = "structured_output"


@dataclass(frozen=True)
class ModelEntry:
    """A catalog item. ``capabilities`` is ``None`` when the item did not list them (then nothing is refused
    for want of one)."""

    id: str
    aliases: tuple[str, ...] = ()
    type: str = ""
    context_length: int | None = None
    output_max: int | None = None
    capabilities: frozenset[str] | None = None
    input_modalities: frozenset[str] | None = None
    pricing: TokenPricing | None = None
    docs_json: str | None = None
    raw: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)
    """The item as the catalog gave it."""

    @classmethod
    def from_item(cls, item: Mapping[str, Any]) -> ModelEntry:
        """Read a catalog item; unknown or malformed optional parts are left unknown rather than guessed."""
        found = item.get("info")
        info: Mapping[str, Any] = found if isinstance(found, Mapping) else {}
        capabilities = item.get("capabilities")
        modalities = item.get("modalities")
        inputs = modalities.get("input") if isinstance(modalities, Mapping) else None
        aliases = item.get("aliases")
        return cls(
            id=str(item["id"]),
            aliases=tuple(str(a) for a in aliases) if isinstance(aliases, list) else (),
            type=str(item.get("type") or ""),
            context_length=_positive_int(info.get("contextLength")),
            output_max=_positive_int(info.get("outputMax") or info.get("maxTokens")),
            capabilities=frozenset(map(str, capabilities)) if isinstance(capabilities, list) else None,
            input_modalities=frozenset(map(str, inputs)) if isinstance(inputs, list) else None,
            pricing=TokenPricing.from_catalog(item.get("pricing")),
            docs_json=str(info["docsJson"]) if isinstance(info.get("docsJson"), str) and info["docsJson"] else None,
            raw=item,
        )

    def names(self) -> frozenset[str]:
        """The id and aliases, lower-cased: the catalog matches names case-insensitively."""
        return frozenset(name.lower() for name in (self.id, *self.aliases))

    def lacks(self, capability: str) -> bool:
        """Whether the catalog says the model does *not* have ``capability`` (``False`` when it does not say)."""
        if capability == VISION and self.input_modalities is not None and "image" in self.input_modalities:
            return False
        return self.capabilities is not None and capability not in self.capabilities

    def schema_path(self) -> str | None:
        """Path and query of the model's OpenAPI document (``info.docsJson``), to be read from the connection's
        own host: the catalog gives ``https://api.aimlapi.com/docs-json?...`` whatever host serves it, and a proxy
        or the emulator serves the same path."""
        if self.docs_json is None:
            return None
        parts = urlsplit(self.docs_json)
        if not parts.path:
            return None
        return parts.path + (f"?{parts.query}" if parts.query else "")


def _positive_int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


def item_of(payload: Any) -> Mapping[str, Any] | None:
    """The item of a ``GET /model/{id}`` answer (``{object: "model", data: {...}}``), if it is one."""
    data = payload.get("data") if isinstance(payload, Mapping) else None
    return data if isinstance(data, Mapping) and isinstance(data.get("id"), str) else None
