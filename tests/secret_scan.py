"""pytest plugin: fail the run if an API key of the test suite shows up in its logs, files or metadata database.

Enabled from ``tests/conftest.py`` (``pytest_plugins``). The secrets are every key the suite uses: string
constants of the test sources that look like keys (``sk-...``, ``password=``/``api_key=`` values, ``Bearer ...``
headers, ``scheme://:key@host`` URIs, ``*_KEY`` constants), the keys of the ``AIRFLOW_CONN_*`` connections in the
environment and any value passed to :func:`register_secret`. Scanned: the captured log/stdout/stderr sections of
every test phase, the output tests read with ``capsys``/``capfd`` (e.g. ``dag.test()`` task logs), every file under
the Airflow home (and its log folder) and the rows of the metadata database.
A finding names the place and shows the context with the key replaced by ``<KEY>``; the key itself is never shown.
The counts go to ``build/secret-scan.json``.
"""

from __future__ import annotations

import ast
import json
import os
import re
import sys
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus, unquote

import pytest

PLACEHOLDER = "<KEY>"
MIN_STRONG_LENGTH = 5  # shorter keys (and plain words) are only matched where a key is expected
CONTEXT_CHARS = 60
REPORT_PATH = Path("build") / "secret-scan.json"
SOURCE_DIRS = ("tests", "airflow_provider_aiml/testing", "scripts", "benchmarks", "docs/snippets", "example_dags")
# Tables that hold credentials by design; everything else in the metadata database is an output.
CREDENTIAL_TABLES = frozenset({"connection", "variable"})
NAMED_TABLES = {
    "xcom": "xcom_rows",
    "rendered_task_instance_fields": "rendered_field_rows",
    "trigger": "trigger_rows",
    "log": "log_table_rows",
    "task_instance_note": "ti_note_rows",
}

_INVISIBLE = r"\s\u200b-\u200f\u2028\u2029\u2060\ufeff"
_SECRET_NAME = re.compile(r"(?i)(?:^|_)(?:api_?key|key|password|passwd|secret|token)s?$")
_SECRET_FIELD = re.compile(r"(?i)^(?:password|passwd|api_?key|apikey|token|secret|authorization|x-api-key)$")
_SECRET_KEYWORD = re.compile(r"(?i)^(?:password|passwd|api_?key|token|secret)$")
_CLIENT_CALL = re.compile(r"(?i)client|conn|hook|auth")
_URI_PASSWORD = re.compile(r"://[^/:@\s]*:([^@/\s]+)@")
_KEY_CONTEXT = (
    r"(?:(?i:bearer)\s+"
    r"|(?i:password|passwd|api[_-]?key|apikey|token|secret|authorization|x-api-key)[\"']?\s*[:=]\s*[\"']?"
    r"(?:(?i:bearer)\s+)?"
    r"|://[^\s:/@]*:)"
)
_KEY_END = r"(?![\w.~+/-])"


@dataclass(frozen=True)
class Secret:
    """A key to look for and where the suite defines it (never the value in reports)."""

    value: str
    origin: str

    @property
    def strong(self) -> bool:
        """Distinctive enough to be searched as a plain substring."""
        return len(self.value) >= MIN_STRONG_LENGTH and not self.value.isalpha()


@dataclass(frozen=True)
class Finding:
    """A key found in an output: where, the redacted context and where the key is defined."""

    where: str
    context: str
    secret_origin: str


def _variants(value: str) -> set[str]:
    """The spellings a key takes in logs and files: raw, JSON/repr-escaped and URL-encoded."""
    spellings = {value, json.dumps(value)[1:-1], json.dumps(value, ensure_ascii=False)[1:-1], repr(value)[1:-1]}
    spellings |= {quote(value, safe=""), quote_plus(value, safe="")}
    return {s for s in spellings if s}


class SecretSet:
    """The keys to look for; finds them in text and redacts them."""

    def __init__(self, secrets: Iterable[Secret] = ()) -> None:
        self._secrets: dict[str, Secret] = {}
        self._patterns: tuple[re.Pattern[str] | None, re.Pattern[str] | None] | None = None
        self._by_spelling: dict[str, Secret] = {}
        for secret in secrets:
            self.add(secret.value, secret.origin)

    def add(self, value: str | None, origin: str) -> None:
        """Register ``value`` (and, for a key with whitespace or invisible characters, each longer piece of it)."""
        if not isinstance(value, str) or not value.strip():
            return
        for candidate in {value, *(p for p in re.split(f"[{_INVISIBLE}]+", value) if len(p) >= MIN_STRONG_LENGTH)}:
            if candidate not in self._secrets:
                self._secrets[candidate] = Secret(candidate, origin)
                self._patterns = None

    def __iter__(self) -> Iterator[Secret]:
        return iter(self._secrets.values())

    def __len__(self) -> int:
        return len(self._secrets)

    def _compiled(self) -> tuple[re.Pattern[str] | None, re.Pattern[str] | None]:
        if self._patterns is None:
            self._by_spelling = {}
            strong: set[str] = set()
            weak: set[str] = set()
            for secret in self._secrets.values():
                for spelling in _variants(secret.value):
                    self._by_spelling.setdefault(spelling, secret)
                    (strong if secret.strong else weak).add(spelling)

            def alternation(spellings: set[str]) -> str:
                return "|".join(re.escape(s) for s in sorted(spellings, key=lambda s: (-len(s), s)))

            self._patterns = (
                re.compile(alternation(strong)) if strong else None,
                re.compile(f"{_KEY_CONTEXT}({alternation(weak)}){_KEY_END}") if weak else None,
            )
        return self._patterns

    def matches(self, text: str) -> list[tuple[int, int, Secret]]:
        """Non-overlapping ``(start, end, secret)`` spans of keys in ``text``, longest first at a position."""
        strong, weak = self._compiled()
        spans: list[tuple[int, int, Secret]] = []
        if strong is not None:
            spans += [(m.start(), m.end(), self._by_spelling[m.group()]) for m in strong.finditer(text)]
        if weak is not None:
            spans += [(m.start(1), m.end(1), self._by_spelling[m.group(1)]) for m in weak.finditer(text)]
        spans.sort(key=lambda span: (span[0], -span[1]))
        kept: list[tuple[int, int, Secret]] = []
        for span in spans:
            if not kept or span[0] >= kept[-1][1]:
                kept.append(span)
            elif span[1] > kept[-1][1]:  # overlapping spans: one longer span
                kept[-1] = (kept[-1][0], span[1], kept[-1][2])
        return kept

    def redact(self, text: str) -> str:
        """``text`` with every key replaced by ``<KEY>``."""
        out, last = [], 0
        for start, end, _ in self.matches(text):
            out += [text[last:start], PLACEHOLDER]
            last = end
        return "".join([*out, text[last:]])


# --- collecting the secrets -----------------------------------------------------------------------------------


def _callee_name(call: ast.Call) -> str:
    func = call.func
    return func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""


def _str(node: ast.AST | None) -> str | None:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


def _plausible(value: str) -> bool:
    """Not a masked/truncated display form, a placeholder sentence or an f-string fragment."""
    if not value.strip() or any(mark in value for mark in ("...", "\u2026", "***", "{", "}")):
        return False
    return value.startswith("sk-") or not re.search(r"\s", value)


def secrets_in_source(source: str, filename: str = "<source>") -> list[Secret]:
    """The keys a Python source defines as string constants (see the module docstring for the rules)."""
    tree = ast.parse(source, filename)
    in_fstring = {id(part) for node in ast.walk(tree) if isinstance(node, ast.JoinedStr) for part in node.values}
    found: list[tuple[str, int]] = []

    def add(value: str | None, node: ast.AST) -> None:
        if value is not None and _plausible(value):
            found.append((value, getattr(node, "lineno", 0)))

    for node in ast.walk(tree):
        text = _str(node)
        if text is not None and id(node) not in in_fstring:
            if text.startswith("sk-") and len(text) > 3:
                add(text, node)
            if text[:7].lower() == "bearer " and text[7:].strip():
                add(text[7:].strip(), node)
            for uri_password in _URI_PASSWORD.findall(text):
                add(unquote(uri_password), node)
        if isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                pairs: Iterable[tuple[ast.AST, ast.AST | None]] = [(target, node.value)]
                if isinstance(target, ast.Tuple) and isinstance(node.value, ast.Tuple):
                    pairs = zip(target.elts, node.value.elts, strict=False)
                for name, value in pairs:
                    if isinstance(name, ast.Name) and _SECRET_NAME.search(name.id):
                        add(_str(value), node)
        elif isinstance(node, ast.Call):
            for keyword in node.keywords:
                name = keyword.arg or ""
                if _SECRET_KEYWORD.match(name) or (name == "key" and _CLIENT_CALL.search(_callee_name(node))):
                    add(_str(keyword.value), keyword.value)
                elif name == "api_keys" and isinstance(keyword.value, ast.Set | ast.List | ast.Tuple):
                    for element in keyword.value.elts:
                        add(_str(element), element)
        elif isinstance(node, ast.Dict):
            for key, value in zip(node.keys, node.values, strict=False):
                if (name := _str(key)) is not None and _SECRET_FIELD.match(name) and (text := _str(value)):
                    add(text[7:] if text[:7].lower() == "bearer " else text, value)
    return [Secret(value, f"{filename}:{line}") for value, line in found]


def secrets_in_files(paths: Iterable[Path], root: Path | None = None) -> list[Secret]:
    """The keys defined in the Python files ``paths`` (unparsable files are skipped)."""
    secrets: list[Secret] = []
    for path in paths:
        try:
            name = str(path.relative_to(root)) if root else str(path)
        except ValueError:
            name = str(path)
        try:
            secrets += secrets_in_source(path.read_text(encoding="utf-8"), name)
        except (OSError, SyntaxError, UnicodeDecodeError, ValueError):
            continue
    return secrets


def secrets_in_environment(environ: dict[str, str]) -> list[Secret]:
    """The passwords of the ``AIRFLOW_CONN_*`` connections (JSON or URI) and ``AIMLAPI_API_KEY``."""
    secrets = [Secret(environ["AIMLAPI_API_KEY"], "env AIMLAPI_API_KEY")] if environ.get("AIMLAPI_API_KEY") else []
    for name, value in environ.items():
        if not name.startswith("AIRFLOW_CONN_"):
            continue
        try:
            password = json.loads(value).get("password")
        except (ValueError, AttributeError):
            password = next((unquote(p) for p in _URI_PASSWORD.findall(value)), None)
        if isinstance(password, str) and password.strip():
            secrets.append(Secret(password, f"env {name}"))
    return secrets


# --- scanning -------------------------------------------------------------------------------------------------


def _printable(text: str) -> str:
    text = text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    text = text.replace("\r", "\\r").replace("\n", "\\n").replace("\t", "\\t")
    return "".join(c if c.isprintable() else "." for c in text)


def scan_text(text: str, secrets: SecretSet, where: str, *, position: str = "line") -> list[Finding]:
    """Findings for every key in ``text``; ``where`` names the place, plus ``:line`` or ``@offset`` (position)."""
    spans = secrets.matches(text)
    findings = []
    for start, end, secret in spans:
        lo, hi = max(0, start - CONTEXT_CHARS), min(len(text), end + CONTEXT_CHARS)
        for other_start, other_end, _ in spans:  # never cut a key in two at the edges of the excerpt
            if other_start < lo < other_end:
                lo = other_start
            if other_start < hi < other_end:
                hi = other_end
        parts, pos = [], lo
        for other_start, other_end, _ in spans:  # redact with the spans of the whole text (their context included)
            if lo <= other_start and other_end <= hi:
                parts += [text[pos:other_start], PLACEHOLDER]
                pos = other_end
        context = _printable("".join([*parts, text[pos:hi]]))
        context = ("..." if lo else "") + context + ("..." if hi < len(text) else "")
        place = {"line": f"{where}:{text.count(chr(10), 0, start) + 1}", "offset": f"{where}@{start}"}.get(position)
        findings.append(Finding(place or where, context, secret.origin))
    return findings


def scan_sections(nodeid: str, sections: Iterable[tuple[str, str]], secrets: SecretSet) -> list[Finding]:
    """Findings in a test report's captured sections (``("Captured log call", text)`` pairs)."""
    return [f for title, content in sections for f in scan_text(content, secrets, f"{nodeid} [{title}]")]


def scan_file(path: Path, secrets: SecretSet) -> list[Finding]:
    """Findings in a file's bytes (binary files, e.g. a SQLite database, included: placed by offset)."""
    try:
        data = path.read_bytes()
    except OSError:
        return []
    text = data.decode("utf-8", "surrogateescape")
    return scan_text(text, secrets, str(path), position="offset" if b"\x00" in data else "line")


def files_under(roots: Iterable[Path]) -> list[Path]:
    """Every regular file under ``roots`` (each once, symlinks not followed)."""
    seen: dict[Path, None] = {}
    for root in roots:
        if root.is_file():
            seen.setdefault(root.resolve())
        for directory, _, names in os.walk(root) if root.is_dir() else ():
            for name in names:
                path = Path(directory, name)
                if path.is_file() and not path.is_symlink():
                    seen.setdefault(path.resolve())
    return list(seen)


def value_text(value: Any) -> str | None:
    """A database value as text to scan (bytes decoded, JSON structures dumped)."""
    if value is None:
        return None
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).decode("utf-8", "surrogateescape")
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False, default=str)
    return str(value)


def scan_database(
    connection: Any,
    secrets: SecretSet,
    *,
    skip_tables: Iterable[str] = CREDENTIAL_TABLES,
    decoders: dict[tuple[str, str], Callable[[str], str | None]] | None = None,
) -> tuple[dict[str, int], list[Finding]]:
    """Scan every column of every row of every table (but ``skip_tables``) of a SQLAlchemy connection.

    Returns the rows scanned per table and the findings, named ``db <table>[<primary key>].<column>``.
    ``decoders`` maps ``(table, column)`` to a function giving a second text to scan (e.g. decrypted kwargs).
    """
    import sqlalchemy as sa

    inspector = sa.inspect(connection)
    preparer = connection.dialect.identifier_preparer
    counts: dict[str, int] = {}
    findings: list[Finding] = []
    for table in sorted(set(inspector.get_table_names()) - set(skip_tables)):
        keys = inspector.get_pk_constraint(table).get("constrained_columns") or []
        result = connection.execute(sa.text(f"SELECT * FROM {preparer.quote(table)}"))
        columns = list(result.keys())
        counts[table] = 0
        for row in result:
            counts[table] += 1
            record = dict(zip(columns, row, strict=True))
            row_id = ", ".join(f"{k}={record.get(k)}" for k in keys) if keys else f"row {counts[table]}"
            for column, value in record.items():
                text = value_text(value)
                if not text:
                    continue
                where = f"db {table}[{row_id}].{column}"
                findings += scan_text(text, secrets, where, position="none")
                decode = (decoders or {}).get((table, column))
                decoded = _safe(decode, text) if decode else None
                if decoded and decoded != text:
                    findings += scan_text(decoded, secrets, f"{where} (decoded)", position="none")
    return counts, findings


def _safe(decode: Callable[[str], str | None], text: str) -> str | None:
    try:
        return decode(text)
    except Exception:
        return None


@dataclass
class ScanResult:
    """What a run scanned and found."""

    secrets: int = 0
    log_sections: int = 0
    consumed_outputs: int = 0
    tests_with_output: int = 0
    files: int = 0
    file_bytes: int = 0
    roots: list[str] = field(default_factory=list)
    database: str = ""
    db_tables: dict[str, int] = field(default_factory=dict)
    findings: list[Finding] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        """The counts (and redacted findings) for the JSON report."""
        named = {name: self.db_tables.get(table, 0) for table, name in NAMED_TABLES.items()}
        other = sum(n for t, n in self.db_tables.items() if t not in NAMED_TABLES)
        return {
            "secrets": self.secrets,
            "log_sections": self.log_sections,
            "consumed_outputs": self.consumed_outputs,
            "tests_with_output": self.tests_with_output,
            "files": self.files,
            "file_bytes": self.file_bytes,
            "roots": self.roots,
            "database": self.database,
            **named,
            "other_db_rows": other,
            "db_tables": self.db_tables,
            "findings": len(self.findings),
            "details": [asdict(f) for f in self.findings],
            "notes": self.notes,
        }


# --- the plugin -----------------------------------------------------------------------------------------------

SECRETS = SecretSet()
_RESULT = ScanResult()
_SEEN_SECTIONS: set[tuple[str, str]] = set()
_OUTPUT_TESTS: set[str] = set()
_HOMES: list[Path] = []


def register_secret(value: str, origin: str = "register_secret()") -> None:
    """Add a key the scan must look for (e.g. one a test builds at run time)."""
    SECRETS.add(value, origin)


def _remember_home() -> None:
    home = os.environ.get("AIRFLOW_HOME")
    if home and Path(home) not in _HOMES:
        _HOMES.append(Path(home))


def _is_worker(config: pytest.Config) -> bool:
    return hasattr(config, "workerinput")


def pytest_sessionstart(session: pytest.Session) -> None:
    root = session.config.rootpath
    here = Path(__file__).resolve()
    sources = [p for d in SOURCE_DIRS for p in sorted((root / d).rglob("*.py")) if p.resolve() != here]
    for secret in [*secrets_in_files(sources, root), *secrets_in_environment(dict(os.environ))]:
        SECRETS.add(secret.value, secret.origin)
    for name in ("conftest", "tests.airflow_env", "airflow_provider_aiml.testing.pytest_plugin"):
        module = sys.modules.get(name)
        for attr in ("TEST_API_KEY", "EMULATOR_API_KEY"):
            SECRETS.add(getattr(module, attr, None), f"{name}.{attr}")
    _remember_home()


def pytest_collection_finish(session: pytest.Session) -> None:
    root = session.config.rootpath
    here = Path(__file__).resolve()
    modules = {item.path for item in session.items if item.path.suffix == ".py" and item.path.resolve() != here}
    for secret in secrets_in_files(sorted(modules), root):
        SECRETS.add(secret.value, secret.origin)


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    _remember_home()
    test = report.nodeid if not report.nodeid.startswith("::") else f"{report.location[0]}{report.nodeid}"
    for title, content in report.sections:
        if (test, title) in _SEEN_SECTIONS:  # later phases repeat the earlier phases' sections
            continue
        _SEEN_SECTIONS.add((test, title))
        _RESULT.log_sections += 1
        if content:
            _OUTPUT_TESTS.add(test)
        _RESULT.findings += scan_sections(test, [(title, content)], SECRETS)


def _scan_consumed_output(fixture: Any, result: Any) -> None:
    """Scan what a test read with ``capsys``/``capfd.readouterr()``: that output never reaches the report."""
    request = getattr(fixture, "request", None)
    test = getattr(getattr(request, "node", None), "nodeid", "?")
    for name, stream in zip(("out", "err"), result, strict=False):
        if text := value_text(stream):
            _RESULT.consumed_outputs += 1
            _OUTPUT_TESTS.add(test)
            _RESULT.findings += scan_text(text, SECRETS, f"{test} [{name} read by readouterr()]")


def pytest_configure(config: pytest.Config) -> None:
    try:
        from _pytest.capture import CaptureFixture
    except ImportError:  # pytest internals moved: the report sections are still scanned
        return
    original = CaptureFixture.readouterr

    def readouterr(self: Any) -> Any:
        result = original(self)
        _scan_consumed_output(self, result)
        return result

    readouterr.__wrapped__ = original  # type: ignore[attr-defined]
    CaptureFixture.readouterr = readouterr  # type: ignore[method-assign]
    config.add_cleanup(lambda: setattr(CaptureFixture, "readouterr", original))


def _log_folders() -> list[Path]:
    conf_module = sys.modules.get("airflow.configuration")
    try:
        folder = conf_module.conf.get("logging", "base_log_folder") if conf_module else None
    except Exception:
        folder = None
    return [Path(folder)] if folder else []


def _database_connection() -> Any:
    """A context manager giving a connection to the metadata DB of this run, or None if there is none."""
    if "airflow.settings" in sys.modules:  # Airflow was used in this run: its own session and engine
        from contextlib import contextmanager

        from airflow.utils.session import create_session

        @contextmanager
        def airflow_connection() -> Iterator[Any]:
            with create_session() as session:
                connection = session.connection()
                _RESULT.database = connection.engine.url.render_as_string(hide_password=True)
                yield connection

        return airflow_connection()
    url = os.environ.get("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", "")
    if not url.startswith("sqlite:///") or not Path(url.removeprefix("sqlite:///")).is_file():
        return None
    import sqlalchemy as sa

    _RESULT.database = url
    return sa.create_engine(url).connect()


def _trigger_kwargs(text: str) -> str | None:
    if text.startswith("{"):
        return None
    from airflow.models.crypto import get_fernet

    return get_fernet().decrypt(text.encode("utf-8")).decode("utf-8")


def _scan_session_outputs() -> None:
    _RESULT.secrets = len(SECRETS)
    _RESULT.tests_with_output = len(_OUTPUT_TESTS)
    _remember_home()
    roots = list(dict.fromkeys([*_HOMES, *_log_folders()]))
    _RESULT.roots = [str(root) for root in roots]
    files = files_under(roots)
    _RESULT.files = len(files)
    for path in files:
        _RESULT.file_bytes += path.stat().st_size
        _RESULT.findings += scan_file(path, SECRETS)
    connection = _database_connection()
    if connection is None:
        _RESULT.notes.append("no metadata database in this run: only its file bytes (if any) were scanned")
        return
    decoders = {("trigger", "kwargs"): _trigger_kwargs} if "airflow.models" in sys.modules else {}
    with connection as open_connection:
        counts, findings = scan_database(open_connection, SECRETS, decoders=decoders)
    if not counts:
        _RESULT.notes.append("the metadata database has no tables (not initialised in this run)")
    _RESULT.db_tables, _RESULT.findings = counts, _RESULT.findings + findings


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if _is_worker(session.config):
        return
    try:
        _scan_session_outputs()
    except Exception as error:  # a broken scan must not pass for a clean one
        _RESULT.notes.append(f"scan error: {type(error).__name__}: {SECRETS.redact(str(error))}")
        _RESULT.findings.append(Finding("secret scan", f"the scan failed: {SECRETS.redact(str(error))}", "-"))
    report = session.config.rootpath / REPORT_PATH
    report.parent.mkdir(parents=True, exist_ok=True)
    report.write_text(json.dumps(_RESULT.summary(), indent=2) + "\n", encoding="utf-8")
    if _RESULT.findings and session.exitstatus in (pytest.ExitCode.OK, pytest.ExitCode.NO_TESTS_COLLECTED):
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    if _is_worker(config):
        return
    data = _RESULT.summary()
    counts = ", ".join(
        f"{data[k]} {k.replace('_', ' ')}"
        for k in ("secrets", "log_sections", "consumed_outputs", "files", *NAMED_TABLES.values(), "other_db_rows")
    )
    if not _RESULT.findings:
        terminalreporter.write_line(f"secret scan: no API key found ({counts}); report: {REPORT_PATH}")
        return
    terminalreporter.section("secret scan: API keys found", sep="=", red=True, bold=True)
    for finding in _RESULT.findings[:100]:
        terminalreporter.write_line(f"{finding.where}: {finding.context}  (key from {finding.secret_origin})")
    if len(_RESULT.findings) > 100:
        terminalreporter.write_line(f"... and {len(_RESULT.findings) - 100} more (see {REPORT_PATH})")
    terminalreporter.write_line(f"secret scan: {len(_RESULT.findings)} finding(s) ({counts}); the session fails")
