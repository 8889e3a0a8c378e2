"""Builds chat messages from an operator's ``prompt``, ``system_prompt`` and ``images``.

Images given as http(s) URLs or ``data:`` URIs pass through; local files are read and sent inline as
``data:image/...;base64,...``. The file's type is taken from its first bytes, not its name, so a text file
called ``chart.png`` is refused before any call is made.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from airflow_provider_aiml.exceptions import AimlImageError, AimlParameterError

MAX_INLINE_IMAGE_BYTES = 20 * 1024 * 1024
_REMOTE_PREFIXES = ("http://", "https://", "data:")
_DETAILS = ("low", "high", "auto")

ImageSource = str | os.PathLike[str] | Mapping[str, Any]


def build_messages(
    *,
    prompt: str | None,
    messages: Sequence[Mapping[str, Any]] | None,
    system_prompt: str | None = None,
    images: ImageSource | Sequence[ImageSource] | None = None,
    base_dirs: Sequence[str | os.PathLike[str]] = (),
) -> list[dict[str, Any]]:
    """Return the message list for one call from exactly one of ``prompt`` or ``messages``.

    :param base_dirs: folders to look in for a relative image path (the DAG's folder first, then the cwd).
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
        parts.extend(image_part(image, base_dirs) for image in image_list)
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


def image_part(image: ImageSource, base_dirs: Sequence[str | os.PathLike[str]] = ()) -> dict[str, Any]:
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
    url = image_url(source, base_dirs)
    payload: dict[str, Any] = {"url": url}
    if detail is not None:
        payload["detail"] = detail
    return {"type": "image_url", "image_url": payload}


def image_url(source: str | os.PathLike[str], base_dirs: Sequence[str | os.PathLike[str]] = ()) -> str:
    """Pass a URL through; read a local image file into a ``data:`` URI."""
    text = os.fspath(source).strip()
    if text.startswith(_REMOTE_PREFIXES):
        if text.startswith("data:") and not text.startswith("data:image/"):
            raise AimlImageError(f"a data URI image must start with 'data:image/', got {text[:30]!r}...")
        return text
    path = _find(Path(text).expanduser(), base_dirs)
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


def _find(path: Path, base_dirs: Sequence[str | os.PathLike[str]]) -> Path:
    candidates = [path] if path.is_absolute() else [Path(base) / path for base in base_dirs] + [path]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    looked = ", ".join(str(c) for c in candidates)
    raise AimlImageError(f"image file {str(path)!r} not found (looked at: {looked})")


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
