"""What llama-server writes, for the fake in tests/fakes/llamacpp.py: its `/infill` checks and
prompt layout, generation cut by `n_predict` and `stop`, `timings`, error bodies, and the
OpenAI-style chunks, in the real server's field order (see the captures beside it).
Tokens are counted crudely: words, punctuation and whitespace runs, at most 4 characters each.
"""

from __future__ import annotations

import functools
import json
import random
import re
import string
import time
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

FIM_PRE, FIM_SUF, FIM_MID = "<|fim_prefix|>", "<|fim_suffix|>", "<|fim_middle|>"
FIM_REP, FIM_SEP = "<|repo_name|>", "<|file_sep|>"
BUILD_INFO = "b0-unknown"
CAPTURES = Path(__file__).parent / "captures" / "llamacpp"


@functools.cache
def captured(name: str) -> Any:
    """The JSON body of one capture of the real server (status and type lines stripped)."""
    raw = (CAPTURES / name).read_bytes().partition(b"\n\n")[2]
    return json.loads(raw)


def completion_id() -> str:
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


def compact(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()


def event(value: Any) -> bytes:
    return b"data: " + compact(value) + b"\n\n"


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


def layout(body: dict[str, Any], n_ctx: int, n_batch: int) -> Infill:
    """Lay out an `/infill` prompt as llama-server does (format_prompt_infill): the last 3/4 of
    a batch of prefix tokens, the first 1/4 of suffix tokens, and as much repo-level
    `input_extra` as the context leaves after a batch."""
    prefix = tokenize(text_of(body.get("input_prefix")))
    suffix = tokenize(text_of(body.get("input_suffix")))
    prompt = tokenize(body["prompt"]) if isinstance(body.get("prompt"), str) else []
    extra: list[str] = [FIM_REP, *tokenize("myproject\n")]
    for chunk in body.get("input_extra") or []:
        name = chunk.get("filename") if isinstance(chunk.get("filename"), str) else "tmp"
        extra += [FIM_SEP, *tokenize(name + "\n"), *tokenize(chunk["text"])]
    extra += [FIM_SEP, *tokenize("filename\n")]
    n_prefix_take = min(len(prefix), 3 * (n_batch // 4))
    n_suffix_take = min(len(suffix), max(0, n_batch // 4 - (2 + len(prompt))))
    # The server's own n_predict (-1 unless started with -n) reserves room here.
    n_extra_take = min(max(0, n_ctx - n_batch + 2), len(extra))
    kept_extra = extra[len(extra) - n_extra_take :]
    kept_prefix = prefix[len(prefix) - n_prefix_take :]
    kept_suffix = suffix[:n_suffix_take]
    text = "".join([*kept_extra, FIM_PRE, *kept_prefix, *prompt, FIM_SUF, *kept_suffix, FIM_MID])
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


def infill_problem(body: dict[str, Any]) -> tuple[int, dict[str, Any]] | None:
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


def generate(text: str, body: dict[str, Any]) -> Generation:
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


def timings(n_prompt: int, n_predicted: int, seconds: float) -> dict[str, Any]:
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


def status_error(status: int) -> dict[str, Any]:
    kinds = {400: "invalid_request_error", 401: "authentication_error", 404: "not_found_error",
             501: "not_supported_error", 503: "unavailable_error"}  # fmt: skip
    return error(f"HTTP {status}", kinds.get(status, "server_error"), status)


def text_of(value: Any) -> str:
    return value if isinstance(value, str) else ""


def oai_answer(gen: Generation, n_prompt: int, chat: bool, model: str) -> dict[str, Any]:
    """A whole (`stream: false`) `/v1/completions` or `/v1/chat/completions` answer."""
    finish = "stop" if gen.stop_type in ("eos", "word") else "length"
    choice: dict[str, Any]
    if chat:
        message = {"role": "assistant", "content": gen.content}
        choice = {"finish_reason": finish, "index": 0, "message": message}
    else:
        choice = {"text": gen.content, "index": 0, "logprobs": None, "finish_reason": finish}
    return {
        "choices": [choice],
        "created": int(time.time()),
        "model": model,
        "system_fingerprint": BUILD_INFO,
        "object": "chat.completion" if chat else "text_completion",
        "usage": _usage(gen, n_prompt),
        "id": completion_id(),
        "timings": timings(n_prompt, len(gen.pieces), 0.001),
    }


def oai_events(
    gen: Generation, n_prompt: int, chat: bool, model: str, include_usage: bool
) -> list[bytes]:
    """The SSE events of a streamed `/v1/completions` or `/v1/chat/completions`, `[DONE]` last."""
    finish = "stop" if gen.stop_type in ("eos", "word") else "length"
    created, cid = int(time.time()), completion_id()
    figures = timings(n_prompt, len(gen.pieces), 0.001)
    if not chat:
        head = {"created": created, "model": model, "system_fingerprint": BUILD_INFO,
                "object": "text_completion"}  # fmt: skip
        out = [
            event({"choices": [_text_choice(piece, None)], **head, "id": cid})
            for piece in gen.pieces
        ]
        last = {"choices": [_text_choice("", finish)], **head, "usage": _usage(gen, n_prompt),
                "id": cid, "timings": figures}  # fmt: skip
        return [*out, event(last), b"data: [DONE]\n\n"]

    def chunk(delta: dict[str, Any], reason: str | None) -> dict[str, Any]:
        choice = {"finish_reason": reason, "index": 0, "delta": delta}
        return {"choices": [choice], "created": created, "id": cid, "model": model,
                "system_fingerprint": BUILD_INFO, "object": "chat.completion.chunk"}  # fmt: skip

    out = [event(chunk({"role": "assistant", "content": None}, None))]
    out += [event(chunk({"content": piece}, None)) for piece in gen.pieces]
    final = chunk({}, finish)
    if include_usage:
        out.append(event(final))
        final = {**final, "choices": [], "usage": _usage(gen, n_prompt)}
    return [*out, event({**final, "timings": figures}), b"data: [DONE]\n\n"]


def _text_choice(text: str, reason: str | None) -> dict[str, Any]:
    return {"text": text, "index": 0, "logprobs": None, "finish_reason": reason}


def _usage(gen: Generation, n_prompt: int) -> dict[str, Any]:
    return {
        "completion_tokens": len(gen.pieces),
        "prompt_tokens": n_prompt,
        "total_tokens": n_prompt + len(gen.pieces),
        "prompt_tokens_details": {"cached_tokens": 0},
    }
