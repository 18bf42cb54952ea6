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
import threading
import time
from typing import Any

from tests.fakes import llamacpp_wire as wire
from tests.fakes.asgi import Receive, Scope, Send, bearer, read_request, send_json, stream
from tests.fakes.llamacpp_wire import CAPTURES, Infill, error, tokenize
from tests.fakes.script import Recorded, Reply, Script


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
        """Lines as llama-server logs them (`--verbose`): each `/infill` layout
        (`n_prefix_take`, `n_suffix_take`) and `cancel task` when a client leaves a stream."""
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
        problem = wire.infill_problem(body)
        if problem is not None:
            status, payload = problem
            await self._json(send, status, payload, recorded)
            return
        layout = wire.layout(body, self.n_ctx, self.n_batch)
        self.infills.append(layout)
        self.log.append(
            f"srv  format_promp: n_prefix_take = {layout.n_prefix_take}, "
            f"n_suffix_take = {layout.n_suffix_take}, "
            f"total = {layout.n_prefix_take + layout.n_suffix_take}"
        )
        await self._complete(body, layout.n_prompt_tokens, layout.prompt, receive, send, recorded)

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
            payload = reply.body if reply.body is not None else wire.status_error(reply.status)
            await self._json(send, reply.status, payload, recorded, reply.headers)
            return
        gen = wire.generate(reply.text, body)
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
                "timings": wire.timings(n_prompt, len(gen.pieces), time.perf_counter() - started),
            }

        if not body.get("stream"):
            await self._json(send, 200, final(gen.content), recorded, reply.headers)
            return
        events = [
            wire.event(
                {
                    "index": 0,
                    "content": piece,
                    "tokens": [wire.token_id(piece)],
                    "stop": False,
                    "id_slot": -1,
                    "tokens_predicted": i + 1,
                    "tokens_evaluated": n_prompt,
                }
            )
            for i, piece in enumerate(gen.pieces)
        ]
        events.append(wire.event(final("")))
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
        prompt = wire.text_of(body.get("prompt"))
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
            f"<|im_start|>{m.get('role', '')}\n{wire.text_of(m.get('content'))}<|im_end|>\n"
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
        if body.get("n", 1) != 1:  # tools/server: oaicompat params parsing
            message = "Only one completion choice is allowed"
            await self._json(send, 400, error(message, "invalid_request_error", 400), recorded)
            return
        if n_prompt >= self.n_ctx:
            await self._exceeded(send, n_prompt, recorded)
            return
        reply = self.script.next_reply()
        if reply.status >= 400 or reply.body is not None:
            payload = reply.body if reply.body is not None else wire.status_error(reply.status)
            await self._json(send, reply.status, payload, recorded, reply.headers)
            return
        limit = body.get("max_tokens", body.get("n_predict", -1))
        gen = wire.generate(reply.text, {**body, "n_predict": limit})
        if not body.get("stream"):
            answer = wire.oai_answer(gen, n_prompt, chat, self.model_id)
            await self._json(send, 200, answer, recorded, reply.headers)
            return
        usage = bool((body.get("stream_options") or {}).get("include_usage"))
        events = wire.oai_events(gen, n_prompt, chat, self.model_id, usage)
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
            task = self._task_ids
            self._task_ids += 1
        error_event = wire.event(
            {"error": error("got exception: fake failure", "server_error", 500)}
        )
        try:
            await stream(receive, send, reply, recorded, "text/event-stream", events,
                         error_event=error_event, ending=ending)  # fmt: skip
        finally:
            if recorded.disconnected.is_set() and not recorded.completed.is_set():
                # What the real server logs when the HTTP connection closes mid-stream.
                self.log.append(f"srv          stop: cancel task, id_task = {task}")
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
        await send_json(send, status, wire.compact(value), recorded, all_headers)

    def _generation_settings(self, body: dict[str, Any]) -> dict[str, Any]:
        """The real server's `generation_settings` (every field, in its order) for `body`."""
        settings: dict[str, Any] = copy.deepcopy(wire.captured("infill.txt")["generation_settings"])
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
        props: dict[str, Any] = copy.deepcopy(wire.captured("props.txt"))
        props["default_generation_settings"]["n_ctx"] = self.n_ctx
        props["default_generation_settings"]["params"]["seed"] = 4294967295
        props.update(
            model_alias=self.model_id, model_path=self.model_path, build_info=wire.BUILD_INFO
        )
        return props

    def _models(self) -> dict[str, Any]:
        models: dict[str, Any] = copy.deepcopy(wire.captured("v1_models.txt"))
        listed, entry = models["models"][0], models["data"][0]
        listed.update(name=self.model_id, model=self.model_id)
        entry.update(id=self.model_id, aliases=[self.model_id], created=int(time.time()))
        entry["meta"]["n_ctx"] = self.n_ctx
        return models


def create_app() -> FakeLlamaServer:
    return FakeLlamaServer()


__all__ = ["CAPTURES", "FakeLlamaServer", "Infill", "Reply", "create_app", "tokenize"]
