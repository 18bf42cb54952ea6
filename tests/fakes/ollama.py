"""Fake Ollama: NDJSON `/api/generate` (with `suffix` for fill-in-the-middle) and `/api/chat`,
Ollama's plain `{"error": "..."}` bodies, models without FIM and models not pulled."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from tests.fakes.asgi import Receive, Scope, Send, pieces, read_request, send_json, stream
from tests.fakes.script import Script


def _line(value: dict[str, Any]) -> bytes:
    return (json.dumps(value, ensure_ascii=False) + "\n").encode()


class FakeOllama:
    def __init__(self) -> None:
        self.script = Script()
        self.no_insert_models: set[str] = set()
        self.missing_models: set[str] = set()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        recorded = await read_request(scope, receive, self.script)
        path = scope["path"]
        if path == "/api/version":
            await send_json(send, 200, {"version": "0.12.0"}, recorded)
            return
        if path == "/api/tags":
            await send_json(send, 200, {"models": [{"name": "qwen2.5-coder:1.5b"}]}, recorded)
            return
        if path not in ("/api/generate", "/api/chat"):
            await send_json(
                send, 404, "404 page not found", recorded, {"content-type": "text/plain"}
            )
            return
        body = recorded.body if isinstance(recorded.body, dict) else {}
        model = str(body.get("model", ""))
        if model in self.missing_models:
            error = {"error": f'model "{model}" not found, try pulling it first'}
            await send_json(send, 404, error, recorded)
            return
        if path == "/api/generate" and body.get("suffix") and model in self.no_insert_models:
            error = {"error": f"registry.ollama.ai/library/{model}:latest does not support insert"}
            await send_json(send, 400, error, recorded)
            return
        reply = self.script.next_reply()
        if reply.status >= 400 or reply.body is not None:
            payload = reply.body if reply.body is not None else {"error": f"HTTP {reply.status}"}
            await send_json(send, reply.status, payload, recorded, reply.headers)
            return
        chat = path == "/api/chat"
        stamp = datetime.now(UTC).isoformat()

        def piece(text: str) -> dict[str, Any]:
            head: dict[str, Any] = {"model": model, "created_at": stamp}
            if chat:
                return {**head, "message": {"role": "assistant", "content": text}, "done": False}
            return {**head, "response": text, "done": False}

        final: dict[str, Any] = {
            "model": model,
            "created_at": stamp,
            "done": True,
            "done_reason": "stop",
            "total_duration": 1000,
            "prompt_eval_count": 10,
            "eval_count": len(reply.text) // 4 + 1,
        }
        if chat:
            final["message"] = {"role": "assistant", "content": ""}
        else:
            final["response"] = ""
        if body.get("stream") is False:
            whole = dict(final)
            if chat:
                whole["message"] = {"role": "assistant", "content": reply.text}
            else:
                whole["response"] = reply.text
            await send_json(send, 200, whole, recorded, reply.headers)
            return
        lines = [_line(piece(p)) for p in pieces(reply.text, reply.chunk_size)] + [_line(final)]
        error = _line({"error": "an error was encountered while running the model"})
        await stream(
            receive, send, reply, recorded, "application/x-ndjson", lines, error_event=error
        )


def create_app() -> FakeOllama:
    return FakeOllama()
