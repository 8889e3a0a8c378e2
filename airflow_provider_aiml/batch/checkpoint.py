"""Durable record of finished batch records, so a retried task or a rerun pays for none of them twice.

One JSON line per finished record, keyed by its index and a fingerprint of its request: a record whose prompt,
model or parameters changed since it was written is asked again. A local file gets each line as soon as the
record finishes (flushed to the OS at once, so a killed worker loses only the calls in flight; fsynced every
few seconds). Object storage (``s3://...`` and the like, through Airflow's ``ObjectStoragePath``) cannot
append, so the file is rewritten every few seconds and at the end.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import IO, Any

FLUSH_INTERVAL_S = 5.0
_LOCAL_SCHEMES = ("", "file")


class Checkpoint:
    """Appends finished records and reads them back."""

    def __init__(
        self,
        location: str | os.PathLike[str],
        *,
        flush_interval: float = FLUSH_INTERVAL_S,
        conn_id: str | None = None,
    ) -> None:
        self.location = str(location)
        self._conn_id = conn_id
        self._flush_interval = flush_interval
        scheme = self.location.split("://", 1)[0] if "://" in self.location else ""
        self._local: Path | None = None
        if scheme in _LOCAL_SCHEMES:
            self._local = Path(self.location.removeprefix("file://"))
        self._file: IO[str] | None = None
        self._lines: list[str] = []
        self._last_flush = time.monotonic()
        self._dirty = False

    def load(self) -> dict[int, dict[str, Any]]:
        """Finished records by index. A line cut off by a crash is ignored (its record is simply asked again)."""
        entries: dict[int, dict[str, Any]] = {}
        for entry in self.load_entries():
            try:
                entries[int(entry["index"])] = entry
            except (ValueError, KeyError, TypeError):
                continue
        return entries

    def load_entries(self) -> list[dict[str, Any]]:
        """Every whole line, in the order written (a line cut off by a crash is ignored)."""
        entries: list[dict[str, Any]] = []
        for line in self._read().splitlines():
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            if not isinstance(entry, dict):
                continue
            entries.append(entry)
            if self._local is None:
                self._lines.append(line)  # a remote file is rewritten whole, old lines included
        return entries

    def append(self, entry: dict[str, Any]) -> None:
        """Record one finished record."""
        line = json.dumps(entry, ensure_ascii=False, separators=(",", ":"), default=str)
        if self._local is not None:
            handle = self._open_local()
            handle.write(line + "\n")
            handle.flush()
        else:
            self._lines.append(line)
        self._dirty = True
        if time.monotonic() - self._last_flush >= self._flush_interval:
            self.flush()

    def flush(self) -> None:
        """Make what was appended durable (fsync a local file; rewrite a remote one)."""
        self._last_flush = time.monotonic()
        if not self._dirty:
            return
        if self._file is not None:
            os.fsync(self._file.fileno())
        elif self._local is None:
            remote = self._remote()
            remote.parent.mkdir(parents=True, exist_ok=True)
            remote.write_text("".join(line + "\n" for line in self._lines))
        self._dirty = False

    def close(self) -> None:
        """Flush and release the file."""
        self.flush()
        if self._file is not None:
            self._file.close()
            self._file = None

    def _open_local(self) -> IO[str]:
        if self._file is None:
            assert self._local is not None
            self._local.parent.mkdir(parents=True, exist_ok=True)
            needs_newline = self._local.exists() and self._local.stat().st_size > 0 and not self._ends_with_newline()
            self._file = self._local.open("a", encoding="utf-8")
            if needs_newline:  # a crash mid-line left a fragment: start a fresh line after it
                self._file.write("\n")
        return self._file

    def _ends_with_newline(self) -> bool:
        assert self._local is not None
        with self._local.open("rb") as handle:
            handle.seek(-1, os.SEEK_END)
            return handle.read(1) == b"\n"

    def _read(self) -> str:
        if self._local is not None:
            return self._local.read_text(encoding="utf-8") if self._local.exists() else ""
        remote = self._remote()
        return remote.read_text() if remote.exists() else ""

    def _remote(self) -> Any:
        from airflow.sdk import ObjectStoragePath

        return ObjectStoragePath(self.location, conn_id=self._conn_id)
