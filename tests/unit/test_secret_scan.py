"""The secret scan (tests/secret_scan.py): which keys it knows, where it finds them, and that it stays quiet."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import textwrap
from contextlib import closing
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.secret_scan import (
    PLACEHOLDER,
    ScanResult,
    Secret,
    SecretSet,
    files_under,
    scan_database,
    scan_file,
    scan_sections,
    scan_text,
    secrets_in_environment,
    secrets_in_source,
)

REPO = Path(__file__).resolve().parents[2]
FAKE_KEY = "sk-scan-fixture-7f3e91"
OTHER_KEY = "sk-scan-other-22b8c4"
ODD_KEY = "sk-scan\nodd-fixture"  # a deliberately malformed key, as the hook-safety tests use


@pytest.fixture
def secrets() -> SecretSet:
    return SecretSet([Secret(FAKE_KEY, "a"), Secret(OTHER_KEY, "b"), Secret(ODD_KEY, "c"), Secret("k1", "d")])


def assert_hidden(text: str) -> None:
    """No key of the fixture set, nor a piece of it, in ``text``."""
    for piece in (FAKE_KEY, OTHER_KEY, "odd-fixture", "sk-scan-"):
        assert piece not in text


# --- collecting the secrets ------------------------------------------------------------------------------------


def test_keys_are_collected_from_the_ways_tests_spell_them():
    source = textwrap.dedent(
        """
        API_KEY = "sk-one"
        GOOD_KEY, BAD_KEY = "g00d-key-1", "bad-key-2"
        conn = {"conn_type": "aimlapi", "password": "pw-three", "host": "h"}
        Connection(conn_id="x", password="pw-four")
        AimlApiEmulator(api_keys={"pw-five", "pw-six"})
        client_for(emu, key="k")
        headers = {"Authorization": "Bearer tok-seven"}
        uri = "aimlapi://:sk-uri%2Deight@https%3A%2F%2Fapi.test.invalid%2Fv1"
        bad = "sk-nine\\nsecret-part"
        """
    )
    values = {s.value for s in secrets_in_source(source, "t.py")}
    expected = {"sk-one", "g00d-key-1", "bad-key-2", "pw-three", "pw-four", "pw-five", "pw-six", "k", "tok-seven"}
    assert expected | {"sk-uri-eight", "sk-nine\nsecret-part"} <= values
    assert {s.origin for s in secrets_in_source('API_KEY = "sk-one"', "t.py")} == {"t.py:1"}


def test_words_masks_fragments_and_xcom_keys_are_not_taken_for_keys():
    source = textwrap.dedent(
        """
        USAGE_KEYS = {"prompt_tokens"}
        ti.xcom_pull(task_ids="chat", key="response")
        assert usage["api_key_prefix"] == "sk-goo..."
        masked = {"password": "***"}
        header = f"Bearer {key}"
        prefix = f"sk-{suffix}"
        placeholders = {"password": "Your AI/ML API key"}
        """
    )
    assert secrets_in_source(source, "t.py") == []


def test_connection_passwords_in_the_environment_are_keys():
    environ = {
        "AIRFLOW_CONN_JSON": json.dumps({"conn_type": "aimlapi", "password": "sk-env-json"}),
        "AIRFLOW_CONN_URI": "aimlapi://:sk-env-uri@api.test.invalid/v1",
        "AIRFLOW_CONN_NOKEY": json.dumps({"conn_type": "aimlapi"}),
        "AIMLAPI_API_KEY": "sk-env-var",
        "OTHER": "sk-not-a-connection",
    }
    assert {s.value for s in secrets_in_environment(environ)} == {"sk-env-json", "sk-env-uri", "sk-env-var"}


def test_a_key_with_invisible_characters_is_also_looked_for_in_pieces():
    found = SecretSet([Secret("sk-abc\u200bxyz-secret", "t")])
    assert {s.value for s in found} == {"sk-abc\u200bxyz-secret", "sk-abc", "xyz-secret"}


# --- matching -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        f"Authorization: Bearer {FAKE_KEY}",
        f"conn={json.dumps({'password': ODD_KEY})}",  # JSON-escaped newline
        f"{ODD_KEY!r}",  # repr-escaped
        "aimlapi://:sk-scan-fixture-7f3e91@host",
        "url=sk-scan%0Aodd-fixture",  # URL-encoded
        f"found {OTHER_KEY}.",
        "headers={'authorization': 'Bearer k1'}",
        '{"password": "k1"}',
        "aimlapi://:k1@host/v1",
    ],
)
def test_keys_are_found_in_every_spelling(secrets: SecretSet, text: str):
    assert secrets.matches(text)
    assert_hidden(secrets.redact(text))
    assert "Bearer k1" not in secrets.redact(text)
    assert PLACEHOLDER in secrets.redact(text)


@pytest.mark.parametrize(
    "text",
    [
        "k1 is a map key; track1, k10 and sk-sca are no keys",
        "Bearer k10",
        '{"password": "***"}',
        "the emulator saw a key starting sk-sca...",
        "",
    ],
)
def test_clean_text_has_no_findings(secrets: SecretSet, text: str):
    assert secrets.matches(text) == []
    assert scan_text(text, secrets, "here") == []


def test_a_short_key_counts_only_where_a_key_is_expected():
    short = SecretSet([Secret("k", "t")])
    assert short.matches("a k b, key=k1, kk, task") == []
    assert len(short.matches("Authorization: Bearer k")) == 1
    assert len(short.matches("password=k&x=1")) == 1


def test_overlapping_keys_make_one_finding():
    nested = SecretSet([Secret("sk-good", "a"), Secret("sk-good-key", "b")])
    findings = scan_text("key sk-good-key here", nested, "f")
    assert [f.context for f in findings] == [f"key {PLACEHOLDER} here"]
    assert findings[0].secret_origin == "b"


# --- the places ---------------------------------------------------------------------------------------------


def test_captured_output_names_the_test_and_section_and_hides_the_key(secrets: SecretSet):
    sections = [
        ("Captured log call", f"INFO ok\nDEBUG sending Authorization: Bearer {FAKE_KEY} to api\n"),
        ("Captured stdout setup", "nothing to see"),
    ]
    (finding,) = scan_sections("tests/x.py::test_it[a]", sections, secrets)
    assert finding.where == "tests/x.py::test_it[a] [Captured log call]:2"
    assert finding.context.endswith(f"sending Authorization: Bearer {PLACEHOLDER} to api\\n")
    assert finding.secret_origin == "a"
    assert_hidden(str(finding))
    assert scan_sections("tests/x.py::test_it", [("Captured stderr call", "clean\n")], secrets) == []


def test_an_excerpt_never_cuts_a_neighbouring_key(secrets: SecretSet):
    text = "x" * 100 + FAKE_KEY + "y" * 50 + OTHER_KEY + "z" * 100
    findings = scan_text(text, secrets, "f")
    assert len(findings) == 2
    for finding in findings:
        assert finding.context.count(PLACEHOLDER) == 2
        assert_hidden(finding.context)


def test_files_text_and_binary_are_scanned(tmp_path: Path, secrets: SecretSet):
    logs = tmp_path / "logs" / "dag_id=d" / "run_id=r"
    logs.mkdir(parents=True)
    (logs / "attempt=1.log").write_text(f"line one\nthe key is {OTHER_KEY}\n")
    (tmp_path / "db.sqlite").write_bytes(b"\x00\xff\xfe" + FAKE_KEY.encode() + b"\x00\x81")
    (tmp_path / "clean.log").write_text("nothing\n")

    files = files_under([tmp_path])
    assert len(files) == 3
    findings = [f for path in files for f in scan_file(path, secrets)]
    assert sorted(f.where for f in findings) == [f"{tmp_path / 'db.sqlite'}@3", f"{logs / 'attempt=1.log'}:2"]
    for finding in findings:
        assert_hidden(finding.context)
        assert PLACEHOLDER in finding.context
        assert finding.context.isprintable()
    assert scan_file(tmp_path / "clean.log", secrets) == []
    assert scan_file(tmp_path / "missing.log", secrets) == []


def make_db(path: Path, *, leak: bool) -> sa.Engine:
    """A small stand-in for the metadata DB: XCom, rendered fields, triggers, the log, notes, connections."""
    key = FAKE_KEY if leak else "no key here"
    with closing(sqlite3.connect(path)) as db, db:
        db.executescript(
            """
            CREATE TABLE xcom (dag_run_id INTEGER, task_id TEXT, map_index INTEGER, key TEXT, value JSON,
                               PRIMARY KEY (dag_run_id, task_id, map_index, key));
            CREATE TABLE rendered_task_instance_fields (dag_id TEXT, task_id TEXT, rendered_fields JSON,
                                                        PRIMARY KEY (dag_id, task_id));
            CREATE TABLE "trigger" (id INTEGER PRIMARY KEY, classpath TEXT, kwargs TEXT);
            CREATE TABLE log (id INTEGER PRIMARY KEY, event TEXT, extra TEXT);
            CREATE TABLE task_instance_note (ti_id TEXT PRIMARY KEY, content TEXT);
            CREATE TABLE connection (id INTEGER PRIMARY KEY, password TEXT);
            """
        )
        db.execute("INSERT INTO xcom VALUES (1, 'chat', -1, 'return_value', ?)", [json.dumps({"text": "hi"})])
        db.execute("INSERT INTO xcom VALUES (1, 'chat', -1, 'usage', ?)", [json.dumps({"note": key})])
        db.execute("INSERT INTO rendered_task_instance_fields VALUES ('d', 'chat', ?)", [json.dumps({"p": "x"})])
        db.execute("INSERT INTO \"trigger\" VALUES (7, 'a.Trigger', 'ENCRYPTED')")
        db.execute("INSERT INTO log VALUES (3, 'running', ?)", [f"conn password={key}"])
        db.execute("INSERT INTO task_instance_note VALUES ('ti-1', ?)", [f"notes: {key}"])
        db.execute("INSERT INTO connection VALUES (1, ?)", [FAKE_KEY])  # credentials by design: not scanned
    return sa.create_engine(f"sqlite:///{path}")


def test_database_rows_are_scanned_and_named(tmp_path: Path, secrets: SecretSet):
    engine = make_db(tmp_path / "airflow.db", leak=True)
    decoders = {("trigger", "kwargs"): lambda text: json.dumps({"api_key": OTHER_KEY}) if text == "ENCRYPTED" else None}
    with engine.connect() as connection:
        counts, findings = scan_database(connection, secrets, decoders=decoders)
    engine.dispose()

    assert counts == {
        "log": 1,
        "rendered_task_instance_fields": 1,
        "task_instance_note": 1,
        "trigger": 1,
        "xcom": 2,
    }
    assert sorted(f.where for f in findings) == [
        "db log[id=3].extra",
        "db task_instance_note[ti_id=ti-1].content",
        "db trigger[id=7].kwargs (decoded)",
        "db xcom[dag_run_id=1, task_id=chat, map_index=-1, key=usage].value",
    ]
    for finding in findings:
        assert_hidden(finding.context)
        assert PLACEHOLDER in finding.context


def test_a_clean_database_has_no_findings(tmp_path: Path, secrets: SecretSet):
    engine = make_db(tmp_path / "airflow.db", leak=False)
    with engine.connect() as connection:
        counts, findings = scan_database(connection, secrets)
    engine.dispose()
    assert findings == []
    assert counts["xcom"] == 2


def test_the_report_counts_the_named_tables():
    result = ScanResult(secrets=3, log_sections=5, files=2, db_tables={"xcom": 4, "trigger": 1, "dag": 2})
    summary = result.summary()
    assert (summary["xcom_rows"], summary["trigger_rows"], summary["rendered_field_rows"]) == (4, 1, 0)
    assert (summary["other_db_rows"], summary["findings"], summary["log_sections"]) == (2, 0, 5)


# --- the plugin, end to end in a separate pytest run ------------------------------------------------------


def test_the_plugin_fails_a_run_that_leaks_and_never_prints_the_key(tmp_path: Path):
    """A key in captured output, in output read with capsys and in a log file: named, hidden, run failed."""
    home = tmp_path / "home"
    (home / "logs").mkdir(parents=True)
    (home / "logs" / "task.log").write_text("token=sk-inner-file-6d1c\n")
    with closing(sqlite3.connect(home / "airflow.db")) as db, db:
        db.execute("CREATE TABLE xcom (id INTEGER PRIMARY KEY, value TEXT)")
        db.execute("INSERT INTO xcom VALUES (1, 'clean')")
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    (tmp_path / "conftest.py").write_text('pytest_plugins = ["tests.secret_scan"]\n')
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_inner.py").write_text(
        "INNER_KEY = 'sk-inner-print-93a0'\n"
        "FILE_KEY = 'sk-inner-file-6d1c'\n"
        "def test_prints_the_key():\n"
        "    print('using', INNER_KEY)\n"
        "def test_is_quiet():\n"
        "    pass\n"
        "def test_reads_its_output(capsys):\n"
        "    print('token', INNER_KEY)\n"
        "    assert 'token' in capsys.readouterr().out\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "PYTEST"))}
    env |= {
        "PYTHONPATH": str(REPO),
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home}/airflow.db",
    }
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "tests"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    output = run.stdout + run.stderr

    assert run.returncode == 1, output
    assert "3 passed" in output
    assert "tests/test_inner.py::test_prints_the_key [Captured stdout call]:1: using <KEY>" in output
    assert f"{home / 'logs' / 'task.log'}:1: token=<KEY>" in output
    assert "tests/test_inner.py::test_reads_its_output [out read by readouterr()]:1: token <KEY>" in output
    assert "sk-inner-print-93a0" not in output
    assert "sk-inner-file-6d1c" not in output
    report = json.loads((tmp_path / "build" / "secret-scan.json").read_text())
    assert (report["findings"], report["xcom_rows"], report["files"], report["consumed_outputs"]) == (3, 1, 2, 1)
    assert report["log_sections"] >= 1
    assert "sk-inner" not in json.dumps(report)
