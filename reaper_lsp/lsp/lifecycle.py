"""`initialize`, `initialized`, `shutdown` and `workspace/didChangeConfiguration`: the
connection's workspace, editor and settings in; the session started and its figures saved."""

from __future__ import annotations

import importlib
import threading

from lsprotocol import types as lsp

from reaper_lsp import config
from reaper_lsp.logs import register_secret
from reaper_lsp.lsp.server import ReaperServer
from reaper_lsp.workspace import uri_to_path


def initialize(ls: ReaperServer, params: lsp.InitializeParams) -> None:
    # Start importing the services now, off the event loop; the session is built after the
    # answer (in the daemon they are imported already).
    services = "reaper_lsp.services.session"
    threading.Thread(target=importlib.import_module, args=(services,), daemon=True).start()
    roots = [uri_to_path(f.uri) for f in params.workspace_folders or ()]
    if not roots and params.root_uri:
        roots = [uri_to_path(params.root_uri)]
    ls.roots = [r for r in roots if r is not None]
    options = params.initialization_options
    ls.init_options = dict(options) if isinstance(options, dict) else {}
    _register_secrets(ls.init_options)  # before anything can log or echo them
    client = params.client_info
    editor = f"{client.name}/{client.version or '0'}" if client is not None else ""
    ls.editor = editor.replace(" ", "-")
    ls.host.opened(ls.editor, ls.roots)
    ls.apply_config(ls.reload_config())


async def initialized(ls: ReaperServer, params: lsp.InitializedParams) -> None:
    await ls.session.start()


def shutdown(ls: ReaperServer, params: None) -> None:
    """Answered at once (the work of closing is done at `exit`, or when the editor goes away),
    so an `exit` sent right behind it never overtakes the answer."""
    ls.session.save_status()


def did_change_configuration(ls: ReaperServer, params: lsp.DidChangeConfigurationParams) -> None:
    ls.client_settings = params.settings if isinstance(params.settings, dict) else {}
    _register_secrets(ls.client_settings)
    ls.apply_config(ls.reload_config())


def _register_secrets(value: object, key: str = "") -> None:
    """Make every credential-looking value of a settings object redacted from now on (a key
    pasted where it is not taken is still never echoed)."""
    if isinstance(value, dict):
        for name, inner in value.items():
            _register_secrets(inner, str(name))
    elif isinstance(value, str) and config.is_secret(key):
        register_secret(value)


def register(server: ReaperServer) -> None:
    server.feature(lsp.INITIALIZE)(initialize)
    server.feature(lsp.INITIALIZED)(initialized)
    server.feature(lsp.SHUTDOWN)(shutdown)
    server.feature(lsp.WORKSPACE_DID_CHANGE_CONFIGURATION)(did_change_configuration)
