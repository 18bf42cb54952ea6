"""What one editor told the daemon, kept so a restarted daemon can be told again: the
`initialize` request, `initialized`, the latest configuration, the workspace folders, the
open documents (edited exactly as the server edits them), and which requests still wait for
an answer. Sans-IO: messages in, messages to replay out.

Messages come from the wire as parsed JSON, so every field is checked before use: a malformed
message is the daemon's to answer, never a reason for the forwarder to fail.
"""

from __future__ import annotations

import json

TYPE_CHECKING = False
if TYPE_CHECKING:
    from reaper_lsp.core.document import Change, DocumentStore

    JsonObject = dict[str, object]
    MsgId = int | str

RESTARTED = -32803
"""RequestFailed: the request reached a daemon that died before answering."""
RESTARTED_MESSAGE = "reaper-lsp: the daemon restarted; try again"


def _object(value: object) -> dict[str, object]:
    return value if isinstance(value, dict) else {}


def _id_key(msg_id: object) -> str | None:
    # 1 and "1" are different ids; JSON text tells them apart (and bools/floats are invalid).
    if isinstance(msg_id, bool) or not isinstance(msg_id, int | str):
        return None
    return json.dumps(msg_id)


def notification(method: str, params: object) -> JsonObject:
    return {"jsonrpc": "2.0", "method": method, "params": params}


def error_answer(
    msg_id: MsgId, code: int = RESTARTED, message: str = RESTARTED_MESSAGE
) -> JsonObject:
    return {"jsonrpc": "2.0", "id": msg_id, "error": {"code": code, "message": message}}


def _position(value: object) -> tuple[int, int] | None:
    point = _object(value)
    line, character = point.get("line"), point.get("character")
    if isinstance(line, int) and isinstance(character, int):
        return line, character
    return None


def _changes(value: object) -> list[Change] | None:
    """contentChanges as the server builds them (server.py `_change`): a change with a
    `range` is partial, any other replaces the whole text."""
    from reaper_lsp.core.document import Change, Position

    if not isinstance(value, list):
        return None
    changes = []
    for item in value:
        change = _object(item)
        text = change.get("text")
        if not isinstance(text, str):
            return None
        if "range" not in change:
            changes.append(Change(text))
            continue
        span = _object(change["range"])
        start, end = _position(span.get("start")), _position(span.get("end"))
        if start is None or end is None:
            return None
        changes.append(Change(text, Position(*start), Position(*end)))
    return changes


class ClientState:
    """Feed it every message each way; ask it what to replay and what to answer."""

    def __init__(self) -> None:
        self.initialize: JsonObject | None = None
        self.initialize_answered = False
        self.initialized: JsonObject | None = None
        self.configuration: JsonObject | None = None
        self.folders: list[object] | None = None
        """The workspace folders as changed since `initialize`, when they were."""
        self.shutdown = False
        self.exit = False
        self.pending: dict[str, tuple[MsgId, str]] = {}
        """Client requests the daemon has not answered: id key -> (id, method)."""
        self._documents: DocumentStore | None = None

    @property
    def documents(self) -> DocumentStore:
        if self._documents is None:
            # Imported on the first document, not at start-up: dataclasses alone would cost
            # the forwarder a third of its start-up budget.
            from reaper_lsp.core.document import DocumentStore

            self._documents = DocumentStore()
        return self._documents

    def from_client(self, message: JsonObject) -> None:
        method, msg_id = message.get("method"), message.get("id")
        if not isinstance(method, str):
            return  # an answer to one of the daemon's requests
        key = _id_key(msg_id)
        if key is not None and isinstance(msg_id, int | str):
            self.pending[key] = (msg_id, method)
            if method == "initialize" and self.initialize is None:
                self.initialize = message
            elif method == "shutdown":
                self.shutdown = True
            return
        if "id" in message:
            return  # a request with an invalid id: the daemon answers it
        self._notification(method, _object(message.get("params")), message)

    def _notification(self, method: str, params: dict[str, object], message: JsonObject) -> None:
        if method == "initialized":
            self.initialized = message
        elif method == "exit":
            self.exit = True
        elif method == "workspace/didChangeConfiguration":
            self.configuration = message
        elif method == "workspace/didChangeWorkspaceFolders":
            self._change_folders(_object(params.get("event")))
        elif method.startswith("textDocument/did"):
            self._document(method, params)

    def _document(self, method: str, params: dict[str, object]) -> None:
        doc = _object(params.get("textDocument"))
        uri, version = doc.get("uri"), doc.get("version")
        if not isinstance(uri, str):
            return
        if method == "textDocument/didOpen":
            language, text = doc.get("languageId"), doc.get("text")
            if isinstance(language, str) and isinstance(text, str) and isinstance(version, int):
                self.documents.open(uri, language, version, text)
        elif method == "textDocument/didChange":
            changes = _changes(params.get("contentChanges"))
            if changes is not None and isinstance(version, int):
                self.documents.change(uri, version, changes)
        elif method == "textDocument/didClose":
            self.documents.close(uri)

    def _change_folders(self, event: dict[str, object]) -> None:
        if self.folders is None:
            params = _object((self.initialize or {}).get("params"))
            start = params.get("workspaceFolders")
            self.folders = list(start) if isinstance(start, list) else []
        removed, added = event.get("removed"), event.get("added")
        gone = {_object(f).get("uri") for f in removed} if isinstance(removed, list) else set()
        self.folders = [f for f in self.folders if _object(f).get("uri") not in gone]
        if isinstance(added, list):
            self.folders.extend(added)

    def from_daemon(self, message: JsonObject) -> None:
        if "method" in message:
            return  # the daemon's own request or notification
        key = _id_key(message.get("id"))
        if key is None or self.pending.pop(key, None) is None:
            return
        if self.initialize is not None and key == _id_key(self.initialize.get("id")):
            self.initialize_answered = True

    # -- after a restart -------------------------------------------------------------------------

    def replay_initialize(self) -> JsonObject | None:
        """The client's `initialize`, with the workspace folders it has since changed."""
        if self.initialize is None or self.folders is None:
            return self.initialize
        params = dict(_object(self.initialize.get("params")))
        params["workspaceFolders"] = self.folders
        return {**self.initialize, "params": params}

    def replay_rest(self) -> list[JsonObject]:
        """What follows the answer to the replayed `initialize`, in the client's order."""
        messages = [m for m in (self.initialized, self.configuration) if m is not None]
        for doc in self.documents if self._documents is not None else ():
            text_document = {
                "uri": doc.uri,
                "languageId": doc.language_id,
                "version": doc.version,
                "text": doc.text,
            }
            messages.append(notification("textDocument/didOpen", {"textDocument": text_document}))
        return messages

    def take_unanswered(self, *, keep_initialize: bool = True) -> list[tuple[MsgId, str]]:
        """The requests the dead daemon never answered, forgotten here (the caller answers
        them). An unanswered `initialize` stays when `keep_initialize`: it is replayed, and
        its answer is still awaited."""
        keep = _id_key((self.initialize or {}).get("id")) if keep_initialize else None
        taken = [item for key, item in self.pending.items() if key != keep]
        self.pending = {k: v for k, v in self.pending.items() if k == keep}
        return taken
