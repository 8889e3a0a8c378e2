"""Makes an image fit what the model takes before it is sent: upright, within a pixel bound, small.

The model gives an image a fixed number of visual tokens at most and scales anything larger down on its side,
so pixels beyond that bound only cost upload time and request size. Images are decoded only when something
has to change: an image that is upright, within the bound and within the size cap is sent as it is, byte for
byte. Originals are never modified.
"""

from __future__ import annotations

import io
import logging
from dataclasses import dataclass
from typing import Any

from airflow_provider_aiml.exceptions import AimlFileError

DEFAULT_MAX_IMAGE_PIXELS = 2560 * 32 * 32
"""2,621,440 pixels (about 1620x1620). Qwen3-VL gives one visual token to each 32x32-pixel block (16-pixel
patches merged 2x2), and Alibaba Cloud Model Studio, which serves the Qwen VL models, caps an image at 2,560
visual tokens by default (16,384 with its high-resolution switch); larger images are scaled down by the service,
so sending more pixels than this buys nothing."""

DEFAULT_MAX_IMAGE_BYTES = 20 * 1024 * 1024
"""The inline cap after fitting (20 MiB, 27 MiB once base64-encoded): far above what a fitted image needs."""

JPEG_QUALITY = 85
_EXIF_ORIENTATION = 0x0112
_MIME_BY_FORMAT = {"JPEG": "image/jpeg", "PNG": "image/png", "GIF": "image/gif", "WEBP": "image/webp"}

log = logging.getLogger("airflow_provider_aiml.media")


@dataclass(frozen=True)
class ImageLimits:
    """What an image may be once fitted."""

    max_pixels: int = DEFAULT_MAX_IMAGE_PIXELS
    max_bytes: int = DEFAULT_MAX_IMAGE_BYTES


@dataclass(frozen=True)
class FittedImage:
    """An image ready to be sent inline."""

    mime: str
    data: bytes
    size: tuple[int, int]
    changed: bool
    """Whether it was re-encoded (rotated, scaled down or made smaller)."""


def sniff_image_type(data: bytes | bytearray | memoryview) -> str | None:
    """The image's MIME type from its magic bytes, for the four formats the API documents."""
    head = bytes(data[:12])
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head.startswith((b"GIF87a", b"GIF89a")):
        return "image/gif"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    return None


def fit_image(data: bytes, name: str, limits: ImageLimits = ImageLimits()) -> FittedImage:
    """``data`` as it is when it already fits; else upright (EXIF orientation), scaled to ``limits.max_pixels``
    and re-encoded. Fails naming the file when it is not an image or is still over ``limits.max_bytes``."""
    from PIL import Image, UnidentifiedImageError

    mime = sniff_image_type(data)
    if mime is None:
        raise AimlFileError(f"file {name!r} is not a JPEG, PNG, GIF or WEBP image (the formats the API accepts)")
    try:
        image = Image.open(io.BytesIO(data))
        orientation = _orientation(image)
        width, height = image.size
        animated = getattr(image, "n_frames", 1) > 1
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError) as error:
        raise AimlFileError(f"image {name!r} cannot be decoded: {error}") from None
    upright = orientation == 1 or animated
    if (upright and width * height <= limits.max_pixels and len(data) <= limits.max_bytes) or animated:
        _check_bytes(name, len(data), limits)
        return FittedImage(mime, data, (width, height), changed=False)
    try:
        fitted, out_mime, out_size = _reencode(image, limits.max_pixels, upright=upright)
    except (OSError, ValueError, Image.DecompressionBombError) as error:
        raise AimlFileError(f"image {name!r} cannot be decoded: {error}") from None
    if upright and width * height <= limits.max_pixels and len(fitted) >= len(data):
        fitted, out_mime, out_size = data, mime, (width, height)  # re-encoding did not make it smaller
    _check_bytes(name, len(fitted), limits)
    log.info(
        "Image %s: %dx%d, %s → %dx%d, %s (%s)",
        name,
        width,
        height,
        _megabytes(len(data)),
        *out_size,
        _megabytes(len(fitted)),
        "rotated upright" if not upright else "scaled down" if out_size != (width, height) else "re-encoded",
    )
    return FittedImage(out_mime, fitted, out_size, changed=fitted is not data)


def _orientation(image: Any) -> int:
    """The EXIF orientation, read without decoding the pixels: a PNG keeps its EXIF after the image data, where
    Pillow would decode everything to find it, so a PNG's orientation counts only when it comes before."""
    if image.format == "PNG":
        exif = image.info.get("exif")
        if not exif:
            return 1
        from PIL import Image

        parsed = Image.Exif()
        parsed.load(exif)
        return int(parsed.get(_EXIF_ORIENTATION, 1))
    return int(image.getexif().get(_EXIF_ORIENTATION, 1))


def encode_image(image: Any, *, has_alpha: bool | None = None) -> tuple[bytes, str]:
    """JPEG for opaque images (photos and pages compress far better), PNG when transparency must survive."""
    alpha = has_alpha if has_alpha is not None else image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info
    buffer = io.BytesIO()
    if alpha:
        image.save(buffer, "PNG")
        return buffer.getvalue(), "image/png"
    if image.mode not in ("RGB", "RGBX", "L"):
        image = image.convert("RGB")
    image.save(buffer, "JPEG", quality=JPEG_QUALITY, optimize=False)
    return buffer.getvalue(), "image/jpeg"


def scale_for(width: int, height: int, max_pixels: int) -> float:
    """The factor (at most 1) that brings ``width x height`` within ``max_pixels``."""
    pixels = width * height
    return 1.0 if pixels <= max_pixels else (max_pixels / pixels) ** 0.5


def _reencode(image: Any, max_pixels: int, *, upright: bool) -> tuple[bytes, str, tuple[int, int]]:
    from PIL import Image, ImageOps

    width, height = image.size
    factor = scale_for(width, height, max_pixels)
    target = (max(1, int(width * factor)), max(1, int(height * factor)))
    if image.format == "JPEG" and factor < 1:
        image.draft("RGB", target)  # decode at 1/2, 1/4 or 1/8 scale: a fraction of the memory and time
    if not upright:  # exif_transpose copies the image even when there is nothing to turn
        image = ImageOps.exif_transpose(image)
    if image.size[0] * image.size[1] > max_pixels:
        factor = scale_for(image.size[0], image.size[1], max_pixels)
        image = image.resize(
            (max(1, int(image.size[0] * factor)), max(1, int(image.size[1] * factor))),
            Image.Resampling.LANCZOS,
            reducing_gap=3.0,
        )
    data, mime = encode_image(image)
    return data, mime, image.size


def _check_bytes(name: str, size: int, limits: ImageLimits) -> None:
    if size > limits.max_bytes:
        raise AimlFileError(
            f"image {name!r} is {_megabytes(size)} after fitting, over max_image_bytes={limits.max_bytes:,} "
            f"({_megabytes(limits.max_bytes)}); lower max_image_pixels or send a smaller file"
        )


def _megabytes(size: int) -> str:
    return f"{size / 1e6:.2f} MB" if size < 10e6 else f"{size / 1e6:.1f} MB"
