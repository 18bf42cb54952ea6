"""Fake OpenAI: streaming `/v1/chat/completions` and legacy `/v1/completions` (FIM with
`suffix`), error bodies in OpenAI's shape, Bearer keys checked."""

from __future__ import annotations

import time
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
from tests.fakes.script import Reply, Script

_ERRORS = {
    400: ("invalid_request_error", None, "Invalid request"),
    401: ("invalid_request_error", "invalid_api_key", "Incorrect API key provided."),
    403: ("permission_error", None, "You are not allowed to use this model"),
    404: ("invalid_request_error", "model_not_found", "The model does not exist"),
    429: ("requests", "rate_limit_exceeded", "Rate limit reached; please try again in 644ms."),
    500: ("server_error", None, "The server had an error while processing your request."),
    503: ("server_error", None, "The engine is currently overloaded, please try again later"),
}


def error_body(status: int, error_type: str | None = None) -> dict[str, Any]:
    kind, code, message = _ERRORS.get(status, ("server_error", None, f"HTTP {status}"))
    if error_type == "insufficient_quota":
        kind, code, message = error_type, error_type, "You exceeded your current quota."
    elif error_type:
        kind = error_type
    return {"error": {"message": message, "type": kind, "param": None, "code": code}}


class FakeOpenAI:
    def __init__(self) -> None:
        self.script = Script()
        self.accepted_keys = {"sk-test"}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        recorded = await read_request(scope, receive, self.script)
        path = scope["path"]
        if bearer(recorded.headers) not in self.accepted_keys:
            await send_json(send, 401, error_body(401), recorded)
            return
        if scope["method"] == "GET" and path.endswith("/models"):
            await send_json(
                send, 200, {"object": "list", "data": [{"id": "gpt-4o-mini"}]}, recorded
            )
            return
        if path.endswith("/chat/completions"):
            chat = True
        elif path.endswith("/completions"):
            chat = False
        else:
            await send_json(send, 404, error_body(404), recorded)
            return
        reply = self.script.next_reply()
        if reply.status >= 400 or reply.body is not None:
            body = (
                reply.body if reply.body is not None else error_body(reply.status, reply.error_type)
            )
            await send_json(send, reply.status, body, recorded, reply.headers)
            return
        request = recorded.body if isinstance(recorded.body, dict) else {}
        model = str(request.get("model", "gpt-4o-mini"))
        if not request.get("stream"):
            await send_json(send, 200, _whole(reply.text, model, chat), recorded, reply.headers)
            return
        usage = bool((request.get("stream_options") or {}).get("include_usage"))
        n = request.get("n", 1)
        texts = reply.choices(n if isinstance(n, int) else 1)
        events = _events(reply.text, reply.chunk_size, model, chat, usage, texts)
        error = sse(
            {
                "error": {
                    "message": "The server had an error",
                    "type": "server_error",
                    "param": None,
                    "code": None,
                }
            }
        )
        await stream(
            receive,
            send,
            reply,
            recorded,
            "text/event-stream; charset=utf-8",
            events,
            error_event=error,
            ending=len(texts) + (2 if usage else 1),
        )


def _chunk(model: str, chat: bool, choices: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return {
        "id": "chatcmpl-fake" if chat else "cmpl-fake",
        "object": "chat.completion.chunk" if chat else "text_completion",
        "created": int(time.time()),
        "model": model,
        "system_fingerprint": "fp_fake",
        "choices": choices,
        **extra,
    }


def _events(
    text: str, size: int, model: str, chat: bool, usage: bool, texts: list[str] | None = None
) -> list[bytes]:
    """The stream of one choice (`text`), or of several (`texts`) interleaved by index as the
    real API sends them for `n` > 1."""
    texts = texts or [text]
    out: list[bytes] = []
    if chat:
        first = [
            {
                "index": i,
                "delta": {"role": "assistant", "content": ""},
                "logprobs": None,
                "finish_reason": None,
            }
            for i in range(len(texts))
        ]
        out.append(sse(_chunk(model, chat, first, usage=None)))
    split = [pieces(t, size) for t in texts]
    for round_ in range(max(len(p) for p in split)):
        for index, parts in enumerate(split):
            if round_ >= len(parts):
                continue
            piece = parts[round_]
            choice: dict[str, Any] = (
                {"index": index, "delta": {"content": piece}, "logprobs": None,
                 "finish_reason": None}
                if chat
                else {"index": index, "text": piece, "logprobs": None, "finish_reason": None}
            )  # fmt: skip
            out.append(sse(_chunk(model, chat, [choice], usage=None)))
    for index in range(len(texts)):
        last: dict[str, Any] = (
            {"index": index, "delta": {}, "logprobs": None, "finish_reason": "stop"}
            if chat
            else {"index": index, "text": "", "logprobs": None, "finish_reason": "stop"}
        )
        out.append(sse(_chunk(model, chat, [last], usage=None)))
    if usage:
        figures = {
            "prompt_tokens": 9,
            "completion_tokens": sum(len(t) for t in texts) // 4 + 1,
            "total_tokens": 10 + sum(len(t) for t in texts) // 4,
        }
        out.append(sse(_chunk(model, chat, [], usage=figures)))
    out.append(b"data: [DONE]\n\n")
    return out


def _whole(text: str, model: str, chat: bool) -> dict[str, Any]:
    choice: dict[str, Any] = (
        {
            "index": 0,
            "message": {"role": "assistant", "content": text, "refusal": None},
            "logprobs": None,
            "finish_reason": "stop",
        }
        if chat
        else {"index": 0, "text": text, "logprobs": None, "finish_reason": "stop"}
    )
    return {
        "id": "chatcmpl-fake",
        "object": "chat.completion" if chat else "text_completion",
        "created": int(time.time()),
        "model": model,
        "choices": [choice],
        "usage": {"prompt_tokens": 9, "completion_tokens": 1, "total_tokens": 10},
    }


def create_app() -> FakeOpenAI:
    return FakeOpenAI()


__all__ = ["FakeOpenAI", "Reply", "create_app", "error_body"]
