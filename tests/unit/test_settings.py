"""Reading an ``aimlapi`` connection (UI form, JSON, URI, secrets) into checked settings."""

from __future__ import annotations

import json
from typing import Any

import pytest
from airflow.sdk import Connection
from pydantic import ValidationError

from airflow_provider_aiml.exceptions import AimlConfigurationError
from airflow_provider_aiml.hooks.settings import (
    DEFAULT_MAX_RETRIES,
    DEFAULT_TIMEOUT,
    MAX_RETRIES_LIMIT,
    ConnectionSettings,
)
from airflow_provider_aiml.models import DEFAULT_BASE_URL, DEFAULT_MODEL

KEY = "sk-live-0123456789abcdef"


def connection(conn_id: str = "aiml_test", *, extra: Any = None, **fields: Any) -> Connection:
    fields.setdefault("password", KEY)
    if extra is not None and not isinstance(extra, str):
        extra = json.dumps(extra)
    return Connection(conn_id=conn_id, conn_type="aimlapi", extra=extra, **fields)


def settings_of(conn: Connection, conn_id: str = "aiml_test") -> ConnectionSettings:
    return ConnectionSettings.from_connection(conn, conn_id)


# --- defaults and plain fields -------------------------------------------------------------------------------


def test_defaults_from_a_connection_with_only_a_key():
    settings = settings_of(connection())

    assert settings.conn_id == "aiml_test"
    assert settings.base_url == DEFAULT_BASE_URL == "https://api.aimlapi.com/v1"
    assert settings.api_key.get_secret_value() == KEY
    assert settings.model == DEFAULT_MODEL == "alibaba/qwen3-vl-32b-thinking"
    assert settings.timeout == DEFAULT_TIMEOUT == 300.0
    assert settings.max_retries == DEFAULT_MAX_RETRIES == 2


def test_all_fields_from_extras():
    conn = connection(
        host="https://proxy.example.com/v1/",
        extra={"model": " openai/gpt-4o ", "timeout": 42.5, "max_retries": 5},
        password=f"  {KEY}\n",
    )

    settings = settings_of(conn)

    assert settings.base_url == "https://proxy.example.com/v1"
    assert settings.api_key.get_secret_value() == KEY
    assert settings.model == "openai/gpt-4o"
    assert settings.timeout == 42.5
    assert settings.max_retries == 5
    assert isinstance(settings.max_retries, int)


def test_settings_are_frozen():
    settings = settings_of(connection())

    with pytest.raises(ValidationError):
        settings.model = "other"  # type: ignore[misc]


# --- the key -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("password", [None, "", "   \n"])
def test_missing_key_names_the_connection(password):
    with pytest.raises(AimlConfigurationError) as caught:
        settings_of(connection("my_aiml", password=password), "my_aiml")

    assert "Connection 'my_aiml' has no API key" in str(caught.value)
    assert "password" in str(caught.value)


def test_key_never_appears_in_repr_or_str():
    settings = settings_of(connection(host="https://api.aimlapi.com/v1"))

    for text in (repr(settings), str(settings), f"{settings}", settings.model_dump_json(), repr(settings.api_key)):
        assert KEY not in text
        assert "sk-live" not in text
    assert "**********" in repr(settings)
    assert str(settings.model_dump()["api_key"]) == "**********"


def test_key_never_appears_in_field_errors():
    with pytest.raises(AimlConfigurationError) as caught:
        settings_of(connection(extra={"timeout": "abc"}))

    assert KEY not in str(caught.value)
    assert KEY not in repr(caught.value.__dict__)


# --- base URL: every form a connection can take --------------------------------------------------------------


@pytest.mark.parametrize(
    ("host", "schema", "port", "expected"),
    [
        (None, None, None, "https://api.aimlapi.com/v1"),
        ("", None, None, "https://api.aimlapi.com/v1"),
        ("  ", None, None, "https://api.aimlapi.com/v1"),
        ("https://api.aimlapi.com/v1", None, None, "https://api.aimlapi.com/v1"),
        ("https://api.aimlapi.com/v1/", None, None, "https://api.aimlapi.com/v1"),
        ("http://127.0.0.1:8080/v1", None, None, "http://127.0.0.1:8080/v1"),
        # Scheme lost (un-encoded URI form): host + schema (+ port).
        ("api.aimlapi.com", "v1", None, "https://api.aimlapi.com/v1"),
        ("api.aimlapi.com", "/v1/", None, "https://api.aimlapi.com/v1"),
        ("api.aimlapi.com", None, None, "https://api.aimlapi.com"),
        ("gateway.internal", "v1", 8443, "https://gateway.internal:8443/v1"),
        ("localhost", "v1", 8080, "http://localhost:8080/v1"),
        ("127.0.0.1", "v1", 9000, "http://127.0.0.1:9000/v1"),
    ],
)
def test_base_url(host, schema, port, expected):
    assert settings_of(connection(host=host, schema=schema, port=port)).base_url == expected


def test_json_form():
    conn = Connection.from_json(
        json.dumps(
            {
                "conn_type": "aimlapi",
                "password": KEY,
                "host": "https://api.aimlapi.com/v1",
                "extra": {"model": "openai/gpt-4o", "timeout": 60, "max_retries": 3},
            }
        ),
        conn_id="aiml_json",
    )

    settings = settings_of(conn, "aiml_json")

    assert (settings.base_url, settings.model, settings.timeout, settings.max_retries) == (
        "https://api.aimlapi.com/v1",
        "openai/gpt-4o",
        60.0,
        3,
    )
    assert settings.conn_id == "aiml_json"


def test_json_form_with_extras_as_strings():
    conn = Connection.from_json(
        json.dumps({"conn_type": "aimlapi", "password": KEY, "extra": {"timeout": "12.5", "max_retries": "4"}}),
        conn_id="j",
    )

    settings = settings_of(conn, "j")

    assert (settings.timeout, settings.max_retries) == (12.5, 4)


def test_uri_form_with_encoded_host():
    uri = "aimlapi://:sk-live-0123456789abcdef@https%3A%2F%2Fapi.aimlapi.com%2Fv1?timeout=60&max_retries=3&model=x%2Fy"
    conn = Connection(conn_id="aiml_uri", uri=uri)

    settings = settings_of(conn, "aiml_uri")

    assert settings.base_url == "https://api.aimlapi.com/v1"
    assert settings.api_key.get_secret_value() == KEY
    # URI extras arrive as strings.
    assert conn.extra_dejson == {"timeout": "60", "max_retries": "3", "model": "x/y"}
    assert (settings.timeout, settings.max_retries, settings.model) == (60.0, 3, "x/y")


def test_uri_form_not_encoded_loses_the_scheme():
    conn = Connection(conn_id="aiml_uri", uri="aimlapi://:sk-live-0123456789abcdef@api.aimlapi.com/v1?timeout=30")
    assert (conn.host, conn.schema) == ("api.aimlapi.com", "v1")

    settings = settings_of(conn, "aiml_uri")

    assert settings.base_url == "https://api.aimlapi.com/v1"
    assert settings.timeout == 30.0


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        # Airflow's own URI form for a host with a protocol (what Connection.get_uri() produces).
        ("aimlapi://https://:sk-live-0123456789abcdef@api.aimlapi.com/v1", "https://api.aimlapi.com/v1"),
        ("aimlapi://http://:sk-live-0123456789abcdef@localhost:8080/v1", "http://localhost:8080/v1"),
        # Only the scheme URL-encoded: the path and port arrive as schema and port.
        ("aimlapi://:sk-live-0123456789abcdef@https%3A%2F%2Fapi.aimlapi.com/v1", "https://api.aimlapi.com/v1"),
        ("aimlapi://:sk-live-0123456789abcdef@http%3A%2F%2Flocalhost:8080/v1", "http://localhost:8080/v1"),
    ],
    ids=["protocol-prefix-https", "protocol-prefix-http-port", "encoded-scheme-https", "encoded-scheme-http-port"],
)
def test_uri_form_with_protocol_in_host_keeps_port_and_path(uri, expected):
    conn = Connection(conn_id="aiml_uri", uri=uri)

    assert settings_of(conn, "aiml_uri").base_url == expected


def test_get_uri_round_trip_with_port_and_schema():
    original = connection(host="http://localhost", port=8080, schema="v1")
    again = Connection(conn_id="aiml_test", uri=original.get_uri())

    assert settings_of(again).base_url == "http://localhost:8080/v1"


def test_uri_form_to_a_local_emulator():
    conn = Connection(conn_id="local", uri="aimlapi://:sk-live-0123456789abcdef@localhost:8080/v1")

    assert settings_of(conn, "local").base_url == "http://localhost:8080/v1"


def test_get_uri_round_trip():
    original = connection(host="https://api.aimlapi.com/v1", extra={"timeout": 45, "max_retries": 1})

    again = Connection(conn_id="aiml_test", uri=original.get_uri())

    assert settings_of(again) == settings_of(original)


# --- extras from the UI form ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "extra",
    [
        None,
        "",
        "{}",
        {"model": "", "timeout": None, "max_retries": None},
        {"model": None, "timeout": "", "max_retries": ""},
        {"unrelated": "value"},
    ],
)
def test_empty_or_null_extras_give_defaults(extra):
    settings = settings_of(connection(extra=extra))

    assert (settings.model, settings.timeout, settings.max_retries) == (DEFAULT_MODEL, 300.0, 2)


def test_prefixed_extra_names_of_older_forms():
    extra = {"extra__aimlapi__model": "m/x", "extra__aimlapi__timeout": "9", "extra__aimlapi__max_retries": 0}

    settings = settings_of(connection(extra=extra))

    assert (settings.model, settings.timeout, settings.max_retries) == ("m/x", 9.0, 0)


def test_plain_extra_name_wins_over_prefixed():
    extra = {"timeout": 5, "extra__aimlapi__timeout": 9}

    assert settings_of(connection(extra=extra)).timeout == 5.0


def test_empty_plain_extra_falls_back_to_prefixed():
    extra = {"timeout": "", "extra__aimlapi__timeout": 9}

    assert settings_of(connection(extra=extra)).timeout == 9.0


@pytest.mark.parametrize(("raw", "expected"), [(0, 0), (10, 10), ("7", 7), ("2.0", 2), (3.0, 3)])
def test_max_retries_accepted_values(raw, expected):
    settings = settings_of(connection(extra={"max_retries": raw}))

    assert settings.max_retries == expected
    assert type(settings.max_retries) is int


@pytest.mark.parametrize(("raw", "expected"), [(0.001, 0.001), (1, 1.0), ("600", 600.0), ("0.5", 0.5)])
def test_timeout_accepted_values(raw, expected):
    assert settings_of(connection(extra={"timeout": raw})).timeout == expected


def test_extra_that_cannot_be_read_is_a_configuration_error():
    class BrokenConnection:
        password = KEY
        host = None

        @property
        def extra_dejson(self):
            raise json.JSONDecodeError("Expecting value", "{", 0)

    with pytest.raises(AimlConfigurationError, match="extra is not valid JSON: JSONDecodeError"):
        ConnectionSettings.from_connection(BrokenConnection(), "broken")


def test_extra_that_is_not_an_object_is_ignored():
    assert settings_of(connection(extra="[1, 2]")).timeout == 300.0


# --- bad field values name the field -------------------------------------------------------------------------


BAD_FIELDS = [
    ({"timeout": "abc"}, "timeout", "must be a number, got 'abc'"),
    ({"timeout": True}, "timeout", "must be a number, got True"),
    ({"timeout": [30]}, "timeout", "must be a number"),
    ({"timeout": {"read": 30}}, "timeout", "must be a number"),
    ({"timeout": 0}, "timeout", "must be at least 0.001, got 0"),
    ({"timeout": -5}, "timeout", "must be at least 0.001, got -5"),
    ({"timeout": "nan"}, "timeout", "'nan'"),
    ({"max_retries": "many"}, "max_retries", "must be a whole number, got 'many'"),
    ({"max_retries": False}, "max_retries", "must be a whole number, got False"),
    ({"max_retries": -1}, "max_retries", "must be between 0 and 10, got -1"),
    ({"max_retries": MAX_RETRIES_LIMIT + 1}, "max_retries", "must be between 0 and 10, got 11"),
    ({"max_retries": "1.5"}, "max_retries", "got '1.5'"),
    ({"max_retries": 1.5}, "max_retries", "got 1.5"),
]


@pytest.mark.parametrize(
    ("extra", "field", "fragment"),
    BAD_FIELDS,
    ids=[f"{name}={value!r}" for extra, _, _ in BAD_FIELDS for name, value in extra.items()],
)
def test_bad_field_is_named(extra, field, fragment):
    with pytest.raises(AimlConfigurationError) as caught:
        settings_of(connection("aiml_bad", extra=extra), "aiml_bad")

    message = str(caught.value)
    assert message.startswith(f"Connection 'aiml_bad': extra field {field!r} must be")
    assert fragment in message


# --- api_root ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("host", "root"),
    [
        (None, "https://api.aimlapi.com"),
        ("https://api.aimlapi.com/v1/", "https://api.aimlapi.com"),
        ("http://localhost:8080/v1", "http://localhost:8080"),
        ("https://proxy.example.com/aiml", "https://proxy.example.com/aiml"),
        ("https://proxy.example.com/v1beta", "https://proxy.example.com/v1beta"),
    ],
)
def test_api_root(host, root):
    assert settings_of(connection(host=host)).api_root == root
