"""Building chat messages from prompt, system prompt and images (URLs and local files)."""

from __future__ import annotations

import base64
import io
import random
import re
from pathlib import Path

import pytest
from PIL import Image

from airflow_provider_aiml.exceptions import AimlImageError, AimlParameterError
from airflow_provider_aiml.hooks.building import validate_messages
from airflow_provider_aiml.media.attachments import MediaOptions, attachment_parts
from airflow_provider_aiml.media.images import ImageLimits
from airflow_provider_aiml.messages import (
    MAX_INLINE_IMAGE_BYTES,
    build_messages,
    image_part,
    image_url,
    sniff_image_type,
)

# A complete, valid 1x1 PNG.
PNG_1X1 = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAQAAAC1HAwCAAAAC0lEQVR42mNkYAAAAAYAAjCB0C8AAAAASUVORK5CYII="
)


def encoded(image_format: str, **save: object) -> bytes:
    """A real 2x2 image in ``image_format`` (the provider decodes images to fit them, so they must be real)."""
    buffer = io.BytesIO()
    Image.new("RGB", (2, 2), (200, 30, 30)).save(buffer, image_format, **save)
    return buffer.getvalue()


JPEG = encoded("JPEG")
GIF87 = encoded("GIF").replace(b"GIF89a", b"GIF87a", 1)
GIF89 = encoded("GIF")
WEBP = encoded("WEBP")


def data_uri(mime: str, data: bytes) -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


# --- prompt / messages ---------------------------------------------------------------------------------------


def test_prompt_becomes_one_user_message():
    assert build_messages(prompt="Hi!", messages=None) == [{"role": "user", "content": "Hi!"}]


def test_system_prompt_comes_first():
    result = build_messages(prompt="Hi!", messages=None, system_prompt="Answer in French.")

    assert result == [
        {"role": "system", "content": "Answer in French."},
        {"role": "user", "content": "Hi!"},
    ]
    validate_messages(result)


def test_empty_system_prompt_is_still_sent():
    assert build_messages(prompt="Hi", messages=None, system_prompt="")[0] == {"role": "system", "content": ""}


def test_messages_pass_through_as_copies():
    given = [{"role": "system", "content": "s"}, {"role": "user", "content": "u"}]

    result = build_messages(prompt=None, messages=given)

    assert result == given
    assert result[0] is not given[0]
    result[0]["content"] = "changed"
    assert given[0]["content"] == "s"


def test_messages_tuple_is_accepted():
    assert build_messages(prompt=None, messages=({"role": "user", "content": "u"},)) == [
        {"role": "user", "content": "u"}
    ]


@pytest.mark.parametrize(
    ("prompt", "messages", "word"),
    [
        ("hi", [{"role": "user", "content": "hi"}], "both"),
        (None, None, "neither"),
        ("", [], "both"),
    ],
)
def test_exactly_one_of_prompt_and_messages(prompt, messages, word):
    with pytest.raises(AimlParameterError) as caught:
        build_messages(prompt=prompt, messages=messages)

    assert "exactly one of 'prompt'" in str(caught.value)
    assert str(caught.value).endswith(f"got {word}.")


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"system_prompt": "s"}, "'system_prompt' and 'images' only apply to 'prompt'"),
        ({"images": ["https://example.com/a.png"]}, "only apply to 'prompt'"),
    ],
)
def test_system_prompt_and_images_need_prompt(kwargs, fragment):
    with pytest.raises(AimlParameterError, match=fragment):
        build_messages(prompt=None, messages=[{"role": "user", "content": "u"}], **kwargs)


@pytest.mark.parametrize("messages", ["hello", b"hello", {"role": "user"}, 5])
def test_messages_must_be_a_list(messages):
    with pytest.raises(AimlParameterError, match="'messages' must be a list of message objects"):
        build_messages(prompt=None, messages=messages)


@pytest.mark.parametrize(("prompt", "fragment"), [("", "is empty"), ("  \n ", "is empty"), (5, "must be a string")])
def test_bad_prompt(prompt, fragment):
    with pytest.raises(AimlParameterError, match=f"'prompt' {fragment}"):
        build_messages(prompt=prompt, messages=None)


def test_system_prompt_must_be_a_string():
    with pytest.raises(AimlParameterError, match="'system_prompt' must be a string, got int"):
        build_messages(prompt="p", messages=None, system_prompt=3)


# --- images in a prompt --------------------------------------------------------------------------------------


def test_images_become_parts_after_the_text(tmp_path):
    png = write(tmp_path / "chart.png", PNG_1X1)

    result = build_messages(
        prompt="What is in these?",
        messages=None,
        system_prompt="Be brief.",
        images=["https://example.com/cat.jpg", png, {"url": "http://example.com/d.gif", "detail": "low"}],
    )

    assert result == [
        {"role": "system", "content": "Be brief."},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "What is in these?"},
                {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg"}},
                {"type": "image_url", "image_url": {"url": data_uri("image/png", PNG_1X1)}},
                {"type": "image_url", "image_url": {"url": "http://example.com/d.gif", "detail": "low"}},
            ],
        },
    ]
    validate_messages(result)


@pytest.mark.parametrize("kind", ["url", "path", "str_path", "mapping"])
def test_single_image_is_accepted(tmp_path, kind):
    png = write(tmp_path / "a.png", PNG_1X1)
    images = {
        "url": "https://example.com/a.png",
        "path": png,
        "str_path": str(png),
        "mapping": {"url": "https://example.com/a.png"},
    }[kind]
    expected = "https://example.com/a.png" if kind in ("url", "mapping") else data_uri("image/png", PNG_1X1)

    result = build_messages(prompt="p", messages=None, images=images)

    assert result == [
        {
            "role": "user",
            "content": [{"type": "text", "text": "p"}, {"type": "image_url", "image_url": {"url": expected}}],
        }
    ]


@pytest.mark.parametrize("images", [None, [], ()])
def test_no_images_keeps_plain_string_content(images):
    assert build_messages(prompt="p", messages=None, images=images) == [{"role": "user", "content": "p"}]


def test_images_of_a_wrong_type():
    with pytest.raises(AimlImageError, match="'images' must be a URL, a file path, or a list of them, got int"):
        build_messages(prompt="p", messages=None, images=5)


# --- image_url: remote and data URIs -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "https://example.com/cat.png",
        "http://example.com/cat",
        "data:image/jpeg;base64,/9j/4AAQ",
        "  https://example.com/padded.png  ",
    ],
)
def test_urls_pass_through(url):
    assert image_url(url) == url.strip()


def test_data_uri_that_is_not_an_image():
    with pytest.raises(AimlImageError, match="a data URI image must start with 'data:image/'"):
        image_url("data:text/plain;base64,aGVsbG8=")


# --- image_url: local files ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "data", "mime"),
    [
        ("a.png", PNG_1X1, "image/png"),
        ("a.jpg", JPEG, "image/jpeg"),
        ("a.jpeg", JPEG, "image/jpeg"),
        ("a.gif", GIF87, "image/gif"),
        ("b.gif", GIF89, "image/gif"),
        ("a.webp", WEBP, "image/webp"),
        # The type comes from the bytes, not from the name.
        ("photo.jpg", PNG_1X1, "image/png"),
        ("noextension", WEBP, "image/webp"),
    ],
)
def test_local_file_becomes_a_data_uri(tmp_path, name, data, mime):
    path = write(tmp_path / name, data)

    assert image_url(path) == data_uri(mime, data)
    assert image_url(str(path)) == data_uri(mime, data)


def test_png_data_uri_exact_value(tmp_path):
    path = write(tmp_path / "dot.png", PNG_1X1)

    assert image_url(path) == (
        "data:image/png;base64,"
        "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAQAAAC1HAwCAAAAC0lEQVR42mNkYAAAAAYAAjCB0C8AAAAASUVORK5CYII="
    )


@pytest.mark.parametrize(
    "data",
    [b"hello, I am text", b"", b"RIFF\x00\x00\x00\x00WAVEfmt ", b"\x89PNG\r\n", b"GIF90a"],
)
def test_non_image_file_is_refused_with_its_path(tmp_path, data):
    path = write(tmp_path / "chart.png", data)

    with pytest.raises(AimlImageError) as caught:
        image_url(path)

    assert str(path) in str(caught.value)
    assert "is not a JPEG, PNG, GIF or WEBP image" in str(caught.value)


def test_missing_file_is_refused_with_its_path(tmp_path):
    missing = tmp_path / "nope.png"

    with pytest.raises(AimlImageError) as caught:
        image_url(missing)

    assert f"image file {str(missing)!r} not found" in str(caught.value)


def test_directory_is_not_an_image_file(tmp_path):
    with pytest.raises(AimlImageError, match="not found"):
        image_url(tmp_path)


def test_relative_path_is_resolved_against_base_dirs(tmp_path, monkeypatch):
    dags = tmp_path / "dags"
    write(dags / "img" / "chart.png", PNG_1X1)
    monkeypatch.chdir(tmp_path)

    assert image_url("img/chart.png", [dags]) == data_uri("image/png", PNG_1X1)


def test_base_dirs_are_searched_in_order_before_the_cwd(tmp_path, monkeypatch):
    first, second, cwd = tmp_path / "first", tmp_path / "second", tmp_path / "cwd"
    write(second / "x.img", JPEG)
    write(cwd / "x.img", GIF89)
    cwd.mkdir(exist_ok=True)
    monkeypatch.chdir(cwd)

    assert image_url("x.img", [first, second]) == data_uri("image/jpeg", JPEG)
    write(first / "x.img", PNG_1X1)
    assert image_url("x.img", [str(first), second]) == data_uri("image/png", PNG_1X1)
    assert image_url("x.img", []) == data_uri("image/gif", GIF89)


def test_relative_path_not_found_lists_where_it_looked(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    dags = tmp_path / "dags"

    with pytest.raises(AimlImageError) as caught:
        image_url("img/missing.png", [dags])

    message = str(caught.value)
    assert "image file 'img/missing.png' not found" in message
    assert str(dags / "img" / "missing.png") in message


def test_home_relative_path_is_expanded(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    write(tmp_path / "pics" / "a.png", PNG_1X1)

    assert image_url("~/pics/a.png") == data_uri("image/png", PNG_1X1)


def test_a_bloated_file_is_re_encoded_to_fit(tmp_path):
    path = tmp_path / "huge.png"
    with path.open("wb") as handle:
        handle.write(PNG_1X1)
        handle.truncate(MAX_INLINE_IMAGE_BYTES + 1)  # sparse: a 1x1 image followed by 20 MiB of padding

    url = image_url(path)

    assert len(url) < 1000
    assert Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))).size == (1, 1)


def test_an_image_still_over_max_image_bytes_after_fitting_is_refused_with_its_size(tmp_path):
    noise = Image.frombytes("RGB", (64, 64), random.Random(7).randbytes(64 * 64 * 3))
    path = tmp_path / "noise.png"
    noise.save(path, "PNG")
    options = MediaOptions(image_limits=ImageLimits(max_bytes=1_000))

    with pytest.raises(AimlImageError) as caught:
        attachment_parts(str(path), options)

    message = str(caught.value)
    assert str(path) in message
    assert re.search(r"is 0\.0\d MB after fitting, over max_image_bytes=1,000 \(0\.00 MB\)", message)


def test_file_of_exactly_the_limit_is_sent(tmp_path):
    path = tmp_path / "limit.png"
    with path.open("wb") as handle:
        handle.write(PNG_1X1)
        handle.truncate(MAX_INLINE_IMAGE_BYTES)

    assert image_url(path).startswith("data:image/png;base64,iVBORw0KGgo")


# --- image_part and detail -----------------------------------------------------------------------------------


@pytest.mark.parametrize("detail", ["low", "high", "auto"])
def test_detail_values(detail):
    assert image_part({"url": "https://x/a.png", "detail": detail}) == {
        "type": "image_url",
        "image_url": {"url": "https://x/a.png", "detail": detail},
    }


@pytest.mark.parametrize("detail", ["medium", "LOW", "", 1])
def test_bad_detail(detail):
    with pytest.raises(AimlImageError, match=r"image detail must be one of \('low', 'high', 'auto'\)"):
        image_part({"url": "https://x/a.png", "detail": detail})


def test_mapping_with_a_path(tmp_path):
    path = write(tmp_path / "a.gif", GIF89)

    assert image_part({"path": str(path), "detail": "high"}) == {
        "type": "image_url",
        "image_url": {"url": data_uri("image/gif", GIF89), "detail": "high"},
    }


def test_mapping_with_relative_path_uses_base_dirs(tmp_path):
    write(tmp_path / "a.webp", WEBP)

    assert image_part({"path": "a.webp"}, [tmp_path]) == {
        "type": "image_url",
        "image_url": {"url": data_uri("image/webp", WEBP)},
    }


@pytest.mark.parametrize("image", [{"detail": "low"}, {"url": ""}, "   ", {"url": 5}, 7])
def test_image_without_a_source(image):
    with pytest.raises(AimlImageError, match="an image must be a URL, a file path or an ObjectStoragePath"):
        image_part(image)


def test_build_messages_passes_base_dirs(tmp_path, monkeypatch):
    dags = tmp_path / "dags"
    write(dags / "a.jpg", JPEG)
    monkeypatch.chdir(tmp_path)

    result = build_messages(prompt="p", messages=None, images=["a.jpg"], base_dirs=[dags])

    assert result[0]["content"][1] == {"type": "image_url", "image_url": {"url": data_uri("image/jpeg", JPEG)}}


def test_image_errors_are_parameter_errors(tmp_path):
    with pytest.raises(AimlParameterError):
        build_messages(prompt="p", messages=None, images=[tmp_path / "missing.png"])


# --- sniffing ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "mime"),
    [
        (PNG_1X1, "image/png"),
        (JPEG, "image/jpeg"),
        (b"\xff\xd8\xff", "image/jpeg"),
        (GIF87, "image/gif"),
        (GIF89, "image/gif"),
        (WEBP, "image/webp"),
        (b"RIFF\x00\x00\x00\x00WEBP", "image/webp"),
        (b"RIFF\x00\x00\x00\x00AVI ", None),
        (b"\xff\xd8", None),
        (b"BM\x00\x00", None),
        (b"", None),
    ],
)
def test_sniff_image_type(data, mime):
    assert sniff_image_type(data) == mime
