"""Sample invoices, receipts and photos, generated deterministically for tests, benchmarks and the example files.

The same arguments give the same bytes (fixed seeds, a fixed PDF creation date), so a test can regenerate what
``example_dags/files/`` holds (``scripts/make_sample_files.py`` writes those files with these functions) and a
benchmark can make a thousand distinct PDFs without storing them. The content each document shows is returned by
:func:`invoice_for` / :func:`receipt_for`, so a test can compare a model's answer with the truth.

fpdf2 and Pillow are imported inside the functions: fpdf2 is a test-only dependency of the provider.
"""

from __future__ import annotations

import io
import random
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from fpdf import FPDF
    from PIL import Image, ImageFont

PageSize = Literal["A4"] | tuple[float, float]
"""``"A4"`` or ``(width_mm, height_mm)``."""

A4_MM = (210.0, 297.0)
RECEIPT_MM = (80.0, 150.0)
CREATION_DATE = datetime(2026, 1, 1, tzinfo=UTC)
FIRST_ISSUE_DATE = date(2026, 11, 2)
EXIF_ORIENTATION = 0x0112
ENCRYPTED_PDF_USER_PASSWORD = "secret"
"""The password ``make_encrypted_pdf`` documents open with (a sample, not a credential)."""

VENDORS = (
    ("Nordlicht Office Supplies GmbH", "Hafenstrasse 12, 20457 Hamburg, Germany"),
    ("Blue Heron Print & Paper Ltd", "14 Wharf Road, Bristol BS1 4RN, United Kingdom"),
    ("Cascade Cloud Services Inc.", "901 Pine Street, Seattle, WA 98101, USA"),
    ("Atelier Lumiere SARL", "8 rue des Tanneurs, 69001 Lyon, France"),
    ("Tidewater Coffee Roasters", "55 Harbor Avenue, Portland, ME 04101, USA"),
)
CUSTOMERS = ("Acme Analytics BV", "Globex Logistics AG", "Initech Software Ltd", "Umbrella Foods SA")
SHOPS = ("Corner Market", "Fresh & Fast", "Green Basket", "City Pharmacy")
CURRENCIES = ("EUR", "GBP", "USD")
CATALOGUE = (
    ("A4 copy paper, 500 sh", 489),
    ("Ballpoint pens, 10 pk", 349),
    ("Stapler, heavy duty", 1899),
    ("Toner cartridge K", 6450),
    ("Desk lamp LED", 3499),
    ("Monitor arm", 8900),
    ("USB-C hub 7-port", 4299),
    ("Cloud storage, 1 TB", 999),
    ("Support hours", 8500),
    ("Coffee beans, 1 kg", 2450),
    ("Whiteboard markers", 599),
    ("Notebook, dotted", 799),
)
RECEIPT_CATALOGUE = (
    ("Milk 1L", 119),
    ("Bread", 249),
    ("Apples 1kg", 299),
    ("Coffee", 650),
    ("Pasta 500g", 139),
    ("Tomatoes", 229),
    ("Cheese", 415),
    ("Water 6x1.5L", 354),
)
LONG_PDF_WORDS = (
    "pipeline", "model", "invoice", "vendor", "total", "review", "archive", "batch", "quarterly", "ledger",
    "payment", "schedule", "audit", "warehouse", "shipment", "contract", "renewal", "forecast", "budget",
    "account", "statement", "summary",
)  # fmt: skip


@dataclass(frozen=True)
class LineItem:
    """One line of a document: what, how many and the unit price in cents."""

    description: str
    quantity: int
    unit_cents: int

    @property
    def amount_cents(self) -> int:
        """Quantity times unit price."""
        return self.quantity * self.unit_cents


@dataclass(frozen=True)
class SampleDocument:
    """What a generated invoice or receipt shows; the totals are derived from the items."""

    kind: Literal["Invoice", "Receipt"]
    issuer: str
    address: str
    number: str
    issued: date
    currency: str
    items: tuple[LineItem, ...]
    customer: str | None = None
    vat_percent: int = 20

    @property
    def subtotal_cents(self) -> int:
        """Sum of the line amounts."""
        return sum(item.amount_cents for item in self.items)

    @property
    def vat_cents(self) -> int:
        """VAT on the subtotal, rounded half up to a cent."""
        return (self.subtotal_cents * self.vat_percent + 50) // 100

    @property
    def total_cents(self) -> int:
        """Subtotal plus VAT."""
        return self.subtotal_cents + self.vat_cents


def money(cents: int) -> str:
    """``123456`` -> ``"1,234.56"``."""
    return f"{cents // 100:,}.{cents % 100:02d}"


def _items(rng: random.Random, catalogue: tuple[tuple[str, int], ...], count: int) -> tuple[LineItem, ...]:
    picks = rng.sample(catalogue, min(count, len(catalogue))) + rng.choices(catalogue, k=max(0, count - len(catalogue)))
    return tuple(LineItem(name, rng.randint(1, 12), price) for name, price in picks)


def invoice_for(number: int, pages: int = 2) -> SampleDocument:
    """The invoice ``make_invoice_pdf(number, pages)`` renders: content varies with ``number``."""
    rng = random.Random(f"invoice-{number}")
    vendor, address = VENDORS[number % len(VENDORS)]  # consecutive numbers: different vendors
    return SampleDocument(
        kind="Invoice",
        issuer=vendor,
        address=address,
        number=f"INV-2026-{number:05d}",
        issued=FIRST_ISSUE_DATE + timedelta(days=number % 29),
        currency=rng.choice(CURRENCIES),
        items=_items(rng, CATALOGUE, pages * rng.randint(3, 6)),
        customer=rng.choice(CUSTOMERS),
        vat_percent=rng.choice((0, 7, 19, 20)),
    )


def receipt_for(number: int, pages: int = 1) -> SampleDocument:
    """The receipt ``make_receipt_pdf(number, pages)`` renders."""
    rng = random.Random(f"receipt-{number}")
    return SampleDocument(
        kind="Receipt",
        issuer=SHOPS[number % len(SHOPS)],
        address=f"{rng.randint(1, 99)} Market Street",
        number=f"R-{number:06d}",
        issued=FIRST_ISSUE_DATE + timedelta(days=number % 29),
        currency="EUR",
        items=_items(rng, RECEIPT_CATALOGUE, pages * rng.randint(4, 7)),
        vat_percent=7,
    )


# --- PDF rendering ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Layout:
    """Margins, type size and column widths scaled to the page (A4 or a till roll)."""

    width: float
    height: float
    margin: float
    font_size: float
    row: float

    @classmethod
    def for_page(cls, page_size: PageSize) -> _Layout:
        width, height = A4_MM if page_size == "A4" else page_size
        wide = width >= 150
        font_size = 10.0 if wide else 7.0
        return cls(width, height, 15.0 if wide else 5.0, font_size, font_size * 0.5)

    @property
    def columns(self) -> tuple[float, float, float, float]:
        usable = self.width - 2 * self.margin
        return usable * 0.5, usable * 0.12, usable * 0.19, usable * 0.19


def _new_pdf(page_size: PageSize) -> FPDF:
    from fpdf import FPDF

    layout = _Layout.for_page(page_size)
    pdf = FPDF(unit="mm", format=(layout.width, layout.height))
    pdf.set_creation_date(CREATION_DATE)
    pdf.set_auto_page_break(False)
    pdf.set_margins(layout.margin, layout.margin)
    return pdf


def _line(pdf: FPDF, layout: _Layout, text: str, *, bold: bool = False, scale: float = 1.0) -> None:
    pdf.set_font("Helvetica", "B" if bold else "", layout.font_size * scale)
    pdf.cell(0, layout.row * scale, text, new_x="LMARGIN", new_y="NEXT")


def _row(pdf: FPDF, layout: _Layout, cells: tuple[str, str, str, str], *, bold: bool = False) -> None:
    pdf.set_font("Helvetica", "B" if bold else "", layout.font_size)
    for text, width, align in zip(cells, layout.columns, ("L", "R", "R", "R"), strict=True):
        pdf.cell(width, layout.row, text, align=align)
    pdf.ln(layout.row)


def _header(pdf: FPDF, layout: _Layout, document: SampleDocument) -> None:
    _line(pdf, layout, document.kind.upper(), bold=True, scale=1.6)
    _line(pdf, layout, document.issuer, bold=True)
    _line(pdf, layout, document.address)
    _line(pdf, layout, f"{document.kind} number: {document.number}")
    _line(pdf, layout, f"Date: {document.issued.isoformat()}")
    if document.customer:
        _line(pdf, layout, f"Bill to: {document.customer}")
    pdf.ln(layout.row)


def _totals(pdf: FPDF, layout: _Layout, document: SampleDocument) -> None:
    pdf.ln(layout.row / 2)
    currency = document.currency
    _row(pdf, layout, ("Subtotal", "", "", f"{money(document.subtotal_cents)} {currency}"))
    _row(pdf, layout, (f"VAT {document.vat_percent}%", "", "", f"{money(document.vat_cents)} {currency}"))
    _row(pdf, layout, ("TOTAL", "", "", f"{money(document.total_cents)} {currency}"), bold=True)
    pdf.ln(layout.row)
    _line(pdf, layout, "Paid by card. Thank you!" if document.kind == "Receipt" else "Payment due within 30 days.")


def _page_number(pdf: FPDF, layout: _Layout, page: int, pages: int) -> None:
    pdf.set_xy(layout.margin, layout.height - layout.margin)
    _line(pdf, layout, f"Page {page} of {pages}", scale=0.8)


def _split(items: tuple[LineItem, ...], pages: int) -> list[tuple[LineItem, ...]]:
    per_page = -(-len(items) // pages)
    return [items[i * per_page : (i + 1) * per_page] for i in range(pages)]


def render_pdf(document: SampleDocument, pages: int = 1, page_size: PageSize = "A4") -> bytes:
    """``document`` as a text-layer PDF of exactly ``pages`` pages, its items spread over them."""
    if pages < 1:
        raise ValueError("pages must be at least 1")
    pdf = _new_pdf(page_size)
    layout = _Layout.for_page(page_size)
    for page, items in enumerate(_split(document.items, pages), start=1):
        pdf.add_page()
        if page == 1:
            _header(pdf, layout, document)
        else:
            _line(pdf, layout, f"{document.issuer} - {document.number} (continued)", bold=True)
            pdf.ln(layout.row)
        _row(pdf, layout, ("Item", "Qty", "Unit", "Amount"), bold=True)
        for item in items:
            _row(pdf, layout, (item.description, str(item.quantity), money(item.unit_cents), money(item.amount_cents)))
        if page == pages:
            _totals(pdf, layout, document)
        _page_number(pdf, layout, page, pages)
    return bytes(pdf.output())


def make_invoice_pdf(number: int, pages: int = 2, page_size: PageSize = "A4") -> bytes:
    """A text-layer invoice PDF, distinct for every ``number``; its content is ``invoice_for(number, pages)``."""
    return render_pdf(invoice_for(number, pages), pages, page_size)


def make_receipt_pdf(number: int, pages: int = 1) -> bytes:
    """A till receipt PDF (80 mm x 150 mm pages); its content is ``receipt_for(number, pages)``."""
    return render_pdf(receipt_for(number, pages), pages, RECEIPT_MM)


def make_encrypted_pdf(number: int = 1) -> bytes:
    """An invoice PDF that opens only with the user password ``ENCRYPTED_PDF_USER_PASSWORD`` (RC4, deterministic)."""
    pdf = _new_pdf("A4")
    pdf.set_encryption(owner_password="sample-owner", user_password=ENCRYPTED_PDF_USER_PASSWORD)
    pdf.add_page()
    layout = _Layout.for_page("A4")
    document = invoice_for(number, 1)
    _header(pdf, layout, document)
    _totals(pdf, layout, document)
    return bytes(pdf.output())


def make_corrupt_pdf(number: int = 1) -> bytes:
    """A PDF cut in the middle of its objects and followed by junk: starts with ``%PDF-``, parses as nothing."""
    whole = make_invoice_pdf(number, pages=1)
    return whole[: len(whole) // 2] + b"\x00\xffjunk after a truncated transfer\x00" * 4


# --- images -----------------------------------------------------------------------------------------------------


def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    from PIL import ImageFont

    return ImageFont.load_default(size=size)


def _encode(image: Image.Image, fmt: str, quality: int = 85, **options: object) -> bytes:
    buffer = io.BytesIO()
    if fmt.upper() in ("JPEG", "WEBP"):
        options["quality"] = quality
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def _gradient(width: int, height: int, dark: str, light: str) -> Image.Image:
    from PIL import Image, ImageOps

    ramp = Image.linear_gradient("L").resize((width, height))
    return ImageOps.colorize(ramp, dark, light)


def product_photo(width: int, height: int, label: str, seed: int = 0) -> Image.Image:
    """A synthetic product shot: a gradient backdrop, a box with a lid, a shadow and a ``label`` on the box."""
    from PIL import ImageDraw

    rng = random.Random(seed)
    palette = ("#c0392b", "#2471a3", "#1e8449", "#b7950b", "#7d3c98")
    image = _gradient(width, height, "#5d6d7e", "#fdfefe")
    draw = ImageDraw.Draw(image)
    box_w, box_h = int(width * rng.uniform(0.35, 0.5)), int(height * rng.uniform(0.4, 0.55))
    left, bottom = (width - box_w) // 2, int(height * 0.72)
    top, right = bottom - box_h, left + box_w
    shadow = (left - box_w // 8, bottom - height // 30, right + box_w // 8, bottom + height // 30)
    lid = (left - box_w // 20, top - box_h // 10, right + box_w // 20, top)
    draw.ellipse(shadow, fill="#34495e")
    draw.rectangle((left, top, right, bottom), fill=rng.choice(palette), outline="#17202a", width=max(1, width // 300))
    draw.rectangle(lid, fill="#d5d8dc")
    label_font = _font(max(10, box_w // max(6, len(label))))
    draw.text((left + box_w // 10, top + box_h // 3), label, fill="white", font=label_font)
    return image


def make_photo(width: int, height: int, label: str, fmt: str = "JPEG", quality: int = 85, seed: int = 0) -> bytes:
    """A :func:`product_photo` encoded as ``fmt`` (``JPEG``, ``PNG``, ``WEBP``)."""
    return _encode(product_photo(width, height, label, seed), fmt, quality)


def _undo_orientation(upright: Image.Image, orientation: int) -> Image.Image:
    """The pixels to store so that a viewer applying EXIF ``orientation`` shows ``upright`` (the inverse turn)."""
    from PIL import Image

    undo = {
        2: Image.Transpose.FLIP_LEFT_RIGHT,
        3: Image.Transpose.ROTATE_180,
        4: Image.Transpose.FLIP_TOP_BOTTOM,
        5: Image.Transpose.TRANSPOSE,
        6: Image.Transpose.ROTATE_90,
        7: Image.Transpose.TRANSVERSE,
        8: Image.Transpose.ROTATE_270,
    }
    if orientation == 1:
        return upright
    if orientation not in undo:
        raise ValueError(f"EXIF orientation must be 1-8, not {orientation}")
    return upright.transpose(undo[orientation])


def orientation_test_image(width: int = 600, height: int = 400) -> Image.Image:
    """The upright picture: a red block in the top-left corner, a blue one bottom-right, and ``TOP LEFT``."""
    from PIL import Image, ImageDraw

    image = Image.new("RGB", (width, height), "#f4f6f7")
    draw = ImageDraw.Draw(image)
    draw.rectangle((0, 0, width // 4, height // 4), fill=(220, 0, 0))
    draw.rectangle((width * 3 // 4, height * 3 // 4, width, height), fill=(0, 0, 220))
    draw.text((width // 4 + 10, 10), "TOP LEFT", fill="black", font=_font(max(10, height // 10)))
    return image


def make_oriented_photo(orientation: int, width: int = 600, height: int = 400) -> bytes:
    """A JPEG with EXIF ``orientation`` whose pixels are stored so that it looks like the upright picture only once
    the orientation is applied (red block top-left)."""
    from PIL import Image

    stored = _undo_orientation(orientation_test_image(width, height), orientation)
    exif = Image.Exif()
    exif[EXIF_ORIENTATION] = orientation
    return _encode(stored, "JPEG", 90, exif=exif)


def make_large_photo(width: int, height: int, quality: int = 95, seed: int = 0) -> bytes:
    """A big JPEG of a gradient under per-pixel noise, which does not compress away (7000x5000: about 30 MB)."""
    from PIL import Image, ImageChops

    noise = Image.frombytes("L", (width, height), random.Random(seed).randbytes(width * height))
    noisy = Image.merge("RGB", (noise, ImageChops.invert(noise), noise.transpose(Image.Transpose.FLIP_LEFT_RIGHT)))
    return _encode(Image.blend(_gradient(width, height, "#1b2631", "#f7dc6f"), noisy, 0.7), "JPEG", quality)


def _scanned_page(document: SampleDocument, seed: int) -> Image.Image:
    """The document typed on an off-white page at 100 dpi, turned a little and speckled like a scan."""
    from PIL import Image, ImageDraw

    width, height = 827, 1169
    page = Image.new("L", (width, height), 238)
    draw = ImageDraw.Draw(page)
    lines = [document.kind.upper(), document.issuer, document.address, f"Invoice number: {document.number}"]
    lines += [f"Date: {document.issued.isoformat()}", f"Bill to: {document.customer}", "", "Item  Qty  Amount"]
    lines += [f"{item.description}  {item.quantity}  {money(item.amount_cents)}" for item in document.items]
    lines += [
        "",
        f"Subtotal {money(document.subtotal_cents)}",
        f"VAT {document.vat_percent}% {money(document.vat_cents)}",
    ]
    lines += [f"TOTAL {money(document.total_cents)} {document.currency}"]
    for index, text in enumerate(lines):
        draw.text((80, 90 + index * 36), text, fill=40, font=_font(34 if index == 0 else 24))
    rng = random.Random(seed)
    turned = page.rotate(rng.uniform(0.8, 1.6), resample=Image.Resampling.BICUBIC, fillcolor=200)
    speckle = Image.frombytes("L", (width, height), rng.randbytes(width * height))
    return Image.blend(turned, speckle, 0.12)


def make_scanned_invoice_pdf(number: int, seed: int = 0) -> bytes:
    """An A4 invoice whose only page content is a raster image (no text layer), like a scanner produces."""
    document = invoice_for(number, 1)
    pdf = _new_pdf("A4")
    pdf.add_page()
    scan = io.BytesIO(_encode(_scanned_page(document, seed), "JPEG", 55))
    pdf.image(scan, x=0, y=0, w=A4_MM[0], h=A4_MM[1])
    return bytes(pdf.output())


def make_long_pdf(pages: int = 200, image_every: int = 10) -> bytes:
    """A report of ``pages`` A4 pages with a text layer on each and a photo on every ``image_every``-th page."""
    pdf = _new_pdf("A4")
    layout = _Layout.for_page("A4")
    rng = random.Random(f"long-{pages}")
    photo = io.BytesIO(make_photo(400, 300, "Figure", "JPEG", 80))
    for page in range(1, pages + 1):
        pdf.add_page()
        _line(pdf, layout, f"Quarterly operations report - section {page}", bold=True, scale=1.3)
        for _ in range(3):  # paragraphs of five lines, set line by line (much faster than multi_cell)
            for _ in range(5):
                _line(pdf, layout, " ".join(rng.choices(LONG_PDF_WORDS, k=12)))
            pdf.ln(layout.row / 2)
        if page % image_every == 0:
            pdf.image(photo, x=layout.margin, y=pdf.get_y() + 5, w=100)
        _page_number(pdf, layout, page, pages)
    return bytes(pdf.output())
