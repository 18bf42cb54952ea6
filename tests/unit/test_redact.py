"""The one redactor: registered secrets in every form a provider or a URL echoes them, the known
token shapes, JSON-like values, and registration from many threads at once."""

from __future__ import annotations

import io
import json
import logging
import secrets
import threading
from collections import namedtuple
from pathlib import Path
from urllib.parse import quote, quote_plus

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reaper_lsp import logs
from reaper_lsp.logs import (
    MASK,
    RedactingFilter,
    redact,
    redact_obj,
    register_secret,
    setup_logging,
)
from reaper_lsp.providers.errors import error_from_response


def fresh_secret(prefix: str = "proxy-key-") -> str:
    """A registered value no pattern knows: only registration can catch it."""
    value = prefix + secrets.token_urlsafe(24)
    register_secret(value)
    return value


def test_a_401_echoing_a_registered_key_is_clean() -> None:
    key = fresh_secret()
    body = json.dumps(
        {"error": {"message": f"Incorrect API key provided: {key}.", "type": "invalid_request"}}
    ).encode()
    error = error_from_response("openai", 401, {}, body, now=0.0)
    assert key not in str(error) and key[10:20] not in str(error)
    assert "Incorrect API key provided: ***" in str(error)


def test_half_masked_echoes_of_a_registered_key_are_clean() -> None:
    key = fresh_secret()
    for echo in (
        f"{key[:8]}***{key[-4:]}",  # OpenAI's "sk-abc1***wxyz"
        f"{key[:12]}{'*' * 30}{key[-4:]}",
        f"{'*' * 20}{key[-4:]}",
        f"{key[:8]}*",
        f"{key[:6]}****",
    ):
        cleaned = redact(f"Incorrect API key provided: {echo}. You can find your key online.")
        assert cleaned == f"Incorrect API key provided: {MASK}. You can find your key online.", echo


def test_starred_words_unrelated_to_a_secret_stay() -> None:
    fresh_secret()
    text = "a**b, x = 2 ** 10, ***bold*** and abcd****wxyz"
    assert redact(text) == text


def test_encoded_forms_of_a_registered_secret_are_clean() -> None:
    key = fresh_secret("pass/word+with spaces&more-")
    for form in (quote(key, safe=""), quote(key), quote_plus(key), json.dumps(key)):
        cleaned = redact(f"GET https://proxy.example/v1?x={form} failed")
        assert "pass/word" not in cleaned and "pass%2Fword" not in cleaned, form


def test_known_token_shapes_are_clean_without_registration() -> None:
    shapes = [
        "sk-ant-api03-abcdefgh",
        "sk-proj-abc***wxyz",
        "ghu_abcdefghijklmnop",
        "github_pat_11ABCDEFG0123",
        "AIzaSyA1234567890abcdefghijklmnopqrstu",
        "ya29.a0AfH6SM",
        "1//0gLongRefreshToken",
        "tid=abc;exp=1",
        "eyJhbGciOi.eyJzdWIi.sig",
    ]
    for shape in shapes:
        assert redact(f"echo {shape} end") == f"echo {MASK} end", shape
    assert redact("Authorization: Bearer xyz.123") == f"Authorization: {MASK}"
    assert redact("Authorization: token 0123456789abcdef") == f"Authorization: {MASK}"
    assert redact("https://x/token?code=4/0Abc&state=s&api_key=k1") == (
        f"https://x/token?code={MASK}&state=s&api_key={MASK}"
    )


def test_ordinary_text_is_unchanged() -> None:
    for text in (
        "token expired, sign in again",
        "HTTP status code=404",
        "the key was rejected",
        "ask-me-anything",
        "def f(*args, **kwargs): return 2 ** 3",
    ):
        assert redact(text) == text


def test_short_values_are_not_registered() -> None:
    register_secret("short")
    assert redact("a short word") == "a short word"


def test_a_status_dict_is_clean_everywhere() -> None:
    key = fresh_secret()
    status = {
        "providers": [
            {"name": "openai", "state": "error", "last_error": f"401 Incorrect key: {key}"},
            {"name": "copilot", "token": "tid=abc;exp=1", "ok": True, "latency_ms": 12.5},
        ],
        "last_run": ("ok", None, f"{key[:8]}***{key[-4:]}"),
        key: "a secret used as a key",
    }
    cleaned = redact_obj(status)
    assert key[:8] not in json.dumps(cleaned)
    assert "tid=" not in json.dumps(cleaned)
    assert cleaned["providers"][1]["ok"] is True and cleaned["providers"][1]["latency_ms"] == 12.5
    assert cleaned["last_run"] == ("ok", None, MASK)
    assert cleaned[MASK] == "a secret used as a key"
    assert status["providers"][0]["last_error"].endswith(key)  # the original is left alone


def test_log_lines_and_tracebacks_are_redacted() -> None:
    key = fresh_secret()
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.addFilter(RedactingFilter())
    logger = logging.getLogger("test_redact.isolated")
    logger.propagate = False
    logger.addHandler(handler)
    try:
        logger.warning("calling with %s", key)
        try:
            raise ValueError(f"bad key {key}")
        except ValueError:
            logger.exception("failed")
    finally:
        logger.removeHandler(handler)
    text = out.getvalue()
    assert key not in text and text.count(MASK) == 2 and "ValueError" in text


def test_secrets_registered_from_many_threads_are_all_redacted() -> None:
    values = [f"thread-secret-{i}-{secrets.token_hex(8)}" for i in range(200)]
    start = threading.Barrier(8)
    leaks: list[str] = []

    def work(chunk: list[str]) -> None:
        start.wait()
        for value in chunk:
            register_secret(value)
            if value in redact(f"x {value} y"):
                leaks.append(value)

    threads = [threading.Thread(target=work, args=(values[i::8],)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert leaks == []
    text = " ".join(values)
    assert redact(text) == " ".join([MASK] * len(values))


def test_pygls_never_logs_initialize_params_or_message_bodies(tmp_path: Path) -> None:
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    pygls_loggers = [logging.getLogger(n) for n in ("pygls.protocol", "pygls.server")]
    saved_levels = [logger.level for logger in pygls_loggers]
    log_file = tmp_path / "server.log"
    key = "unregistered-" + secrets.token_hex(16)  # arrives in initializationOptions
    try:
        setup_logging("INFO", str(log_file))
        pygls = logging.getLogger("pygls.protocol.language_server")
        pygls.info("Language server initialized %s", {"initializationOptions": {"api_key": key}})
        logging.getLogger("pygls.protocol.json_rpc").info("Sending data: %s", '{"x": 1}')
        logging.getLogger("reaper_lsp.test").info("our own line")
        setup_logging("DEBUG", str(log_file))  # even when debugging the wire
        pygls.info("Language server initialized %s", {"initializationOptions": {"api_key": key}})
        logging.getLogger("pygls.protocol.json_rpc").debug("Sending data: %s", '{"y": 2}')
    finally:
        for handler in root.handlers:
            handler.close()
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])
        for logger, level in zip(pygls_loggers, saved_levels, strict=True):
            logger.setLevel(level)
    text = log_file.read_text()
    assert key not in text
    assert text.count("parameters not logged") == 1  # at INFO, pygls's lines are not logged
    assert '{"x": 1}' not in text and "our own line" in text and '{"y": 2}' in text


SECRET_CHARS = st.characters(min_codepoint=0x21, max_codepoint=0x7E, exclude_characters="*")


@settings(max_examples=200, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    secret=st.text(SECRET_CHARS, min_size=8, max_size=40),
    before=st.text(max_size=30),
    after=st.text(max_size=30),
)
def test_a_registered_secret_never_survives_in_any_form(
    monkeypatch: pytest.MonkeyPatch, secret: str, before: str, after: str
) -> None:
    # Forgotten after the test: "--------" registered for good would blank other tests' text.
    monkeypatch.setattr(logs, "_registry", logs._registry)
    register_secret(secret)
    for form in (secret, quote(secret, safe=""), quote_plus(secret), json.dumps(secret)[1:-1]):
        assert form not in redact(before + form + after)
    assert redact_obj({"k": [before + secret + after]})["k"][0].count(secret) == 0


def test_redact_obj_keeps_the_shape_of_what_it_cleans() -> None:
    key = fresh_secret()
    Row = namedtuple("Row", "name error")
    cleaned = redact_obj({"rows": [Row("openai", f"bad {key}")], "n": 3, "none": None})
    assert cleaned == {"rows": [Row("openai", f"bad {MASK}")], "n": 3, "none": None}
    assert isinstance(cleaned["rows"][0], Row)
