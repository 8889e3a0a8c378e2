"""Fitting images before they are sent: pass-through when they fit, upright, scaled to a pixel bound, small."""

from __future__ import annotations

import io
import logging
import random
import re
import struct
import zlib

import pytest
from PIL import Image, ImageDraw, JpegImagePlugin

from airflow_provider_aiml.exceptions import AimlFileError
from airflow_provider_aiml.media.images import (
    DEFAULT_MAX_IMAGE_PIXELS,
    ImageLimits,
    encode_image,
    fit_image,
    scale_for,
    sniff_image_type,
)

RED = (255, 0, 0)
BLUE = (0, 0, 255)
ORIENTATION_TAG = 0x0112


def encoded(image: Image.Image, image_format: str, **save: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, image_format, **save)
    return buffer.getvalue()


def decoded(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def noise(size: tuple[int, int], seed: int = 7) -> Image.Image:
    """Random pixels: they compress badly, so sizes in bytes are predictable."""
    return Image.frombytes("RGB", size, random.Random(seed).randbytes(size[0] * size[1] * 3))


def upright_picture(size: tuple[int, int] = (60, 40)) -> Image.Image:
    """A blue picture with a red block in its top-left corner."""
    picture = Image.new("RGB", size, BLUE)
    ImageDraw.Draw(picture).rectangle((0, 0, size[0] // 3, size[1] // 3), fill=RED)
    return picture


def exif_with_orientation(orientation: int) -> bytes:
    exif = Image.Exif()
    exif[ORIENTATION_TAG] = orientation
    return exif.tobytes()


# How a camera stores the upright picture for each EXIF orientation (the tag says how to turn it back).
STORED_ROTATION = {
    3: Image.Transpose.ROTATE_180,
    6: Image.Transpose.ROTATE_90,
    8: Image.Transpose.ROTATE_270,
}


def is_red(pixel: tuple[int, ...]) -> bool:
    return pixel[0] > 200 and pixel[1] < 60 and pixel[2] < 60


def is_blue(pixel: tuple[int, ...]) -> bool:
    return pixel[2] > 200 and pixel[0] < 60 and pixel[1] < 60


def megabytes(size: int) -> str:
    return f"{size / 1e6:.2f} MB"


def png_claiming(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims ``width x height`` pixels (its pixel data is missing)."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IEND", b"")


def animated_gif(size: tuple[int, int] = (200, 200)) -> bytes:
    frames = [Image.new("RGB", size, RED), Image.new("RGB", size, BLUE)]
    return encoded(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)


# --- images that already fit ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("image_format", "mime", "save"),
    [
        ("JPEG", "image/jpeg", {}),
        ("JPEG", "image/jpeg", {"exif": exif_with_orientation(1)}),
        ("PNG", "image/png", {}),
        ("GIF", "image/gif", {}),
        ("WEBP", "image/webp", {}),
    ],
    ids=["jpeg", "jpeg-orientation-1", "png", "gif", "webp"],
)
def test_an_image_that_fits_is_sent_byte_for_byte(image_format, mime, save):
    data = encoded(upright_picture(), image_format, **save)

    fitted = fit_image(data, "small.img")

    assert fitted.changed is False
    assert fitted.data == data
    assert fitted.mime == mime
    assert fitted.size == (60, 40)


def test_an_image_exactly_at_both_limits_is_not_touched():
    data = encoded(noise((50, 40)), "PNG")

    fitted = fit_image(data, "edge.png", ImageLimits(max_pixels=50 * 40, max_bytes=len(data)))

    assert fitted.changed is False
    assert fitted.data == data


# --- EXIF orientation ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("image_format", ["JPEG", "PNG", "WEBP"])
@pytest.mark.parametrize("orientation", sorted(STORED_ROTATION))
def test_exif_orientation_is_applied(orientation, image_format):
    upright = upright_picture((60, 40))
    stored = upright.transpose(STORED_ROTATION[orientation])
    data = encoded(stored, image_format, exif=exif_with_orientation(orientation))

    fitted = fit_image(data, f"photo.{image_format.lower()}")

    result = decoded(fitted.data)
    assert fitted.changed is True
    assert fitted.size == result.size == (60, 40)
    assert is_red(result.convert("RGB").getpixel((0, 0)))
    assert is_blue(result.convert("RGB").getpixel((59, 39)))


def test_rotating_does_not_modify_the_bytes_passed_in():
    data = bytearray(encoded(upright_picture().transpose(STORED_ROTATION[6]), "JPEG", exif=exif_with_orientation(6)))
    original = bytes(data)

    fitted = fit_image(data, "photo.jpg")

    assert fitted.changed is True
    assert bytes(data) == original


# --- scaling down --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("size", "image_format", "max_pixels"),
    [
        ((400, 300), "PNG", 10_000),
        ((300, 1200), "PNG", 20_000),
        ((1000, 250), "JPEG", 40_000),
        ((640, 480), "WEBP", 100_000),
    ],
)
def test_an_image_over_max_pixels_is_scaled_down_keeping_its_aspect_ratio(size, image_format, max_pixels):
    data = encoded(upright_picture(size), image_format)

    fitted = fit_image(data, "big.img", ImageLimits(max_pixels=max_pixels))

    width, height = decoded(fitted.data).size
    assert fitted.changed is True
    assert fitted.size == (width, height)
    assert width * height <= max_pixels
    assert width * height >= 0.97 * max_pixels  # scaled to the bound, not far below it
    assert width / height == pytest.approx(size[0] / size[1], rel=0.01)


def test_a_large_jpeg_is_decoded_at_a_reduced_scale_and_fitted(monkeypatch):
    drafts: list[tuple[str, tuple[int, int]]] = []
    draft = JpegImagePlugin.JpegImageFile.draft

    def recording_draft(self, mode, size):
        drafts.append((mode, size))
        return draft(self, mode, size)

    monkeypatch.setattr(JpegImagePlugin.JpegImageFile, "draft", recording_draft)
    data = encoded(upright_picture((4000, 3000)), "JPEG", quality=90)

    fitted = fit_image(data, "camera.jpg")

    result = decoded(fitted.data).convert("RGB")
    width, height = result.size
    assert drafts, "a JPEG to be scaled down should be decoded with draft()"
    assert fitted.size == (width, height)
    assert width * height <= DEFAULT_MAX_IMAGE_PIXELS
    assert width * height >= 0.97 * DEFAULT_MAX_IMAGE_PIXELS
    assert width / height == pytest.approx(4 / 3, rel=0.01)
    assert is_red(result.getpixel((5, 5)))
    assert is_blue(result.getpixel((width - 5, height - 5)))


def test_a_large_rotated_jpeg_is_scaled_and_turned_upright():
    stored = upright_picture((2400, 1600)).transpose(STORED_ROTATION[6])
    data = encoded(stored, "JPEG", exif=exif_with_orientation(6))

    fitted = fit_image(data, "camera.jpg", ImageLimits(max_pixels=600_000))

    result = decoded(fitted.data).convert("RGB")
    width, height = result.size
    assert width > height
    assert width * height <= 600_000
    assert width / height == pytest.approx(1.5, rel=0.01)
    assert is_red(result.getpixel((3, 3)))


# --- output format -------------------------------------------------------------------------------------------


def test_a_transparent_png_stays_png_with_its_alpha():
    image = Image.new("RGBA", (300, 300), (255, 0, 0, 0))
    ImageDraw.Draw(image).rectangle((0, 0, 149, 299), fill=(0, 255, 0, 255))
    data = encoded(image, "PNG")

    fitted = fit_image(data, "logo.png", ImageLimits(max_pixels=10_000))

    result = decoded(fitted.data)
    assert fitted.mime == "image/png"
    assert sniff_image_type(fitted.data) == "image/png"
    assert result.mode == "RGBA"
    assert result.getpixel((0, 0))[3] == 255
    assert result.getpixel((result.width - 1, 0))[3] == 0


def test_a_palette_png_with_a_transparent_colour_stays_png():
    image = Image.new("P", (300, 300), 0)
    image.putpalette([0, 0, 0, 255, 0, 0] + [0] * 762)
    ImageDraw.Draw(image).rectangle((0, 0, 149, 299), fill=1)
    data = encoded(image, "PNG", transparency=0)

    fitted = fit_image(data, "icon.png", ImageLimits(max_pixels=10_000))

    assert fitted.mime == "image/png"
    assert "transparency" in decoded(fitted.data).info


def test_an_opaque_png_that_is_scaled_becomes_jpeg():
    data = encoded(noise((400, 300)), "PNG")

    fitted = fit_image(data, "chart.png", ImageLimits(max_pixels=10_000))

    assert fitted.mime == "image/jpeg"
    assert sniff_image_type(fitted.data) == "image/jpeg"
    assert decoded(fitted.data).format == "JPEG"


def test_an_in_bounds_png_over_max_bytes_is_reencoded_smaller_as_jpeg():
    data = encoded(noise((200, 200)), "PNG")  # about 120 kB: noise does not compress
    max_bytes = len(data) - 1

    fitted = fit_image(data, "noise.png", ImageLimits(max_bytes=max_bytes))

    assert fitted.changed is True
    assert fitted.mime == "image/jpeg"
    assert fitted.size == (200, 200)
    assert len(fitted.data) <= max_bytes


def test_reencoding_that_does_not_make_an_image_smaller_keeps_the_original():
    # A flat colour compresses to about 11 kB as PNG but about 40 kB as JPEG: re-encoding only makes it larger,
    # so the original is kept, and it is what the size check reports (0.01 MB, not the JPEG's 0.04 MB).
    data = encoded(Image.new("RGB", (1600, 1600), (10, 200, 30)), "PNG")
    jpeg_size = len(encode_image(decoded(data))[0])
    assert megabytes(jpeg_size) != megabytes(len(data))

    with pytest.raises(AimlFileError) as raised:
        fit_image(data, "flat.png", ImageLimits(max_bytes=len(data) - 1))

    assert f"is {megabytes(len(data))} after fitting" in str(raised.value)


def test_an_image_still_over_max_bytes_after_fitting_is_refused_naming_it_and_its_size():
    data = encoded(noise((300, 300)), "PNG")
    fitted_size = len(encode_image(decoded(data))[0])

    with pytest.raises(AimlFileError) as raised:
        fit_image(data, "s3://bucket/scans/noise.png", ImageLimits(max_bytes=1_000))

    message = str(raised.value)
    assert "'s3://bucket/scans/noise.png'" in message
    assert f"is {megabytes(fitted_size)} after fitting" in message
    assert "max_image_bytes=1,000" in message


# --- animated GIFs -------------------------------------------------------------------------------------------


def test_an_animated_gif_is_passed_through_unchanged():
    data = animated_gif((200, 200))

    fitted = fit_image(data, "spinner.gif", ImageLimits(max_pixels=100))

    assert fitted.changed is False
    assert fitted.data == data
    assert fitted.mime == "image/gif"
    assert fitted.size == (200, 200)


def test_an_animated_gif_over_max_bytes_is_refused():
    data = animated_gif((200, 200))

    with pytest.raises(AimlFileError, match=r"'spinner\.gif'.*max_image_bytes=10"):
        fit_image(data, "spinner.gif", ImageLimits(max_bytes=10))


# --- files that are not images -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "data",
    [b"just some text\n", b"", b"\x89PNG\r\n", b"%PDF-1.7\n"],
    ids=["text", "empty", "truncated-png-signature", "pdf"],
)
def test_a_file_that_is_not_an_image_is_refused_naming_it(data):
    with pytest.raises(AimlFileError, match=r"file 'notes\.txt' is not a JPEG, PNG, GIF or WEBP image"):
        fit_image(data, "notes.txt")


@pytest.mark.parametrize(
    "data",
    [
        b"\x89PNG\r\n\x1a\n" + b"\x00garbage" * 8,
        b"\xff\xd8\xff" + b"\x00" * 64,
        b"GIF89a" + b"\xff" * 64,
        b"RIFF\x10\x00\x00\x00WEBP" + b"\x00" * 32,
    ],
    ids=["png", "jpeg", "gif", "webp"],
)
def test_an_undecodable_file_with_an_image_signature_gets_a_clear_error(data):
    with pytest.raises(AimlFileError, match=r"image 'broken\.img' cannot be decoded"):
        fit_image(data, "broken.img")


def test_a_truncated_jpeg_that_must_be_scaled_gets_a_clear_error():
    data = encoded(noise((400, 300)), "JPEG")

    with pytest.raises(AimlFileError, match=r"image 'cut\.jpg' cannot be decoded"):
        fit_image(data[: len(data) // 2], "cut.jpg", ImageLimits(max_pixels=10_000))


def test_an_image_claiming_too_many_pixels_to_decode_gets_a_clear_error():
    # 200 million pixels: Pillow refuses to open it (decompression bomb); the provider should say which file.
    data = png_claiming(20_000, 10_000)

    with pytest.raises(AimlFileError, match=r"image 'bomb\.png' cannot be decoded"):
        fit_image(data, "bomb.png")


# --- the log line --------------------------------------------------------------------------------------------


def test_the_log_line_gives_dimensions_and_sizes_before_and_after(caplog):
    caplog.set_level(logging.INFO, logger="airflow_provider_aiml.media")
    data = encoded(noise((800, 600)), "PNG")

    fitted = fit_image(data, "noise.png", ImageLimits(max_pixels=120_000))

    width, height = fitted.size
    messages = [r.getMessage() for r in caplog.records if r.name == "airflow_provider_aiml.media"]
    assert messages == [
        f"Image noise.png: 800x600, {megabytes(len(data))} → {width}x{height}, "
        f"{megabytes(len(fitted.data))} (scaled down)"
    ]
    assert (width, height) != (800, 600)


def test_the_log_line_says_why_an_image_was_changed(caplog):
    caplog.set_level(logging.INFO, logger="airflow_provider_aiml.media")
    rotated = encoded(upright_picture().transpose(STORED_ROTATION[3]), "JPEG", exif=exif_with_orientation(3))
    heavy = encoded(noise((200, 200)), "PNG")

    fit_image(rotated, "rotated.jpg")
    fit_image(heavy, "heavy.png", ImageLimits(max_bytes=len(heavy) - 1))

    messages = [r.getMessage() for r in caplog.records if r.name == "airflow_provider_aiml.media"]
    assert len(messages) == 2
    assert re.fullmatch(r"Image rotated\.jpg: 60x40, .* → 60x40, .* \(rotated upright\)", messages[0])
    assert re.fullmatch(r"Image heavy\.png: 200x200, .* → 200x200, .* \(re-encoded\)", messages[1])


def test_an_image_that_fits_is_not_logged(caplog):
    caplog.set_level(logging.INFO, logger="airflow_provider_aiml.media")

    fit_image(encoded(upright_picture(), "PNG"), "small.png")

    assert not [r for r in caplog.records if r.name == "airflow_provider_aiml.media"]


# --- scale_for -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("width", "height", "max_pixels", "factor"),
    [
        (10, 10, 100, 1.0),
        (10, 10, 1_000, 1.0),
        (1, 1, 1, 1.0),
        (0, 500, 10, 1.0),
        (2, 2, 1, 0.5),
        (100, 100, 2_500, 0.5),
        (400, 100, 10_000, 0.5),
        (30, 30, 100, 1 / 3),
    ],
)
def test_scale_for(width, height, max_pixels, factor):
    assert scale_for(width, height, max_pixels) == pytest.approx(factor)


def test_scale_for_never_enlarges_and_its_floored_size_stays_within_the_bound():
    for width in range(1, 2_000, 37):
        for height in range(1, 2_000, 41):
            for max_pixels in (1_000, 65_536, 1_000_003):
                factor = scale_for(width, height, max_pixels)
                assert 0 < factor <= 1
                assert int(width * factor) * int(height * factor) <= max_pixels
