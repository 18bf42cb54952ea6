"""Fake llama-server (llama.cpp): `/infill` with its own fields, token budget, stream and errors,
the OpenAI-style `/v1/completions` (which ignores `suffix`) and `/v1/chat/completions`, and the
`/props`, `/v1/models` and `/health` a client probes to recognise the server.

Shapes follow the real server (tools/server in llama.cpp, checked against the captures in
tests/fakes/captures/llamacpp):
- `/infill` builds `[extra]<FIM_PRE>prefix<FIM_SUF>suffix<FIM_MID>prompt`, keeping the last
  3/4 of a batch of prefix tokens, the first 1/4 of suffix tokens and as much of `input_extra`
  (repo-level: `<|repo_name|>myproject`, `<|file_sep|>name` before each chunk) as the context
  leaves; a prompt of `n_ctx` tokens or more is a 400 `exceed_context_size_error` carrying
  `n_prompt_tokens` and `n_ctx`, even for a stream (the first error is never streamed).
- its stream is `data: {...}\\n\\n` per token with `stop: false`, then one with `stop: true`,
  `stop_type`, `timings` and `tokens_evaluated`; no `[DONE]`.
- every JSON body is compact; errors are `{"error":{"code","message","type"}}`.
- `loading = True` answers every endpoint with the 503 "Loading model".
Tokens are counted crudely (words and punctuation, long words per 4 characters).
"""

from __future__ import annotations

import copy
import functools
import json
import random
import re
import string
import threading
import time
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.fakes.asgi import Receive, Scope, Send, bearer, read_request, send_json, stream
from tests.fakes.script import Recorded, Reply, Script

FIM_PRE, FIM_SUF, FIM_MID = "<|fim_prefix|>", "<|fim_suffix|>", "<|fim_middle|>"
FIM_REP, FIM_SEP = "<|repo_name|>", "<|file_sep|>"
BUILD_INFO = "b0-unknown"
CAPTURES = Path(__file__).parent / "captures" / "llamacpp"


@functools.cache
def captured(name: str) -> Any:
    """The JSON body of one capture of the real server (status and type lines stripped)."""
    raw = (CAPTURES / name).read_bytes().partition(b"\n\n")[2]
    return json.loads(raw)


def _completion_id() -> str:
    return "chatcmpl-" + "".join(random.choices(string.ascii_letters + string.digits, k=32))


def tokenize(text: str) -> list[str]:
    """Crude tokens: words, single punctuation marks and whitespace runs, long ones split."""
    out: list[str] = []
    for piece in re.findall(r"\w+|[^\w\s]|\s+", text):
        out.extend(piece[i : i + 4] for i in range(0, len(piece), 4))
    return out


def token_id(piece: str) -> int:
    return zlib.crc32(piece.encode()) % 151643


def error(message: str, kind: str, code: int, **extra: Any) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "type": kind, **extra}}


def _compact(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()


def _event(value: Any) -> bytes:
    return b"data: " + _compact(value) + b"\n\n"


@dataclass
class Infill:
    """How the fake laid out one `/infill` prompt (what the real server's debug log shows)."""

    n_prefix: int
    n_prefix_take: int
    n_suffix: int
    n_suffix_take: int
    n_extra: int
    n_extra_take: int
    n_prompt_tokens: int
    prompt: str


@dataclass
class Generation:
    content: str
    pieces: list[str]
    stop_type: str
    stopping_word: str


class FakeLlamaServer:
    def __init__(
        self,
        *,
        n_ctx: int = 4096,
        n_batch: int = 2048,
        model_path: str = "/models/qwen2.5-coder-1.5b-q8_0.gguf",
        alias: str | None = None,
        api_key: str | None = None,
        fim: bool = True,
    ) -> None:
        self.script = Script()
        self.n_ctx = n_ctx
        self.n_batch = n_batch
        self.model_path = model_path
        self.alias = alias
        self.api_key = api_key
        self.fim = fim
        self.loading = False
        self.infills: list[Infill] = []
        self.log: list[str] = []
        """Lines as llama-server logs them: `cancel task` when a client leaves a stream."""
        self.cancelled: list[Recorded] = []
        self._task_ids = 0
        self._lock = threading.Lock()

    @property
    def model_id(self) -> str:
        return self.alias or self.model_path

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        recorded = await read_request(scope, receive, self.script)
        path, method = scope["path"], scope["method"]
        if self.loading:
            # The middleware's own body: keys in another order than the handlers' errors.
            body = {"error": {"message": "Loading model", "type": "unavailable_error",
                              "code": 503}}  # fmt: skip
            await self._json(send, 503, body, recorded)
            return
        public = path in ("/health", "/v1/health")
        if self.api_key and not public and bearer(recorded.headers) != self.api_key:
            body = {"error": {"message": "Invalid API Key", "type": "authentication_error",
                              "code": 401}}  # fmt: skip
            await self._json(send, 401, body, recorded)
            return
        if method == "GET" and public:
            await self._json(send, 200, {"status": "ok"}, recorded)
            return
        if method == "GET" and path == "/props":
            await self._json(send, 200, self._props(), recorded)
            return
        if method == "GET" and path in ("/models", "/v1/models"):
            await self._json(send, 200, self._models(), recorded)
            return
        handlers = {
            "/infill": self._infill,
            "/completions": self._oai_completion,
            "/v1/completions": self._oai_completion,
            "/chat/completions": self._chat,
            "/v1/chat/completions": self._chat,
        }
        handler = handlers.get(path) if method == "POST" else None
        if handler is None:
            body = error("File Not Found", "not_found_error", 404)
            await self._json(send, 404, body, recorded)
            return
        if not isinstance(recorded.body, dict):
            message = "[json.exception.parse_error] invalid JSON request body"
            await self._json(send, 500, error(message, "server_error", 500), recorded)
            return
        await handler(recorded.body, receive, send, recorded)

    # --- /infill --------------------------------------------------------------------------

    async def _infill(
        self, body: dict[str, Any], receive: Receive, send: Send, recorded: Recorded
    ) -> None:
        if not self.fim:
            message = (
                "Infill is not supported by this model: prefix token is missing. "
                "suffix token is missing. middle token is missing. "
            )
            await self._json(send, 501, error(message, "not_supported_error", 501), recorded)
            return
        problem = _infill_problem(body)
        if problem is not None:
            status, payload = problem
            await self._json(send, status, payload, recorded)
            return
        layout = self._layout(body)
        self.infills.append(layout)
        await self._complete(body, layout.n_prompt_tokens, layout.prompt, receive, send, recorded)

    def _layout(self, body: dict[str, Any]) -> Infill:
        prefix = tokenize(_text(body.get("input_prefix")))
        suffix = tokenize(_text(body.get("input_suffix")))
        prompt = tokenize(body["prompt"]) if isinstance(body.get("prompt"), str) else []
        extra: list[str] = [FIM_REP, *tokenize("myproject\n")]
        for chunk in body.get("input_extra") or []:
            name = chunk.get("filename") if isinstance(chunk.get("filename"), str) else "tmp"
            extra += [FIM_SEP, *tokenize(name + "\n"), *tokenize(chunk["text"])]
        extra += [FIM_SEP, *tokenize("filename\n")]
        n_prefix_take = min(len(prefix), 3 * (self.n_batch // 4))
        n_suffix_take = min(len(suffix), max(0, self.n_batch // 4 - (2 + len(prompt))))
        # The server's own n_predict (-1 unless started with -n) reserves room here.
        n_extra_take = min(max(0, self.n_ctx - self.n_batch + 2), len(extra))
        kept_extra = extra[len(extra) - n_extra_take :]
        kept_prefix = prefix[len(prefix) - n_prefix_take :]
        kept_suffix = suffix[:n_suffix_take]
        text = "".join(
            [*kept_extra, FIM_PRE, *kept_prefix, *prompt, FIM_SUF, *kept_suffix, FIM_MID]
        )
        total = n_extra_take + 1 + n_prefix_take + len(prompt) + 1 + n_suffix_take + 1
        return Infill(
            n_prefix=len(prefix),
            n_prefix_take=n_prefix_take,
            n_suffix=len(suffix),
            n_suffix_take=n_suffix_take,
            n_extra=len(extra),
            n_extra_take=n_extra_take,
            n_prompt_tokens=total,
            prompt=text,
        )

    # --- generation shared by /infill and /completion ----------------------------------------

    async def _complete(
        self,
        body: dict[str, Any],
        n_prompt: int,
        prompt: str,
        receive: Receive,
        send: Send,
        recorded: Recorded,
    ) -> None:
        if n_prompt >= self.n_ctx:
            await self._exceeded(send, n_prompt, recorded)
            return
        reply = self.script.next_reply()
        if reply.status >= 400 or reply.body is not None:
            payload = reply.body if reply.body is not None else _status_error(reply.status)
            await self._json(send, reply.status, payload, recorded, reply.headers)
            return
        gen = _generate(reply.text, body)
        settings = self._generation_settings(body)
        started = time.perf_counter()

        def final(content: str) -> dict[str, Any]:
            return {
                "index": 0,
                "content": content,
                "tokens": [],
                "id_slot": 0,
                "stop": True,
                "model": self.model_id,
                "tokens_predicted": len(gen.pieces),
                "tokens_evaluated": n_prompt,
                "generation_settings": settings,
                "prompt": prompt,
                "has_new_line": "\n" in gen.content,
                "truncated": False,
                "stop_type": gen.stop_type,
                "stopping_word": gen.stopping_word,
                "tokens_cached": n_prompt + max(0, len(gen.pieces) - 1),
                "timings": _timings(n_prompt, len(gen.pieces), time.perf_counter() - started),
            }

        if not body.get("stream"):
            await self._json(send, 200, final(gen.content), recorded, reply.headers)
            return
        events = [
            _event(
                {
                    "index": 0,
                    "content": piece,
                    "tokens": [token_id(piece)],
                    "stop": False,
                    "id_slot": -1,
                    "tokens_predicted": i + 1,
                    "tokens_evaluated": n_prompt,
                }
            )
            for i, piece in enumerate(gen.pieces)
        ]
        events.append(_event(final("")))
        await self._stream(receive, send, reply, recorded, events, ending=1)

    async def _exceeded(self, send: Send, n_prompt: int, recorded: Recorded) -> None:
        message = (
            f"request ({n_prompt} tokens) exceeds the available context size "
            f"({self.n_ctx} tokens), try increasing it"
        )
        payload = error(
            message, "exceed_context_size_error", 400, n_prompt_tokens=n_prompt, n_ctx=self.n_ctx
        )
        await self._json(send, 400, payload, recorded)

    # --- OpenAI-compatible ------------------------------------------------------------------

    async def _oai_completion(
        self, body: dict[str, Any], receive: Receive, send: Send, recorded: Recorded
    ) -> None:
        # `suffix` is accepted and ignored: the prompt is the prompt alone.
        prompt = _text(body.get("prompt"))
        await self._oai(body, tokenize(prompt), False, receive, send, recorded)

    async def _chat(
        self, body: dict[str, Any], receive: Receive, send: Send, recorded: Recorded
    ) -> None:
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            message = "'messages' is required" if messages is None else "messages is empty"
            await self._json(send, 400, error(message, "invalid_request_error", 400), recorded)
            return
        text = "".join(
            f"<|im_start|>{m.get('role', '')}\n{_text(m.get('content'))}<|im_end|>\n"
            for m in messages
            if isinstance(m, dict)
        )
        await self._oai(body, tokenize(text + "<|im_start|>assistant\n"), True, receive, send,
                        recorded)  # fmt: skip

    async def _oai(
        self,
        body: dict[str, Any],
        prompt_tokens: list[str],
        chat: bool,
        receive: Receive,
        send: Send,
        recorded: Recorded,
    ) -> None:
        n_prompt = len(prompt_tokens)
        if n_prompt >= self.n_ctx:
            await self._exceeded(send, n_prompt, recorded)
            return
        reply = self.script.next_reply()
        if reply.status >= 400 or reply.body is not None:
            payload = reply.body if reply.body is not None else _status_error(reply.status)
            await self._json(send, reply.status, payload, recorded, reply.headers)
            return
        limit = body.get("max_tokens", body.get("n_predict", -1))
        gen = _generate(reply.text, {**body, "n_predict": limit})
        finish = "stop" if gen.stop_type in ("eos", "word") else "length"
        created = int(time.time())
        cid = _completion_id()
        usage = {
            "completion_tokens": len(gen.pieces),
            "prompt_tokens": n_prompt,
            "total_tokens": n_prompt + len(gen.pieces),
            "prompt_tokens_details": {"cached_tokens": 0},
        }
        timings = _timings(n_prompt, len(gen.pieces), 0.001)
        tail: dict[str, Any] = {
            "created": created,
            "model": self.model_id,
            "system_fingerprint": BUILD_INFO,
        }
        if not body.get("stream"):
            if chat:
                choice: dict[str, Any] = {
                    "finish_reason": finish,
                    "index": 0,
                    "message": {"role": "assistant", "content": gen.content},
                }
                obj = "chat.completion"
            else:
                choice = {"text": gen.content, "index": 0, "logprobs": None,
                          "finish_reason": finish}  # fmt: skip
                obj = "text_completion"
            whole = {"choices": [choice], **tail, "object": obj, "usage": usage, "id": cid,
                     "timings": timings}  # fmt: skip
            await self._json(send, 200, whole, recorded, reply.headers)
            return
        events: list[bytes] = []
        if chat:
            chunk_tail = {**tail, "object": "chat.completion.chunk"}

            def chunk(delta: dict[str, Any], reason: str | None) -> dict[str, Any]:
                choice = {"finish_reason": reason, "index": 0, "delta": delta}
                return {"choices": [choice], "created": created, "id": cid,
                        "model": self.model_id, "system_fingerprint": BUILD_INFO,
                        "object": "chat.completion.chunk"}  # fmt: skip

            del chunk_tail
            events.append(_event(chunk({"role": "assistant", "content": None}, None)))
            events += [_event(chunk({"content": piece}, None)) for piece in gen.pieces]
            last = chunk({}, finish)
            if (body.get("stream_options") or {}).get("include_usage"):
                events.append(_event(last))
                last = {**last, "choices": [], "usage": usage}
            events.append(_event({**last, "timings": timings}))
        else:
            for piece in gen.pieces:
                choice = {"text": piece, "index": 0, "logprobs": None, "finish_reason": None}
                events.append(_event({"choices": [choice], **tail, "object": "text_completion",
                                      "id": cid}))  # fmt: skip
            choice = {"text": "", "index": 0, "logprobs": None, "finish_reason": finish}
            events.append(_event({"choices": [choice], **tail, "object": "text_completion",
                                  "usage": usage, "id": cid, "timings": timings}))  # fmt: skip
        events.append(b"data: [DONE]\n\n")
        await self._stream(receive, send, reply, recorded, events, ending=2)

    # --- plumbing -----------------------------------------------------------------------------

    async def _stream(
        self,
        receive: Receive,
        send: Send,
        reply: Reply,
        recorded: Recorded,
        events: list[bytes],
        ending: int,
    ) -> None:
        with self._lock:
            self._task_ids += 1
            task = self._task_ids
        error_event = _event({"error": error("got exception: fake failure", "server_error", 500)})
        try:
            await stream(receive, send, reply, recorded, "text/event-stream", events,
                         error_event=error_event, ending=ending)  # fmt: skip
        finally:
            if recorded.disconnected.is_set() and not recorded.completed.is_set():
                # What the real server logs when the HTTP connection closes mid-stream.
                self.log.append(f"srv  cancel_tasks: cancel task, id_task = {task}")
                self.cancelled.append(recorded)

    async def _json(
        self,
        send: Send,
        status: int,
        value: Any,
        recorded: Recorded,
        headers: dict[str, str] | None = None,
    ) -> None:
        all_headers = {"content-type": "application/json; charset=utf-8", **(headers or {})}
        await send_json(send, status, _compact(value), recorded, all_headers)

    def _generation_settings(self, body: dict[str, Any]) -> dict[str, Any]:
        """The real server's `generation_settings` (every field, in its order) for `body`."""
        settings: dict[str, Any] = copy.deepcopy(captured("infill.txt")["generation_settings"])
        n_predict = body.get("n_predict", body.get("max_tokens", -1))
        stop = body.get("stop") or []
        settings.update(
            seed=int(body.get("seed", 4294967295)),
            temperature=float(body.get("temperature", 0.800000011920929)),
            top_k=int(body.get("top_k", 40)),
            top_p=float(body.get("top_p", 0.949999988079071)),
            stop=[stop] if isinstance(stop, str) else list(stop),
            max_tokens=int(n_predict),
            n_predict=int(n_predict),
            stream=bool(body.get("stream", False)),
        )
        return settings

    def _props(self) -> dict[str, Any]:
        props: dict[str, Any] = copy.deepcopy(captured("props.txt"))
        props["default_generation_settings"]["n_ctx"] = self.n_ctx
        props["default_generation_settings"]["params"]["seed"] = 4294967295
        props.update(model_alias=self.model_id, model_path=self.model_path, build_info=BUILD_INFO)
        return props

    def _models(self) -> dict[str, Any]:
        models: dict[str, Any] = copy.deepcopy(captured("v1_models.txt"))
        listed, entry = models["models"][0], models["data"][0]
        listed.update(name=self.model_id, model=self.model_id)
        entry.update(id=self.model_id, aliases=[self.model_id], created=int(time.time()))
        entry["meta"]["n_ctx"] = self.n_ctx
        return models


def _infill_problem(body: dict[str, Any]) -> tuple[int, dict[str, Any]] | None:
    """The checks llama-server makes before it lays out an `/infill` prompt."""
    for field in ("input_prefix", "input_suffix"):
        if field not in body:
            # The server notes the missing field, then fails reading it.
            message = f"[json.exception.out_of_range.403] key '{field}' not found"
            return 500, error(message, "server_error", 500)
    extra = body.get("input_extra")
    if "input_extra" in body and not isinstance(extra, list):
        message = '"input_extra" must be an array of {"filename": string, "text": string}'
        return 400, error(message, "invalid_request_error", 400)
    for chunk in extra or []:
        if not isinstance(chunk, dict) or not isinstance(chunk.get("text"), str):
            message = 'extra_context chunk must contain a "text" field with a string value'
            return 400, error(message, "invalid_request_error", 400)
        if "filename" in chunk and not isinstance(chunk["filename"], str):
            message = 'extra_context chunk\'s "filename" field must be a string'
            return 400, error(message, "invalid_request_error", 400)
    return None


def _generate(text: str, body: dict[str, Any]) -> Generation:
    """What the model says: `text`, cut by `n_predict` tokens or by the first `stop` string."""
    pieces = tokenize(text)
    limit = body.get("n_predict")
    limited = isinstance(limit, int) and 0 <= limit < len(pieces)
    if limited:
        pieces = pieces[: int(limit or 0)]
    content = "".join(pieces)
    stops = body.get("stop") or []
    if isinstance(stops, str):
        stops = [stops]
    hits = [(content.find(s), s) for s in stops if isinstance(s, str) and s and s in content]
    if hits:
        at, word = min(hits)
        content = content[:at]
        return Generation(content, tokenize(content), "word", word)
    return Generation(content, pieces, "limit" if limited else "eos", "")


def _timings(n_prompt: int, n_predicted: int, seconds: float) -> dict[str, Any]:
    prompt_ms = max(0.01, seconds * 1000 / 2)
    predicted_ms = max(0.01, seconds * 1000 / 2)
    return {
        "cache_n": 0,
        "prompt_n": n_prompt,
        "prompt_ms": prompt_ms,
        "prompt_per_token_ms": prompt_ms / max(1, n_prompt),
        "prompt_per_second": n_prompt * 1000 / prompt_ms,
        "predicted_n": n_predicted,
        "predicted_ms": predicted_ms,
        "predicted_per_token_ms": predicted_ms / max(1, n_predicted),
        "predicted_per_second": n_predicted * 1000 / predicted_ms,
    }


def _status_error(status: int) -> dict[str, Any]:
    kinds = {400: "invalid_request_error", 401: "authentication_error", 404: "not_found_error",
             501: "not_supported_error", 503: "unavailable_error"}  # fmt: skip
    return error(f"HTTP {status}", kinds.get(status, "server_error"), status)


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def create_app() -> FakeLlamaServer:
    return FakeLlamaServer()


__all__ = ["FakeLlamaServer", "Reply", "create_app", "tokenize"]
