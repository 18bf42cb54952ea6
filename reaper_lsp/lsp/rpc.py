"""The JSON-RPC boundary: delivery of what our frame reader parsed, and a protocol that answers
every request (lifecycle errors, bad params, failed commands, handler failures) with a one-line
message. A user's mistake or a service's refusal is logged in one line; only a bug gets a
traceback, in the log, never in the answer.

pygls's own reader loses sync after one bad `Content-Length`, allocates whatever length it is
told, and drops requests whose params fail conversion without an answer; `transport.py` feeds
our reader (`frames.py`) instead, and this module keeps pygls's writer and dispatch.
"""

from __future__ import annotations

import enum
import logging
import re
import traceback
from concurrent.futures import Future
from functools import partial
from typing import Any

import cattrs
from lsprotocol import types as lsp
from pygls.exceptions import (
    FeatureNotificationError,
    JsonRpcException,
    JsonRpcInternalError,
    JsonRpcInvalidParams,
    JsonRpcMethodNotFound,
)
from pygls.protocol import JsonRPCProtocol, LanguageServerProtocol
from pygls.protocol.json_rpc import MsgId, RPCMessage

from reaper_lsp.logs import redact
from reaper_lsp.lsp.frames import INVALID_REQUEST, Event, Rejected
from reaper_lsp.services.errors import InvalidRequest, ServiceError

log = logging.getLogger(__name__)

INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603
SERVER_NOT_INITIALIZED = -32002
REQUEST_FAILED = -32803
_MAX_MESSAGE = 1000
"""Characters of an error message sent or logged: enough for a hint, not a whole answer."""
_SNAKE = re.compile(r"_([a-z])")


def _one_line(text: str) -> str:
    lines = text.strip().splitlines()
    line = redact(lines[0] if lines else "")
    return line if len(line) <= _MAX_MESSAGE else line[: _MAX_MESSAGE - 1] + "…"


def _answer(protocol: JsonRPCProtocol, msg_id: MsgId | None, code: int, message: str) -> None:
    # A dict, not lsprotocol's ResponseErrorMessage: that one omits `"id": null`.
    error = {"code": code, "message": _one_line(message)}
    protocol._send_data({"jsonrpc": "2.0", "id": msg_id, "error": error})


def _valid_id(value: object) -> bool:
    return isinstance(value, int | str) and not isinstance(value, bool)


def _envelope_problem(payload: object) -> str | None:
    if not isinstance(payload, dict):
        return "a message must be a JSON object (batches are not supported)"
    if payload.get("jsonrpc") != "2.0":
        return 'jsonrpc must be "2.0"'
    if "id" in payload and not _valid_id(payload["id"]):
        return "id must be an integer or a string"
    if "method" in payload and not isinstance(payload["method"], str):
        return "method must be a string"
    if "method" not in payload and "id" not in payload:
        return "neither a request, a notification nor a response"
    return None


def _conversion_problem(method: str, exc: BaseException, *, lsp_names: bool = True) -> str:
    """What was wrong with the params, from cattrs's errors: paths, never a traceback."""
    cause = exc.__cause__ or exc
    try:
        parts = [p.replace("$.", "") for p in cattrs.transform_error(cause)]
    except Exception:
        parts = [type(cause).__name__]
    if lsp_names:  # lsprotocol's attributes are the protocol's camelCase names in snake_case
        parts = [_SNAKE.sub(lambda m: m.group(1).upper(), p) for p in parts]
    pending: list[BaseException] = [cause]
    while pending:  # lsprotocol's range checks say the most: "Position.line should be in …"
        leaf = pending.pop()
        if isinstance(leaf, BaseExceptionGroup):
            pending.extend(leaf.exceptions)
        elif type(leaf) is ValueError:
            parts.append(str(leaf))
    return f"invalid params for {method}: " + "; ".join(parts)


def deliver(protocol: JsonRPCProtocol, event: Event) -> None:
    """Hand one event to pygls, answering here whatever pygls would leave unanswered."""
    if isinstance(event, Rejected):
        _answer(protocol, event.msg_id, event.code, event.message)
        return
    payload = event.payload
    problem = _envelope_problem(payload)
    if problem is not None:
        log.warning("invalid JSON-RPC message: %s", problem)
        if not isinstance(payload, dict) or "method" not in payload or "id" in payload:
            msg_id = payload.get("id") if isinstance(payload, dict) else None
            _answer(protocol, msg_id if _valid_id(msg_id) else None, INVALID_REQUEST, problem)
        return
    assert isinstance(payload, dict)
    method, msg_id = payload.get("method"), payload.get("id")
    if method is not None and "params" not in payload:  # optional in JSON-RPC, not to pygls
        payload = {**payload, "params": None}
    try:
        message = protocol.structure_message(payload)
    except Exception as exc:
        text = _conversion_problem(str(method or "a response"), exc)
        log.warning("%s", redact(text))
        if method is not None and msg_id is not None:
            _answer(protocol, msg_id, INVALID_PARAMS, text)
        return
    if msg_id is not None and method is not None and not hasattr(message, "id"):
        # pygls structured it as a notification (the id dropped): it would never be answered.
        _answer(protocol, msg_id, INVALID_REQUEST, f"{method} is a notification: it takes no id")
        return
    try:
        protocol.handle_message(message)
    except BrokenPipeError:
        raise
    except Exception as exc:
        log.error("handling %s failed: %s", method, redact(_traceback_text(exc)))


def _traceback_text(exc: BaseException) -> str:
    try:
        return "".join(traceback.format_exception(exc))
    except MemoryError:
        return type(exc).__name__


def _user_message(label: str, exc: BaseException) -> str:
    if isinstance(exc, MemoryError):
        return f"{label} failed: out of memory"
    detail = _one_line(str(exc))
    return f"{label} failed: {type(exc).__name__}" + (f": {detail}" if detail else "")


class _Phase(enum.Enum):
    NEW = "new"
    RUNNING = "running"
    SHUT_DOWN = "shut down"


class GuardedProtocol(LanguageServerProtocol):
    """LSP lifecycle rules and clean errors on top of pygls's dispatch.

    Requests before `initialize` get -32002 and never reach a handler (they would run with
    default settings); after `shutdown`, -32600. A failing handler's answer carries a one-line
    message and no traceback (pygls's `JsonRpcInternalError.of` puts one in `data`).
    """

    def __init__(self, server: Any, converter: cattrs.Converter) -> None:
        super().__init__(server, converter)
        self._phase = _Phase.NEW
        self._labels: dict[MsgId, tuple[str, str]] = {}  # id → (method, name for messages)

    def handle_message(self, message: RPCMessage) -> None:
        method: str | None = getattr(message, "method", None)
        msg_id: MsgId | None = getattr(message, "id", None)
        if method is None:
            super().handle_message(message)
        elif msg_id is None:
            if method == lsp.EXIT or self._phase is _Phase.RUNNING:
                super().handle_message(message)
            else:
                log.debug("%s notification dropped: the server is %s", method, self._phase.value)
        elif (refusal := self._refusal(method)) is not None:
            _answer(self, msg_id, *refusal)
        else:
            if method == lsp.INITIALIZE:
                self._phase = _Phase.RUNNING
            elif method == lsp.SHUTDOWN:
                self._phase = _Phase.SHUT_DOWN
            params = getattr(message, "params", None)
            label = (
                getattr(params, "command", None)
                if method == lsp.WORKSPACE_EXECUTE_COMMAND
                else None
            )
            self._labels[msg_id] = (method, label if isinstance(label, str) else method)
            super().handle_message(message)

    def _refusal(self, method: str) -> tuple[int, str] | None:
        if self._phase is _Phase.NEW and method != lsp.INITIALIZE:
            return SERVER_NOT_INITIALIZED, f"{method}: the server is not initialized yet"
        if self._phase is _Phase.RUNNING and method == lsp.INITIALIZE:
            return INVALID_REQUEST, "initialize: the server is already initialized"
        if self._phase is _Phase.SHUT_DOWN:
            return INVALID_REQUEST, f"{method}: the server is shutting down; only exit is accepted"
        return None

    def _handle_request(self, msg_id: MsgId, method_name: str, params: Any) -> None:
        """pygls's dispatch of a request, with the failures it would log with a traceback (an
        unknown command, a refused request) answered as `_failed` does."""
        try:
            handler = self._get_handler(method_name)
            self._ctx_msg_id.set(msg_id)
            self._execute_handler(
                msg_id=msg_id,
                handler=handler,
                args=(params,),
                callback=partial(self._send_handler_result, msg_id=msg_id),
            )
        except JsonRpcMethodNotFound as exc:
            log.warning("request %s: unknown method %s", msg_id, method_name)
            self._send_response(msg_id, error=exc.to_response_error())
        except Exception as exc:
            self._send_response(msg_id, error=self._failed(msg_id, exc))

    def _send_handler_result(self, future: Future[Any], *, msg_id: MsgId) -> None:
        exc = None if future.cancelled() else future.exception()
        if exc is None:
            super()._send_handler_result(future, msg_id=msg_id)
            return
        self._request_futures.pop(msg_id, None)
        self._send_response(msg_id, error=self._failed(msg_id, exc))

    def _failed(self, msg_id: MsgId, exc: BaseException) -> lsp.ResponseError:
        """The answer to a request that failed with `exc`, logged in one line unless it is a
        bug (then with its traceback)."""
        _, label = self._labels.get(msg_id, ("", "request"))
        # pygls converts command arguments itself and keeps only "Invalid Params: While
        # structuring X"; the cattrs error it replaced says which argument was wrong.
        context = exc.__context__
        if isinstance(exc, JsonRpcInvalidParams) and isinstance(
            context, cattrs.BaseValidationError
        ):
            error = lsp.ResponseError(
                INVALID_PARAMS, _conversion_problem(label, context, lsp_names=False)
            )
        elif isinstance(exc, ServiceError):
            code = INVALID_PARAMS if isinstance(exc, InvalidRequest) else REQUEST_FAILED
            error = lsp.ResponseError(code, str(exc) or type(exc).__name__)
        elif isinstance(exc, JsonRpcException):
            error = exc.to_response_error()
        else:
            log.error("%s failed: %s", label, redact(_traceback_text(exc)))
            return lsp.ResponseError(INTERNAL_ERROR, _user_message(label, exc))
        log.warning("%s failed: %s", label, _one_line(error.message))
        return error

    def _send_response(
        self, msg_id: MsgId, result: Any | None = None, error: lsp.ResponseError | None = None
    ) -> None:
        method, _ = self._labels.pop(msg_id, ("", ""))
        if error is not None:
            code = error.code
            if code == INTERNAL_ERROR and method == lsp.WORKSPACE_EXECUTE_COMMAND:
                code = REQUEST_FAILED
            data = error.data
            if isinstance(data, dict) and "traceback" in data:
                data = None
            error = lsp.ResponseError(code, _one_line(error.message), data)
        super()._send_response(msg_id, result, error)

    def _check_handler_result(self, future: Future[Any]) -> None:
        exc = None if future.cancelled() else future.exception()
        if exc is None:
            return
        log.error("notification handler failed: %s", redact(_traceback_text(exc)))
        error = JsonRpcInternalError(_user_message("a notification", exc))
        self._server._report_server_error(error, FeatureNotificationError)


class _WithoutConversionTraceback(logging.Filter):
    """pygls logs a traceback (with the params' values) for every message it cannot convert;
    `deliver` answers those with -32602 and logs one line. (pygls's InitializeParams line is
    handled where logging is set up: `logs.setup_logging`.)"""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.msg != "Unable to deserialize message\n%s"


def install_log_guard() -> None:
    logger = logging.getLogger("pygls.protocol.json_rpc")
    if not any(isinstance(f, _WithoutConversionTraceback) for f in logger.filters):
        logger.addFilter(_WithoutConversionTraceback())
