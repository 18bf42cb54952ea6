"""The params of the Copilot-compatible methods as typed objects, decoded leniently: the plugins
add fields of their own (copilot.lua puts `_: true` in every request, `doc`, `relativePath`,
`panelId`, `formattingOptions`…), so unknown fields are ignored; a missing or mistyped field we
need is `InvalidRequest` (-32602), naming it."""

from __future__ import annotations

from typing import Any, TypeVar

import attrs
import cattrs

from reaper_lsp.core.document import Position
from reaper_lsp.services.errors import InvalidRequest

T = TypeVar("T")

_converter = cattrs.Converter(forbid_extra_keys=False)


@attrs.define
class Pos:
    line: int
    character: int


@attrs.define
class DocRef:
    uri: str
    version: int | None = None


@attrs.define
class CopilotDoc:
    """copilot.lua's `doc`: the document and the position again, with indentation."""

    uri: str
    version: int | None = None
    position: Pos | None = None


@attrs.define
class DocParams:
    """Every request about a place in a document: getCompletions(Cycling),
    getPanelCompletions, textDocument/copilotPanelCompletion, textDocument/copilotInlineEdit."""

    textDocument: DocRef | None = None  # the protocol's JSON names
    position: Pos | None = None
    doc: CopilotDoc | None = None
    panelId: str | None = None
    partialResultToken: Any = None
    workDoneToken: Any = None

    @property
    def uri(self) -> str:
        ref = self.textDocument or self.doc
        if ref is None:
            raise InvalidRequest("params need textDocument.uri")
        return ref.uri

    @property
    def version(self) -> int | None:
        ref = self.textDocument or self.doc
        return ref.version if ref is not None else None

    @property
    def cursor(self) -> Position:
        pos = self.position or (self.doc.position if self.doc is not None else None)
        if pos is None:
            raise InvalidRequest("params need position")
        return Position(pos.line, pos.character)


@attrs.define
class SignInConfirmParams:
    userCode: str | None = None


@attrs.define
class NotifyParams:
    """notifyShown / notifyAccepted (copilot.lua): one suggestion by its uuid."""

    uuid: str
    acceptedLength: int | None = None


@attrs.define
class RejectedParams:
    uuids: list[str] = attrs.field(factory=list)


@attrs.define
class ItemCommand:
    command: str = ""
    arguments: list[Any] | None = None


@attrs.define
class ShownItem:
    command: ItemCommand | None = None

    @property
    def uuid(self) -> str | None:
        """The id our items carry as their accept command's argument."""
        args = self.command.arguments if self.command is not None else None
        return args[0] if args and isinstance(args[0], str) else None


@attrs.define
class ItemParams:
    """textDocument/didShowCompletion, didPartiallyAcceptCompletion, didShowInlineEdit."""

    item: ShownItem = attrs.field(factory=ShownItem)
    acceptedLength: int | None = None


def _plain(value: object) -> object:
    """JSON again: pygls hands untyped params over as namedtuples."""
    if isinstance(value, tuple) and hasattr(value, "_asdict"):
        return {k: _plain(v) for k, v in value._asdict().items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def decode(params: object, cls: type[T], method: str) -> T:
    """`params` as a `cls`; `InvalidRequest` naming what is wrong."""
    params = _plain(params)
    if params is None:
        params = {}
    if not isinstance(params, dict):
        raise InvalidRequest(f"invalid params for {method}: an object is needed")
    try:
        return _converter.structure(params, cls)
    except Exception as exc:
        try:
            problems = "; ".join(p.replace("$.", "") for p in cattrs.transform_error(exc))
        except Exception:
            problems = type(exc).__name__
        raise InvalidRequest(f"invalid params for {method}: {problems}") from None
