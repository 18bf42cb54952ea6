"""`workspace.private_dir` and `workspace.checked_state_file`: reaper-lsp's own folders are
0700 however they were found, its state files are 0600, and a state file someone else could
have written is never believed."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from reaper_lsp import workspace
from reaper_lsp.workspace import checked_state_file, private_dir

ROOT = os.geteuid() == 0


def mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.fixture(autouse=True)
def fresh_warnings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(workspace, "_warned", set())


@pytest.fixture
def data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The user's data folder (XDG_DATA_HOME), already there with the usual 0755."""
    for kind in ("DATA", "STATE", "CACHE"):
        monkeypatch.setenv(f"XDG_{kind}_HOME", str(tmp_path / kind.lower()))
    folder = tmp_path / "data"
    folder.mkdir(mode=0o755)
    return folder


@pytest.fixture
def loose_umask() -> Iterator[None]:
    old = os.umask(0o022)
    yield
    os.umask(old)


def _warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]


# -- private_dir -------------------------------------------------------------------------------


def test_creates_the_folder_and_its_parents_of_ours_private(
    data: Path, loose_umask: None, caplog: pytest.LogCaptureFixture
) -> None:
    path = data / "reaper-lsp" / "http3" / "deeper"
    assert private_dir(path) == path
    assert mode(path) == mode(path.parent) == mode(data / "reaper-lsp") == 0o700
    assert mode(data) == 0o755  # the user's own data folder is not ours
    assert _warnings(caplog) == []  # nothing was ever open


def test_parents_outside_our_folders_are_created_but_left_as_the_umask_says(
    tmp_path: Path, data: Path, loose_umask: None
) -> None:
    path = tmp_path / "elsewhere" / "state"
    private_dir(path)
    assert mode(path) == 0o700 and mode(path.parent) == 0o755


def test_an_open_folder_of_ours_is_tightened_with_one_warning(
    data: Path, caplog: pytest.LogCaptureFixture
) -> None:
    ours = data / "reaper-lsp"
    (ours / "http3").mkdir(parents=True)
    (ours / "http3").chmod(0o777)
    ours.chmod(0o755)  # a venv made by the README's install created it so
    with caplog.at_level("WARNING"):
        private_dir(ours / "http3")
        private_dir(ours / "http3")
    assert mode(ours) == mode(ours / "http3") == 0o700
    [warning] = _warnings(caplog)
    assert "0755" in warning and "0777" in warning and "made it private (0700)" in warning


def test_a_private_folder_gives_no_warning(data: Path, caplog: pytest.LogCaptureFixture) -> None:
    (data / "reaper-lsp").mkdir(mode=0o700)
    private_dir(data / "reaper-lsp")
    assert _warnings(caplog) == []


def test_warn_false_tightens_quietly(data: Path, caplog: pytest.LogCaptureFixture) -> None:
    (data / "reaper-lsp").mkdir()
    (data / "reaper-lsp").chmod(0o750)
    private_dir(data / "reaper-lsp", warn=False)
    assert mode(data / "reaper-lsp") == 0o700 and _warnings(caplog) == []


def test_a_file_in_the_way_is_an_error(data: Path) -> None:
    (data / "reaper-lsp").write_text("")
    with pytest.raises(NotADirectoryError):
        private_dir(data / "reaper-lsp")


@pytest.mark.skipif(not ROOT, reason="giving a folder away needs root")
def test_an_open_folder_of_someone_else_is_left_alone_with_a_warning(
    data: Path, caplog: pytest.LogCaptureFixture
) -> None:
    folder = data / "reaper-lsp"
    folder.mkdir()
    folder.chmod(0o777)
    os.chown(folder, 65534, 65534)
    private_dir(folder)
    assert mode(folder) == 0o777
    [warning] = _warnings(caplog)
    assert "another user" in warning


# -- checked_state_file ------------------------------------------------------------------------


def _file(folder: Path, file_mode: int) -> Path:
    path = folder / "state.json"
    path.write_text("{}")
    path.chmod(file_mode)
    return path


def test_a_missing_file_is_absent(tmp_path: Path) -> None:
    assert checked_state_file(tmp_path / "nothing.json") is None


def test_a_private_file_is_used_silently(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = _file(tmp_path, 0o600)
    checked = checked_state_file(path)
    assert checked is not None and checked.st_ino == path.stat().st_ino
    assert _warnings(caplog) == []


@pytest.mark.parametrize("loose", [0o644, 0o640, 0o604, 0o700 | 0o044])
def test_a_readable_file_of_ours_is_made_private_with_one_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, loose: int
) -> None:
    path = _file(tmp_path, loose)
    assert checked_state_file(path, hint="Rotate it.") is not None
    assert mode(path) & 0o077 == 0
    path.chmod(loose)  # loosened again: fixed again, the user was already told
    assert checked_state_file(path) is not None and mode(path) & 0o077 == 0
    [warning] = _warnings(caplog)
    assert f"{loose:04o}" in warning and "made it private (0600)" in warning
    assert warning.endswith("Rotate it.")


@pytest.mark.parametrize("open_mode", [0o666, 0o622, 0o620, 0o602, 0o660])
def test_a_file_others_can_write_is_refused_and_left_as_found(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, open_mode: int
) -> None:
    path = _file(tmp_path, open_mode)
    assert checked_state_file(path) is None
    assert checked_state_file(path) is None
    assert mode(path) == open_mode
    [warning] = _warnings(caplog)
    assert "other users can write it" in warning and "treats it as absent" in warning


def test_something_other_than_a_regular_file_is_refused(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "fifo")
    (tmp_path / "dir").mkdir(mode=0o700)
    assert checked_state_file(tmp_path / "fifo") is None
    assert checked_state_file(tmp_path / "dir") is None


@pytest.mark.skipif(not ROOT, reason="giving a file away needs root")
def test_a_file_owned_by_someone_else_is_refused(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = _file(tmp_path, 0o600)
    os.chown(path, 65534, 65534)
    assert checked_state_file(path) is None
    assert "belongs to another user (uid 65534)" in " ".join(_warnings(caplog))
