"""One place for every credential: `<user data dir>/auth.json` (mode 0600, written atomically
under a file lock, so two servers can sign in at once), or the OS keyring when the `keyring`
package is installed with a usable backend.

A file that cannot be parsed is reported and never overwritten: it may hold the only copy of a
sign-in the user cares about, so they decide what to do with it.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import platformdirs

from reaper_lsp.logs import register_secret

log = logging.getLogger(__name__)

KEYRING_SERVICE = "reaper-lsp"
_SECRET_FIELDS = ("token", "access_token", "refresh_token", "oauth_token", "client_secret")


class StoreCorrupted(Exception):
    """The token file exists but is not what we wrote; nothing was changed."""


def default_store_path() -> Path:
    return Path(platformdirs.user_data_dir("reaper-lsp")) / "auth.json"


def _register(value: dict[str, Any]) -> None:
    for name in _SECRET_FIELDS:
        secret = value.get(name)
        if isinstance(secret, str) and secret:
            register_secret(secret)


def _usable_keyring() -> Any | None:
    """The `keyring` module when it is installed and has a real backend (the fail and null
    backends have priority ≤ 0), else None."""
    try:
        import keyring  # type: ignore[import-not-found, unused-ignore]
    except ImportError:
        return None
    try:
        priority = float(keyring.get_keyring().priority)
    except Exception:
        return None
    return keyring if priority > 0 else None


class TokenStore:
    def __init__(
        self,
        path: Path | None = None,
        *,
        keyring: Any | None = None,
        use_keyring: bool | None = None,
    ) -> None:
        self._path = path or default_store_path()
        self._keyring: Any | None = None
        if use_keyring is not False:
            self._keyring = keyring if keyring is not None else _usable_keyring()
        self._cache: dict[str, Any] | None = None
        self._stamp: tuple[int, int] | None = None

    @property
    def path(self) -> Path:
        return self._path

    @property
    def backend(self) -> str:
        return "keyring" if self._keyring is not None else str(self._path)

    # -- keyring ------------------------------------------------------------------------------

    def _keyring_get(self, key: str) -> dict[str, Any] | None:
        assert self._keyring is not None
        raw = self._keyring.get_password(KEYRING_SERVICE, key)
        if not raw:
            return None
        try:
            value = json.loads(raw)
        except ValueError:
            raise StoreCorrupted(f"keyring entry {KEYRING_SERVICE}/{key} is not JSON") from None
        return value if isinstance(value, dict) else None

    # -- file ---------------------------------------------------------------------------------

    def _read(self) -> dict[str, Any]:
        """The file's content, re-read only when it changed on disk."""
        try:
            st = self._path.stat()
        except FileNotFoundError:
            self._cache, self._stamp = {}, None
            return {}
        stamp = (st.st_mtime_ns, st.st_size)
        if self._cache is not None and stamp == self._stamp:
            return self._cache
        try:
            data = json.loads(self._path.read_text(encoding="utf-8"))
        except (ValueError, UnicodeDecodeError):
            raise StoreCorrupted(
                f"{self._path} is not valid JSON; it was left untouched. Fix or delete it, "
                "then sign in again."
            ) from None
        if not isinstance(data, dict) or not all(isinstance(v, dict) for v in data.values()):
            raise StoreCorrupted(
                f"{self._path} does not hold reaper-lsp credentials; it was left untouched. "
                "Fix or delete it, then sign in again."
            )
        for value in data.values():
            _register(value)
        self._cache, self._stamp = data, stamp
        return data

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        self._path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        lock_path = self._path.with_name(self._path.name + ".lock")
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    def _write(self, data: dict[str, Any]) -> None:
        fd, tmp = tempfile.mkstemp(prefix=".auth-", suffix=".tmp", dir=self._path.parent)
        try:
            os.fchmod(fd, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump(data, handle, indent=2)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, self._path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        self._cache, self._stamp = None, None

    # -- public -------------------------------------------------------------------------------

    def get(self, key: str) -> dict[str, Any] | None:
        value = self._keyring_get(key) if self._keyring is not None else self._read().get(key)
        if value is not None:
            _register(value)
        return dict(value) if value is not None else None

    def put(self, key: str, value: dict[str, Any]) -> None:
        _register(value)
        if self._keyring is not None:
            self._keyring.set_password(KEYRING_SERVICE, key, json.dumps(value))
            return
        with self._locked():
            self._cache = None
            data = dict(self._read())
            data[key] = value
            self._write(data)

    def delete(self, key: str) -> bool:
        if self._keyring is not None:
            if self._keyring_get(key) is None:
                return False
            self._keyring.delete_password(KEYRING_SERVICE, key)
            return True
        with self._locked():
            self._cache = None
            data = dict(self._read())
            if key not in data:
                return False
            del data[key]
            self._write(data)
            return True
