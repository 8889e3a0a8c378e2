"""Regenerate the sample files of ``example_dags/files/`` (invoices, receipts, photos, broken files, texts, a shop DB).

    python scripts/make_sample_files.py          # write the files, then verify them
    python scripts/make_sample_files.py --check  # verify that the files on disk are what the generator makes

The content comes from :mod:`airflow_provider_aiml.testing.samples` and the shop tables below (fixed seeds and
dates), so two runs write byte-identical files; ``--check`` compares the shop database by its SQL dump, since
SQLite writes its own version into the file's header. Verified after writing: the text PDFs have a text layer and
the scanned one has none, the encrypted PDF opens only with its password, the corrupt one does not open, the
photos carry their EXIF orientation, the shop database passes SQLite's integrity check and holds every row.
"""

from __future__ import annotations

import argparse
import io
import random
import sqlite3
import sys
from collections.abc import Callable
from datetime import date, timedelta
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

# --- the shop database (example_aiml_sql_analyst) --------------------------------------------------------------

SHOP_DB = "shop.sqlite"
SHOP_MAX_BYTES = 100_000
SHOP_SEED = 2026
SHOP_FIRST_MONTH = date(2025, 12, 1)
SHOP_MONTHS = 12  # orders from 2025-12-01 to 2026-11-30
SHOP_TABLES = ("customers", "products", "orders")
"""The tables the SQL analyst example lets the model read."""
SHOP_SECRET_TABLE = "staff_salaries"
"""In the same file, and not one of :data:`SHOP_TABLES`: the toolset must refuse every query that reads it."""

SHOP_SCHEMA = """
CREATE TABLE customers (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    city TEXT NOT NULL,
    country TEXT NOT NULL,
    joined_on DATE NOT NULL
);
CREATE TABLE products (
    id INTEGER PRIMARY KEY,
    sku TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    category TEXT NOT NULL,
    unit_price_cents INTEGER NOT NULL
);
CREATE TABLE orders (
    id INTEGER PRIMARY KEY,
    customer_id INTEGER NOT NULL REFERENCES customers (id),
    product_id INTEGER NOT NULL REFERENCES products (id),
    ordered_on DATE NOT NULL,
    quantity INTEGER NOT NULL,
    unit_price_cents INTEGER NOT NULL
);
CREATE TABLE staff_salaries (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    role TEXT NOT NULL,
    annual_salary_eur INTEGER NOT NULL
);
"""

# sku, name, category, price in cents (EUR), relative popularity
SHOP_PRODUCTS = (
    ("LA-100", "Lumen Arc desk lamp", "lighting", 4900, 5),
    ("CB-210", "Tidewater House Blend coffee, 1 kg", "coffee", 2450, 9),
    ("HB-307", "USB-C hub, 7 ports", "electronics", 4299, 6),
    ("NB-405", "A5 dotted notebook", "stationery", 799, 10),
    ("MA-520", "Orbit monitor arm", "furniture", 8900, 3),
    ("KB-612", "Low-profile mechanical keyboard", "electronics", 11900, 2),
    ("MS-618", "Silent wireless mouse", "electronics", 2999, 6),
    ("FP-704", "Fountain pen, fine nib", "stationery", 3450, 4),
    ("MG-811", "Stoneware mug, 350 ml", "kitchen", 1450, 7),
    ("GR-815", "Hand-crank burr grinder", "coffee", 6900, 3),
    ("CH-902", "Ergonomic task chair", "furniture", 28900, 1),
    ("WB-930", "Whiteboard, 90 x 60 cm", "stationery", 5900, 2),
)
SHOP_FIRST_NAMES = (
    "Ana", "Ben", "Chloe", "Dario", "Elif", "Farah", "Goran", "Hana", "Ivo", "Jonas",
    "Kaia", "Luca", "Mira", "Nils", "Olga", "Pavel", "Rosa", "Sami", "Tess", "Uma",
)  # fmt: skip
SHOP_LAST_NAMES = ("Berg", "Costa", "Duval", "Fischer", "Horvat", "Jensen", "Kowalski", "Moreau", "Novak", "Rossi")
SHOP_CITIES = (
    ("Hamburg", "Germany"),
    ("Lyon", "France"),
    ("Bristol", "United Kingdom"),
    ("Porto", "Portugal"),
    ("Utrecht", "Netherlands"),
    ("Graz", "Austria"),
)
SHOP_CUSTOMERS = 40
SHOP_STAFF = (
    ("Marta Lindqvist", "managing director", 118_430),
    ("Tobias Aaltonen", "head of operations", 87_915),
    ("Ines Carvalho", "buyer", 61_270),
    ("Pieter de Wit", "warehouse lead", 53_645),
    ("Yara Haddad", "customer support", 44_380),
    ("Leon Brandt", "customer support", 42_715),
)


def _month_start(index: int) -> date:
    year, month = divmod(SHOP_FIRST_MONTH.month - 1 + index, 12)
    return date(SHOP_FIRST_MONTH.year + year, month + 1, 1)


def shop_rows() -> dict[str, list[tuple[object, ...]]]:
    """The rows of each table of the shop database (fixed seed): table -> rows in column order."""
    rng = random.Random(SHOP_SEED)
    customers: list[tuple[object, ...]] = []
    for number in range(1, SHOP_CUSTOMERS + 1):
        city, country = rng.choice(SHOP_CITIES)
        joined = SHOP_FIRST_MONTH - timedelta(days=rng.randint(30, 900))
        name = f"{rng.choice(SHOP_FIRST_NAMES)} {rng.choice(SHOP_LAST_NAMES)}"
        customers.append((number, name, city, country, joined.isoformat()))
    products: list[tuple[object, ...]] = [
        (n, sku, name, kind, price) for n, (sku, name, kind, price, _) in enumerate(SHOP_PRODUCTS, 1)
    ]
    orders = []
    for index in range(SHOP_MONTHS):
        start, end = _month_start(index), _month_start(index + 1)
        # Each month favours some products more than others, so the best sellers change from month to month.
        weights = [popularity * rng.uniform(0.4, 1.6) for *_, popularity in SHOP_PRODUCTS]
        for _ in range(rng.randint(24, 36)):
            product = rng.choices(range(len(SHOP_PRODUCTS)), weights)[0]
            price = SHOP_PRODUCTS[product][3]
            if rng.random() < 0.15:  # a 10 % discount
                price = price - price // 10
            day = start + timedelta(days=rng.randrange((end - start).days))
            quantity = rng.choices((1, 2, 3, 4), (8, 4, 2, 1))[0]
            orders.append((rng.randint(1, SHOP_CUSTOMERS), product + 1, day.isoformat(), quantity, price))
    orders.sort(key=lambda order: order[2])
    staff: list[tuple[object, ...]] = [(n, name, role, salary) for n, (name, role, salary) in enumerate(SHOP_STAFF, 1)]
    return {
        "customers": customers,
        "products": products,
        "orders": [(n, *order) for n, order in enumerate(orders, 1)],
        SHOP_SECRET_TABLE: staff,
    }


def make_shop_database() -> bytes:
    """The shop database as the bytes of a SQLite file, built in memory."""
    connection = sqlite3.connect(":memory:")
    try:
        connection.execute("PRAGMA page_size = 1024")
        connection.executescript(SHOP_SCHEMA)
        with connection:
            for table, rows in shop_rows().items():
                marks = ", ".join("?" * len(rows[0]))
                connection.executemany(f"INSERT INTO {table} VALUES ({marks})", rows)
        connection.execute("VACUUM")
        return connection.serialize()
    finally:
        connection.close()


def _shop_tables() -> list[tuple[str, int, list[str]]]:
    """(table, row count, column names) of the shop database, in the schema's order."""
    rows = shop_rows()
    connection = sqlite3.connect(":memory:")
    try:
        connection.executescript(SHOP_SCHEMA)
        return [
            (table, len(rows[table]), [column[1] for column in connection.execute(f"PRAGMA table_info({table})")])
            for table in rows
        ]
    finally:
        connection.close()


def shop_dump(data: bytes) -> list[str]:
    """The SQL statements that rebuild a SQLite file's content (schema and rows): to compare two files."""
    connection = sqlite3.connect(":memory:")
    try:
        connection.deserialize(data)
        return list(connection.iterdump())
    finally:
        connection.close()


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
    files[SHOP_DB] = make_shop_database()
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
    first, last = SHOP_FIRST_MONTH, _month_start(SHOP_MONTHS) - timedelta(days=1)
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
        f"## `{SHOP_DB}` - a small shop database for the SQL analyst example",
        "",
        f"A SQLite file read by `example_aiml_sql_analyst`: orders from {first.isoformat()} to {last.isoformat()},",
        "one product per order, prices in euro cents (`orders.unit_price_cents` is the price paid, after any",
        "discount).",
        "",
        "| Table | Rows | Columns |",
        "|---|---|---|",
        *(f"| `{table}` | {count} | {', '.join(columns)} |" for table, count, columns in _shop_tables()),
        "",
        f"`{SHOP_SECRET_TABLE}` is there on purpose: it is not one of the example's `allowed_tables`, so the SQL",
        "toolset refuses every query that reads it, and its rows never reach the model.",
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
    shop = files[SHOP_DB]
    found += [
        (f"{SHOP_DB}: integrity check ok", partial(_shop_is_intact, shop)),
        (f"{SHOP_DB}: every table has its rows", partial(_shop_has_rows, shop)),
        (f"{SHOP_DB}: {len(shop):,} B under {SHOP_MAX_BYTES:,} B", partial(bool, len(shop) < SHOP_MAX_BYTES)),
    ]
    total = sum(map(len, files.values()))
    found.append((f"total size {total:,} B under {MAX_TOTAL_BYTES:,} B", partial(bool, total < MAX_TOTAL_BYTES)))
    return found


def _all_text(data: bytes, pages: int) -> bool:
    texts = _page_texts(data)
    return len(texts) == pages and all(text.strip() for text in texts)


def _shop_query(data: bytes, sql: str) -> list[tuple[object, ...]]:
    connection = sqlite3.connect(":memory:")
    try:
        connection.deserialize(data)
        return connection.execute(sql).fetchall()
    finally:
        connection.close()


def _shop_is_intact(data: bytes) -> bool:
    return _shop_query(data, "PRAGMA integrity_check") == [("ok",)]


def _shop_has_rows(data: bytes) -> bool:
    return all(
        _shop_query(data, f"SELECT COUNT(*) FROM {table}") == [(len(rows),)] and rows
        for table, rows in shop_rows().items()
    )


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
    return [name for name, data in sorted(files.items()) if not (FILES / name).is_file() or not _same(name, data)]


def _same(name: str, data: bytes) -> bool:
    """Whether the file on disk is the generated one: the same bytes, or for the database the same content."""
    on_disk = (FILES / name).read_bytes()
    if on_disk == data:
        return True
    return name == SHOP_DB and shop_dump(on_disk) == shop_dump(data)


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
