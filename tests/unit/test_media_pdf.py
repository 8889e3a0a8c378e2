"""PDFs as message parts: page selection, checks on opening, text layers, rendered pages, laziness and memory."""

from __future__ import annotations

import base64
import io
import random
import tracemalloc

import pytest
from fpdf import FPDF
from PIL import Image

from airflow_provider_aiml.exceptions import AimlFileError, AimlParameterError
from airflow_provider_aiml.media.images import DEFAULT_MAX_IMAGE_PIXELS, ImageLimits
from airflow_provider_aiml.media.pdf import (
    PdfOptions,
    PdfPages,
    check_pdf_options,
    is_pdf,
    opened_pdf,
    parse_pages,
)

SCANNED = None
"""A page in ``make_pdf`` that holds only an image (no text layer), as a scanner makes it."""
SMALL_PAGE = (50, 70)  # millimetres: quick to render


def make_pdf(pages: list[str | None], page_format: str | tuple[float, float] = SMALL_PAGE) -> bytes:
    """A PDF with one page per item: its text, or a full-page grey image for ``SCANNED``."""
    pdf = FPDF(format=page_format)
    pdf.set_font("helvetica", size=10)
    pdf.set_auto_page_break(False)
    for text in pages:
        pdf.add_page()
        if text is SCANNED:
            pdf.image(Image.new("RGB", (64, 64), (90, 90, 90)), x=0, y=0, w=pdf.w, h=pdf.h)
        else:
            pdf.cell(text=text)
    return bytes(pdf.output())


def encrypted_pdf() -> bytes:
    pdf = FPDF(format=SMALL_PAGE)
    pdf.set_font("helvetica", size=10)
    pdf.add_page()
    pdf.cell(text="confidential")
    pdf.set_encryption(owner_password="o", user_password="u")
    return bytes(pdf.output())


def zero_page_pdf() -> bytes:
    """A well-formed PDF whose page tree is empty."""
    objects = [b"<< /Type /Catalog /Pages 2 0 R >>", b"<< /Type /Pages /Kids [] /Count 0 >>"]
    out, offsets = bytearray(b"%PDF-1.4\n"), []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)


def image_of(part: dict) -> Image.Image:
    url = part["image_url"]["url"]
    assert url.startswith("data:image/jpeg;base64,")
    image = Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1])))
    image.load()
    return image


def encoded_size(part: dict) -> int:
    return len(base64.b64decode(part["image_url"]["url"].split(",", 1)[1]))


def all_parts(data: bytes, options: PdfOptions | None = None, limits: ImageLimits | None = None) -> list[dict]:
    with opened_pdf(data, "doc.pdf", options or PdfOptions()) as pdf:
        return list(pdf.parts(limits))


# --- parse_pages ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "page_count", "indexes"),
    [
        ("1-3,7", 10, [0, 1, 2, 6]),
        ("2-", 5, [1, 2, 3, 4]),
        ("2-", None, [1]),  # only the syntax is checked without a page count
        (" 1 , 3 ", 5, [0, 2]),
        ("3, 1-2", 5, [2, 0, 1]),
        ("1-3,2-4", 5, [0, 1, 2, 3]),
        ("4", 5, [3]),
        ([2, 1, 2], 5, [1, 0]),
        ((5,), 5, [4]),
    ],
)
def test_parse_pages(spec, page_count, indexes):
    assert parse_pages(spec, page_count) == indexes


@pytest.mark.parametrize(
    ("spec", "named"),
    [
        ("0", "'0'"),
        ("3-1", "'3-1'"),
        ("a", "'a'"),
        ("", "''"),
        ("1,,2", "''"),
        ("1,x-3", "'x-3'"),
        ("0-2", "'0-2'"),
        ([0], "[0]"),
        ([1, -2], "[1, -2]"),
        ([], "[]"),
        (True, "True"),
        (3.5, "3.5"),
        ([1, True], "[1, True]"),
        (["1"], "['1']"),
    ],
)
def test_parse_pages_rejects_a_bad_value_naming_the_bad_piece(spec, named):
    with pytest.raises(AimlParameterError) as raised:
        parse_pages(spec, 10)

    assert named in str(raised.value)


# --- opening and checking ------------------------------------------------------------------------------------


def test_the_page_count_and_selection_are_known_on_opening():
    with opened_pdf(make_pdf(["one", "two", "three"]), "doc.pdf", PdfOptions(pages="3,1")) as pdf:
        assert pdf.page_count == 3
        assert pdf.selected == [2, 0]


@pytest.mark.parametrize("pages", ["2,5", [5], "4-6", "5-"])
def test_pages_beyond_the_page_count_are_refused_naming_the_file_and_the_count(pages):
    with pytest.raises(AimlFileError) as raised:
        PdfPages(make_pdf(["one", "two", "three"]), "s3://bucket/doc.pdf", PdfOptions(pages=pages))

    message = str(raised.value)
    assert "'s3://bucket/doc.pdf'" in message
    assert "has 3 pages" in message


def test_more_pages_than_max_pages_are_refused_naming_the_count_and_the_cap():
    with pytest.raises(AimlFileError) as raised:
        PdfPages(make_pdf(["p"] * 4), "report.pdf", PdfOptions(max_pages=3))

    message = str(raised.value)
    assert "'report.pdf'" in message
    assert "4 pages selected" in message
    assert "max_pages=3" in message


def test_max_pages_counts_the_selected_pages_only():
    with opened_pdf(make_pdf(["p"] * 4), "report.pdf", PdfOptions(pages="1-3", max_pages=3)) as pdf:
        assert pdf.selected == [0, 1, 2]
    with opened_pdf(make_pdf(["p"] * 4), "report.pdf", PdfOptions(max_pages=None)) as pdf:
        assert pdf.selected == [0, 1, 2, 3]


def test_an_encrypted_pdf_is_refused_as_encrypted():
    with pytest.raises(AimlFileError, match=r"PDF 'secret\.pdf' is encrypted"):
        PdfPages(encrypted_pdf(), "secret.pdf", PdfOptions())


@pytest.mark.parametrize("keep", [0.5, 0.1])
def test_a_truncated_pdf_is_refused_as_corrupt(keep):
    data = make_pdf(["one", "two"])

    with pytest.raises(AimlFileError, match=r"PDF 'cut\.pdf' cannot be read \(corrupt or truncated\)"):
        PdfPages(data[: int(len(data) * keep)], "cut.pdf", PdfOptions())


@pytest.mark.parametrize("data", [b"", b"%PDF-1.7\n", zero_page_pdf()], ids=["empty", "header-only", "zero-pages"])
def test_a_pdf_without_pages_is_refused_naming_it(data):
    with pytest.raises(AimlFileError, match=r"PDF 'void\.pdf' (has no pages|cannot be read)"):
        PdfPages(data, "void.pdf", PdfOptions())


# --- parts ---------------------------------------------------------------------------------------------------


def test_auto_gives_each_page_its_labelled_text_then_its_image():
    parts = all_parts(make_pdf(["Invoice 1042", "Total due: 99 EUR"], "A4"))

    assert [part["type"] for part in parts] == ["text", "image_url", "text", "image_url"]
    assert parts[0]["text"].startswith("[doc.pdf, page 1 of 2]\n")
    assert "Invoice 1042" in parts[0]["text"]
    assert parts[2]["text"].startswith("[doc.pdf, page 2 of 2]\n")
    assert "Total due: 99 EUR" in parts[2]["text"]
    for image_part in (parts[1], parts[3]):
        image = image_of(image_part)
        width, height = image.size
        assert abs(width - 827) <= 1  # A4 (595x842 points) at 100 DPI
        assert abs(height - 1170) <= 1
        assert width * height <= DEFAULT_MAX_IMAGE_PIXELS


@pytest.mark.parametrize(("dpi", "size"), [(72, (142, 199)), (144, (284, 397)), (100, (197, 276))])
def test_the_rendered_size_follows_the_dpi(dpi, size):
    parts = all_parts(make_pdf(["small page"]), PdfOptions(dpi=dpi))  # 50x70 mm

    width, height = image_of(parts[1]).size
    assert abs(width - size[0]) <= 1
    assert abs(height - size[1]) <= 1


def test_a_rendered_page_keeps_its_colours():
    pdf = FPDF(unit="mm", format=SMALL_PAGE)
    pdf.add_page()
    pdf.set_fill_color(220, 30, 30)  # red on the left half, blue on the right
    pdf.rect(0, 0, pdf.w / 2, pdf.h, style="F")
    pdf.set_fill_color(30, 30, 220)
    pdf.rect(pdf.w / 2, 0, pdf.w / 2, pdf.h, style="F")

    image = image_of(all_parts(bytes(pdf.output()), PdfOptions(text="never"))[1]).convert("RGB")

    red, blue = image.getpixel((10, image.height // 2)), image.getpixel((image.width - 10, image.height // 2))
    # channels in the right order (PDFium's native order is BGR)
    assert (red[0] > 180, red[2] < 80) == (True, True), red
    assert (blue[2] > 180, blue[0] < 80) == (True, True), blue


def test_a_scanned_page_in_auto_gives_its_label_alone_and_its_image():
    parts = all_parts(make_pdf(["typed page", SCANNED]))

    assert [part["type"] for part in parts] == ["text", "image_url", "text", "image_url"]
    assert parts[2]["text"] == "[doc.pdf, page 2 of 2]"
    assert image_of(parts[3]).size[0] > 0


def test_never_gives_labels_and_images_but_no_page_text():
    parts = all_parts(make_pdf(["alpha text", "beta text"]), PdfOptions(text="never"))

    assert [part["type"] for part in parts] == ["text", "image_url", "text", "image_url"]
    assert parts[0]["text"] == "[doc.pdf, page 1 of 2]"
    assert parts[2]["text"] == "[doc.pdf, page 2 of 2]"


def test_only_gives_text_parts_and_no_images():
    parts = all_parts(make_pdf(["alpha text", "beta text"]), PdfOptions(text="only"))

    assert [part["type"] for part in parts] == ["text", "text"]
    assert parts[0]["text"] == "[doc.pdf, page 1 of 2]\nalpha text"
    assert parts[1]["text"] == "[doc.pdf, page 2 of 2]\nbeta text"


def test_only_refuses_a_scanned_page_naming_it():
    with pytest.raises(AimlFileError, match=r"PDF 'doc\.pdf', page 2: no text layer"):
        all_parts(make_pdf(["typed page", SCANNED]), PdfOptions(text="only"))


def test_a_subset_of_pages_says_which_part_each_page_is():
    parts = all_parts(make_pdf(["one", "two", "three"]), PdfOptions(pages="3,1", text="only"))

    assert parts == [
        {"type": "text", "text": "[doc.pdf, page 3 of 3; part 1 of 2 sent]\nthree"},
        {"type": "text", "text": "[doc.pdf, page 1 of 3; part 2 of 2 sent]\none"},
    ]


@pytest.mark.parametrize(
    ("dpi", "limits"),
    [(100, ImageLimits(max_pixels=10_000)), (100, ImageLimits(max_pixels=777)), (300, ImageLimits())],
    ids=["10k-pixels", "777-pixels", "default-at-300-dpi"],
)
def test_max_image_pixels_caps_the_rendered_size(dpi, limits):
    parts = all_parts(make_pdf(["capped"], "A4"), PdfOptions(dpi=dpi, text="never"), limits)

    width, height = image_of(parts[1]).size
    assert width * height <= limits.max_pixels
    assert width * height >= 0.9 * limits.max_pixels
    assert width / height == pytest.approx(595.28 / 841.89, rel=0.02)


def test_parts_renders_lazily_one_page_at_a_time(monkeypatch):
    read_pages: list[int] = []
    read_page = PdfPages._read_page

    def counting_read_page(self, index, max_pixels):
        read_pages.append(index)
        return read_page(self, index, max_pixels)

    monkeypatch.setattr(PdfPages, "_read_page", counting_read_page)
    with opened_pdf(make_pdf(["one", "two", "three", "four"]), "doc.pdf", PdfOptions()) as pdf:
        parts = pdf.parts()
        assert read_pages == []

        first = next(parts)
        assert first["text"].startswith("[doc.pdf, page 1 of 4]")
        assert read_pages == [0]

        next(parts)  # page 1's image
        next(parts)  # page 2's text
        assert read_pages == [0, 1]


def long_report(pages: int) -> bytes:
    """A4 pages, each with a line of text over a full-page texture (so that every page image is large)."""
    texture = Image.frombytes("RGB", (64, 64), random.Random(3).randbytes(64 * 64 * 3))
    pdf = FPDF(format="A4")
    pdf.set_font("helvetica", size=12)
    pdf.set_auto_page_break(False)
    for number in range(1, pages + 1):
        pdf.add_page()
        pdf.image(texture, x=0, y=0, w=pdf.w, h=pdf.h)  # stored once, drawn on every page
        pdf.cell(text=f"Page {number} of the long report")
    return bytes(pdf.output())


def test_consuming_parts_one_by_one_holds_about_one_page_in_memory():
    pages = 200
    data = long_report(pages)
    with opened_pdf(data, "long.pdf", PdfOptions(dpi=50, pages=[1])) as pdf:
        first_image = list(pdf.parts())[1]
    one_page = encoded_size(first_image)
    width, height = image_of(first_image).size
    one_bitmap = width * height * 4  # the rendered page before it is encoded

    with opened_pdf(data, "long.pdf", PdfOptions(dpi=50, max_pages=None)) as pdf:
        tracemalloc.start()
        try:
            images = 0
            all_images_size = 0
            for part in pdf.parts():
                if part["type"] == "image_url":
                    images += 1
                    all_images_size += encoded_size(part)
                del part
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()

    bound = 5 * one_page + len(data) + 2 * one_bitmap + 256 * 1024
    assert images == pages
    assert bound < all_images_size / 4  # holding even a quarter of the pages at once would break the bound
    assert peak < bound, f"peak {peak:,} bytes while one page is {one_page:,} bytes encoded, {one_bitmap:,} raw"


# --- options -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (PdfOptions(text="sometimes"), "pdf_text must be one of"),
        (PdfOptions(dpi=9.9), "pdf_dpi must be a number from 10 to 600, got 9.9"),
        (PdfOptions(dpi=601), "got 601"),
        (PdfOptions(dpi=0), "got 0"),
        (PdfOptions(dpi=True), "got True"),
        (PdfOptions(dpi="100"), "got '100'"),
        (PdfOptions(max_pages=0), "max_pages must be a whole number ≥ 1 or None, got 0"),
        (PdfOptions(max_pages=-1), "got -1"),
        (PdfOptions(max_pages=True), "got True"),
        (PdfOptions(max_pages=2.0), "got 2.0"),
        (PdfOptions(pages="1-x"), "'1-x' is not a page number or range"),
        (PdfOptions(pages="0"), "'0' is not a valid range"),
    ],
)
def test_check_pdf_options_rejects_bad_settings(options, message):
    with pytest.raises(AimlParameterError) as raised:
        check_pdf_options(options)

    assert message in str(raised.value)


@pytest.mark.parametrize(
    "options",
    [
        PdfOptions(),
        PdfOptions(dpi=10),
        PdfOptions(dpi=600),
        PdfOptions(dpi=72.5, text="only", pages="2-", max_pages=None),
        PdfOptions(text="never", pages=[3, 1], max_pages=1),
    ],
)
def test_check_pdf_options_accepts_good_settings(options):
    check_pdf_options(options)


# --- is_pdf --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"%PDF-1.7\n", True),
        (b"\x00" * 1000 + b"%PDF-1.4\n", True),
        (bytearray(b"junk%PDF-1.4"), True),
        (memoryview(b"junk%PDF-1.4"), True),
        (b"\x00" * 1024 + b"%PDF-1.4\n", False),
        (b"PDF-1.4", False),
        (b"", False),
        (b"\x89PNG\r\n\x1a\n", False),
    ],
)
def test_is_pdf(data, expected):
    assert is_pdf(data) is expected
