"""What QUIC keeps on disk: session tickets survive anything a damaged or hostile file can
hold (malformed entries count as absent and the file is rewritten), and the state folder and
files are private however they were found."""

from __future__ import annotations

import json
import os
import stat
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reaper_lsp.net.altsvc import ALT_SVC_FILE, AltSvcCache
from reaper_lsp.net.h3_state import TICKETS_FILE, TicketStore, decode_ticket, encode_ticket

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)


def _fields() -> dict[str, Any]:
    now = time.time()
    return {
        "age_add": 7,
        "cipher_suite": 0x1301,
        "not_valid_after": now + 3600,
        "not_valid_before": now - 1,
        "resumption_secret": "c2VjcmV0",
        "server_name": "api.example.com",
        "ticket": "dGlja2V0",
        "max_early_data_size": 0xFFFFFFFF,
        "other_extensions": [[57, "AQI="]],
    }


def _write(directory: Path, data: object, name: str = TICKETS_FILE) -> Path:
    path = directory / name
    path.write_text(data if isinstance(data, str) else json.dumps(data))
    path.chmod(0o600)
    return path


def mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.mark.parametrize(
    ("field", "value"),
    [(None, "a string"), (None, 5), (None, None), ("not_valid_after", 1e20),
     ("not_valid_after", "Infinity"), ("not_valid_before", -1e20), ("age_add", "1e400"),
     ("age_add", 2**32), ("age_add", -1), ("age_add", True), ("age_add", 7.5),
     ("cipher_suite", 0xDEAD), ("max_early_data_size", 1e400), ("ticket", 5),
     ("ticket", "not base64!"), ("ticket", "é"), ("resumption_secret", None),
     ("server_name", 5), ("other_extensions", 5), ("other_extensions", [[1]]),
     ("other_extensions", [["x", "AQI="]]), ("other_extensions", [[70000, "AQI="]]),
     ("other_extensions", "ab")],
)  # fmt: skip
def test_a_malformed_ticket_counts_as_absent_and_is_dropped_from_the_file(
    tmp_path: Path, field: str | None, value: object
) -> None:
    if field is None:
        bad: object = value
    else:
        bad = {**_fields(), field: value}
    text = json.dumps({"good": _fields(), "bad": bad})
    # JSON numbers too large for a float arrive as infinity: write them as such.
    text = text.replace('"1e400"', "1e400").replace('"Infinity"', "Infinity")
    path = _write(tmp_path, text)
    store = TicketStore(tmp_path)
    assert store.has("good") and not store.has("bad")
    assert set(json.loads(path.read_text())) == {"good"}


@pytest.mark.parametrize("text", ["[1]", '"x"', "{bad json", "[" * 100_000, "\xff\xfe"])
def test_an_unusable_tickets_file_is_empty_and_rewritten(tmp_path: Path, text: str) -> None:
    path = _write(tmp_path, text)
    assert len(TicketStore(tmp_path)) == 0
    assert json.loads(path.read_text()) == {}


def test_a_good_ticket_round_trips(tmp_path: Path) -> None:
    ticket = decode_ticket(_fields())
    assert decode_ticket(encode_ticket(ticket)) == ticket
    TicketStore(tmp_path).put("k", ticket)
    assert TicketStore(tmp_path).take("k") == ticket


@given(JSON, JSON, st.sampled_from(sorted(_fields())))
def test_any_json_in_the_tickets_file_loads_and_leaves_only_valid_tickets(
    whole: object, value: object, field: str
) -> None:
    for data in (whole, {"k": whole}, {"k": {**_fields(), field: value}}):
        with tempfile.TemporaryDirectory() as tmp:
            path = _write(Path(tmp), data)
            store = TicketStore(Path(tmp))
            kept = json.loads(path.read_text())
            assert isinstance(kept, dict)
            for key, entry in kept.items():
                assert decode_ticket(entry).is_valid
                assert store.has(key)


# -- modes of the state folder and files -------------------------------------------------------


@pytest.fixture
def data_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """XDG folders inside tmp_path, so reaper-lsp's own folders are there."""
    for kind in ("DATA", "STATE", "CACHE"):
        monkeypatch.setenv(f"XDG_{kind}_HOME", str(tmp_path / kind.lower()))
    return tmp_path / "data"


def test_state_folders_are_created_private_up_to_the_data_dir(data_home: Path) -> None:
    old = os.umask(0o022)
    try:
        state = data_home / "reaper-lsp" / "http3"
        AltSvcCache(state).mark_broken("https://a.example:443", 60)
    finally:
        os.umask(old)
    assert mode(state) == mode(state.parent) == 0o700
    assert mode(state / ALT_SVC_FILE) == 0o600
    assert mode(data_home) == 0o755  # not ours: the user's own data folder


def test_a_world_open_state_folder_is_tightened_and_open_files_refused(
    data_home: Path, caplog: pytest.LogCaptureFixture
) -> None:
    state = data_home / "reaper-lsp" / "http3"
    state.mkdir(parents=True)
    good = {"h3": {"https://a.example:443": {"host": "q", "port": 443, "expires": 4e9}}}
    _write(state, good, ALT_SVC_FILE).chmod(0o666)
    _write(state, {"k": _fields()}).chmod(0o666)
    for folder in (state, state.parent):
        folder.chmod(0o777)
    with caplog.at_level("WARNING"):
        cache = AltSvcCache(state)
        tickets = TicketStore(state)
    assert cache.lookup("https://a.example:443") is None  # planted, perhaps: not used
    assert not tickets.has("k")
    assert mode(state) == mode(state.parent) == 0o700
    assert mode(state / ALT_SVC_FILE) == mode(state / TICKETS_FILE) == 0o600  # rewritten
    text = caplog.text
    assert "made it private (0700)" in text and "other users can write it" in text


def test_a_readable_state_file_is_made_private_and_still_used(
    data_home: Path, caplog: pytest.LogCaptureFixture
) -> None:
    state = data_home / "reaper-lsp" / "http3"
    state.mkdir(parents=True)
    for folder in (state, state.parent):
        folder.chmod(0o700)
    _write(state, {"k": _fields()}).chmod(0o644)
    with caplog.at_level("WARNING"):
        assert TicketStore(state).has("k")
    assert mode(state / TICKETS_FILE) == 0o600
    [warning] = [r for r in caplog.records if r.levelname == "WARNING"]
    assert "0644" in warning.getMessage() and "made it private (0600)" in warning.getMessage()


@pytest.mark.skipif(os.geteuid() != 0, reason="giving a file away needs root")
def test_a_state_file_owned_by_someone_else_is_refused(data_home: Path) -> None:
    state = data_home / "reaper-lsp" / "http3"
    state.mkdir(parents=True, mode=0o700)
    path = _write(state, {"k": _fields()})
    os.chown(path, 65534, 65534)
    assert not TicketStore(state).has("k")
    assert path.stat().st_uid == os.geteuid()  # replaced by a file of ours
