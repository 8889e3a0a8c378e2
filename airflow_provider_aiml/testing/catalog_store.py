"""One emulator's own catalog: the built-in models, changed at run time (a model added, re-priced, removed or
deprecated), with the weak ``ETag`` its listing carries so clients can revalidate with ``If-None-Match``."""

from __future__ import annotations

import copy
import hashlib
import json
import math
import threading
from collections.abc import Iterable, Mapping
from typing import Any, TypeGuard

from airflow_provider_aiml.testing.catalog import DEPRECATED_MODELS, MODELS, names_of


class CatalogStore:
    """The models an emulator lists and serves, and the ids it answers ``Model is deprecated`` for. Thread-safe;
    every change gives the catalog a new ``ETag``."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._items: list[dict[str, Any]] = []
        self._by_name: dict[str, dict[str, Any]] = {}
        self._deprecated: set[str] = set()
        self._version = 0
        self.reset()

    def reset(self) -> None:
        """Back to the built-in catalog."""
        with self._lock:
            self._items = copy.deepcopy(list(MODELS))
            self._deprecated = {name.lower() for name in DEPRECATED_MODELS}
            self._reindex()

    def items(self) -> list[dict[str, Any]]:
        """Every item with all its sections (deep copies)."""
        with self._lock:
            return copy.deepcopy(self._items)

    def find(self, name: str) -> dict[str, Any] | None:
        """A copy of the item whose id or alias is ``name`` (case-insensitive), or ``None``."""
        item = self.peek(name)
        return None if item is None else copy.deepcopy(dict(item))

    def peek(self, name: str) -> Mapping[str, Any] | None:
        """The stored item itself, to read and not change: each request looks its model up, and a copy of the
        item (tens of µs) would slow every answer. Items are replaced whole, never changed in place."""
        with self._lock:
            return self._by_name.get(name.strip().lower())

    def is_deprecated(self, name: str) -> bool:
        """Whether chat requests naming ``name`` get ``404 Model is deprecated``."""
        with self._lock:
            return name.strip().lower() in self._deprecated

    def put(self, items: Iterable[Mapping[str, Any]]) -> None:
        """Add items, or replace the one with the same id (an item needs ``id`` and ``type``)."""
        added = [_checked(item) for item in items]
        if not added:
            return
        with self._lock:
            for item in added:
                self._items = [old for old in self._items if old["id"] != item["id"]] + [item]
                self._deprecated -= names_of(item)
            self._reindex()

    def remove(self, ids: Iterable[str], *, deprecate: bool = False) -> list[str]:
        """Take models out of the catalog (by id or alias); with ``deprecate`` their names also answer
        ``Model is deprecated``. Returns the ids removed."""
        wanted = {name.strip().lower() for name in ids}
        if not wanted:
            return []
        with self._lock:
            gone = [item for item in self._items if names_of(item) & wanted]
            self._items = [item for item in self._items if item not in gone]
            if deprecate:
                self._deprecated |= wanted.union(*(names_of(item) for item in gone))
            self._reindex()
            return [item["id"] for item in gone]

    def _reindex(self) -> None:
        """After a change (the lock held): a new version, and the names of the items (the first item wins)."""
        self._version += 1
        self._by_name = {}
        for item in self._items:
            for name in names_of(item):
                self._by_name.setdefault(name, item)

    def etag(self, payload: Any) -> str:
        """The weak ``ETag`` of an answer built from this catalog (changes with the catalog and the query)."""
        with self._lock:
            version = self._version
        digest = hashlib.sha1(json.dumps([version, payload], sort_keys=True).encode(), usedforsecurity=False)
        return f'W/"{digest.hexdigest()[:20]}"'

    def summary(self) -> dict[str, Any]:
        """The ids listed and deprecated, as JSON (for the control endpoint)."""
        with self._lock:
            return {"models": [item["id"] for item in self._items], "deprecated": sorted(self._deprecated)}


def _checked(item: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of an item to put, or ``ValueError`` naming the section that is not shaped as listings have it."""
    if not isinstance(item, Mapping) or not isinstance(item.get("id"), str) or not item["id"].strip():
        raise ValueError(f"a catalog item needs a non-empty string 'id', got {item!r}")
    name = item["id"]
    if not isinstance(item.get("type"), str):
        raise ValueError(f"catalog item {name!r} needs a string 'type'")
    for key in ("aliases", "tags", "capabilities"):
        if key in item and not _strings(item[key]):
            raise ValueError(f"catalog item {name!r}: {key!r} must be a list of strings")
    for key in ("info", "pricing"):
        if key in item and not isinstance(item[key], Mapping):
            raise ValueError(f"catalog item {name!r}: {key!r} must be an object")
    units = item.get("pricing", {}).get("units", [])
    if not isinstance(units, list) or not all(_price_unit(unit) for unit in units):
        raise ValueError(
            f"catalog item {name!r}: 'pricing.units' must be a list of {{name, measure, price >= 0, per > 0}}"
        )
    modalities = item.get("modalities", {})
    if not isinstance(modalities, Mapping) or not all(_strings(modalities.get(k, [])) for k in ("input", "output")):
        raise ValueError(f"catalog item {name!r}: 'modalities' must be {{input: [...], output: [...]}} of strings")
    copied = copy.deepcopy(dict(item))
    copied.setdefault("aliases", [])
    copied.setdefault("info", {})
    copied.setdefault("tags", [])
    return copied


def _price_unit(unit: Any) -> bool:
    if not isinstance(unit, Mapping):
        return False
    price, per = unit.get("price"), unit.get("per", 1)
    return _finite(price) and _finite(per) and price >= 0 and per > 0


def _finite(value: Any) -> TypeGuard[float]:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _strings(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)
