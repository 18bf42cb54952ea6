"""The daemon's socket location: one per install and environment, never somebody else's."""

from __future__ import annotations

import os
import shutil
import socket
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path

import platformdirs
import pytest

from reaper_lsp import config
from reaper_lsp.daemon import paths
from reaper_lsp.daemon.paths import DaemonUnavailable, ensure_directory, socket_exists

NOBODY = 65534
root_only = pytest.mark.skipif(os.getuid() != 0, reason="needs root to chown to another user")


@pytest.fixture
def short_tmp() -> Iterator[Path]:
    """A short base directory: pytest's tmp_path can exceed AF_UNIX's limit on its own."""
    base = tempfile.mkdtemp(prefix="rp", dir="/tmp")
    yield Path(base)
    shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def env(short_tmp: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    run = short_tmp / "run"
    run.mkdir(mode=0o700)
    monkeypatch.setattr(tempfile, "tempdir", str(short_tmp / "tmp"))
    (short_tmp / "tmp").mkdir()
    return {
        "HOME": str(short_tmp),
        "XDG_RUNTIME_DIR": str(run),
        "REAPER_CONFIG": str(short_tmp / "reaper.toml"),
    }


def socket_for(env: dict[str, str], **changes: str) -> str:
    return paths.resolve({**env, **changes}, fingerprint="install").socket


def make_socket(path: Path, mode: int = 0o600) -> None:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind(str(path))
    sock.close()  # left behind: a stale socket
    os.chmod(path, mode)


# -- the directory -------------------------------------------------------------------------------


def test_directory_is_created_0700_in_the_runtime_dir(env: dict[str, str]) -> None:
    where = paths.resolve(env)
    assert where.directory == os.path.join(env["XDG_RUNTIME_DIR"], "reaper-lsp")
    assert stat.S_IMODE(os.stat(where.directory).st_mode) == 0o700
    assert os.path.dirname(where.socket) == os.path.dirname(where.lock) == where.directory
    assert len(os.fsencode(where.socket)) <= paths.MAX_SOCKET_PATH


def test_a_loose_directory_of_ours_is_tightened(tmp_path: Path) -> None:
    folder = tmp_path / "d"
    folder.mkdir(mode=0o755)
    os.chmod(folder, 0o777)
    ensure_directory(str(folder))
    assert stat.S_IMODE(os.stat(folder).st_mode) == 0o700


@root_only
def test_a_directory_of_another_user_is_refused_not_tightened(tmp_path: Path) -> None:
    folder = tmp_path / "d"
    folder.mkdir()
    os.chmod(folder, 0o777)
    os.chown(folder, NOBODY, NOBODY)
    with pytest.raises(DaemonUnavailable, match="belongs to uid 65534"):
        ensure_directory(str(folder))
    assert stat.S_IMODE(os.stat(folder).st_mode) == 0o777


def test_a_symlinked_directory_is_refused(tmp_path: Path) -> None:
    (tmp_path / "real").mkdir(mode=0o700)
    (tmp_path / "link").symlink_to(tmp_path / "real")
    with pytest.raises(DaemonUnavailable, match="not a directory"):
        ensure_directory(str(tmp_path / "link"))


@root_only
def test_a_squatted_daemon_directory_is_refused_not_skipped(env: dict[str, str]) -> None:
    squatted = Path(env["XDG_RUNTIME_DIR"]) / "reaper-lsp"
    squatted.mkdir(mode=0o777)
    os.chown(squatted, NOBODY, NOBODY)
    with pytest.raises(DaemonUnavailable, match="not to you"):
        paths.resolve(env)


@root_only
def test_a_squatted_temp_directory_is_refused(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch, short_tmp: Path
) -> None:
    monkeypatch.setattr(platformdirs, "user_runtime_dir", lambda app: "/nonexistent/x/" + app)
    squatted = Path(paths.temp_directory())
    squatted.mkdir(mode=0o777)
    os.chown(squatted, NOBODY, NOBODY)
    with pytest.raises(DaemonUnavailable, match="not to you"):
        paths.resolve({**env, "XDG_RUNTIME_DIR": ""})


def test_an_unusable_runtime_dir_falls_back_to_a_temp_directory_of_ours(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(platformdirs, "user_runtime_dir", lambda app: "/nonexistent/x/" + app)
    where = paths.resolve({**env, "XDG_RUNTIME_DIR": "/nonexistent/run"})
    assert where.directory == paths.temp_directory()
    assert os.path.basename(where.directory) == f"reaper-lsp-{os.getuid()}"
    assert stat.S_IMODE(os.stat(where.directory).st_mode) == 0o700


def test_platformdirs_runtime_dir_is_used_when_xdg_runtime_dir_is_unset(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch, short_tmp: Path
) -> None:
    monkeypatch.setattr(platformdirs, "user_runtime_dir", lambda app: f"{short_tmp}/run/{app}")
    del env["XDG_RUNTIME_DIR"]
    assert paths.resolve(env).directory == f"{short_tmp}/run/reaper-lsp"


def test_a_path_too_long_for_af_unix_falls_back_to_the_temp_directory(
    env: dict[str, str],
) -> None:
    deep = Path(env["XDG_RUNTIME_DIR"]) / ("d" * 90)
    deep.mkdir(mode=0o700)
    where = paths.resolve({**env, "XDG_RUNTIME_DIR": str(deep)})
    assert where.directory == paths.temp_directory()


# -- the socket ----------------------------------------------------------------------------------


def test_an_absent_socket_is_not_an_error(tmp_path: Path) -> None:
    assert socket_exists(str(tmp_path / "none.sock")) is False


def test_a_socket_of_ours_with_mode_0600_is_accepted(tmp_path: Path) -> None:
    make_socket(tmp_path / "s.sock")
    assert socket_exists(str(tmp_path / "s.sock")) is True


def test_a_regular_file_at_the_socket_path_is_refused(tmp_path: Path) -> None:
    (tmp_path / "s.sock").write_text("")
    with pytest.raises(DaemonUnavailable, match="not a socket"):
        socket_exists(str(tmp_path / "s.sock"))


def test_a_symlink_at_the_socket_path_is_refused(tmp_path: Path) -> None:
    make_socket(tmp_path / "real.sock")
    (tmp_path / "s.sock").symlink_to(tmp_path / "real.sock")
    with pytest.raises(DaemonUnavailable, match="not a socket"):
        socket_exists(str(tmp_path / "s.sock"))


def test_a_socket_others_could_use_is_refused(tmp_path: Path) -> None:
    make_socket(tmp_path / "s.sock", 0o666)
    with pytest.raises(DaemonUnavailable, match="mode 0666"):
        socket_exists(str(tmp_path / "s.sock"))


@root_only
def test_a_socket_of_another_user_is_refused(tmp_path: Path) -> None:
    make_socket(tmp_path / "s.sock")
    os.chown(tmp_path / "s.sock", NOBODY, NOBODY)
    with pytest.raises(DaemonUnavailable, match="belongs to uid 65534"):
        socket_exists(str(tmp_path / "s.sock"))


# -- what the name is a hash of ------------------------------------------------------------------


def test_the_version_fingerprint_follows_the_package_files(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "__pycache__").mkdir()
    (tmp_path / "a.py").write_text("x = 1\n")
    (tmp_path / "sub" / "b.py").write_text("y = 2\n")
    first = paths.version_fingerprint(str(tmp_path))
    (tmp_path / "__pycache__" / "a.cpython-311.pyc").write_bytes(b"compiled")
    (tmp_path / "notes.txt").write_text("not code")
    assert paths.version_fingerprint(str(tmp_path)) == first
    os.utime(tmp_path / "sub" / "b.py", ns=(1, 10**18))
    touched = paths.version_fingerprint(str(tmp_path))
    assert touched != first
    (tmp_path / "c.py").write_text("")
    assert paths.version_fingerprint(str(tmp_path)) not in (first, touched)


def test_the_installed_fingerprint_is_stable() -> None:
    assert paths.version_fingerprint() == paths.version_fingerprint()


def test_another_install_gets_another_socket(env: dict[str, str]) -> None:
    one = paths.resolve(env, fingerprint="install one").socket
    other = paths.resolve(env, fingerprint="install two").socket
    assert one != other
    assert os.path.dirname(one) == os.path.dirname(other)


@pytest.mark.parametrize(
    "variable",
    ["OPENAI_API_KEY", "ANTHROPIC_API_KEY", "LLAMA_API_KEY", "HTTPS_PROXY", "https_proxy",
     "NO_PROXY", "SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "XDG_CONFIG_HOME", "XDG_DATA_HOME",
     "GOOGLE_APPLICATION_CREDENTIALS"],
)  # fmt: skip
def test_a_variable_that_matters_gives_another_socket(env: dict[str, str], variable: str) -> None:
    assert socket_for(env, **{variable: "one"}) != socket_for(env, **{variable: "two"})
    assert socket_for(env, **{variable: "one"}) != socket_for(env)


def test_other_variables_share_the_socket(env: dict[str, str]) -> None:
    assert socket_for(env, PATH="/a", EDITOR="vi") == socket_for(env, PATH="/b", TERM="x")


def test_key_variables_named_in_the_user_config_matter(env: dict[str, str]) -> None:
    assert socket_for(env, MY_KEY="one") == socket_for(env, MY_KEY="two")
    Path(env["REAPER_CONFIG"]).write_text('[providers.openai]\napi_key_env = "MY_KEY"\n')
    assert socket_for(env, MY_KEY="one") != socket_for(env, MY_KEY="two")


def test_the_user_config_gives_key_names_and_the_daemon_switch(env: dict[str, str]) -> None:
    file = Path(env["REAPER_CONFIG"])
    assert paths.read_user_config(env).daemon_enabled is True
    file.write_text(
        '[daemon]\nenabled = false\n[providers.claude]\napi_key_env = " CLAUDE_KEY "\n'
        "[providers.llamacpp]\napi_key_env = 3\n"
    )
    read = paths.read_user_config(env)
    assert read.daemon_enabled is False
    assert read.key_variables == (*paths.DEFAULT_KEY_VARIABLES, "CLAUDE_KEY")
    file.write_text("[daemon\nbroken")
    assert paths.read_user_config(env).daemon_enabled is True


@pytest.mark.parametrize(
    "changes",
    [{}, {"REAPER_CONFIG": "~/my.toml"}, {"XDG_CONFIG_HOME": "/etc/xdg-test"},
     {"XDG_CONFIG_HOME": "relative/dir"}, {"REAPER_CONFIG": "  "}],
)  # fmt: skip
def test_the_user_config_file_is_the_one_config_py_reads(
    changes: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # platformdirs reads the real environment: make it the one under test.
    for name in ("REAPER_CONFIG", "XDG_CONFIG_HOME"):
        monkeypatch.delenv(name, raising=False)
    for name, value in changes.items():
        monkeypatch.setenv(name, value)
    assert paths.user_config_file(os.environ) == str(config.user_config_path(os.environ)[0])


def test_the_log_file_is_in_the_state_directory(env: dict[str, str]) -> None:
    assert paths.log_file({**env, "XDG_STATE_HOME": "/s"}) == "/s/reaper-lsp/daemon.log"
    assert paths.log_file(env) == f"{env['HOME']}/.local/state/reaper-lsp/daemon.log"


def test_daemon_settings_load_from_the_user_file(tmp_path: Path) -> None:
    file = tmp_path / "reaper.toml"
    file.write_text("[daemon]\nenabled = false\nidle_timeout = 30\n")
    loaded = config.load(env={"REAPER_CONFIG": str(file)})
    assert loaded.settings.daemon.enabled is False
    assert loaded.settings.daemon.idle_timeout == 30.0
    assert not loaded.errors
