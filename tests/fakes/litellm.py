"""Fake LiteLLM proxy: OpenAI-shaped `/v1/chat/completions` and `/v1/completions` re-encoded the
way the proxy does it, in front of an upstream that can be down.

What differs from OpenAI itself, and what a client has to survive:
- chunks are LiteLLM's own serialisation (no `logprobs`, nulls left out, `finish_reason` only
  once), with `usage` on every chunk when `stream_options.include_usage` is set, and the last
  chunk before `[DONE]` is `choices: [{"index": 0, "delta": {}}]` carrying the totals (or
  `choices: []` with `empty_last_choices`);
- an upstream that is down is retried by the proxy itself (`num_retries`, `retry_delay`) before
  a 500 whose message names `litellm.APIConnectionError` (`type`/`param` null, `code` "500");
- a request the client drops is not passed on: the upstream keeps generating
  (`upstream_kept_generating` counts those);
- unknown routes, `HEAD /v1` included, are FastAPI's 404 `{"detail":"Not Found"}`, and every
  request leaves a uvicorn access-log line in `access_log`.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
import uuid
from dataclasses import replace
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

_STATUS_WORDS = {
    200: "OK",
    400: "Bad Request",
    401: "Unauthorized",
    404: "Not Found",
    429: "Too Many Requests",
    500: "Internal Server Error",
    503: "Service Unavailable",
}
_EXCEPTIONS = {
    400: "BadRequestError",
    401: "AuthenticationError",
    404: "NotFoundError",
    429: "RateLimitError",
    503: "ServiceUnavailableError",
}


def litellm_error(message: str, code: int) -> dict[str, Any]:
    return {"error": {"message": message, "type": None, "param": None, "code": str(code)}}


class FakeLiteLLM:
    def __init__(self, *, master_key: str = "sk-litellm", model: str = "gpt-4o-mini") -> None:
        self.script = Script()
        self.master_key = master_key
        self.model = model
        self.upstream_down = False
        self.num_retries = 2
        self.retry_delay = 0.0
        """Seconds the proxy waits between its own retries of a down upstream."""
        self.empty_last_choices = False
        self.upstream_attempts = 0
        self.upstream_kept_generating = 0
        self.access_log: list[str] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        status: list[int] = []

        async def logged_send(message: Any) -> None:
            if message["type"] == "http.response.start":
                status.append(int(message["status"]))
            await send(message)

        try:
            await self._handle(scope, receive, logged_send)
        finally:
            client = scope.get("client") or ("127.0.0.1", 0)
            code = status[0] if status else 499
            self.access_log.append(
                f'INFO:     {client[0]}:{client[1]} - "{scope["method"]} {scope["path"]} '
                f'HTTP/{scope.get("http_version", "1.1")}" {code} {_STATUS_WORDS.get(code, "")}'
            )

    async def _handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        recorded = await read_request(scope, receive, self.script)
        path = scope["path"].removeprefix("/v1")
        method = scope["method"]
        if method == "GET" and path == "/health/liveliness":
            await send_json(send, 200, json.dumps("I'm alive!"), recorded)
            return
        known = {("GET", "/models"), ("POST", "/chat/completions"), ("POST", "/completions")}
        if (method, path) not in known:
            await send_json(send, 404, {"detail": "Not Found"}, recorded)
            return
        key = bearer(recorded.headers)
        if key != self.master_key:
            await send_json(send, 401, _auth_error(key), recorded)
            return
        if path == "/models":
            listing = {"data": [_model_entry(self.model)], "object": "list"}
            await send_json(send, 200, listing, recorded)
            return
        request = recorded.body if isinstance(recorded.body, dict) else {}
        model = str(request.get("model", self.model))
        call_id = str(uuid.uuid4())
        headers = {"x-litellm-call-id": call_id, "x-litellm-version": "1.74.9"}
        if self.upstream_down:
            # The proxy retries the upstream itself before answering anything.
            for attempt in range(self.num_retries + 1):
                self.upstream_attempts += 1
                if attempt < self.num_retries and self.retry_delay:
                    await asyncio.sleep(self.retry_delay)
            message = (
                "litellm.APIConnectionError: APIConnectionError: OpenAIException - "
                f"Connection error.\nReceived Model Group={model}\n"
                f"Available Model Group Fallbacks=None LiteLLM Retried: {self.num_retries} "
                f"times, LiteLLM Max Retries: {self.num_retries}"
            )
            await send_json(send, 500, litellm_error(message, 500), recorded, headers)
            return
        self.upstream_attempts += 1
        reply = self.script.next_reply()
        if reply.status >= 400 or reply.body is not None:
            body = reply.body if reply.body is not None else _upstream_error(reply, model)
            await send_json(send, reply.status, body, recorded, {**headers, **reply.headers})
            return
        chat = path == "/chat/completions"
        prompt_tokens = _prompt_tokens(request, chat)
        if not request.get("stream"):
            whole = _whole(reply.text, model, chat, prompt_tokens)
            await send_json(send, 200, whole, recorded, {**headers, **reply.headers})
            return
        usage = bool((request.get("stream_options") or {}).get("include_usage"))
        events = self._events(reply, model, chat, usage, prompt_tokens)
        error = sse(litellm_error("litellm.InternalServerError: upstream stream broke", 500))
        reply = replace(reply, headers={**headers, **reply.headers})
        await stream(
            receive,
            send,
            reply,
            recorded,
            "text/event-stream; charset=utf-8",
            events,
            error_event=error,
            ending=3 if usage else 2,
        )
        if recorded.disconnected.is_set():
            # LiteLLM does not cancel the upstream call when its own client goes away.
            self.upstream_kept_generating += 1

    def _events(
        self, reply: Reply, model: str, chat: bool, usage: bool, prompt_tokens: int
    ) -> list[bytes]:
        cid = f"chatcmpl-{uuid.uuid4()}"
        created = int(time.time())
        out: list[bytes] = []
        produced = 0

        def chunk(choices: list[dict[str, Any]], figures: dict[str, Any] | None) -> bytes:
            value: dict[str, Any] = {
                "id": cid,
                "created": created,
                "model": model,
                "object": "chat.completion.chunk" if chat else "text_completion",
                "system_fingerprint": "fp_0ba0d124f1",
                "choices": choices,
            }
            if figures is not None:
                value["usage"] = figures
            return sse(value)

        def totals() -> dict[str, Any] | None:
            if not usage:
                return None
            return {
                "completion_tokens": produced,
                "prompt_tokens": prompt_tokens,
                "total_tokens": produced + prompt_tokens,
                "completion_tokens_details": {"reasoning_tokens": 0},
                "prompt_tokens_details": {"cached_tokens": 0},
            }

        for i, piece in enumerate(pieces(reply.text, reply.chunk_size)):
            produced += 1
            if chat:
                delta: dict[str, Any] = {"content": piece}
                if i == 0:
                    delta["role"] = "assistant"
                out.append(chunk([{"index": 0, "delta": delta}], totals()))
            else:
                out.append(chunk([{"text": piece, "index": 0}], totals()))
        done: dict[str, Any] = {"finish_reason": "stop", "index": 0}
        if chat:
            done["delta"] = {}
        else:
            done["text"] = ""
        out.append(chunk([done], totals()))
        last: list[dict[str, Any]] = []
        if not self.empty_last_choices:
            last = [{"index": 0, "delta": {}}] if chat else [{"text": "", "index": 0}]
        figures = totals()
        out.append(chunk(last, figures) if figures is not None else b"")
        out.append(b"data: [DONE]\n\n")
        return [event for event in out if event]


def _auth_error(key: str) -> dict[str, Any]:
    # The real proxy shows the key masked to its last four characters and a hash of it.
    shown = f"sk-...{key[-4:]}" if key else "None"
    digest = hashlib.sha256(key.encode()).hexdigest()
    message = (
        "Authentication Error, Invalid proxy server token passed. "
        f"Received API Key = {shown}, Key Hash (Token) ={digest}. Unable to find token in "
        "cache or `LiteLLM_VerificationTokenTable`"
    )
    return {"error": {"message": message, "type": "auth_error", "param": "None", "code": "401"}}


def _upstream_error(reply: Reply, model: str) -> dict[str, Any]:
    if reply.error_type == "context_length_exceeded":
        message = (
            "litellm.ContextWindowExceededError: litellm.BadRequestError: "
            "ContextWindowExceededError: OpenAIException - This model's maximum context length "
            "is 8192 tokens. However, your messages resulted in 9000 tokens. Please reduce the "
            f"length of the messages.\nReceived Model Group={model}"
        )
        return litellm_error(message, reply.status)
    name = _EXCEPTIONS.get(reply.status, "InternalServerError")
    message = (
        f"litellm.{name}: {name}: OpenAIException - upstream answered {reply.status}\n"
        f"Received Model Group={model}"
    )
    return litellm_error(message, reply.status)


def _model_entry(model: str) -> dict[str, Any]:
    return {"id": model, "object": "model", "created": 1677610602, "owned_by": "openai"}


def _prompt_tokens(request: dict[str, Any], chat: bool) -> int:
    if chat:
        messages = request.get("messages") or []
        text = " ".join(str(m.get("content", "")) for m in messages if isinstance(m, dict))
    else:
        text = str(request.get("prompt", ""))
    return max(1, len(text) // 4)


def _whole(text: str, model: str, chat: bool, prompt_tokens: int) -> dict[str, Any]:
    completion = max(1, len(text) // 4)
    choice: dict[str, Any] = (
        {
            "finish_reason": "stop",
            "index": 0,
            "message": {"content": text, "role": "assistant", "tool_calls": None},
        }
        if chat
        else {"finish_reason": "stop", "index": 0, "text": text}
    )
    return {
        "id": f"chatcmpl-{uuid.uuid4()}",
        "created": int(time.time()),
        "model": model,
        "object": "chat.completion" if chat else "text_completion",
        "system_fingerprint": "fp_0ba0d124f1",
        "choices": [choice],
        "usage": {
            "completion_tokens": completion,
            "prompt_tokens": prompt_tokens,
            "total_tokens": completion + prompt_tokens,
        },
    }


def create_app() -> FakeLiteLLM:
    return FakeLiteLLM()


__all__ = ["FakeLiteLLM", "Reply", "create_app", "litellm_error"]
