"""Turns a PDF into message parts: page images rendered with PDFium, and each page's text layer as text.

Pages are rendered one at a time and encoded as they go, so a 200-page PDF holds one page bitmap at a time.
PDFium is not thread-safe: every PDFium call runs under one lock, while the JPEG encoding of the previous page
(Pillow releases the GIL) runs outside it, so a batch renders on one core and encodes on the others.
"""

from __future__ import annotations

import base64
import math
import re
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Literal

from airflow_provider_aiml.exceptions import AimlFileError, AimlParameterError
from airflow_provider_aiml.media.images import DEFAULT_MAX_IMAGE_PIXELS, ImageLimits, encode_image, scale_for

PdfText = Literal["auto", "only", "never"]
PDF_TEXT_MODES: tuple[PdfText, ...] = ("auto", "only", "never")
DEFAULT_PDF_DPI = 100.0
"""An A4 page at 100 DPI is 827x1170 pixels, about 950 visual tokens; 9-point print is 12 pixels high, which the
model reads. Raise it for small print, lower it for cheaper calls; ``max_image_pixels`` caps it either way."""
DEFAULT_MAX_PAGES = 50
"""Pages one PDF may send unless ``max_pages`` says otherwise: about 50,000 visual tokens at the default DPI."""
_POINTS_PER_INCH = 72.0
_PDFIUM_PASSWORD_ERROR = 4
_PAGES = re.compile(r"^\s*(\d+)\s*(?:-\s*(\d*)\s*)?$")

PDFIUM_LOCK = threading.RLock()
"""Serializes every PDFium call of the process (the library keeps global state)."""


@dataclass(frozen=True)
class PdfOptions:
    """How a PDF becomes parts."""

    dpi: float = DEFAULT_PDF_DPI
    text: PdfText = "auto"
    """``"auto"``: each page's image, with its text layer when it has one; ``"only"``: the text layer alone (no
    images, for cheap calls on born-digital PDFs); ``"never"``: images alone."""
    pages: str | Sequence[int] | None = None
    """Pages to send, 1-based: ``"1-3,7"``, ``"2-"`` (to the end), or a list of numbers; all when ``None``."""
    max_pages: int | None = DEFAULT_MAX_PAGES


def is_pdf(data: bytes | bytearray | memoryview) -> bool:
    """Whether the bytes are a PDF (the header may follow up to 1 KiB of junk, as readers allow)."""
    return b"%PDF-" in bytes(data[:1024])


def check_pdf_options(options: PdfOptions) -> None:
    """Reject bad PDF settings before anything is read."""
    if options.text not in PDF_TEXT_MODES:
        raise AimlParameterError(f"pdf_text must be one of {PDF_TEXT_MODES}, got {options.text!r}")
    if isinstance(options.dpi, bool) or not isinstance(options.dpi, int | float) or not 10 <= options.dpi <= 600:
        raise AimlParameterError(f"pdf_dpi must be a number from 10 to 600, got {options.dpi!r}")
    if options.max_pages is not None and (
        isinstance(options.max_pages, bool) or not isinstance(options.max_pages, int) or options.max_pages < 1
    ):
        raise AimlParameterError(f"max_pages must be a whole number ≥ 1 or None, got {options.max_pages!r}")
    if options.pages is not None:
        parse_pages(options.pages, None)


def parse_pages(spec: str | Sequence[int], page_count: int | None) -> list[int]:
    """The 0-based page indexes a ``pages`` value selects, in order and without repeats.

    With ``page_count`` ``None`` only the syntax is checked.
    """
    if isinstance(spec, str):
        numbers: list[int] = []
        for piece in spec.split(","):
            match = _PAGES.match(piece)
            if match is None:
                raise AimlParameterError(
                    f"pages={spec!r}: {piece.strip()!r} is not a page number or range (write e.g. '1-3,7' or '5-')"
                )
            first, end = int(match.group(1)), match.group(2)
            if end is None:
                last = first
            elif end == "":  # to the end; a start beyond the end is reported with the page count
                last = max(first, page_count) if page_count is not None else first
            else:
                last = int(end)
            if first < 1 or last < first:
                raise AimlParameterError(f"pages={spec!r}: {piece.strip()!r} is not a valid range (pages start at 1)")
            numbers.extend(range(first, last + 1))
    elif isinstance(spec, Sequence) and all(isinstance(n, int) and not isinstance(n, bool) for n in spec):
        numbers = [int(n) for n in spec]
        if any(n < 1 for n in numbers):
            raise AimlParameterError(f"pages={list(spec)!r}: page numbers start at 1")
    else:
        raise AimlParameterError(f"pages must be a string such as '1-3,7' or a list of page numbers, got {spec!r}")
    if not numbers:
        raise AimlParameterError(f"pages={spec!r} selects no page")
    return list(dict.fromkeys(n - 1 for n in numbers))


class PdfPages:
    """An opened PDF and the pages selected from it; checked on opening, rendered on iteration."""

    def __init__(self, data: bytes, name: str, options: PdfOptions) -> None:
        import pypdfium2 as pdfium

        self.name = name
        self.options = options
        with PDFIUM_LOCK:
            try:
                self._document = pdfium.PdfDocument(data)
            except pdfium.PdfiumError as error:
                if getattr(error, "err_code", None) == _PDFIUM_PASSWORD_ERROR:
                    raise AimlFileError(
                        f"PDF {name!r} is encrypted: it needs a password to open. Send a decrypted copy."
                    ) from None
                raise AimlFileError(f"PDF {name!r} cannot be read (corrupt or truncated): {error}") from None
            self.page_count = len(self._document)
        self._data = data  # PDFium reads from this buffer: it must outlive the document
        self.selected = self._select()

    def _select(self) -> list[int]:
        options = self.options
        if self.page_count == 0:
            raise AimlFileError(f"PDF {self.name!r} has no pages")
        selected = (
            list(range(self.page_count)) if options.pages is None else parse_pages(options.pages, self.page_count)
        )
        beyond = [n + 1 for n in selected if n >= self.page_count]
        if beyond:
            raise AimlFileError(
                f"PDF {self.name!r} has {self.page_count} pages; pages={options.pages!r} asks for page {beyond[0]}"
            )
        if options.max_pages is not None and len(selected) > options.max_pages:
            raise AimlFileError(
                f"PDF {self.name!r}: {len(selected)} pages selected, over max_pages={options.max_pages}; select "
                "fewer with pages='1-10' or raise max_pages"
            )
        return selected

    def parts(self, limits: ImageLimits | None = None) -> Iterator[dict[str, Any]]:
        """The message parts of the selected pages, one page at a time: a text part (the page's label and text
        layer) and, unless ``text="only"``, the page image."""
        max_pixels = (limits or ImageLimits()).max_pixels
        total = len(self.selected)
        for position, index in enumerate(self.selected, start=1):
            text, bitmap = self._read_page(index, max_pixels)
            if self.options.text == "only" and not text:
                raise AimlFileError(
                    f"PDF {self.name!r}, page {index + 1}: no text layer (a scanned page?); with pdf_text='only' "
                    "there is nothing to send. Use pdf_text='auto' to send the page image."
                )
            label = f"[{self.name}, page {index + 1} of {self.page_count}" + (
                f"; part {position} of {total} sent]" if total != self.page_count else "]"
            )
            yield {"type": "text", "text": f"{label}\n{text}" if text else label}
            if bitmap is not None:  # encoded outside the lock; the bitmap owns the pixels until then
                data, mime = encode_image(bitmap.to_pil(), has_alpha=False)
                yield {"type": "image_url", "image_url": {"url": _data_url(mime, data)}}

    def close(self) -> None:
        with PDFIUM_LOCK:
            self._document.close()

    def _read_page(self, index: int, max_pixels: int) -> tuple[str, Any]:
        """The page's text layer (``""`` if none is asked for or there is none) and its rendered bitmap."""
        mode = self.options.text
        with PDFIUM_LOCK:
            page = self._document[index]
            try:
                text = ""
                if mode != "never":
                    textpage = page.get_textpage()
                    text = textpage.get_text_range().replace("\r\n", "\n").strip()
                    textpage.close()
                bitmap = None
                if mode != "only":
                    width, height = page.get_size()
                    scale = render_scale(width, height, self.options.dpi, max_pixels)
                    # RGBX pixels: Pillow wraps them without a copy and the JPEG encoder takes them as they are
                    # (PDFium's default BGR needs a conversion first): about 30% less CPU per page, same bytes.
                    bitmap = page.render(scale=scale, rev_byteorder=True, prefer_bgrx=True)
            finally:
                page.close()
        return text, bitmap


def render_scale(width_pt: float, height_pt: float, dpi: float, max_pixels: int) -> float:
    """The PDFium scale for a page of ``width_pt x height_pt`` points: ``dpi``, lowered until the bitmap (whose
    sides PDFium rounds up) has at most ``max_pixels`` pixels."""
    scale = dpi / _POINTS_PER_INCH
    scale *= scale_for(max(1, int(width_pt * scale)), max(1, int(height_pt * scale)), max_pixels)
    while scale > 0.01 and math.ceil(width_pt * scale) * math.ceil(height_pt * scale) > max_pixels:
        scale *= 0.99
    return scale


@contextmanager
def opened_pdf(data: bytes, name: str, options: PdfOptions) -> Iterator[PdfPages]:
    """An opened, checked PDF, closed afterwards."""
    pages = PdfPages(data, name, options)
    try:
        yield pages
    finally:
        pages.close()


def _data_url(mime: str, data: bytes) -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


__all__ = ["DEFAULT_MAX_IMAGE_PIXELS", "PdfOptions", "PdfPages", "check_pdf_options", "is_pdf", "opened_pdf"]
