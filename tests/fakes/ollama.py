"""Fake Ollama: NDJSON `/api/generate` and `/api/chat` with Ollama's own rules, `{"error": "..."}`
bodies, models without FIM and models not pulled.

The rules that bite a code-completion client, as Ollama's server applies them:
- `suffix` goes through the model's template, so FIM happens only with a non-empty `suffix`; an
  empty or absent one (without `raw`) wraps the prompt as a chat message and the model answers it
  like a question. `raw: true` skips the template (the client wrote the FIM tokens itself).
- an empty `prompt` (or no `messages`) only loads the model: one JSON object, `done_reason: "load"`
  (`"unload"` with `keep_alive: 0`).
- a model unloaded after `keep_alive` (default 5m) is loaded again first (`load_delay`).
- `options.num_ctx` (default 4096) bounds the prompt: longer prompts are truncated (the server
  only logs it) or, with `truncate: false` or `overflow = "error"`, refused with 400.
- thinking models stream `thinking` before the answer unless `think: false`; `think: true` on
  another model is a 400.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from tests.fakes.asgi import Receive, Scope, Send, pieces, read_request, send_json, stream
from tests.fakes.script import Reply, Script

CHAT_WRAPPED_ANSWER = (
    "It looks like you've shared a snippet of code. Could you tell me what you would like me "
    "to do with it? For example, I can explain it, find bugs, or help you extend it."
)
CONTEXT_EXCEEDED = "the input length exceeds the context length"
DEFAULT_KEEP_ALIVE = 300.0


def _line(value: dict[str, Any]) -> bytes:
    return (json.dumps(value, ensure_ascii=False) + "\n").encode()


def count_tokens(text: str) -> int:
    """A crude tokenizer: words and punctuation, long words counted per 4 characters."""
    return sum(max(1, (len(p) + 3) // 4) for p in re.findall(r"\w+|[^\w\s]|\s+", text))


def keep_alive_seconds(value: Any) -> float:
    """Ollama's `keep_alive`: a Go duration ("30m", "1h5m", "0") or a number of seconds;
    negative keeps the model loaded for ever."""
    if value is None:
        return DEFAULT_KEEP_ALIVE
    if isinstance(value, int | float):
        return float(value) if value >= 0 else float("inf")
    text = str(value).strip()
    if re.fullmatch(r"-?\d+(\.\d+)?", text):
        return keep_alive_seconds(float(text))
    units = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}
    parts = re.findall(r"(-?\d+(?:\.\d+)?)(ms|h|m|s)", text)
    if not parts:
        raise ValueError(f"time: invalid duration {text!r}")
    total = sum(float(n) * units[u] for n, u in parts)
    return total if total >= 0 else float("inf")


@dataclass
class Seen:
    """What one `/api/generate` or `/api/chat` asked for and how the fake read it."""

    path: str
    model: str
    mode: Literal["fim", "raw", "chat-wrapped", "chat", "load", "unload", "refused"]
    keep_alive: Any
    num_ctx: int | None
    think: Any
    raw: bool
    stop: list[str] | None
    prompt_tokens: int
    truncated: bool
    loaded_first: bool


class FakeOllama:
    def __init__(self) -> None:
        self.script = Script()
        self.no_insert_models: set[str] = set()
        self.missing_models: set[str] = set()
        self.thinking_models: set[str] = set()
        self.thinking_text = "The user wants the rest of this line. Keep it short."
        self.default_num_ctx = 4096
        self.overflow: Literal["truncate", "error"] = "truncate"
        self.load_delay = 0.0
        """Seconds a model takes to load (first use, or after its keep_alive ran out)."""
        self.seen: list[Seen] = []
        self._expires: dict[str, float] = {}

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
        if path == "/api/ps":
            await send_json(send, 200, {"models": self._running()}, recorded)
            return
        body = recorded.body if isinstance(recorded.body, dict) else {}
        if path == "/api/show":
            await send_json(send, *self._show(str(body.get("model", ""))), recorded)
            return
        if path not in ("/api/generate", "/api/chat"):
            await send_json(
                send, 404, "404 page not found", recorded, {"content-type": "text/plain"}
            )
            return
        model = str(body.get("model", ""))
        chat = path == "/api/chat"
        if model in self.missing_models:
            error = {"error": f'model "{model}" not found, try pulling it first'}
            await send_json(send, 404, error, recorded)
            return
        refusal = self._refusal(body, model, chat)
        if refusal is not None:
            self._see(path, body, "refused", 0, False, False)
            await send_json(send, 400, {"error": refusal}, recorded)
            return
        try:
            keep_alive = keep_alive_seconds(body.get("keep_alive"))
        except ValueError as exc:
            await send_json(send, 400, {"error": str(exc)}, recorded)
            return
        stamp = datetime.now(UTC).isoformat()
        empty = not body.get("messages") if chat else not body.get("prompt")
        if empty and keep_alive == 0:
            self._expires.pop(model, None)
            self._see(path, body, "unload", 0, False, False)
            await send_json(send, 200, self._bare(model, stamp, chat, "unload"), recorded)
            return
        loaded_first = await self._load(model, keep_alive)
        if empty:
            self._see(path, body, "load", 0, False, loaded_first)
            await send_json(send, 200, self._bare(model, stamp, chat, "load"), recorded)
            return
        mode = self._mode(body, chat)
        prompt_tokens = self._prompt_tokens(body, chat)
        num_ctx = _num_ctx(body) or self.default_num_ctx
        truncated = prompt_tokens > num_ctx
        if truncated and (self.overflow == "error" or body.get("truncate") is False):
            self._see(path, body, mode, prompt_tokens, True, loaded_first)
            await send_json(send, 400, {"error": CONTEXT_EXCEEDED}, recorded)
            return
        self._see(path, body, mode, prompt_tokens, truncated, loaded_first)
        reply = self.script.next_reply()
        if reply.status >= 400 or reply.body is not None:
            payload = reply.body if reply.body is not None else {"error": f"HTTP {reply.status}"}
            await send_json(send, reply.status, payload, recorded, reply.headers)
            return
        text = CHAT_WRAPPED_ANSWER if mode == "chat-wrapped" else reply.text
        thinks = model in self.thinking_models and body.get("think") is not False
        thinking = self.thinking_text if thinks else ""
        final = self._final(model, stamp, chat, text, min(prompt_tokens, num_ctx), loaded_first)
        if body.get("stream") is False:
            whole = dict(final)
            if chat:
                whole["message"] = _message(text, thinking)
            else:
                whole["response"] = text
                if thinking:
                    whole["thinking"] = thinking
            await send_json(send, 200, whole, recorded, reply.headers)
            return

        def piece(content: str, thought: str = "") -> dict[str, Any]:
            head: dict[str, Any] = {"model": model, "created_at": stamp}
            if chat:
                return {**head, "message": _message(content, thought), "done": False}
            extra = {"thinking": thought} if thought else {}
            return {**head, "response": content, **extra, "done": False}

        lines = [_line(piece("", p)) for p in pieces(thinking, reply.chunk_size)]
        lines += [_line(piece(p)) for p in pieces(text, reply.chunk_size)] + [_line(final)]
        failure = _line({"error": "an error was encountered while running the model"})
        await stream(
            receive, send, reply, recorded, "application/x-ndjson", lines, error_event=failure
        )

    def _refusal(self, body: dict[str, Any], model: str, chat: bool) -> str | None:
        """The 400s Ollama answers before running anything."""
        if (
            not chat
            and body.get("raw")
            and any(body.get(k) for k in ("template", "system", "context"))
        ):
            return "raw mode does not support template, system, or context"
        if body.get("think") is True and model not in self.thinking_models:
            return f'"{model}" does not support thinking'
        if (
            not chat
            and body.get("suffix")
            and not body.get("raw")
            and model in self.no_insert_models
        ):
            return f"registry.ollama.ai/library/{model}:latest does not support insert"
        return None

    @staticmethod
    def _mode(body: dict[str, Any], chat: bool) -> Literal["fim", "raw", "chat-wrapped", "chat"]:
        if chat:
            return "chat"
        if body.get("raw"):
            return "raw"  # the template (and with it `suffix`) is skipped
        return "fim" if body.get("suffix") else "chat-wrapped"

    @staticmethod
    def _prompt_tokens(body: dict[str, Any], chat: bool) -> int:
        if chat:
            messages = body.get("messages") or []
            return sum(count_tokens(str(m.get("content", ""))) + 4 for m in messages)
        return count_tokens(str(body.get("prompt", ""))) + count_tokens(
            str(body.get("suffix") or "")
        )

    async def _load(self, model: str, keep_alive: float) -> bool:
        """Load `model` unless it is still loaded; keep it for `keep_alive` seconds from now."""
        now = time.monotonic()
        loaded = self._expires.get(model, 0.0) > now
        if not loaded and self.load_delay:
            await asyncio.sleep(self.load_delay)
        self._expires[model] = time.monotonic() + keep_alive
        return not loaded

    def _see(
        self,
        path: str,
        body: dict[str, Any],
        mode: Any,
        prompt_tokens: int,
        truncated: bool,
        loaded_first: bool,
    ) -> None:
        options = body.get("options") if isinstance(body.get("options"), dict) else {}
        stop = options.get("stop") if options else None
        self.seen.append(
            Seen(
                path=path,
                model=str(body.get("model", "")),
                mode=mode,
                keep_alive=body.get("keep_alive"),
                num_ctx=_num_ctx(body),
                think=body.get("think"),
                raw=bool(body.get("raw")),
                stop=list(stop) if isinstance(stop, list) else None,
                prompt_tokens=prompt_tokens,
                truncated=truncated,
                loaded_first=loaded_first,
            )
        )

    def _running(self) -> list[dict[str, Any]]:
        now = time.monotonic()
        out = []
        for name, expires in self._expires.items():
            if expires > now:
                left = min(expires - now, 10 * 365 * 86400)
                until = datetime.fromtimestamp(time.time() + left, UTC).isoformat()
                out.append(
                    {
                        "name": name,
                        "model": name,
                        "expires_at": until,
                        "context_length": self.default_num_ctx,
                    }
                )
        return out

    def _show(self, model: str) -> tuple[int, dict[str, Any]]:
        if model in self.missing_models:
            return 404, {"error": f"model '{model}' not found"}
        capabilities = ["completion"]
        if model not in self.no_insert_models:
            capabilities.append("insert")
        if model in self.thinking_models:
            capabilities.append("thinking")
        info = {"general.architecture": "qwen2", "qwen2.context_length": 32768}
        return 200, {
            "capabilities": capabilities,
            "model_info": info,
            "details": {"family": "qwen2", "format": "gguf"},
        }

    @staticmethod
    def _bare(model: str, stamp: str, chat: bool, reason: str) -> dict[str, Any]:
        out: dict[str, Any] = {"model": model, "created_at": stamp}
        if chat:
            out["message"] = {"role": "assistant", "content": ""}
        else:
            out["response"] = ""
        return {**out, "done": True, "done_reason": reason}

    @staticmethod
    def _final(
        model: str, stamp: str, chat: bool, text: str, prompt_tokens: int, loaded_first: bool
    ) -> dict[str, Any]:
        final: dict[str, Any] = {"model": model, "created_at": stamp}
        if chat:
            final["message"] = {"role": "assistant", "content": ""}
        else:
            final["response"] = ""
        return {
            **final,
            "done": True,
            "done_reason": "stop",
            "total_duration": 1000,
            "load_duration": 500_000_000 if loaded_first else 100_000,
            "prompt_eval_count": max(1, prompt_tokens),
            "eval_count": len(text) // 4 + 1,
        }


def _num_ctx(body: dict[str, Any]) -> int | None:
    options = body.get("options")
    value = options.get("num_ctx") if isinstance(options, dict) else None
    return int(value) if isinstance(value, int | float) else None


def _message(content: str, thinking: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {"role": "assistant", "content": content}
    if thinking:
        out["thinking"] = thinking
    return out


def create_app() -> FakeOllama:
    return FakeOllama()


__all__ = ["CHAT_WRAPPED_ANSWER", "CONTEXT_EXCEEDED", "FakeOllama", "Reply", "create_app"]
