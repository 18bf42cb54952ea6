"""Where the daemon of this install and environment lives (socket, lock, log), and the checks
that refuse a location somebody else could control.

The socket's name carries a hash of the install (version and package files) and of the
environment variables that change what the daemon does (keys, proxies, CA bundles, config
and home directories), so a forwarder never talks to a daemon built from other code or
holding other credentials (gopls #37830). A directory or socket that is not ours — another
owner, a symbolic link, the wrong type or mode — is refused, never used or removed (gopls
#34111).

The forwarder imports this module on every editor start, so it imports no platformdirs,
tomllib or tempfile unless the common path (XDG variables set, a config without daemon or
key-name settings) does not apply.
"""

from __future__ import annotations

import json
import os
import stat
import sys

import reaper_lsp

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping
    from hashlib import sha256
else:
    # CPython's own SHA-256: hashlib loads OpenSSL, which would cost the forwarder 3 ms and
    # 4 MiB for three digests. (Chosen by version: a failed import scans all of sys.path.)
    try:
        if sys.version_info >= (3, 12):
            from _sha2 import sha256
        else:
            from _sha256 import sha256
    except ImportError:  # another implementation of Python
        from hashlib import sha256

APP = "reaper-lsp"
MAX_SOCKET_PATH = 100
"""Bytes. AF_UNIX allows 107 on Linux and 103 on macOS and the BSDs; stay under both."""
DEFAULT_KEY_VARIABLES = ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "LLAMA_API_KEY")
"""The `api_key_env` defaults. auth/github.py reads no token variable (the GitHub sign-in is
the token store or copilot.vim's files under XDG_CONFIG_HOME / HOME, both hashed below)."""
_PROXY = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY")
ENV_VARIABLES = (
    "REAPER_CONFIG",
    "HOME",
    "XDG_CONFIG_HOME",
    "XDG_DATA_HOME",
    "XDG_STATE_HOME",
    "XDG_CACHE_HOME",
    *_PROXY,
    *(name.lower() for name in _PROXY),
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "REQUESTS_CA_BUNDLE",
    "CURL_CA_BUNDLE",
    # auth/google.py looks for Application Default Credentials through these.
    "GOOGLE_APPLICATION_CREDENTIALS",
    "CLOUDSDK_CONFIG",
)
"""Besides the key variables: what the daemon's behaviour depends on."""
_MAX_CONFIG_BYTES = 1 << 20


class DaemonUnavailable(Exception):
    """No daemon can be used from here; `str(exc)` is a message fit for the user."""


class UserConfig:
    """What the forwarder needs from the user's config file, read without loading settings."""

    __slots__ = ("daemon_enabled", "key_variables", "path")

    def __init__(self, path: str, key_variables: tuple[str, ...], daemon_enabled: bool) -> None:
        self.path = path
        self.key_variables = key_variables
        """The variables holding API keys: the defaults and every `api_key_env` set."""
        self.daemon_enabled = daemon_enabled


class DaemonPaths:
    """The socket, its lock and its directory for one install and environment."""

    __slots__ = ("directory", "key", "lock", "socket")

    def __init__(self, directory: str, key: str) -> None:
        self.directory = directory
        self.key = key
        self.socket = os.path.join(directory, key + ".sock")
        self.lock = os.path.join(directory, key + ".lock")

    def __repr__(self) -> str:
        return f"DaemonPaths({self.socket!r})"


# -- what the socket's name is a hash of ----------------------------------------------------------


def _unix() -> bool:
    return sys.platform not in ("win32", "darwin")


def _home(env: Mapping[str, str]) -> str:
    return env.get("HOME") or os.path.expanduser("~")


def user_config_file(env: Mapping[str, str]) -> str:
    """The user file, by the rule of config.user_config_path (without importing platformdirs
    where the rule is known: on Linux and the BSDs it is XDG_CONFIG_HOME or ~/.config)."""
    explicit = env.get("REAPER_CONFIG", "").strip()
    if explicit:
        return os.path.expanduser(explicit)
    if _unix():
        xdg = env.get("XDG_CONFIG_HOME", "").strip()
        base = xdg if os.path.isabs(xdg) else os.path.join(_home(env), ".config")
        return os.path.join(base, APP, "reaper.toml")
    import platformdirs

    return os.path.join(platformdirs.user_config_dir(APP), "reaper.toml")


def read_user_config(env: Mapping[str, str]) -> UserConfig:
    """The key variable names and `[daemon] enabled` of the user file. A missing or broken
    file gives the defaults: the daemon's own config loading reports what is wrong with it."""
    path = user_config_file(env)
    try:
        with open(path, "rb") as file:
            data = file.read(_MAX_CONFIG_BYTES)
    except OSError:
        data = b""
    # tomllib costs more than the rest of the forwarder's imports: parse only when the file
    # can hold one of the two keys (TOML has no way to spell them without these letters,
    # short of \u escapes in quoted keys).
    if b"api_key_env" not in data and b"daemon" not in data:
        return UserConfig(path, DEFAULT_KEY_VARIABLES, True)
    import tomllib

    try:
        document = tomllib.loads(data.decode("utf-8"))
    except (ValueError, UnicodeDecodeError):
        return UserConfig(path, DEFAULT_KEY_VARIABLES, True)
    names = list(DEFAULT_KEY_VARIABLES)
    providers = document.get("providers")
    for table in providers.values() if isinstance(providers, dict) else ():
        name = table.get("api_key_env") if isinstance(table, dict) else None
        if isinstance(name, str) and name.strip() and name.strip() not in names:
            names.append(name.strip())
    daemon = document.get("daemon")
    enabled = daemon.get("enabled", True) if isinstance(daemon, dict) else True
    return UserConfig(path, tuple(names), enabled if isinstance(enabled, bool) else True)


def relevant_env(env: Mapping[str, str], key_variables: tuple[str, ...]) -> dict[str, str]:
    """The variables a daemon must share with a forwarder to serve it (values may be
    secrets: never log them)."""
    names = sorted({*ENV_VARIABLES, *key_variables})
    return {name: env[name] for name in names if name in env}


def env_key(relevant: Mapping[str, str]) -> str:
    """A digest of `relevant_env`'s result; two environments serve alike iff equal."""
    text = json.dumps(sorted(relevant.items()), separators=(",", ":"))
    return sha256(text.encode("utf-8", "surrogateescape")).hexdigest()


def _package_files(root: str) -> Iterator[tuple[str, int, int]]:
    stack = [root]
    while stack:
        folder = stack.pop()
        with os.scandir(folder) as entries:
            for entry in entries:
                if entry.is_dir(follow_symlinks=False):
                    if entry.name != "__pycache__":
                        stack.append(entry.path)
                elif entry.name.endswith(".py"):
                    st = entry.stat()
                    yield os.path.relpath(entry.path, root), st.st_size, st.st_mtime_ns


def version_fingerprint(root: str | None = None) -> str:
    """The installed code: version, interpreter prefix, and the names, sizes and mtimes of
    the package's .py files (an edited checkout is another version; ~1 ms to compute)."""
    root = root or os.path.dirname(reaper_lsp.__file__)
    files = sorted(_package_files(root))
    text = json.dumps([reaper_lsp.__version__, sys.prefix, sys.version, files])
    return sha256(text.encode("utf-8", "surrogateescape")).hexdigest()


def daemon_key(fingerprint: str, relevant: Mapping[str, str]) -> str:
    """The socket's name: short, since the whole path must fit AF_UNIX's limit."""
    return sha256(f"{fingerprint}:{env_key(relevant)}".encode()).hexdigest()[:16]


# -- where ---------------------------------------------------------------------------------------


def _usable_base(path: str) -> bool:
    """A directory of ours we can create entries in (the runtime dir's own contract)."""
    try:
        st = os.stat(path)
    except OSError:
        return False
    return (
        stat.S_ISDIR(st.st_mode) and st.st_uid == os.getuid() and os.access(path, os.W_OK | os.X_OK)
    )


def _runtime_candidates(env: Mapping[str, str]) -> Iterator[str]:
    xdg = env.get("XDG_RUNTIME_DIR", "")
    if os.path.isabs(xdg) and _usable_base(xdg):
        yield os.path.join(xdg, APP)
        return
    import warnings

    import platformdirs

    with warnings.catch_warnings():  # "XDG_RUNTIME_DIR is not set": said by the fallback here
        warnings.simplefilter("ignore")
        runtime = platformdirs.user_runtime_dir(APP)
    if _usable_base(os.path.dirname(runtime)):
        yield runtime


def _candidates(env: Mapping[str, str]) -> Iterator[str]:
    yield from _runtime_candidates(env)
    yield temp_directory()  # computed only when needed: tempfile costs 8 ms to import


def temp_directory() -> str:
    """The last resort: a directory of ours in the shared temp dir, named after our uid."""
    import tempfile

    return os.path.join(tempfile.gettempdir(), f"{APP}-{os.getuid()}")


def resolve(
    env: Mapping[str, str],
    *,
    config: UserConfig | None = None,
    fingerprint: str | None = None,
) -> DaemonPaths:
    """The daemon's paths for this environment, its directory created (0700) and checked.
    Raises DaemonUnavailable when the only usable location is not ours."""
    config = config or read_user_config(env)
    key = daemon_key(fingerprint or version_fingerprint(), relevant_env(env, config.key_variables))
    for directory in _candidates(env):
        paths = DaemonPaths(directory, key)
        if len(os.fsencode(paths.socket)) <= MAX_SOCKET_PATH:
            ensure_directory(directory)
            return paths
    raise DaemonUnavailable(f"no socket path short enough for AF_UNIX (tried {paths.socket})")


def ensure_directory(path: str) -> None:
    """Create `path` 0700, or accept it if it is a directory of ours (tightened to 0700)."""
    try:
        os.mkdir(path, 0o700)
    except FileExistsError:
        pass
    except OSError as exc:
        raise DaemonUnavailable(f"cannot create the daemon directory {path}: {exc}") from exc
    st = os.lstat(path)
    if stat.S_ISLNK(st.st_mode) or not stat.S_ISDIR(st.st_mode):
        raise DaemonUnavailable(f"{path} is not a directory; remove it to use the daemon")
    if st.st_uid != os.getuid():
        raise DaemonUnavailable(
            f"{path} belongs to uid {st.st_uid}, not to you; refusing to use it"
        )
    if stat.S_IMODE(st.st_mode) & 0o077:
        os.chmod(path, 0o700)


def socket_exists(path: str) -> bool:
    """Whether a socket of ours is at `path` (live or stale). Anything else there is
    refused: a file, a link, somebody else's socket, a socket others could connect to."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return False
    if not stat.S_ISSOCK(st.st_mode):
        raise DaemonUnavailable(f"{path} is not a socket; remove it to use the daemon")
    if st.st_uid != os.getuid():
        raise DaemonUnavailable(f"{path} belongs to uid {st.st_uid}, not to you; refusing it")
    if stat.S_IMODE(st.st_mode) != 0o600:
        raise DaemonUnavailable(
            f"{path} has mode {stat.S_IMODE(st.st_mode):04o}, not 0600; remove it to use the daemon"
        )
    return True


def state_directory(env: Mapping[str, str]) -> str:
    """platformdirs' user_state_dir (XDG_STATE_HOME or ~/.local/state on Linux)."""
    if _unix():
        xdg = env.get("XDG_STATE_HOME", "").strip()
        base = xdg if os.path.isabs(xdg) else os.path.join(_home(env), ".local", "state")
        return os.path.join(base, APP)
    import platformdirs

    return platformdirs.user_state_dir(APP)


def log_file(env: Mapping[str, str]) -> str:
    """The daemon's stdout and stderr go here (its own log configuration may add more)."""
    return os.path.join(state_directory(env), "daemon.log")
