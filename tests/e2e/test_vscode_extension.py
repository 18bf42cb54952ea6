"""The VS Code extension in editors/vscode builds with npm, passes its own tests (unit tests of
its logic; the real server driven through VS Code's protocol library; the extension itself with
the real language client in a stand-in editor, signing in against the fake GitHub), and packages
to a `.vsix` that carries everything `out/extension.js` loads at run time."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fakes import github as fake_github
from tests.fakes.runner import FakeServer

ROOT = Path(__file__).resolve().parents[2]
EXTENSION = ROOT / "editors" / "vscode"
SERVER = Path(sys.executable).parent / "reaper-lsp"
NODE = shutil.which("node")
NPM = shutil.which("npm")


def _node_major() -> int:
    assert NODE is not None
    out = subprocess.run([NODE, "--version"], capture_output=True, text=True, check=True).stdout
    return int(out.strip().lstrip("v").split(".")[0])


pytestmark = pytest.mark.skipif(
    NODE is None or NPM is None or _node_major() < 20,
    reason="needs Node.js 20+ with npm (apt-get install nodejs npm) to build the VS Code extension",
)

# `require('vscode')` exists only inside VS Code; every other module the extension loads must
# come from the .vsix itself. Any property of the stand-in is another stand-in, callable and
# constructible, so the language client's module-level `class … extends vscode.X` loads.
LOAD_CHECK = r"""
const Module = require('module');
const path = require('path');
const stand = () => new Proxy(function () {}, {
  get: (target, name) => (name === 'prototype' ? {} : stand()),
  construct: () => ({}),
  apply: () => stand(),
});
const resolve = Module._resolveFilename;
Module._resolveFilename = function (request, ...rest) {
  return request === 'vscode' ? 'vscode' : resolve.call(this, request, ...rest);
};
require.cache.vscode = { id: 'vscode', filename: 'vscode', loaded: true, exports: stand() };
const extension = require(path.resolve(process.argv[1], 'extension', 'out', 'extension.js'));
const client = require.resolve('vscode-languageclient/node', {
  paths: [path.resolve(process.argv[1], 'extension', 'out')],
});
console.log(JSON.stringify({
  activate: typeof extension.activate,
  deactivate: typeof extension.deactivate,
  client: path.relative(process.argv[1], client),
}));
"""


def _run(args: list[str], cwd: Path, env: dict[str, str]) -> str:
    done = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, (
        f"{' '.join(args)} failed:\n{done.stdout[-4000:]}\n{done.stderr[-4000:]}"
    )
    return done.stdout


@pytest.fixture
def github_fake() -> Iterator[FakeServer]:
    server = FakeServer(fake_github.create_app())
    server.start()
    state = server.app.state
    state.base_url = server.base_url
    state.device_interval = 0  # the device-flow polls answer at once
    state.slow_down_interval = 0
    try:
        yield server
    finally:
        server.stop()


def test_extension_builds_passes_its_tests_and_packages_a_complete_vsix(
    tmp_path: Path, github_fake: FakeServer, runtime_dir: Path
) -> None:
    assert NPM is not None and NODE is not None
    work = tmp_path / "vscode"
    # A copy, so a developer's node_modules, out/ and .vsix neither help nor get clobbered.
    shutil.copytree(EXTENSION, work, ignore=shutil.ignore_patterns("node_modules", "out", "*.vsix"))
    env = {
        **os.environ,
        "REAPER_LSP": str(SERVER),
        "REAPER_FAKE_GITHUB": github_fake.base_url,
        "XDG_RUNTIME_DIR": str(runtime_dir),  # the daemons its servers start end with the test
        "npm_config_fund": "false",
        "npm_config_audit": "false",
        "npm_config_update_notifier": "false",
    }

    _run([NPM, "ci"], work, env)
    # As in a fresh clone: nothing built yet, and packaging builds what it needs itself.
    assert not (work / "out").exists()
    _run([NPM, "run", "package"], work, env)
    [vsix] = work.glob("reaper-lsp-*.vsix")
    tests = _run([NPM, "test"], work, env)
    assert "# fail 0" in tests
    # Nothing skipped: the server is installed here and the fake GitHub is up.
    assert SERVER.exists()
    assert "# skipped 0" in tests, tests[-2000:]
    for name in (
        "inline completion answers from the open document",
        "ghost text comes from the inline provider the language client registered",
        "sign-in shows the code, copies it, opens the page once, waits, and names the user",
        "endpoints and keys in reaper.settings never reach the server; the log says where they go",
        "a failing provider shows in the server's own words, in the status bar and the report",
        "the toggle is hidden with a server that lacks reaper.toggle, and says why",
        "the status bar toggle turns completions off for a language, and on again",
    ):
        assert re.search(rf"^\s*ok \d+ - {re.escape(name)}$", tests, re.M), name
    assert github_fake.app.state.github_tokens, "the sign-in never reached the fake GitHub"

    with zipfile.ZipFile(vsix) as archive:
        names = set(archive.namelist())
        archive.extractall(tmp_path / "unpacked")
    assert "extension/out/extension.js" in names
    for module in ("logic", "settings", "toggle"):
        assert f"extension/out/{module}.js" in names
    assert "extension/node_modules/vscode-languageclient/package.json" in names
    assert not any(n.startswith("extension/src/") or "/out/test/" in n for n in names)
    assert not any(n.startswith("extension/node_modules/typescript/") for n in names)

    loaded = _run([NODE, "-e", LOAD_CHECK, str(tmp_path / "unpacked")], tmp_path, env)
    assert '"activate":"function"' in loaded
    assert '"deactivate":"function"' in loaded
    assert '"client":"extension/node_modules/vscode-languageclient/lib/node/main.js"' in loaded
