"""The token store: private, atomic, shared safely between processes, never clobbering a file
it cannot read."""

from __future__ import annotations

import json
import multiprocessing
import os
import stat
from pathlib import Path
from typing import Any

import pytest

from reaper_lsp.auth.store import StoreCorrupted, TokenStore


def test_file_and_folder_are_private(tmp_path: Path) -> None:
    store = TokenStore(tmp_path / "dir" / "auth.json", use_keyring=False)
    store.put("github", {"token": "ghu_secret"})
    assert stat.S_IMODE(os.stat(store.path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(store.path.parent).st_mode) == 0o700
    assert store.get("github") == {"token": "ghu_secret"}
    assert [p.name for p in store.path.parent.iterdir() if p.name.endswith(".tmp")] == []


def test_delete(tmp_path: Path) -> None:
    store = TokenStore(tmp_path / "auth.json", use_keyring=False)
    store.put("a", {"x": 1})
    assert store.delete("a") is True
    assert store.delete("a") is False
    assert store.get("a") is None


def test_sees_what_another_process_wrote(tmp_path: Path) -> None:
    mine = TokenStore(tmp_path / "auth.json", use_keyring=False)
    theirs = TokenStore(tmp_path / "auth.json", use_keyring=False)
    assert mine.get("github") is None
    theirs.put("github", {"token": "t1"})
    assert mine.get("github") == {"token": "t1"}


def _writer(path: str, key: str, rounds: int) -> None:
    store = TokenStore(Path(path), use_keyring=False)
    for i in range(rounds):
        store.put(key, {"n": i})


def test_two_processes_writing_at_once_lose_nothing(tmp_path: Path) -> None:
    path = str(tmp_path / "auth.json")
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_writer, args=(path, key, 50)) for key in ("github", "google")]
    for p in procs:
        p.start()
    for p in procs:
        p.join(30)
    data = json.loads(Path(path).read_text())
    assert data == {"github": {"n": 49}, "google": {"n": 49}}


def test_corrupt_file_is_reported_and_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "auth.json"
    path.write_text("{not json")
    store = TokenStore(path, use_keyring=False)
    with pytest.raises(StoreCorrupted, match=r"auth\.json"):
        store.get("github")
    with pytest.raises(StoreCorrupted):
        store.put("github", {"token": "new"})
    assert path.read_text() == "{not json"


class FakeKeyring:
    def __init__(self) -> None:
        self.data: dict[tuple[str, str], str] = {}

    def get_password(self, service: str, key: str) -> str | None:
        return self.data.get((service, key))

    def set_password(self, service: str, key: str, value: str) -> None:
        self.data[(service, key)] = value

    def delete_password(self, service: str, key: str) -> None:
        del self.data[(service, key)]


def test_keyring_is_used_when_available(tmp_path: Path) -> None:
    ring: Any = FakeKeyring()
    store = TokenStore(tmp_path / "auth.json", keyring=ring)
    store.put("github", {"token": "t"})
    assert store.get("github") == {"token": "t"}
    assert not (tmp_path / "auth.json").exists()
    assert store.delete("github") and ring.data == {}
