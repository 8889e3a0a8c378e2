"""Regenerate the sample files of ``example_dags/files/`` (invoices, receipts, photos, broken files, texts).

    python scripts/make_sample_files.py          # write the files, then verify them
    python scripts/make_sample_files.py --check  # verify that the files on disk are what the generator makes

The content comes from :mod:`airflow_provider_aiml.testing.samples` (fixed seeds and dates), so two runs write
byte-identical files. Verified after writing: the text PDFs have a text layer and the scanned one has none, the
encrypted PDF opens only with its password, the corrupt one does not open, the photos carry their EXIF orientation.
"""

from __future__ import annotations

import argparse
import io
import sys
from collections.abc import Callable
from functools import partial
from pathlib import Path

from airflow_provider_aiml.testing import samples

REPO = Path(__file__).resolve().parents[1]
FILES = REPO / "example_dags" / "files"
MAX_TOTAL_BYTES = 1_000_000

INVOICE_PAGES = {1: 2, 2: 1, 3: 2, 4: 3}  # invoice number -> pages; number 4 is the multi-page one
SCANNED_INVOICE_NUMBER = 5
RECEIPT_PAGES = {1: 1, 2: 1, 3: 2}
ORIENTATIONS = (3, 6, 8)

TEXTS = {
    "desk-lamp.txt": (
        "The Lumen Arc desk lamp has a weighted steel base and a 60 cm arm that holds any angle. "
        "Its LED head gives 800 lumens at three colour temperatures, from warm 2700 K to daylight 5000 K. "
        "A touch dimmer on the base remembers the last setting."
    ),
    "coffee-beans.txt": (
        "Tidewater House Blend is a medium roast of Brazilian and Ethiopian beans. "
        "Expect notes of milk chocolate, toasted hazelnut and a little citrus. "
        "Sold whole-bean in 1 kg valve bags, roasted to order every Tuesday."
    ),
    "usb-c-hub.txt": (
        "A seven-port USB-C hub in an aluminium shell: two USB-A 3.2 ports, two USB-C data ports, "
        "HDMI up to 4K at 60 Hz, an SD card reader and 100 W power pass-through. "
        "It draws no power of its own and needs no drivers."
    ),
    "notebook.txt": (
        "An A5 notebook with 160 pages of 100 g/m2 dotted paper that takes fountain pen ink without bleeding. "
        "Lay-flat binding, a ribbon marker and an elastic closure. The cover is recycled cardboard."
    ),
    "monitor-arm.txt": (
        "The Orbit monitor arm clamps to desks up to 9 cm thick and carries screens of 2 to 9 kg from 17 to 32 inches. "
        "Gas springs let you lift, tilt and swivel the screen with one hand; cables run inside the arm."
    ),
}

NOT_AN_IMAGE = b"This is a plain text file with a .png name: a reader must refuse it as an image.\n"


def invoice_name(number: int) -> str:
    return f"invoices/invoice-2026-12-01-{number}.pdf"


def receipt_name(number: int) -> str:
    return f"receipts/receipt-2026-12-01-{number}.pdf"


def generate() -> dict[str, bytes]:
    """Every sample file: relative path -> bytes."""
    files = {invoice_name(n): samples.make_invoice_pdf(n, pages) for n, pages in INVOICE_PAGES.items()}
    files["invoices/scanned-invoice-2026-12-02.pdf"] = samples.make_scanned_invoice_pdf(SCANNED_INVOICE_NUMBER)
    files |= {receipt_name(n): samples.make_receipt_pdf(n, pages) for n, pages in RECEIPT_PAGES.items()}
    files |= {
        "photos/product-small.png": samples.make_photo(400, 300, "Desk Lamp", "PNG", seed=1),
        "photos/product-medium.jpg": samples.make_photo(1600, 1200, "Coffee Beans", "JPEG", 85, seed=2),
        "photos/product-large.jpg": samples.make_photo(4000, 3000, "USB-C Hub", "JPEG", 70, seed=3),
        "photos/product.webp": samples.make_photo(800, 600, "Notebook", "WEBP", 80, seed=4),
    }
    files |= {f"photos/oriented-exif-{o}.jpg": samples.make_oriented_photo(o) for o in ORIENTATIONS}
    files |= {
        "bad/encrypted.pdf": samples.make_encrypted_pdf(),
        "bad/corrupt.pdf": samples.make_corrupt_pdf(),
        "bad/not-an-image.png": NOT_AN_IMAGE,
        "bad/empty.pdf": b"",
    }
    files |= {f"texts/{name}": (text + "\n").encode() for name, text in TEXTS.items()}
    files["README.md"] = readme().encode()
    return files


def _invoice_row(number: int, pages: int) -> str:
    invoice = samples.invoice_for(number, pages)
    total = f"{samples.money(invoice.total_cents)} {invoice.currency}"
    return f"| `{invoice_name(number)}` | {invoice.issuer} | {invoice.number} | {invoice.issued} | {pages} | {total} |"


def _receipt_row(number: int, pages: int) -> str:
    receipt = samples.receipt_for(number, pages)
    total = f"{samples.money(receipt.total_cents)} {receipt.currency}"
    return f"| `{receipt_name(number)}` | {receipt.issuer} | {receipt.number} | {receipt.issued} | {pages} | {total} |"


def readme() -> str:
    """The README of the files folder, with the values each document shows (to compare a model's answer with)."""
    scanned = samples.invoice_for(SCANNED_INVOICE_NUMBER, 1)
    table_head = ["| File | Issuer | Number | Date | Pages | Total |", "|---|---|---|---|---|---|"]
    lines = [
        "# Sample files for the example DAGs and tests",
        "",
        "Generated by `scripts/make_sample_files.py` (deterministic: fixed seeds and dates; run it again to",
        "regenerate them, `--check` to verify that these files are what it makes). All content is synthetic.",
        "",
        "## `invoices/` - A4 invoices with a text layer",
        "",
        *table_head,
        *(_invoice_row(number, pages) for number, pages in INVOICE_PAGES.items()),
        "",
        "`invoices/scanned-invoice-2026-12-02.pdf`: a scanned invoice"
        f" ({scanned.issuer}, {scanned.number}, total {samples.money(scanned.total_cents)} {scanned.currency}):",
        "one page whose only content is a slightly rotated, speckled grey raster image. It has no text layer,",
        "so only a vision model (or OCR) can read it.",
        "",
        "## `receipts/` - till receipts, 80 mm x 150 mm pages",
        "",
        *table_head,
        *(_receipt_row(number, pages) for number, pages in RECEIPT_PAGES.items()),
        "",
        "## `photos/` - synthetic product photos (shapes, gradients and a label)",
        "",
        "- `product-small.png`: 400x300 PNG.",
        "- `product-medium.jpg`: 1600x1200 JPEG.",
        "- `product-large.jpg`: 4000x3000 JPEG (quality 70), for downscaling before upload.",
        "- `product.webp`: 800x600 WEBP.",
        "- `oriented-exif-3.jpg`, `oriented-exif-6.jpg`, `oriented-exif-8.jpg`: JPEGs with EXIF orientation",
        "  3, 6 and 8. Shown upright (orientation applied) each is 600x400 with a red block in the top-left",
        "  corner and a blue one bottom-right; a reader that ignores the orientation gets the red block elsewhere.",
        "",
        "## `bad/` - files a reader must reject cleanly",
        "",
        f"- `encrypted.pdf`: an invoice that needs a password to open; the user password is"
        f" `{samples.ENCRYPTED_PDF_USER_PASSWORD}` (`samples.ENCRYPTED_PDF_USER_PASSWORD`).",
        "- `corrupt.pdf`: starts with `%PDF-` but is a PDF cut in the middle plus junk bytes; it does not open.",
        "- `not-an-image.png`: plain text with a `.png` name.",
        "- `empty.pdf`: 0 bytes.",
        "",
        "## `texts/` - short product descriptions for the embeddings example",
        "",
        *(f"- `{name}`" for name in TEXTS),
        "",
        "Bigger or more numerous samples (1,000 invoices, a 200-page PDF, a 30 MB photo) are generated on the fly by",
        "`airflow_provider_aiml.testing.samples` in the tests and benchmarks; they are not stored here.",
        "",
    ]
    return "\n".join(lines)


# --- verification -----------------------------------------------------------------------------------------------


def _page_texts(data: bytes, password: str | None = None) -> list[str]:
    import pypdfium2 as pdfium

    document = pdfium.PdfDocument(data, password=password)
    try:
        return [document[index].get_textpage().get_text_range() for index in range(len(document))]
    finally:
        document.close()


def _fails_to_open(data: bytes) -> bool:
    import pypdfium2 as pdfium

    try:
        pdfium.PdfDocument(data).close()
    except pdfium.PdfiumError:
        return True
    return False


def _orientation(data: bytes) -> int | None:
    from PIL import Image

    with Image.open(io.BytesIO(data)) as image:
        value = image.getexif().get(samples.EXIF_ORIENTATION)
        return int(value) if value is not None else None


def _red_top_left_once_oriented(data: bytes) -> bool:
    from PIL import Image, ImageOps

    with Image.open(io.BytesIO(data)) as image:
        red, green, blue = ImageOps.exif_transpose(image).convert("RGB").getpixel((5, 5))  # type: ignore[misc]
        return red > 180 and green < 60 and blue < 60


def _has_orientation(data: bytes, orientation: int) -> bool:
    return _orientation(data) == orientation


def _is_broken_pdf(data: bytes) -> bool:
    return data.startswith(b"%PDF-") and _fails_to_open(data)


def _opens_with(data: bytes, password: str) -> bool:
    return bool(_page_texts(data, password)[0])


def _has_no_text_layer(data: bytes) -> bool:
    return all(not text for text in _page_texts(data))


def checks(files: dict[str, bytes]) -> list[tuple[str, Callable[[], bool]]]:
    """What must hold for the generated files, as (description, check) pairs."""
    documents = {invoice_name(n): pages for n, pages in INVOICE_PAGES.items()}
    documents |= {receipt_name(n): pages for n, pages in RECEIPT_PAGES.items()}
    found: list[tuple[str, Callable[[], bool]]] = [
        (f"{name}: {pages} page(s) with text", partial(_all_text, files[name], pages))
        for name, pages in documents.items()
    ]
    encrypted = files["bad/encrypted.pdf"]
    found += [
        (
            "scanned invoice: no text layer",
            partial(_has_no_text_layer, files["invoices/scanned-invoice-2026-12-02.pdf"]),
        ),
        ("encrypted.pdf: fails without the password", partial(_fails_to_open, encrypted)),
        (
            "encrypted.pdf: opens with the password",
            partial(_opens_with, encrypted, samples.ENCRYPTED_PDF_USER_PASSWORD),
        ),
        ("corrupt.pdf: starts with %PDF- and fails to open", partial(_is_broken_pdf, files["bad/corrupt.pdf"])),
    ]
    for orientation in ORIENTATIONS:
        name = f"photos/oriented-exif-{orientation}.jpg"
        found += [
            (f"{name}: EXIF orientation {orientation}", partial(_has_orientation, files[name], orientation)),
            (f"{name}: red block top-left once oriented", partial(_red_top_left_once_oriented, files[name])),
        ]
    total = sum(map(len, files.values()))
    found.append((f"total size {total:,} B under {MAX_TOTAL_BYTES:,} B", partial(bool, total < MAX_TOTAL_BYTES)))
    return found


def _all_text(data: bytes, pages: int) -> bool:
    texts = _page_texts(data)
    return len(texts) == pages and all(text.strip() for text in texts)


def verify(files: dict[str, bytes]) -> bool:
    """Run :func:`checks`, print each result; True when all pass."""
    ok = True
    for description, check in checks(files):
        passed = check()
        ok &= passed
        print(f"  {'ok  ' if passed else 'FAIL'} {description}")
    return ok


def write(files: dict[str, bytes]) -> None:
    for name, data in sorted(files.items()):
        path = FILES / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        print(f"  {len(data):>9,} B  {path.relative_to(REPO)}")
    print(f"  {sum(map(len, files.values())):>9,} B  in {len(files)} files")


def differences(files: dict[str, bytes]) -> list[str]:
    """The files on disk that are missing or differ from the generated ones."""
    return [
        name
        for name, data in sorted(files.items())
        if not (FILES / name).is_file() or (FILES / name).read_bytes() != data
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--check", action="store_true", help="verify the files on disk instead of writing them")
    args = parser.parse_args(argv)
    files = generate()
    if args.check:
        stale = differences(files)
        for name in stale:
            print(f"  differs from the generator: {name}")
        if stale:
            return 1
    else:
        write(files)
    print("verifying:")
    return 0 if verify(files) else 1


if __name__ == "__main__":
    sys.exit(main())
