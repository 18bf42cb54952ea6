"""The workspace: URI ⇄ path, roots, relative paths, languages — and the one place that reads
files from disk.

Every read goes through `read_regular_file`: the file must be a regular file (never a device,
FIFO, socket, or anything under /dev, /proc or /sys, even through a symlink), and no more than a
fixed number of bytes is read. Documents the editor has not opened are read only inside the
workspace roots, so a request naming `file:///proc/self/environ` or `~/.ssh/id_rsa` sends nothing
upstream.
"""

from __future__ import annotations

import asyncio
import logging
import os
import stat
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import unquote, urlparse

from reaper_lsp.core.document import Document, DocumentStore

log = logging.getLogger(__name__)

MAX_DOCUMENT_BYTES = 4 * 1024 * 1024
"""Unopened files larger than this are not read for a completion or a chat."""
_SYSTEM_TREES = ("/dev", "/proc", "/sys", "/run")
_VCS_MARKERS = (".git", ".hg", ".svn", ".jj")
_PROJECT_MARKERS = (
    "pyproject.toml", "setup.py", "setup.cfg", "package.json", "Cargo.toml", "go.mod",
    "pom.xml", "build.gradle", "build.gradle.kts", "Gemfile", "composer.json", "mix.exs",
    "CMakeLists.txt",
)  # fmt: skip

_EXTENSIONS = {
    ".py": "python", ".pyi": "python", ".js": "javascript", ".mjs": "javascript",
    ".cjs": "javascript", ".ts": "typescript", ".tsx": "typescriptreact",
    ".jsx": "javascriptreact", ".rs": "rust", ".go": "go", ".c": "c", ".h": "c", ".cpp": "cpp",
    ".cc": "cpp", ".hpp": "cpp", ".java": "java", ".rb": "ruby", ".lua": "lua",
    ".sh": "shellscript", ".bash": "shellscript", ".md": "markdown", ".toml": "toml",
    ".yaml": "yaml", ".yml": "yaml", ".json": "json", ".html": "html", ".css": "css",
    ".kt": "kotlin", ".swift": "swift", ".php": "php", ".cs": "csharp", ".zig": "zig",
    ".hs": "haskell", ".ex": "elixir", ".exs": "elixir", ".sql": "sql", ".vim": "vim",
    ".el": "emacs-lisp", ".scala": "scala", ".dart": "dart", ".r": "r", ".jl": "julia",
}  # fmt: skip


def uri_to_path(uri: str) -> Path | None:
    """The local path of a `file:` URI, None for any other scheme."""
    parsed = urlparse(uri)
    if parsed.scheme != "file":
        return None
    return Path(unquote(parsed.path))


def language_of(path: Path) -> str:
    """The LSP language id for a file name (`plaintext` when unknown)."""
    return _EXTENSIONS.get(path.suffix.lower(), "plaintext")


def _in_system_tree(path: str) -> bool:
    return any(path == tree or path.startswith(tree + "/") for tree in _SYSTEM_TREES)


def read_regular_file(path: Path, max_bytes: int, *, whole: bool = False) -> bytes | None:
    """At most `max_bytes` of `path` when it is a regular file outside /dev, /proc, /sys and
    /run (symlinks resolved first), else None — also when `whole` and the file is larger than
    `max_bytes`. Never blocks on a FIFO or a device: the file is
    opened non-blocking and checked on the open descriptor, so a swap after the check cannot
    slip a device in."""
    try:
        real = os.path.realpath(path)
    except (OSError, ValueError):
        return None
    if _in_system_tree(real):
        log.info("not reading %s: a system path", path)
        return None
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(real, flags)
    except (OSError, ValueError):
        return None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            log.info("not reading %s: not a regular file", path)
            return None
        if whole and info.st_size > max_bytes:
            log.info("not reading %s: larger than %d bytes", path, max_bytes)
            return None
        chunks: list[bytes] = []
        left = max_bytes
        while left > 0:
            chunk = os.read(fd, min(left, 1 << 20))
            if not chunk:
                break
            chunks.append(chunk)
            left -= len(chunk)
        return b"".join(chunks)
    except OSError:
        return None
    finally:
        os.close(fd)


def read_text_file(path: Path, max_bytes: int, *, whole: bool = False) -> str | None:
    """`read_regular_file` decoded as UTF-8 (bad bytes replaced)."""
    data = read_regular_file(path, max_bytes, whole=whole)
    return None if data is None else data.decode("utf-8", errors="replace")


def project_root(file: Path) -> Path:
    """The project an absolute `file` belongs to (what the terminal commands take as the
    workspace): its version-control root, else the nearest folder with a project file, else
    the file's folder. Never the current directory: run from / or a home folder, that is
    thousands of unrelated files."""
    for markers in (_VCS_MARKERS, _PROJECT_MARKERS):
        for folder in file.parents:
            if any((folder / marker).exists() for marker in markers):
                return folder
    return file.parent


class Workspace:
    """The folders the editor opened and the documents it has open."""

    def __init__(self, roots: Sequence[Path] = (), documents: DocumentStore | None = None):
        self.roots = [Path(os.path.abspath(root)) for root in roots]
        self.documents = documents if documents is not None else DocumentStore()

    def inside(self, path: Path) -> bool:
        real = Path(os.path.realpath(path))
        return any(real == root or root in real.parents for root in self._real_roots())

    def _real_roots(self) -> list[Path]:
        return [Path(os.path.realpath(root)) for root in self.roots]

    def relative_path(self, uri: str) -> str:
        """The path a prompt names the document by: relative to its root when inside one."""
        path = uri_to_path(uri)
        if path is None:
            return urlparse(uri).path.rsplit("/", 1)[-1] or uri
        for root in self.roots:
            try:
                return path.relative_to(root).as_posix()
            except ValueError:
                continue
        return path.name

    async def document(self, uri: str) -> Document | None:
        """An open document, or — for a `file:` URI inside a workspace root that the editor has
        not opened — the file on disk, read in a worker thread."""
        doc = self.documents.get(uri)
        if doc is not None:
            return doc
        path = uri_to_path(uri)
        if path is None:
            return None
        if not self.inside(path):
            log.warning("not reading %s: outside the workspace and not open in the editor", uri)
            return None
        text = await asyncio.to_thread(read_text_file, path, MAX_DOCUMENT_BYTES, whole=True)
        return None if text is None else Document(uri, language_of(path), 0, text)


# -- private state on disk: the folders and files reaper-lsp keeps for itself ------------------

APP_NAME = "reaper-lsp"
_warned: set[tuple[str, str]] = set()
"""(path, problem) already reported: a problem is worth one warning per process."""


def _warn_once(path: Path, problem: str, message: str, *args: object) -> None:
    key = (str(path), problem)
    if key in _warned:
        log.debug(message, *args)
        return
    _warned.add(key)
    log.warning(message, *args)


def _app_dirs() -> list[Path]:
    """reaper-lsp's own user folders (platformdirs): what lies inside them is ours."""
    import platformdirs

    kinds = (platformdirs.user_data_dir, platformdirs.user_state_dir, platformdirs.user_cache_dir)
    return [Path(os.path.abspath(kind(APP_NAME))) for kind in kinds]


def private_dir(path: Path, *, warn: bool = True) -> Path:
    """`path` as a folder only its owner can enter (0700): created so, together with its
    missing parents that are ours too (up to reaper-lsp's user data/state/cache folder), or
    tightened when it or such a parent is open to others — with one warning, since what was
    open may have been read (`warn=False` when the caller already told the user). Folders
    above ours keep their mode: they belong to the user's setup. Raises OSError when `path`
    cannot be created or is not a folder."""
    path = Path(os.path.abspath(path))
    roots = _app_dirs()
    # Innermost first; an ancestor inside one of our folders has only ours below it.
    ours = [path, *(p for p in path.parents if any(p == r or r in p.parents for r in roots))]
    ours[-1].parent.mkdir(parents=True, exist_ok=True)
    tightened: list[str] = []
    for folder in reversed(ours):
        try:
            os.mkdir(folder, 0o700)
        except FileExistsError:
            pass
        else:
            os.chmod(folder, 0o700)  # mkdir's mode went through the umask
            continue
        info = os.stat(folder)
        if not stat.S_ISDIR(info.st_mode):
            raise NotADirectoryError(f"{folder} is not a folder")
        loose = stat.S_IMODE(info.st_mode)
        if not loose & 0o077:
            continue
        if info.st_uid != os.geteuid():
            _warn_once(folder, "foreign", "%s belongs to another user and is open to others "
                       "(mode %04o); reaper-lsp leaves it as it is", folder, loose)  # fmt: skip
            continue
        try:
            os.chmod(folder, 0o700)
        except OSError as exc:
            _warn_once(folder, "chmod", "cannot make %s private (%s)", folder, exc.strerror)
            continue
        tightened.append(f"{folder} (mode {loose:04o})")
    if tightened and warn:
        log.warning(
            "%s could be entered by other users; reaper-lsp made it private (0700). What it "
            "held may have been read meanwhile.",
            ", ".join(tightened),
        )
    return path


def checked_state_file(path: Path, *, hint: str = "") -> os.stat_result | None:
    """The status of the state file `path` when it may be used; None when it is absent or
    refused. Refused (and reported once, with the reason): anything but a regular file, a file
    owned by another user, a file others can write — whoever could write it may have planted
    what it says. A file of ours that others can only read is made 0600, with one warning
    (`hint` adds what that exposure means). Other OSErrors propagate."""
    try:
        info = os.stat(path)
    except FileNotFoundError:
        return None
    mode = stat.S_IMODE(info.st_mode)
    if not stat.S_ISREG(info.st_mode):
        why = "it is not a regular file"
    elif info.st_uid != os.geteuid():
        why = f"it belongs to another user (uid {info.st_uid})"
    elif mode & 0o022:
        why = f"other users can write it (mode {mode:04o})"
    else:
        why = ""
    if why:
        _warn_once(path, "refused", "ignoring %s: %s. reaper-lsp treats it as absent and "
                   "replaces it when it next saves.", path, why)  # fmt: skip
        return None
    if not mode & 0o077:
        return info
    try:
        os.chmod(path, 0o600)
        outcome = "made it private (0600)"
    except OSError:
        outcome = "could not make it private"
    _warn_once(path, "loose", "%s was readable by other users (mode %04o); reaper-lsp %s.%s",
               path, mode, outcome, f" {hint}" if hint else "")  # fmt: skip
    try:
        return os.stat(path)
    except FileNotFoundError:
        return None
