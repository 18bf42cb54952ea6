"""One place for every credential: `<user data dir>/auth.json` (mode 0600 in a 0700 folder,
written atomically under a file lock, so two servers can sign in at once), or the OS keyring
when the `keyring` package is installed with a usable backend.

A file that cannot be parsed is reported and never overwritten: it may hold the only copy of a
sign-in the user cares about, so they decide what to do with it. A file others could have
written (or someone else's) is not believed: it counts as absent, and the next sign-in replaces
it. Reads always reflect the file on disk: another process may have signed in or out since we
last looked.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import platformdirs

from reaper_lsp.auth.errors import AuthProblem
from reaper_lsp.logs import register_secret
from reaper_lsp.workspace import checked_state_file, private_dir

log = logging.getLogger(__name__)

APP_NAME = "reaper-lsp"
KEYRING_SERVICE = APP_NAME
_EXPOSED = (
    "Whoever could read it may have copied your sign-ins: sign out and in again if that matters."
)
_SECRET_FIELDS = ("token", "access_token", "refresh_token", "oauth_token", "client_secret")


class StoreCorrupted(AuthProblem):
    """The credentials cannot be read safely (a damaged file, an unusable keyring); nothing was
    changed, and writes are refused until the user fixes or deletes the file."""


class KeyringUnavailable(StoreCorrupted):
    """The OS keyring failed (locked, its service not running)."""


def default_store_path() -> Path:
    return Path(platformdirs.user_data_dir(APP_NAME)) / "auth.json"


def _register(value: dict[str, Any]) -> None:
    for name in _SECRET_FIELDS:
        secret = value.get(name)
        if isinstance(secret, str) and secret:
            register_secret(secret)


def _backend_usable(module: Any) -> bool:
    """Whether a keyring module (or anything shaped like it) has a real backend: the fail and
    null backends report priority ≤ 0. Objects without `get_keyring` are taken as usable."""
    get_keyring = getattr(module, "get_keyring", None)
    if get_keyring is None:
        return all(
            callable(getattr(module, name, None))
            for name in ("get_password", "set_password", "delete_password")
        )
    try:
        backend = get_keyring()
        kind = type(backend).__module__ + "." + type(backend).__name__
        if kind.startswith(("keyring.backends.fail.", "keyring.backends.null.")):
            return False
        return float(backend.priority) > 0
    except Exception:
        return False


def _import_keyring() -> Any | None:
    """The `keyring` module, imported on first use; None when it is not installed."""
    try:
        import keyring  # type: ignore[import-not-found, unused-ignore]
    except Exception:  # ImportError, or a backend failing while the package initialises
        return None
    return keyring


_Stamp = tuple[int, int, int, int]


class TokenStore:
    """`get`/`put`/`delete` of small JSON objects by key ("github", "copilot", "google").

    `keyring`: a keyring module (or a stand-in with `get_password`, `set_password`,
    `delete_password`), used instead of the real one. `use_keyring`: None detects (keyring
    importable with a usable backend), False never uses it, True requires it.
    """

    def __init__(
        self,
        path: Path | None = None,
        *,
        keyring: object | None = None,
        use_keyring: bool | None = None,
    ) -> None:
        self._path = Path(path) if path is not None else default_store_path()
        self._keyring: Any | None = None
        if use_keyring is not False:
            candidate = keyring if keyring is not None else _import_keyring()
            if use_keyring is True:
                if candidate is None:
                    raise RuntimeError("use_keyring=True but the keyring package is not installed")
                self._keyring = candidate
            elif candidate is not None and _backend_usable(candidate):
                self._keyring = candidate
        self._lock = threading.Lock()
        self._cache: dict[str, Any] | None = None
        self._stamp: _Stamp | None = None
        self._folder_private = False

    def __repr__(self) -> str:
        return f"TokenStore({self.backend})"

    @property
    def path(self) -> Path:
        return self._path

    @property
    def backend(self) -> str:
        return "keyring" if self._keyring is not None else str(self._path)

    # -- keyring ------------------------------------------------------------------------------

    def _keyring_call(self, what: str, *args: str) -> Any:
        assert self._keyring is not None
        try:
            return getattr(self._keyring, what)(KEYRING_SERVICE, *args)
        except Exception as exc:
            raise KeyringUnavailable(
                f"the OS keyring failed ({type(exc).__name__}); unlock it or make sure its "
                "service runs, then try again"
            ) from None

    def _keyring_get(self, key: str) -> dict[str, Any] | None:
        raw = self._keyring_call("get_password", key)
        if not raw:
            return None
        try:
            value = json.loads(raw)
        except ValueError:
            raise StoreCorrupted(
                f"the keyring entry {KEYRING_SERVICE}/{key} is not what reaper-lsp wrote; "
                "delete it, then sign in again"
            ) from None
        return value if isinstance(value, dict) else None

    def _legacy_file_get(self, key: str) -> dict[str, Any] | None:
        """A sign-in left in the file from before keyring was installed."""
        try:
            value = self._read().get(key)
        except StoreCorrupted:
            return None
        return value if isinstance(value, dict) else None

    # -- file ---------------------------------------------------------------------------------

    def _corrupt(self, what: str) -> StoreCorrupted:
        return StoreCorrupted(
            f"the token file {self._path} {what}. reaper-lsp leaves it untouched and will not "
            "save sign-ins until you fix or delete it (then sign in again)."
        )

    def _read(self) -> dict[str, Any]:
        """The file's content, re-read only when it changed on disk."""
        try:
            st = self._path.stat()
        except FileNotFoundError:
            self._cache, self._stamp = {}, None
            return {}
        except OSError as exc:
            raise self._corrupt(f"cannot be examined ({exc.strerror})") from None
        flagged = bool(st.st_mode & 0o077) or st.st_uid != os.geteuid()
        if flagged:
            try:
                checked = checked_state_file(self._path, hint=_EXPOSED)
            except OSError as exc:
                raise self._corrupt(f"cannot be examined ({exc.strerror})") from None
            if checked is None:  # refused (and reported): as if there were no file
                self._cache, self._stamp = {}, None
                return {}
            st = checked
        with contextlib.suppress(OSError):  # reading needs nothing of the folder
            self._make_folder_private(warn=not flagged)  # a flagged file was reported already
        stamp = (st.st_ino, st.st_mtime_ns, st.st_ctime_ns, st.st_size)
        if self._cache is not None and stamp == self._stamp:
            return self._cache
        try:
            raw = self._path.read_bytes()
        except FileNotFoundError:
            self._cache, self._stamp = {}, None
            return {}
        except OSError as exc:
            raise self._corrupt(f"cannot be read ({exc.strerror})") from None
        try:
            data = json.loads(raw.decode("utf-8"))
        except UnicodeDecodeError:
            raise self._corrupt("is not UTF-8 text") from None
        except json.JSONDecodeError as exc:
            # msg/lineno/colno describe the damage without quoting the file.
            where = f"line {exc.lineno} column {exc.colno}"
            raise self._corrupt(f"is not valid JSON ({exc.msg} at {where})") from None
        if not isinstance(data, dict):
            raise self._corrupt(f"holds a JSON {type(data).__name__}, not an object")
        wrong = sorted(str(k) for k, v in data.items() if not isinstance(v, dict))
        if wrong:
            raise self._corrupt(f"has entries that are not objects: {', '.join(wrong)}")
        for value in data.values():
            _register(value)
        self._cache, self._stamp = data, stamp
        return data

    def _make_folder_private(self, *, warn: bool = True) -> None:
        """Our own folder 0700 (a venv made by the README's install leaves it 0755); a
        folder the user chose is created private but otherwise left as it is: it may be meant
        to be shared."""
        if self._folder_private:
            return
        folder = self._path.parent
        ours = folder.name == APP_NAME or folder == default_store_path().parent
        if ours or not folder.exists():
            private_dir(folder, warn=warn)
        self._folder_private = True

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """Exclusive across threads and processes, for a read-modify-write of the file."""
        self._make_folder_private()
        lock_path = self._path.with_name(self._path.name + ".lock")
        with self._lock:
            fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                self._cache = None  # what counts is the file now, under the lock
                yield
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
                os.close(fd)

    def _write(self, data: dict[str, Any]) -> None:
        text = json.dumps(data, indent=2).encode("utf-8")  # fails before any file is touched
        folder = self._path.parent
        fd, tmp = tempfile.mkstemp(prefix=".auth-", suffix=".tmp", dir=folder)  # mode 0600
        try:
            os.fchmod(fd, 0o600)
            with os.fdopen(fd, "wb") as handle:
                handle.write(text)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, self._path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        with contextlib.suppress(OSError):  # make the rename itself durable
            dir_fd = os.open(folder, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
        self._cache, self._stamp = None, None

    # -- public -------------------------------------------------------------------------------

    def get(self, key: str) -> dict[str, Any] | None:
        """A copy of the entry under `key`, or None. Raises StoreCorrupted (the file or the
        keyring entry cannot be read)."""
        if self._keyring is not None:
            value = self._keyring_get(key)
            if value is None:
                with self._lock:
                    value = self._legacy_file_get(key)
        else:
            with self._lock:
                value = self._read().get(key)
        if value is None:
            return None
        _register(value)
        return dict(value)

    def put(self, key: str, value: dict[str, Any]) -> None:
        """Store `value` under `key`. Raises StoreCorrupted rather than replace a damaged file."""
        if not isinstance(value, dict):
            raise TypeError("a token store entry is a dict")
        _register(value)
        if self._keyring is not None:
            self._keyring_call("set_password", key, json.dumps(value))
            return
        with self._locked():
            data = dict(self._read())
            data[key] = value
            self._write(data)

    def delete(self, key: str) -> bool:
        """Remove `key`; whether it was there."""
        if self._keyring is not None:
            removed = False
            if self._keyring_get(key) is not None:
                self._keyring_call("delete_password", key)
                removed = True
            if self._path.exists():
                with contextlib.suppress(StoreCorrupted):
                    removed = self._delete_from_file(key) or removed
            return removed
        return self._delete_from_file(key)

    def _delete_from_file(self, key: str) -> bool:
        if not self._path.exists():
            return False
        with self._locked():
            data = dict(self._read())
            if key not in data:
                return False
            del data[key]
            self._write(data)
            return True
