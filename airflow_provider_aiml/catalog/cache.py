"""The catalog as read, kept in the process and on disk, and revalidated with the API's ETags.

Sans I/O: :meth:`CatalogCache.lookup` says whether a document is fresh or must be asked for (and with which
``If-None-Match``); the hook sends the GET, sync or async, and hands the answer to :meth:`CatalogCache.settle`.
So both paths share one set of rules:

* a document younger than ``ttl`` is used without asking;
* an older one is revalidated (``304`` renews it, ``200`` replaces it);
* when the catalog cannot be read, a copy younger than ``max_stale`` is used, an older one is not, and the URL
  is not asked again for :data:`RETRY_AFTER_FAILURE` seconds, so an outage costs one timeout, not one per call;
* a ``404`` is remembered like a document: a model the catalog does not list is not looked up on every call.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import tempfile
import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import httpx

DEFAULT_TTL = 3600.0
DEFAULT_MAX_STALE = 7 * 86400.0
RETRY_AFTER_FAILURE = 60.0

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CachedDocument:
    """One catalog answer: its decoded JSON (``None`` for a 404), its ETag and when it was last confirmed."""

    url: str
    payload: Any
    etag: str | None
    checked_at: float
    status: int = 200


@dataclass(frozen=True)
class Lookup:
    """What :meth:`CatalogCache.lookup` found: use ``document`` as it is when ``fresh``, else ask."""

    url: str
    document: CachedDocument | None
    fresh: bool
    failure: str | None = None
    """Why the catalog is not asked (it failed moments ago), so that no copy is not taken for "not listed"."""

    def headers(self) -> dict[str, str]:
        """The conditional request's headers."""
        etag = self.document.etag if self.document is not None else None
        return {"If-None-Match": etag} if etag else {}


@dataclass(frozen=True)
class Settled:
    """The outcome of a lookup: the document to use (``None``: none usable) and, when the catalog could not be
    read, why (for the one log line an outage gets)."""

    document: CachedDocument | None
    failure: str | None = None


class CatalogCache:
    """Catalog documents by URL, shared by every hook of the process that uses the same directory."""

    def __init__(self, directory: Path | None, ttl: float = DEFAULT_TTL, max_stale: float = DEFAULT_MAX_STALE) -> None:
        self.directory = directory
        self.ttl = ttl
        self.max_stale = max_stale
        self._documents: dict[str, CachedDocument] = {}
        self._failed_until: dict[str, float] = {}
        self._failures: dict[str, str] = {}
        self._disk_failed = False
        self.derived: dict[Any, tuple[float, Any]] = {}
        """Values computed from documents (model profiles), with the time their documents were checked."""

    def lookup(self, url: str) -> Lookup:
        """The cached document of ``url`` and whether it is fresh enough to use without asking."""
        now = time.time()
        document = self._documents.get(url)
        if document is None:
            document = self._read_disk(url)
            if document is not None:
                self._documents[url] = document
        if document is not None and now - document.checked_at < self.ttl:
            return Lookup(url, document, fresh=True)
        if self._failed_until.get(url, 0.0) > now:  # asked moments ago and failed: do not wait on it again
            usable = document if document is not None and now - document.checked_at < self.max_stale else None
            return Lookup(url, usable, fresh=True, failure=self._failures.get(url))
        return Lookup(url, document, fresh=False)

    def settle(self, lookup: Lookup, answer: httpx.Response | Exception) -> Settled:
        """Apply the answer to a lookup that was not fresh: store what it brought, or fall back to the copy."""
        now = time.time()
        if isinstance(answer, httpx.Response):
            if answer.status_code == 304 and lookup.document is not None:
                return Settled(self._store(replace(lookup.document, checked_at=now)))
            if answer.status_code == 200:
                try:
                    payload = answer.json()
                except ValueError:
                    return self._failed(lookup, "the answer is not JSON", now)
                return Settled(self._store(CachedDocument(lookup.url, payload, answer.headers.get("etag"), now)))
            if answer.status_code == 404:
                return Settled(self._store(CachedDocument(lookup.url, None, None, now, status=404)))
            return self._failed(lookup, f"HTTP {answer.status_code}", now)
        network = isinstance(answer, httpx.ConnectError | httpx.ReadError | httpx.TimeoutException)
        return self._failed(lookup, f"{type(answer).__name__}: {answer}" if network else type(answer).__name__, now)

    def _failed(self, lookup: Lookup, reason: str, now: float) -> Settled:
        self._failed_until[lookup.url] = now + RETRY_AFTER_FAILURE
        self._failures[lookup.url] = reason
        document = lookup.document
        if document is not None and now - document.checked_at < self.max_stale:
            age_h = (now - document.checked_at) / 3600
            return Settled(document, f"{reason}; using the copy read {age_h:.1f} h ago")
        return Settled(None, reason)

    def _store(self, document: CachedDocument) -> CachedDocument:
        self._documents[document.url] = document
        self._failed_until.pop(document.url, None)
        self._failures.pop(document.url, None)
        self._write_disk(document)
        return document

    # --- disk -------------------------------------------------------------------------------------------------

    def _path(self, url: str) -> Path | None:
        if self.directory is None:
            return None
        return self.directory / f"{hashlib.sha256(url.encode()).hexdigest()[:40]}.json"

    def _read_disk(self, url: str) -> CachedDocument | None:
        path = self._path(url)
        if path is None:
            return None
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
            if record.get("url") != url:
                return None
            return CachedDocument(
                url, record["payload"], record.get("etag"), float(record["checked_at"]), int(record.get("status", 200))
            )
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def _write_disk(self, document: CachedDocument) -> None:
        path = self._path(document.url)
        if path is None or self._disk_failed:
            return
        record = {
            "url": document.url,
            "payload": document.payload,
            "etag": document.etag,
            "checked_at": document.checked_at,
            "status": document.status,
        }
        temporary = None
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile("w", dir=path.parent, suffix=".tmp", delete=False) as handle:
                temporary = handle.name
                json.dump(record, handle, ensure_ascii=False)
            os.replace(handle.name, path)  # readers see the old file or the new one, never half of one
        except (OSError, TypeError, ValueError) as error:
            if temporary is not None:
                with contextlib.suppress(OSError):
                    os.unlink(temporary)
            self._disk_failed = True
            log.warning("The model catalog cannot be cached in %s (%s); it is kept in memory only", path.parent, error)


_CACHES: dict[tuple[str | None, float], CatalogCache] = {}
_CACHES_LOCK = threading.Lock()


def catalog_cache(directory: str | None, ttl: float = DEFAULT_TTL) -> CatalogCache:
    """The process's cache for ``directory`` (``None``: memory only)."""
    key = (directory, ttl)
    cache = _CACHES.get(key)
    if cache is None:
        with _CACHES_LOCK:
            cache = _CACHES.setdefault(key, CatalogCache(Path(directory) if directory else None, ttl))
    return cache


def default_cache_dir() -> str:
    """``$AIRFLOW_HOME/aiml-catalog`` (``~/airflow`` when ``AIRFLOW_HOME`` is not set)."""
    home = os.environ.get("AIRFLOW_HOME") or os.path.join(os.path.expanduser("~"), "airflow")
    return os.path.join(home, "aiml-catalog")


def reset_catalog_caches() -> None:
    """Forget every cache of the process (tests; a forked worker keeps its parent's, which is fine)."""
    with _CACHES_LOCK:
        _CACHES.clear()
