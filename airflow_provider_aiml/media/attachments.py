"""Turns what a task names in ``images`` into message parts: URLs pass through, files are read and fitted.

A source is an http(s) URL or ``data:image`` URI (sent as it is), a local path or ``file://`` URL, an
``ObjectStoragePath`` or a storage URL (``s3://…``, ``gs://…``; read through Airflow's object storage). A file's
type comes from its bytes: an image is fitted (:mod:`~airflow_provider_aiml.media.images`), a PDF becomes its
pages (:mod:`~airflow_provider_aiml.media.pdf`), anything else is refused naming the file.

Local paths that came from a template may be confined to a folder (the DAG folder): see ``confine_to``.
"""

from __future__ import annotations

import base64
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from airflow_provider_aiml.exceptions import AimlFileError, AimlImageError
from airflow_provider_aiml.media.images import ImageLimits, fit_image, sniff_image_type
from airflow_provider_aiml.media.pdf import PdfOptions, is_pdf, opened_pdf
from airflow_provider_aiml.storage import StoredFile, is_object_storage_path, storage_scheme, stored_file

MAX_FILE_BYTES = 256 * 1024 * 1024
"""A file over this is not read at all (256 MiB: a scanned PDF of a few hundred pages fits)."""
_WEB_PREFIXES = ("http://", "https://", "data:")
_FILE_URL = re.compile(r"^file://(?P<host>[^/]*)(?P<path>/.*)$", re.IGNORECASE)
_DETAILS = ("low", "high", "auto")


@dataclass(frozen=True)
class MediaOptions:
    """Where files may come from and how they are made to fit."""

    base_dirs: tuple[str, ...] = ()
    """Folders a relative local path is looked up in (the DAG folder first), before the working directory."""
    confine_to: str | None = None
    """When set, local files must lie inside this folder once symlinks and ``..`` are resolved."""
    storage_conn_id: str | None = None
    """The Airflow connection object-storage URLs are read with (unless the URL names one itself)."""
    image_limits: ImageLimits = field(default_factory=ImageLimits)
    pdf: PdfOptions = field(default_factory=PdfOptions)


def attachment_parts(source: Any, options: MediaOptions = MediaOptions()) -> list[dict[str, Any]]:
    """The message parts of one source: one ``image_url`` part for an image, text and image parts for a PDF.

    A mapping may carry ``url`` (or ``path``) and ``detail`` (``low``/``high``/``auto``, applied to every image).
    """
    detail = None
    if isinstance(source, Mapping):
        detail = source.get("detail")
        source = source.get("url") or source.get("path")
        if detail is not None and detail not in _DETAILS:
            raise AimlImageError(f"image detail must be one of {_DETAILS}, got {detail!r}")
    if isinstance(source, StoredFile):
        parts = file_parts(source, options)
    elif is_object_storage_path(source):
        parts = file_parts(locate(source, options), options)
    elif not isinstance(source, str | os.PathLike) or not str(source).strip():
        raise AimlImageError(f"an image must be a URL, a file path or an ObjectStoragePath, got {source!r}")
    elif isinstance(source, str) and source.strip().startswith(_WEB_PREFIXES):
        parts = [_image_part(_web_url(source.strip()))]
    else:
        parts = file_parts(locate(source, options), options)
    if detail is not None:
        for part in parts:
            if part["type"] == "image_url":
                part["image_url"]["detail"] = detail
    return parts


def locate(source: Any, options: MediaOptions = MediaOptions()) -> StoredFile:
    """The file a source names: object storage as it is, a local file found (and confined) on this machine."""
    if is_object_storage_path(source):
        if source.protocol not in ("file", "local"):
            return stored_file(source, conn_id=options.storage_conn_id)
        source = str(source.path)  # a local file, confined like a path
    text = os.fspath(source).strip()
    if storage_scheme(text) not in (None, "file"):
        return stored_file(text, conn_id=options.storage_conn_id)
    confine = None if options.confine_to is None else Path(options.confine_to)
    found = _find(_local_path(text), options.base_dirs, confine, text)
    return StoredFile(found, str(found))


def file_parts(file: StoredFile, options: MediaOptions = MediaOptions()) -> list[dict[str, Any]]:
    """Read a file and turn it into parts; its type comes from its bytes."""
    return data_parts(read_file(file), file.url, options)


def read_file(file: StoredFile) -> bytes:
    """A file's bytes, refused over the largest file an attachment may be (``MAX_FILE_BYTES``)."""
    return file.read_bytes(MAX_FILE_BYTES)


def data_parts(data: bytes, name: str, options: MediaOptions = MediaOptions()) -> list[dict[str, Any]]:
    """The parts of a file already read (``name`` is how errors and logs call it): a PDF's pages, or the image
    fitted to the limits; any other type is an :class:`AimlFileError`."""
    if is_pdf(data):
        with opened_pdf(data, name, options.pdf) as pdf:
            return list(pdf.parts(options.image_limits))
    if sniff_image_type(data) is None:
        raise AimlFileError(
            f"file {name!r} is not a JPEG, PNG, GIF or WEBP image (the formats the API accepts) nor a PDF"
        )
    fitted = fit_image(data, name, options.image_limits)
    return [_image_part(_data_url(fitted.mime, fitted.data))]


def _image_part(url: str) -> dict[str, Any]:
    return {"type": "image_url", "image_url": {"url": url}}


def _data_url(mime: str, data: bytes) -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def _web_url(text: str) -> str:
    if text.startswith("data:") and not text.startswith("data:image/"):
        raise AimlImageError(f"a data URI image must start with 'data:image/', got {text[:30]!r}...")
    return text


def _local_path(text: str) -> Path:
    """The path a local source names: a ``file://`` URL (no host, or ``localhost``) or a plain path."""
    file_url = _FILE_URL.match(text)
    if file_url:
        if file_url["host"].lower() not in ("", "localhost"):
            raise AimlImageError(
                f"image {text!r}: a file:// URL must name a file on this machine (file:///path or "
                f"file://localhost/path), not on host {file_url['host']!r}"
            )
        return Path(unquote(file_url["path"]))
    if text.lower().startswith("file:"):
        raise AimlImageError(f"image {text!r}: write a file URL as file:///absolute/path")
    return Path(text).expanduser()


def _find(path: Path, base_dirs: Sequence[str | os.PathLike[str]], confine_to: Path | None, named: str) -> Path:
    """The file a local path names. When confined, a candidate outside the folder is refused before it is even
    looked at, so a templated value cannot probe which files exist elsewhere."""
    candidates = [path] if path.is_absolute() else [Path(base) / path for base in base_dirs] + [path]
    root = confine_to.resolve() if confine_to is not None else None
    allowed = [c for c in candidates if root is None or c.resolve().is_relative_to(root)]
    for candidate in allowed:
        if candidate.is_file():
            return candidate
    if root is not None and len(allowed) < len(candidates):
        raise AimlImageError(
            f"image {named!r} is not a file inside the DAG folder {str(root)!r}: local images named by a templated "
            "value (a param, an XCom, a record) must be inside it. Move the file there, or set "
            "confine_images_to_dag_folder=False on the task or its connection if every value is trusted."
        )
    looked = ", ".join(str(c) for c in candidates)
    raise AimlImageError(f"image file {str(path)!r} not found (looked at: {looked})")
