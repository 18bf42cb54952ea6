"""The token store: private, atomic, shared safely between processes, never clobbering a file
it cannot read; the OS keyring when one is usable."""

from __future__ import annotations

import json
import multiprocessing
import os
import stat
import sys
import threading
import types
from pathlib import Path
from typing import Any

import pytest

from reaper_lsp.auth.store import (
    KeyringUnavailable,
    StoreCorrupted,
    TokenStore,
    default_store_path,
)
from reaper_lsp.logs import redact


def file_store(path: Path) -> TokenStore:
    return TokenStore(path, use_keyring=False)


def test_file_and_folder_are_private(tmp_path: Path) -> None:
    store = file_store(tmp_path / "dir" / "auth.json")
    store.put("github", {"token": "ghu_secret"})
    assert stat.S_IMODE(os.stat(store.path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(store.path.parent).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(store.path.with_name("auth.json.lock")).st_mode) == 0o600
    assert store.get("github") == {"token": "ghu_secret"}
    assert [p.name for p in store.path.parent.iterdir() if p.name.endswith(".tmp")] == []


def test_a_loose_file_becomes_private_on_the_next_write(tmp_path: Path) -> None:
    path = tmp_path / "auth.json"
    path.write_text("{}")
    path.chmod(0o644)
    file_store(path).put("github", {"token": "t"})
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600


def test_default_location_is_the_user_data_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    assert default_store_path() == tmp_path / "data" / "reaper-lsp" / "auth.json"
    assert TokenStore(use_keyring=False).path == default_store_path()


def test_get_put_delete_and_copies(tmp_path: Path) -> None:
    store = file_store(tmp_path / "auth.json")
    assert store.get("a") is None
    assert store.delete("a") is False  # nothing to delete, and no file created for it
    assert not store.path.exists()
    store.put("a", {"x": 1})
    store.put("b", {"y": 2})
    got = store.get("a")
    assert got == {"x": 1}
    assert got is not None
    got["x"] = 99  # callers get copies
    assert store.get("a") == {"x": 1}
    assert store.delete("a") is True
    assert store.delete("a") is False
    assert store.get("a") is None
    assert json.loads(store.path.read_text()) == {"b": {"y": 2}}


def test_loaded_tokens_are_redacted_from_logs(tmp_path: Path) -> None:
    path = tmp_path / "auth.json"
    path.write_text(json.dumps({"google": {"refresh_token": "opaque-refresh-value-123"}}))
    store = file_store(path)
    store.get("google")
    assert "opaque-refresh-value-123" not in redact("refreshing with opaque-refresh-value-123")
    assert "opaque" not in repr(store)


# -- atomic writes -------------------------------------------------------------------------------


def test_readers_never_see_a_partial_file(tmp_path: Path) -> None:
    path = tmp_path / "auth.json"
    store = file_store(path)
    store.put("github", {"token": "x" * 200_000})
    stop = threading.Event()
    seen: list[str] = []

    def read() -> None:
        while not stop.is_set():
            try:
                data = json.loads(path.read_bytes())
            except FileNotFoundError:
                seen.append("missing")
                continue
            except ValueError:
                seen.append("partial")
                continue
            seen.append("ok" if len(data["github"]["token"]) == 200_000 else "short")

    reader = threading.Thread(target=read)
    reader.start()
    try:
        for i in range(40):
            store.put("github", {"token": str(i % 10) * 200_000})
    finally:
        stop.set()
        reader.join()
    assert seen and set(seen) == {"ok"}


def test_failed_write_leaves_the_old_file_and_no_temp(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "auth.json"
    store = file_store(path)
    store.put("github", {"token": "old"})
    before = path.read_bytes()

    def broken_fsync(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", broken_fsync)
    with pytest.raises(OSError, match="No space"):
        store.put("github", {"token": "new"})
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["auth.json", "auth.json.lock"]
    assert store.get("github") == {"token": "old"}


def test_unserialisable_value_touches_nothing(tmp_path: Path) -> None:
    store = file_store(tmp_path / "auth.json")
    store.put("a", {"x": 1})
    with pytest.raises(TypeError):
        store.put("b", {"x": object()})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["auth.json", "auth.json.lock"]
    assert store.get("a") == {"x": 1} and store.get("b") is None


# -- other processes -----------------------------------------------------------------------------


def test_sees_what_another_writer_did(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    mine = file_store(tmp_path / "auth.json")
    theirs = file_store(tmp_path / "auth.json")
    assert mine.get("github") is None
    theirs.put("github", {"token": "t1"})
    assert mine.get("github") == {"token": "t1"}
    theirs.put("github", {"token": "t2"})  # same size: the inode / mtime tell it changed
    assert mine.get("github") == {"token": "t2"}
    theirs.delete("github")
    assert mine.get("github") is None
    (tmp_path / "auth.json").unlink()
    assert mine.get("github") is None


def test_unchanged_file_is_not_read_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = file_store(tmp_path / "auth.json")
    store.put("github", {"token": "t1"})
    assert store.get("github") == {"token": "t1"}
    reads: list[Path] = []
    real = Path.read_bytes

    def counting(self: Path) -> bytes:
        reads.append(self)
        return real(self)

    monkeypatch.setattr(Path, "read_bytes", counting)
    for _ in range(5):
        assert store.get("github") == {"token": "t1"}
    assert reads == []
    file_store(tmp_path / "auth.json").put("github", {"token": "t9"})
    reads.clear()
    assert store.get("github") == {"token": "t9"}
    assert len(reads) == 1


def _writer(path: str, key: str, rounds: int, start: Any) -> None:
    store = TokenStore(Path(path), use_keyring=False)
    start.wait(10)
    for i in range(rounds):
        store.put(key, {"n": i, "pad": key * 500})


def test_two_processes_writing_at_once_lose_nothing(tmp_path: Path) -> None:
    path = str(tmp_path / "auth.json")
    ctx = multiprocessing.get_context("spawn")
    start = ctx.Event()
    procs = [
        ctx.Process(target=_writer, args=(path, key, 50, start)) for key in ("github", "google")
    ]
    for p in procs:
        p.start()
    start.set()
    for p in procs:
        p.join(60)
    assert [p.exitcode for p in procs] == [0, 0]
    data = json.loads(Path(path).read_text())
    assert data == {
        "github": {"n": 49, "pad": "github" * 500},
        "google": {"n": 49, "pad": "google" * 500},
    }
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


def test_threads_writing_at_once_lose_nothing(tmp_path: Path) -> None:
    store = file_store(tmp_path / "auth.json")

    def write(key: str) -> None:
        for i in range(30):
            store.put(key, {"n": i})

    threads = [threading.Thread(target=write, args=(k,)) for k in "abcd"]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert json.loads(store.path.read_text()) == {k: {"n": 29} for k in "abcd"}


# -- a damaged file ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "what"),
    [
        ('{"github": {"token": "ghu_leakme1234567"', "not valid JSON"),
        ('["ghu_leakme1234567"]', "JSON list"),
        ('{"github": "ghu_leakme1234567"}', "not objects: github"),
        (b"\xff\xfe ghu_leakme1234567", "not UTF-8"),
    ],
)
def test_corrupt_file_is_reported_and_left_alone(
    tmp_path: Path, content: str | bytes, what: str
) -> None:
    path = tmp_path / "auth.json"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    before = path.read_bytes()
    store = file_store(path)
    with pytest.raises(StoreCorrupted) as caught:
        store.get("github")
    message = str(caught.value)
    assert str(path) in message and what in message
    assert "delete" in message  # tells the user what to do
    assert "leakme" not in message  # never the content
    with pytest.raises(StoreCorrupted):
        store.put("github", {"token": "new"})
    with pytest.raises(StoreCorrupted):
        store.delete("github")
    assert path.read_bytes() == before
    path.unlink()  # the user deleted it: the store works again
    store.put("github", {"token": "new"})
    assert store.get("github") == {"token": "new"}


# -- keyring -------------------------------------------------------------------------------------


class FakeBackend:
    def __init__(self, priority: float) -> None:
        self.priority = priority


def fake_keyring(priority: float = 5, *, broken: bool = False) -> Any:
    """A stand-in for the `keyring` module (it is not installed here)."""
    module: Any = types.ModuleType("keyring")
    module.data = {}
    backend = FakeBackend(priority)

    def get_password(service: str, key: str) -> str | None:
        if broken:
            raise RuntimeError("the keyring is locked")
        value: str | None = module.data.get((service, key))
        return value

    def set_password(service: str, key: str, value: str) -> None:
        if broken:
            raise RuntimeError("the keyring is locked")
        module.data[(service, key)] = value

    def delete_password(service: str, key: str) -> None:
        del module.data[(service, key)]

    module.get_keyring = lambda: backend
    module.get_password = get_password
    module.set_password = set_password
    module.delete_password = delete_password
    return module


def test_keyring_is_used_when_available(tmp_path: Path) -> None:
    ring = fake_keyring()
    store = TokenStore(tmp_path / "auth.json", keyring=ring)
    assert store.backend == "keyring"
    store.put("github", {"token": "ghu_inthekeyring"})
    assert store.get("github") == {"token": "ghu_inthekeyring"}
    assert json.loads(ring.data[("reaper-lsp", "github")]) == {"token": "ghu_inthekeyring"}
    assert not (tmp_path / "auth.json").exists()
    assert store.delete("github") is True
    assert ring.data == {}
    assert store.delete("github") is False


@pytest.mark.parametrize("priority", [0, -1])
def test_fail_and_null_backends_are_not_used(tmp_path: Path, priority: float) -> None:
    ring = fake_keyring(priority)
    store = TokenStore(tmp_path / "auth.json", keyring=ring)
    store.put("github", {"token": "t"})
    assert ring.data == {}
    assert json.loads((tmp_path / "auth.json").read_text()) == {"github": {"token": "t"}}


def test_keyring_is_imported_lazily_when_installed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ring = fake_keyring()
    monkeypatch.setitem(sys.modules, "keyring", ring)
    assert TokenStore(tmp_path / "auth.json").backend == "keyring"
    assert TokenStore(tmp_path / "auth.json", use_keyring=False).backend != "keyring"
    monkeypatch.setitem(sys.modules, "keyring", None)  # not installed: `import` fails
    assert TokenStore(tmp_path / "auth.json").backend == str(tmp_path / "auth.json")
    with pytest.raises(RuntimeError, match="not installed"):
        TokenStore(tmp_path / "auth.json", use_keyring=True)


def test_sign_ins_saved_before_keyring_was_installed_still_count(tmp_path: Path) -> None:
    file_store(tmp_path / "auth.json").put("github", {"token": "from-the-file"})
    ring = fake_keyring()
    store = TokenStore(tmp_path / "auth.json", keyring=ring)
    assert store.get("github") == {"token": "from-the-file"}
    store.put("github", {"token": "in-the-keyring"})
    assert store.get("github") == {"token": "in-the-keyring"}
    assert store.delete("github") is True  # from both places
    assert store.get("github") is None
    assert json.loads((tmp_path / "auth.json").read_text()) == {}


def test_keyring_failure_is_reported_without_secrets(tmp_path: Path) -> None:
    store = TokenStore(tmp_path / "auth.json", keyring=fake_keyring(broken=True))
    with pytest.raises(KeyringUnavailable, match="keyring"):
        store.get("github")
    with pytest.raises(StoreCorrupted) as caught:  # KeyringUnavailable is a StoreCorrupted
        store.put("github", {"token": "ghu_neverinmessages"})
    assert "ghu_" not in str(caught.value)


def test_damaged_keyring_entry(tmp_path: Path) -> None:
    ring = fake_keyring()
    ring.data[("reaper-lsp", "github")] = "{not json"
    with pytest.raises(StoreCorrupted, match="reaper-lsp/github"):
        TokenStore(tmp_path / "auth.json", keyring=ring).get("github")


# -- a token file others can read ----------------------------------------------------------------


def mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_a_readable_token_file_is_made_private_with_one_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    folder = tmp_path / "reaper-lsp"
    folder.mkdir()
    path = folder / "auth.json"
    path.write_text(json.dumps({"github": {"token": "ghu_loosefile0123456789"}}))
    path.chmod(0o644)
    folder.chmod(0o755)
    store = file_store(path)
    with caplog.at_level("WARNING", logger="reaper_lsp.auth.store"):
        assert store.get("github") == {"token": "ghu_loosefile0123456789"}
        assert (mode(path), mode(folder)) == (0o600, 0o700)
        path.chmod(0o640)  # loosened again: fixed again, but the user was already told
        assert file_store(path).get("github") == {"token": "ghu_loosefile0123456789"}
        assert mode(path) == 0o600
    [warning] = [r for r in caplog.records if r.levelname == "WARNING"]
    message = warning.getMessage()
    assert str(path) in message and "0644" in message and "made it private" in message
    assert "ghu_" not in caplog.text


def test_a_folder_we_did_not_create_is_left_as_it_is(tmp_path: Path) -> None:
    folder = tmp_path / "shared"
    folder.mkdir()
    folder.chmod(0o755)
    path = folder / "auth.json"
    path.write_text("{}")
    path.chmod(0o604)
    assert file_store(path).get("github") is None
    assert (mode(path), mode(folder)) == (0o600, 0o755)


def test_a_private_file_is_read_without_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = file_store(tmp_path / "reaper-lsp" / "auth.json")
    store.put("github", {"token": "t"})
    with caplog.at_level("WARNING"):
        assert file_store(store.path).get("github") == {"token": "t"}
    assert caplog.records == []


# -- the folder the README's install leaves open, and files others could have written ------------


@pytest.fixture
def data_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """XDG folders inside tmp_path: the default store lives in <data>/reaper-lsp/."""
    for kind in ("DATA", "STATE", "CACHE"):
        monkeypatch.setenv(f"XDG_{kind}_HOME", str(tmp_path / kind.lower()))
    (tmp_path / "data").mkdir(mode=0o755)
    return tmp_path / "data"


def test_a_folder_a_venv_left_open_is_made_private_on_sign_in(
    data_home: Path, caplog: pytest.LogCaptureFixture
) -> None:
    folder = data_home / "reaper-lsp"
    (folder / "venv").mkdir(parents=True)  # `python3 -m venv ~/.local/share/reaper-lsp/venv`
    folder.chmod(0o755)
    store = TokenStore(use_keyring=False)
    with caplog.at_level("WARNING"):
        store.put("github", {"token": "ghu_x"})
    assert (mode(folder), mode(store.path)) == (0o700, 0o600)
    assert mode(data_home) == 0o755  # the user's data folder is not ours
    [warning] = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert str(folder) in warning and "made it private (0700)" in warning


def test_a_private_token_file_in_an_open_folder_of_ours_is_fixed_on_reading(
    data_home: Path,
) -> None:
    store = TokenStore(use_keyring=False)
    store.put("github", {"token": "ghu_x"})
    store.path.parent.chmod(0o755)
    assert TokenStore(use_keyring=False).get("github") == {"token": "ghu_x"}
    assert mode(store.path.parent) == 0o700


@pytest.mark.parametrize("open_mode", [0o666, 0o620, 0o602])
def test_a_token_file_others_can_write_is_refused_then_replaced(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, open_mode: int
) -> None:
    path = tmp_path / "reaper-lsp" / "auth.json"
    path.parent.mkdir(mode=0o700)
    path.write_text(json.dumps({"github": {"token": "ghu_planted"}}))
    path.chmod(open_mode)
    store = file_store(path)
    with caplog.at_level("WARNING"):
        assert store.get("github") is None  # whoever could write it may have planted it
    assert "other users can write it" in caplog.text and "ghu_" not in caplog.text
    store.put("copilot", {"token": "mine"})
    assert json.loads(path.read_text()) == {"copilot": {"token": "mine"}}
    assert mode(path) == 0o600


@pytest.mark.skipif(os.geteuid() != 0, reason="giving a file away needs root")
def test_a_token_file_owned_by_someone_else_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "reaper-lsp" / "auth.json"
    path.parent.mkdir(mode=0o700)
    path.write_text(json.dumps({"github": {"token": "ghu_planted"}}))
    path.chmod(0o600)
    os.chown(path, 65534, 65534)
    assert file_store(path).get("github") is None
