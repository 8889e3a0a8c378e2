"""Builds chat messages from an operator's ``prompt``, ``system_prompt`` and ``images``.

Images given as http(s) URLs or ``data:`` URIs pass through; files (a path, a ``file://`` or object-storage URL,
an ``ObjectStoragePath``) are read and sent inline as ``data:image/...;base64,...``, fitted to the model first; a
PDF becomes its pages (see :mod:`airflow_provider_aiml.media`). The file's type is taken from its first bytes, not
its name, so a text file called ``chart.png`` is refused before any call is made.

A local path that came from a template (a DAG param, an XCom, a batch record) may name any file the worker can
read, and the file would be sent to the API. With ``confine_to`` set, a file must lie inside that folder once
symlinks and ``..`` are resolved; the operators set it to the DAG folder for templated values (see
``confine_images_to_dag_folder``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any, cast

from airflow_provider_aiml.exceptions import AimlImageError, AimlParameterError
from airflow_provider_aiml.media.attachments import MediaOptions, attachment_parts
from airflow_provider_aiml.media.images import DEFAULT_MAX_IMAGE_BYTES, sniff_image_type
from airflow_provider_aiml.storage import is_object_storage_path

MAX_INLINE_IMAGE_BYTES = DEFAULT_MAX_IMAGE_BYTES

ImageSource = str | os.PathLike[str] | Mapping[str, Any]
"""A URL, a path, a storage URL, an ``ObjectStoragePath`` or ``{"url"|"path": ..., "detail": ...}``."""

__all__ = ["MAX_INLINE_IMAGE_BYTES", "ImageSource", "build_messages", "image_part", "image_url", "sniff_image_type"]


def build_messages(
    *,
    prompt: str | None,
    messages: Sequence[Mapping[str, Any]] | None,
    system_prompt: str | None = None,
    images: ImageSource | Sequence[ImageSource] | None = None,
    base_dirs: Sequence[str | os.PathLike[str]] = (),
    confine_to: str | os.PathLike[str] | None = None,
    media: MediaOptions | None = None,
) -> list[dict[str, Any]]:
    """Return the message list for one call from exactly one of ``prompt`` or ``messages``.

    :param base_dirs: folders to look in for a relative image path (the DAG's folder first, then the cwd).
    :param confine_to: when set, local image files must lie inside this folder.
    :param media: how files are read and fitted (storage connection, image limits, PDF pages); when given, its
        folders and confinement are used instead of ``base_dirs`` and ``confine_to``.
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
    image_list = as_image_list(images)
    if image_list:
        parts: list[dict[str, Any]] = [{"type": "text", "text": prompt}]
        options = media if media is not None else _options(base_dirs, confine_to)
        for image in image_list:
            parts.extend(attachment_parts(image, options))
        result.append({"role": "user", "content": parts})
    else:
        result.append({"role": "user", "content": prompt})
    return result


def as_image_list(images: ImageSource | Sequence[ImageSource] | None) -> list[ImageSource]:
    """``images`` as a list: one source, a list of them, or none."""
    if images is None:
        return []
    if isinstance(images, str | os.PathLike | Mapping) or is_object_storage_path(images):
        return [cast("ImageSource", images)]
    if isinstance(images, Sequence):
        return list(images)
    raise AimlImageError(f"'images' must be a URL, a file path, or a list of them, got {type(images).__name__}")


def image_part(
    image: ImageSource,
    base_dirs: Sequence[str | os.PathLike[str]] = (),
    confine_to: str | os.PathLike[str] | None = None,
) -> dict[str, Any]:
    """One ``image_url`` message part for an image (a PDF gives several parts: see ``attachment_parts``)."""
    parts = attachment_parts(image, _options(base_dirs, confine_to))
    if len(parts) != 1:
        raise AimlImageError(f"{image!r} is a document, not one image; pass it in 'images' to send its pages")
    return parts[0]


def image_url(
    source: str | os.PathLike[str],
    base_dirs: Sequence[str | os.PathLike[str]] = (),
    confine_to: str | os.PathLike[str] | None = None,
) -> str:
    """Pass a URL through; read an image file (a path, a ``file://`` or storage URL) into a ``data:`` URI."""
    url: str = image_part(source, base_dirs, confine_to)["image_url"]["url"]
    return url


def _options(base_dirs: Sequence[str | os.PathLike[str]], confine_to: str | os.PathLike[str] | None) -> MediaOptions:
    return MediaOptions(
        base_dirs=tuple(os.fspath(base) for base in base_dirs),
        confine_to=None if confine_to is None else os.fspath(confine_to),
    )


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
