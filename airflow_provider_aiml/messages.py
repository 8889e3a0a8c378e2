"""Builds chat messages from an operator's ``prompt``, ``system_prompt`` and ``images``.

Images given as http(s) URLs or ``data:`` URIs pass through; local files (a path, or a ``file://`` URL) are read
and sent inline as ``data:image/...;base64,...``. The file's type is taken from its first bytes, not its name, so
a text file called ``chart.png`` is refused before any call is made.

A local path that came from a template (a DAG param, an XCom, a batch record) may name any file the worker can
read, and the file would be sent to the API. With ``confine_to`` set, a file must lie inside that folder once
symlinks and ``..`` are resolved; the operators set it to the DAG folder for templated values (see
``confine_images_to_dag_folder``).
"""

from __future__ import annotations

import base64
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from airflow_provider_aiml.exceptions import AimlImageError, AimlParameterError

MAX_INLINE_IMAGE_BYTES = 20 * 1024 * 1024
_REMOTE_PREFIXES = ("http://", "https://", "data:")
_FILE_URL = re.compile(r"^file://(?P<host>[^/]*)(?P<path>/.*)$", re.IGNORECASE)
_OTHER_SCHEME = re.compile(r"^(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]+)://")
_DETAILS = ("low", "high", "auto")

ImageSource = str | os.PathLike[str] | Mapping[str, Any]


def build_messages(
    *,
    prompt: str | None,
    messages: Sequence[Mapping[str, Any]] | None,
    system_prompt: str | None = None,
    images: ImageSource | Sequence[ImageSource] | None = None,
    base_dirs: Sequence[str | os.PathLike[str]] = (),
    confine_to: str | os.PathLike[str] | None = None,
) -> list[dict[str, Any]]:
    """Return the message list for one call from exactly one of ``prompt`` or ``messages``.

    :param base_dirs: folders to look in for a relative image path (the DAG's folder first, then the cwd).
    :param confine_to: when set, local image files must lie inside this folder.
    """
    if (prompt is None) == (messages is None):
        raise AimlParameterError(
            "Give exactly one of 'prompt' (a single user message) or 'messages' (a full message list), "
            f"got {'both' if prompt is not None else 'neither'}."
        )
    if messages is not None:
        if system_prompt is not None or images:
            raise AimlParameterError(
                "'system_prompt' and 'images' only apply to 'prompt'; with 'messages', put them in the list."
            )
        if isinstance(messages, str | bytes) or not isinstance(messages, Sequence):
            raise AimlParameterError(f"'messages' must be a list of message objects, got {type(messages).__name__}")
        return [dict(message) if isinstance(message, Mapping) else message for message in messages]
    if not isinstance(prompt, str):
        raise AimlParameterError(f"'prompt' must be a string, got {type(prompt).__name__}")
    if not prompt.strip():
        raise AimlParameterError("'prompt' is empty after rendering")

    result: list[dict[str, Any]] = []
    if system_prompt is not None:
        if not isinstance(system_prompt, str):
            raise AimlParameterError(f"'system_prompt' must be a string, got {type(system_prompt).__name__}")
        result.append({"role": "system", "content": system_prompt})
    image_list = _as_list(images)
    if image_list:
        parts: list[dict[str, Any]] = [{"type": "text", "text": prompt}]
        parts.extend(image_part(image, base_dirs, confine_to) for image in image_list)
        result.append({"role": "user", "content": parts})
    else:
        result.append({"role": "user", "content": prompt})
    return result


def _as_list(images: ImageSource | Sequence[ImageSource] | None) -> list[ImageSource]:
    if images is None:
        return []
    if isinstance(images, str | os.PathLike | Mapping):
        return [images]
    if isinstance(images, Sequence):
        return list(images)
    raise AimlImageError(f"'images' must be a URL, a file path, or a list of them, got {type(images).__name__}")


def image_part(
    image: ImageSource,
    base_dirs: Sequence[str | os.PathLike[str]] = (),
    confine_to: str | os.PathLike[str] | None = None,
) -> dict[str, Any]:
    """One ``image_url`` message part. A mapping may carry ``url`` (or ``path``) and ``detail``."""
    detail = None
    if isinstance(image, Mapping):
        detail = image.get("detail")
        source = image.get("url") or image.get("path")
        if detail is not None and detail not in _DETAILS:
            raise AimlImageError(f"image detail must be one of {_DETAILS}, got {detail!r}")
    else:
        source = image
    if not isinstance(source, str | os.PathLike) or not str(source).strip():
        raise AimlImageError(f"an image must be a URL or a file path, got {source!r}")
    url = image_url(source, base_dirs, confine_to)
    payload: dict[str, Any] = {"url": url}
    if detail is not None:
        payload["detail"] = detail
    return {"type": "image_url", "image_url": payload}


def image_url(
    source: str | os.PathLike[str],
    base_dirs: Sequence[str | os.PathLike[str]] = (),
    confine_to: str | os.PathLike[str] | None = None,
) -> str:
    """Pass a URL through; read a local image file (a path or a ``file://`` URL) into a ``data:`` URI."""
    text = os.fspath(source).strip()
    if text.startswith(_REMOTE_PREFIXES):
        if text.startswith("data:") and not text.startswith("data:image/"):
            raise AimlImageError(f"a data URI image must start with 'data:image/', got {text[:30]!r}...")
        return text
    path = _find(_local_path(text), base_dirs, None if confine_to is None else Path(confine_to), text)
    size = path.stat().st_size
    if size > MAX_INLINE_IMAGE_BYTES:
        raise AimlImageError(
            f"image file {str(path)!r} is {size / 1e6:.1f} MB; files over {MAX_INLINE_IMAGE_BYTES // 2**20} MiB "
            "are not sent inline. Host it and pass its URL instead."
        )
    data = path.read_bytes()
    mime = sniff_image_type(data)
    if mime is None:
        raise AimlImageError(f"file {str(path)!r} is not a JPEG, PNG, GIF or WEBP image (the formats the API accepts)")
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def _local_path(text: str) -> Path:
    """The path an image names: a ``file://`` URL (no host, or ``localhost``) or a plain path."""
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
    other = _OTHER_SCHEME.match(text)
    if other:
        raise AimlImageError(
            f"image {text!r}: {other['scheme']}:// URLs are not read; give an http(s) URL, a data:image URI, a "
            "file:// URL or a local path"
        )
    return Path(text).expanduser()


def _find(path: Path, base_dirs: Sequence[str | os.PathLike[str]], confine_to: Path | None, named: str) -> Path:
    """The file a path names. When confined, a candidate outside the folder is refused before it is even looked
    at, so a templated value cannot probe which files exist elsewhere."""
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


def is_literal(value: Any) -> bool:
    """Whether ``value`` was written as is in the DAG file: no Jinja in it, and no XCom or other lazy value."""
    if value is None or isinstance(value, os.PathLike):
        return True
    if isinstance(value, str):
        return "{{" not in value and "{%" not in value
    if isinstance(value, Mapping):
        return all(is_literal(item) for item in value.values())
    if isinstance(value, list | tuple):
        return all(is_literal(item) for item in value)
    return False


def sniff_image_type(data: bytes) -> str | None:
    """The image's MIME type from its magic bytes, for the four formats the API documents."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data.startswith((b"GIF87a", b"GIF89a")):
        return "image/gif"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None
