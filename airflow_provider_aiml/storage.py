"""Files the operators read and write: local paths and Airflow object storage (``s3://``, ``gs://``, ``file://``…).

Object storage goes through Airflow's ``ObjectStoragePath``, so the credentials come from an Airflow connection
(the ``storage_conn_id`` argument, the AI/ML connection's ``storage_conn_id`` extra, or a ``scheme://conn_id@``
prefix in the URL) and every filesystem Airflow knows works. Reads are streamed in chunks and bounded: a file
over the limit is refused without being read whole. Every failure is an :class:`AimlFileError` naming the file.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, cast

from airflow_provider_aiml.exceptions import AimlFileError, AimlStorageError

READ_CHUNK_BYTES = 1 << 20
DEFAULT_MAX_FILES = 10_000
"""Files one task takes from a glob or a list unless ``max_files`` says otherwise."""
_SCHEME = re.compile(r"^(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*)://")
_NOT_STORAGE = ("http", "https", "data")
_GLOB_CHARS = frozenset("*?[")
_STAT_THREADS = 16
_PROVIDER_HINTS = {
    "s3": "apache-airflow-providers-amazon[s3fs]",
    "gs": "apache-airflow-providers-google",
    "gcs": "apache-airflow-providers-google",
    "abfs": "apache-airflow-providers-microsoft-azure",
    "az": "apache-airflow-providers-microsoft-azure",
}


@dataclass(frozen=True)
class StoredFile:
    """One input file: where it is, and what the listing said of it (size, version) when it was listed."""

    path: Any
    """A ``pathlib.Path`` for a local file, else an ``ObjectStoragePath``."""
    url: str
    """How logs, results and errors name the file (no credentials: the connection id at most)."""
    size: int | None = None
    version: str | None = None
    """The ETag or modification time, so a changed file is not taken from a checkpoint."""

    @property
    def name(self) -> str:
        return PurePosixPath(self.url).name

    @property
    def stem(self) -> str:
        return PurePosixPath(self.url).stem

    @property
    def suffix(self) -> str:
        return PurePosixPath(self.url).suffix

    def __str__(self) -> str:
        return self.url

    def as_record(self) -> dict[str, Any]:
        """What a prompt template sees as ``record``: the file's URL and the parts of its name."""
        return {"path": self.url, "url": self.url, "name": self.name, "stem": self.stem, "suffix": self.suffix}

    def read_bytes(self, limit: int) -> bytes:
        """The file's bytes; over ``limit`` bytes it is refused without being read whole: before reading when the
        listing gave its size, else after the chunk (1 MiB) that passes the limit."""
        size = self.size
        if size is not None and size > limit:
            raise AimlFileError(_too_large(self.url, size, limit))
        try:
            if size is not None and not isinstance(self.path, Path):
                # Listed, so its size is known: one GET (opening the file would first ask for its metadata again).
                data = self.path.fs.cat_file(self.path.path)
                if len(data) > limit:
                    raise AimlFileError(_too_large(self.url, None, limit))
                return bytes(data)
            with _open_for_reading(self.path) as handle:
                size = size if size is not None else _size_of_open(handle)
                if size is not None and size > limit:
                    raise AimlFileError(_too_large(self.url, size, limit))
                if size is not None:  # known and within the limit: one read, one buffer of the file's size
                    data = handle.read(size + 1)
                    if len(data) > limit:
                        raise AimlFileError(_too_large(self.url, None, limit))
                    return data
                chunks, total = [], 0
                while chunk := handle.read(READ_CHUNK_BYTES):
                    chunks.append(chunk)
                    total += len(chunk)
                    if total > limit:
                        raise AimlFileError(_too_large(self.url, None, limit))
        except (AimlFileError, AimlStorageError):
            raise
        except Exception as error:
            raise file_error(self.url, error) from None
        return b"".join(chunks)

    def fingerprint(self) -> str:
        """The file's identity for a checkpoint: its URL, size and version."""
        return f"{self.url}|{self.size}|{self.version}"


def is_file_reference(value: Any) -> bool:
    """Whether ``value`` names a stored file: an ``ObjectStoragePath``, a ``pathlib`` path, or a URL of a storage
    scheme (``s3://``, ``gs://``, ``file://``, …; not http(s) or ``data:``)."""
    if isinstance(value, os.PathLike | StoredFile) or is_object_storage_path(value):
        return True
    if not isinstance(value, str):
        return False
    match = _SCHEME.match(value.strip())
    return match is not None and match["scheme"].lower() not in _NOT_STORAGE


def storage_scheme(text: str) -> str | None:
    """The storage scheme a URL names (``"s3"``), or ``None`` for a plain path, a web URL or a data URI."""
    match = _SCHEME.match(text.strip())
    if match is None or match["scheme"].lower() in _NOT_STORAGE:
        return None
    return match["scheme"].lower()


def stored_file(source: Any, *, conn_id: str | None = None) -> StoredFile:
    """The file a path, URL or ``ObjectStoragePath`` names (not looked at yet)."""
    if isinstance(source, StoredFile):
        return source
    if is_object_storage_path(source):
        return StoredFile(source, _url_of(source))
    if isinstance(source, os.PathLike):
        return StoredFile(Path(source), str(source))
    if not isinstance(source, str) or not source.strip():
        raise AimlFileError(f"a file must be a path, a storage URL or an ObjectStoragePath, got {source!r}")
    text = source.strip()
    scheme = storage_scheme(text)
    if scheme is None:
        return StoredFile(Path(text).expanduser(), text)
    path = _object_storage_path(text, conn_id)
    return StoredFile(path, _url_of(path))


def expand_inputs(
    inputs: str | os.PathLike[str] | Sequence[Any], *, conn_id: str | None = None, max_files: int = DEFAULT_MAX_FILES
) -> list[StoredFile]:
    """The files a glob (``"s3://bucket/invoices/2026-12-*/*.pdf"``) or a list of paths names, sorted by URL.

    A glob is listed once (sizes and versions come with the listing); the files of a list are looked up
    concurrently, so a missing or forbidden one is reported before any model call. More than ``max_files``
    files is an error: a wrong glob should not start a million billed calls.
    """
    if is_object_storage_path(inputs) or isinstance(inputs, str | os.PathLike):
        text = _url_of(inputs) if is_object_storage_path(inputs) else os.fspath(cast("str", inputs))
        if _GLOB_CHARS.intersection(text):
            return _glob(inputs, text, conn_id, max_files)
        items: Sequence[Any] = [inputs]
    else:
        items = inputs
    files = [stored_file(item, conn_id=conn_id) for item in items]
    if len(files) > max_files:
        raise AimlFileError(f"{len(files):,} files given, over max_files={max_files:,}; raise max_files to take them")
    with ThreadPoolExecutor(max_workers=min(_STAT_THREADS, max(len(files), 1))) as pool:
        described = list(pool.map(_described, files))
    return sorted(described, key=lambda file: file.url)


def confine_local_files(files: Sequence[StoredFile], folder: str | os.PathLike[str] | None, *, setting: str) -> None:
    """Refuse local files (plain paths and ``file://``) outside ``folder`` once symlinks and ``..`` are resolved;
    ``None`` allows any. Object storage is bounded by its connection's permissions instead. ``setting`` says, for the
    error message, which argument lifts the confinement."""
    if folder is None:
        return
    root = Path(folder).resolve()
    for file in files:
        local = _local_path_of(file.path)
        if local is not None and not local.resolve().is_relative_to(root):
            raise AimlFileError(
                f"input file {file.url!r} is not inside the DAG folder {str(root)!r}: local files named by a "
                f"templated value must be inside it. Set {setting} if every value is trusted."
            )


def _local_path_of(path: Any) -> Path | None:
    if isinstance(path, Path):
        return path
    protocol = path.protocol if isinstance(path.protocol, str) else path.protocol[0]
    return Path(str(path.path)) if protocol in ("file", "local") else None


def write_jsonl(
    destination: str | os.PathLike[str], rows: Iterable[dict[str, Any]], *, conn_id: str | None = None
) -> str:
    """Write ``rows`` as JSON Lines to a local path or a storage URL, replacing the file; returns its URL.

    A local file is written next to its final name and renamed, so a reader never sees half a file; object
    stores make an object visible only once its upload completed.
    """
    target = stored_file(destination, conn_id=conn_id)
    try:
        if isinstance(target.path, Path):
            target.path.parent.mkdir(parents=True, exist_ok=True)
            partial = target.path.with_name(target.path.name + ".partial")
            try:
                with partial.open("w", encoding="utf-8") as handle:
                    for row in rows:
                        handle.write(json_line(row))
                    handle.flush()
                    os.fsync(handle.fileno())
                partial.replace(target.path)
            finally:
                partial.unlink(missing_ok=True)
        else:
            target.path.parent.mkdir(parents=True, exist_ok=True)
            with target.path.open("w") as handle:
                for row in rows:
                    handle.write(json_line(row))
    except Exception as error:
        raise file_error(target.url, error, writing=True) from None
    return target.url


def json_line(row: dict[str, Any]) -> str:
    """One JSON Lines line."""
    return json.dumps(row, ensure_ascii=False, separators=(",", ":"), default=str) + "\n"


def file_error(url: str, error: BaseException, *, writing: bool = False) -> AimlFileError | AimlStorageError:
    """A clear error for a file that could not be read or written: missing, forbidden or a folder is the
    input's fault (:class:`AimlFileError`); anything else may pass (:class:`AimlStorageError`, retried)."""
    if isinstance(error, FileNotFoundError):
        return AimlFileError(f"file {url!r} not found")
    if isinstance(error, PermissionError):
        action = "write" if writing else "read"
        return AimlFileError(
            f"no permission to {action} {url!r} (the storage refused it: 403 Forbidden or a file mode); check the "
            "storage connection's credentials and policy"
        )
    if isinstance(error, IsADirectoryError):
        return AimlFileError(f"{url!r} is a folder, not a file")
    if isinstance(error, ValueError | ImportError) and "filesystem" in str(error).lower():
        scheme = storage_scheme(url) or "?"
        return AimlFileError(
            f"cannot read {url!r}: Airflow has no filesystem for {scheme}:// ({error}). Install the provider that "
            f"brings it (e.g. {_PROVIDER_HINTS.get(scheme, 'the one for this storage')})"
        )
    action = "write" if writing else "read"
    return AimlStorageError(f"could not {action} {url!r}: {type(error).__name__}: {error}")


def _too_large(url: str, size: int | None, limit: int) -> str:
    stated = f"{size / 1e6:.1f} MB" if size is not None else f"over {limit / 1e6:.1f} MB"
    return f"file {url!r} is {stated}; files over {limit / 1e6:.1f} MB are not read"


def _described(file: StoredFile) -> StoredFile:
    """The file with its size and version, from one metadata lookup (a HEAD request on object storage)."""
    try:
        if isinstance(file.path, Path):
            stat = file.path.stat()
            if not file.path.is_file():
                raise IsADirectoryError(str(file.path))
            return StoredFile(file.path, file.url, stat.st_size, str(stat.st_mtime_ns))
        info = file.path.fs.info(file.path.path)
    except Exception as error:
        raise file_error(file.url, error) from None
    if info.get("type") == "directory":
        raise file_error(file.url, IsADirectoryError(file.url))
    return StoredFile(file.path, file.url, _size_of(info), _version_of(info))


def _glob(source: Any, text: str, conn_id: str | None, max_files: int) -> list[StoredFile]:
    scheme = storage_scheme(text)
    if scheme is None and not is_object_storage_path(source):
        return _local_glob(text, max_files)
    root = source if is_object_storage_path(source) else _object_storage_path(text, conn_id)
    try:
        found = root.fs.glob(root.path, detail=True)
    except Exception as error:
        raise file_error(text, error) from None
    files = {key: info for key, info in found.items() if info.get("type") != "directory"}
    if len(files) > max_files:
        raise AimlFileError(
            f"the glob {text!r} matches {len(files):,} files, over max_files={max_files:,}; narrow the glob or "
            "raise max_files"
        )
    result = []
    for key, info in files.items():
        path = _sibling(root, key)
        result.append(StoredFile(path, _url_of(path), _size_of(info), _version_of(info)))
    return sorted(result, key=lambda file: file.url)


def _local_glob(pattern: str, max_files: int) -> list[StoredFile]:
    import glob

    names = []
    for name in glob.iglob(os.path.expanduser(pattern), recursive=True):
        if os.path.isfile(name):
            names.append(name)
            if len(names) > max_files:
                raise AimlFileError(
                    f"the glob {pattern!r} matches over max_files={max_files:,} files; narrow it or raise max_files"
                )
    return sorted((_described(StoredFile(Path(name), name)) for name in names), key=lambda file: file.url)


def _sibling(root: Any, key: str) -> Any:
    """The ``ObjectStoragePath`` of a listed key, on the same filesystem and connection as the glob's root."""
    from airflow.sdk import ObjectStoragePath

    return ObjectStoragePath(f"{root.protocol}://{key}", conn_id=root.conn_id)


def _object_storage_path(url: str, conn_id: str | None) -> Any:
    from airflow.sdk import ObjectStoragePath

    try:
        return ObjectStoragePath(url, conn_id=conn_id) if conn_id else ObjectStoragePath(url)
    except Exception as error:
        raise AimlFileError(
            f"cannot open {url!r} through Airflow's object storage: {type(error).__name__}: {error}"
        ) from None


def is_object_storage_path(value: Any) -> bool:
    """Whether ``value`` is an Airflow ``ObjectStoragePath`` (checked without importing Airflow's io module)."""
    cls = type(value)
    return any(base.__name__ == "ObjectStoragePath" for base in cls.__mro__) and hasattr(value, "fs")


def _url_of(path: Any) -> str:
    """``s3://bucket/key`` for an ``ObjectStoragePath``: the URL without a ``conn_id@`` part."""
    protocol = path.protocol if isinstance(path.protocol, str) else path.protocol[0]
    key = str(path.path).lstrip("/") if protocol != "file" else str(path.path)
    return f"{protocol}://{key}" if protocol != "file" else f"file://{key}"


def _open_for_reading(path: Any) -> Any:
    if isinstance(path, Path):
        return path.open("rb")
    try:  # chunked reads without a read-ahead cache the size of a whole block (s3fs's is 50 MiB)
        return path.open("rb", block_size=READ_CHUNK_BYTES, cache_type="none")
    except TypeError:
        return path.open("rb")


def _size_of_open(handle: Any) -> int | None:
    """The size an open file knows (object-storage files learn it when opened; local ones from ``fstat``)."""
    size = getattr(handle, "size", None)
    if isinstance(size, int):
        return size
    try:
        return os.fstat(handle.fileno()).st_size
    except (AttributeError, OSError, ValueError):
        return None


def _size_of(info: dict[str, Any]) -> int | None:
    size = info.get("size", info.get("Size"))
    return int(size) if isinstance(size, int | float) else None


def _version_of(info: dict[str, Any]) -> str | None:
    for key in ("ETag", "etag", "md5Hash", "generation", "mtime", "LastModified", "last_modified", "created"):
        if info.get(key) is not None:
            return str(info[key])
    return None
