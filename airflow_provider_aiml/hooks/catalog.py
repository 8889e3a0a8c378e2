"""The hook's reader of the model catalog: entries, schemas and the profiles the checks use.

The catalog's rules (freshness, ETags, outages) are :mod:`airflow_provider_aiml.catalog.cache`'s; this module
only sends the GETs, sync or async, through one generator of lookups that both drivers share. Catalog reads go
to the connection's own host only (``info.docsJson`` is resolved against it), and nothing here runs when a DAG
file is parsed: the first read happens when a task prepares its first call.
"""

from __future__ import annotations

import time
from collections.abc import Generator, Mapping, Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlencode

import httpx

from airflow_provider_aiml.catalog.cache import (
    RETRY_AFTER_FAILURE,
    CatalogCache,
    Lookup,
    Settled,
    catalog_cache,
    default_cache_dir,
)
from airflow_provider_aiml.catalog.entry import ModelEntry, item_of
from airflow_provider_aiml.catalog.profile import ModelProfile
from airflow_provider_aiml.catalog.schema import RequestSchema
from airflow_provider_aiml.exceptions import AimlNotFoundError, AimlResponseError, AimlTransportError

if TYPE_CHECKING:
    from airflow_provider_aiml.hooks.aiml import AimlApiHook
    from airflow_provider_aiml.hooks.settings import ConnectionSettings

CATALOG_TIMEOUT = 10.0
INCLUDE_ALL = "all"
_Steps = Generator[Lookup, Settled, Any]
_logged_once: set[tuple[str, str]] = set()


class CatalogReader:
    """Reads the catalog for one hook; what it reads is shared by every hook of the process."""

    def __init__(self, hook: AimlApiHook) -> None:
        self._hook = hook

    # --- what the checks use ----------------------------------------------------------------------------------

    def profile(self, model: str) -> ModelProfile:
        """``model``'s profile (entry and schema). A catalog outage gives the built-in profile, logged once."""
        settings = self._hook.settings
        return self._cached_profile(settings, model) or self._drive(self._profile_steps(settings, model))

    async def aprofile(self, model: str) -> ModelProfile:
        """Async :meth:`profile`: the catalog is read without blocking the event loop."""
        settings = await self._hook.asettings()
        return self._cached_profile(settings, model) or await self._adrive(self._profile_steps(settings, model))

    def _cached_profile(self, settings: ConnectionSettings, model: str) -> ModelProfile | None:
        if not settings.catalog_checks:
            return _BUILT_IN.get(model) or _BUILT_IN.setdefault(model, ModelProfile.build(model))
        hit = _cache_of(settings).derived.get((settings.api_root, model))
        return hit[1] if hit is not None and hit[0] > time.time() else None

    def _profile_steps(self, settings: ConnectionSettings, model: str) -> _Steps:
        cache = _cache_of(settings)
        entry_found = yield cache.lookup(_entry_url(settings, model))
        entry = _entry_in(entry_found)
        schema_found = None
        schema_path = entry.schema_path() if entry is not None else None
        if schema_path is not None:
            schema_found = yield cache.lookup(f"{settings.api_root}{schema_path}")
        schema = None
        if schema_found is not None and schema_found.document is not None:
            schema = RequestSchema.from_openapi(schema_found.document.payload)
        profile = ModelProfile.build(model, entry, schema)
        self._note(model, entry_found, entry, schema_found, schema, schema_path)
        valid_until = min(
            (
                found.document.checked_at + cache.ttl if found.failure is None and found.document else time.time()
                for found in (entry_found, schema_found)
                if found is not None
            ),
            default=time.time(),
        )
        if entry_found.failure is not None or (schema_found is not None and schema_found.failure is not None):
            valid_until = time.time() + RETRY_AFTER_FAILURE
        cache.derived[(settings.api_root, model)] = (valid_until, profile)
        return profile

    def _note(
        self,
        model: str,
        entry_found: Settled,
        entry: ModelEntry | None,
        schema_found: Settled | None,
        schema: RequestSchema | None,
        schema_path: str | None,
    ) -> None:
        """One log line per model and kind of gap, per process: an outage is news once, not on every call."""
        log = self._hook.log
        if entry_found.failure is not None and entry is None:
            _once(
                log,
                model,
                "entry",
                "The model catalog could not be read for %s (%s); the call goes ahead with "
                "the built-in checks of the seed model",
                model,
                entry_found.failure,
            )
        elif entry_found.failure is not None:
            _once(log, model, "stale", "The model catalog could not be read for %s (%s)", model, entry_found.failure)
        elif entry is None:
            _once(
                log,
                model,
                "unlisted",
                "%s is not in the model catalog; it is sent with the built-in checks of "
                "the seed model (the API answers 404 for an unknown model, unbilled)",
                model,
            )
        elif schema_path is None or (schema is None and (schema_found is None or schema_found.failure is None)):
            _once(
                log,
                model,
                "schema",
                "The catalog gives no usable request schema for %s; its parameters are "
                "checked against the seed model's ranges",
                model,
            )
        elif schema is None and schema_found is not None:
            _once(
                log,
                model,
                "schema-down",
                "The request schema of %s could not be read (%s); its parameters are "
                "checked against the seed model's ranges",
                model,
                schema_found.failure,
            )

    # --- explicit reads (raise when the catalog cannot be read) ------------------------------------------------

    def get_model(self, model: str) -> ModelEntry | None:
        """``model``'s catalog entry (matched on id or alias), ``None`` when the catalog does not list it."""
        settings = self._hook.settings
        found = self._drive(_single(_cache_of(settings), _entry_url(settings, model)))
        _raise_unread(found, f"the catalog entry of {model}")
        return _entry_in(found)

    async def aget_model(self, model: str) -> ModelEntry | None:
        """Async :meth:`get_model`."""
        settings = await self._hook.asettings()
        found = await self._adrive(_single(_cache_of(settings), _entry_url(settings, model)))
        _raise_unread(found, f"the catalog entry of {model}")
        return _entry_in(found)

    def list_models(self, include: Sequence[str], filters: Mapping[str, str | Sequence[str]]) -> list[dict[str, Any]]:
        """The catalog's items (``GET /v1/models`` with ``include`` and filters), cached by ETag."""
        settings = self._hook.settings
        found = self._drive(_single(_cache_of(settings), _list_url(settings, include, filters)))
        _raise_unread(found, "the model list")
        payload = found.document.payload if found.document is not None else None
        models = payload.get("data") if isinstance(payload, Mapping) else payload
        if not isinstance(models, list):
            raise AimlResponseError("The model list is not the documented {object, data: [...]} shape")
        return models

    # --- the two drivers ---------------------------------------------------------------------------------------

    def _drive(self, steps: _Steps) -> Any:
        cache = _cache_of(self._hook.settings)
        try:
            lookup = next(steps)
            while True:
                if lookup.fresh:
                    lookup = steps.send(Settled(lookup.document, lookup.failure))
                    continue
                try:
                    answer: httpx.Response | Exception = self._hook._catalog_get(lookup)
                except Exception as error:  # any failure of the catalog is an outage, never a failed call
                    answer = error
                lookup = steps.send(cache.settle(lookup, answer))
        except StopIteration as done:
            return done.value

    async def _adrive(self, steps: _Steps) -> Any:
        cache = _cache_of(await self._hook.asettings())
        try:
            lookup = next(steps)
            while True:
                if lookup.fresh:
                    lookup = steps.send(Settled(lookup.document, lookup.failure))
                    continue
                try:
                    answer: httpx.Response | Exception = await self._hook._acatalog_get(lookup)
                except Exception as error:  # any failure of the catalog is an outage, never a failed call
                    answer = error
                lookup = steps.send(cache.settle(lookup, answer))
        except StopIteration as done:
            return done.value


_BUILT_IN: dict[str, ModelProfile] = {}


def _single(cache: CatalogCache, url: str) -> _Steps:
    found = yield cache.lookup(url)
    return found


def _cache_of(settings: ConnectionSettings) -> CatalogCache:
    return catalog_cache(settings.catalog_cache_dir or default_cache_dir(), settings.catalog_ttl)


def _entry_url(settings: ConnectionSettings, model: str) -> str:
    """``GET /model/{id}``: singular, not under ``/v1``, the id's slashes as they are."""
    return f"{settings.api_root}/model/{quote(model, safe='/:')}?include={INCLUDE_ALL}"


def _list_url(settings: ConnectionSettings, include: Sequence[str], filters: Mapping[str, Any]) -> str:
    query: list[tuple[str, str]] = [("include", ",".join(include))] if include else []
    for name, values in sorted(filters.items()):
        for value in [values] if isinstance(values, str) else values:
            query.append((name, str(value)))
    return f"{settings.base_url}/models" + (f"?{urlencode(query)}" if query else "")


def _entry_in(found: Settled) -> ModelEntry | None:
    item = item_of(found.document.payload) if found.document is not None else None
    return ModelEntry.from_item(item) if item is not None else None


def _raise_unread(found: Settled, what: str) -> None:
    if found.document is None and found.failure is not None:
        raise AimlTransportError(f"The model catalog could not be read ({what}): {found.failure}")
    if found.document is not None and found.document.status == 404 and what == "the model list":
        raise AimlNotFoundError("The model list is not served at this base URL (HTTP 404)")


def _once(log: Any, model: str, kind: str, message: str, *args: Any) -> None:
    """Log a gap of the catalog once per model and kind; a model without a schema is routine (debug), the rest
    are warnings."""
    if (model, kind) not in _logged_once:
        _logged_once.add((model, kind))
        (log.debug if kind == "schema" else log.warning)(message, *args)


def forget_logged() -> None:
    """Log catalog gaps again (tests)."""
    _logged_once.clear()
    _BUILT_IN.clear()
