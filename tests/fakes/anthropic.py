"""Fake Anthropic Messages API (`/v1/messages`, named SSE events incl. `ping`, an unknown event
and mid-stream `error`), and the same API as Vertex AI serves it (`:streamRawPredict`, Bearer
token, `anthropic_version` in the body, no `model`)."""

from __future__ import annotations

import re
from typing import Any

from tests.fakes.asgi import (
    Receive,
    Scope,
    Send,
    bearer,
    pieces,
    read_request,
    send_json,
    sse,
    stream,
)
from tests.fakes.script import Script

VERSION = "2023-06-01"
VERTEX_VERSION = "vertex-2023-10-16"
_VERTEX_PATH = re.compile(
    r"^/v1/projects/(?P<project>[^/]+)/locations/(?P<region>[^/]+)/publishers/anthropic/"
    r"models/(?P<model>[^/:]+):(?P<verb>streamRawPredict|rawPredict)$"
)
_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    529: "overloaded_error",
}


def error_body(status: int, error_type: str | None = None, message: str = "") -> dict[str, Any]:
    kind = error_type or _TYPES.get(status, "api_error")
    return {
        "type": "error",
        "error": {"type": kind, "message": message or kind.replace("_", " ")},
        "request_id": "req_fake",
    }


class FakeAnthropic:
    def __init__(self, vertex: bool = False) -> None:
        self.vertex = vertex
        self.script = Script()
        self.accepted_keys = {"sk-ant-test"}
        self.accepted_tokens: set[str] = set()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        recorded = await read_request(scope, receive, self.script)
        body = recorded.body if isinstance(recorded.body, dict) else {}
        if self.vertex:
            match = _VERTEX_PATH.match(scope["path"])
            if match is None:
                await send_json(send, 404, error_body(404), recorded)
                return
            if bearer(recorded.headers) not in self.accepted_tokens:
                await send_json(
                    send,
                    401,
                    {
                        "error": {
                            "code": 401,
                            "status": "UNAUTHENTICATED",
                            "message": "Request had invalid authentication credentials.",
                        }
                    },
                    recorded,
                )
                return
            if body.get("anthropic_version") != VERTEX_VERSION or "model" in body:
                await send_json(
                    send,
                    400,
                    error_body(
                        400,
                        message="anthropic_version must be "
                        f"{VERTEX_VERSION} and model must not be in the body",
                    ),
                    recorded,
                )
                return
            model = match["model"]
            streaming = match["verb"] == "streamRawPredict" and bool(body.get("stream", True))
        else:
            if scope["path"] != "/v1/messages":
                await send_json(send, 404, error_body(404), recorded)
                return
            if recorded.headers.get("x-api-key") not in self.accepted_keys:
                await send_json(send, 401, error_body(401, message="invalid x-api-key"), recorded)
                return
            if not recorded.headers.get("anthropic-version"):
                await send_json(
                    send,
                    400,
                    error_body(400, message="anthropic-version header is required"),
                    recorded,
                )
                return
            model = str(body.get("model", "claude"))
            streaming = bool(body.get("stream"))
        reply = self.script.next_reply()
        if reply.status >= 400 or reply.body is not None:
            payload = (
                reply.body if reply.body is not None else error_body(reply.status, reply.error_type)
            )
            await send_json(send, reply.status, payload, recorded, reply.headers)
            return
        if not streaming:
            await send_json(send, 200, _message(model, reply.text), recorded, reply.headers)
            return
        error = sse(error_body(529, "overloaded_error", "Overloaded"), "error")
        await stream(
            receive,
            send,
            reply,
            recorded,
            "text/event-stream; charset=utf-8",
            _events(model, reply.text, reply.chunk_size),
            error_event=error,
            ending=3,
        )


def _message(model: str, text: str) -> dict[str, Any]:
    return {
        "id": "msg_fake",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [{"type": "text", "text": text}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {"input_tokens": 12, "output_tokens": len(text) // 4 + 1},
    }


def _events(model: str, text: str, size: int) -> list[bytes]:
    start = _message(model, "")
    start["content"], start["stop_reason"] = [], None
    start["usage"] = {"input_tokens": 12, "output_tokens": 1}
    out = [
        sse({"type": "message_start", "message": start}, "message_start"),
        sse(
            {
                "type": "content_block_start",
                "index": 0,
                "content_block": {"type": "text", "text": ""},
            },
            "content_block_start",
        ),
        sse({"type": "ping"}, "ping"),
        sse({"type": "future_event_kind", "detail": "ignored by clients"}, "future_event_kind"),
    ]
    for piece in pieces(text, size):
        out.append(
            sse(
                {
                    "type": "content_block_delta",
                    "index": 0,
                    "delta": {"type": "text_delta", "text": piece},
                },
                "content_block_delta",
            )
        )
    out += [
        sse({"type": "content_block_stop", "index": 0}, "content_block_stop"),
        sse(
            {
                "type": "message_delta",
                "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                "usage": {"output_tokens": len(text) // 4 + 1},
            },
            "message_delta",
        ),
        sse({"type": "message_stop"}, "message_stop"),
    ]
    return out


def create_app(vertex: bool = False) -> FakeAnthropic:
    return FakeAnthropic(vertex=vertex)
