"""Start a real llama-server (`$LLAMA_SERVER`) with the tiny FIM model on a free 127.0.0.1 port
for tests marked `llamacpp`, and record what it answers (`python -m tests.e2e.llamacpp_server
capture DIR` refreshes tests/fakes/captures/llamacpp).

The tests skip when LLAMA_SERVER is unset. The model is `$LLAMA_MODEL`, or
~/.cache/reaper-lsp/llama.cpp/tiny-qwen2-fim.gguf as scripts/make_tiny_model.py writes it
(docs/llamacpp.md says how to build both).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

CACHE = Path.home() / ".cache" / "reaper-lsp" / "llama.cpp"
DEFAULT_MODEL = CACHE / "tiny-qwen2-fim.gguf"
CTX_SIZE = 1024
"""Small on purpose: a prompt a test can afford to write overflows it (with the default
--batch-size of 2048, `/infill` keeps up to 1536 prefix tokens, more than fit)."""

requires_llama_server = pytest.mark.skipif(
    not os.environ.get("LLAMA_SERVER"),
    reason="LLAMA_SERVER (a llama-server binary) is not set; see docs/llamacpp.md",
)


def binary_path() -> Path | None:
    value = os.environ.get("LLAMA_SERVER")
    return Path(value) if value else None


def model_path() -> Path:
    return Path(os.environ.get("LLAMA_MODEL") or DEFAULT_MODEL)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class LlamaServer:
    process: subprocess.Popen[bytes]
    port: int
    log_path: Path
    api_key: str | None = None
    args: list[str] = field(default_factory=list)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log(self) -> str:
        """Everything the server printed so far (it logs to stderr)."""
        return self.log_path.read_text(errors="replace")

    def wait_for_log(self, text: str, timeout: float = 5.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in self.log():
                return True
            time.sleep(0.005)
        return False

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)


def start_llama_server(
    binary: Path,
    model: Path,
    *,
    ctx_size: int = CTX_SIZE,
    api_key: str | None = None,
    verbose: bool = True,
    extra_args: Sequence[str] = (),
    log_dir: Path | None = None,
    timeout: float = 60.0,
) -> LlamaServer:
    """Start llama-server and wait until `/health` answers 200 (503 while the model loads).

    `verbose` logs the debug lines (the /infill layout: `n_prefix_take`, `n_suffix_take`) and
    adds a `__verbose` field to the OpenAI-style chunks; `cancel task` is logged either way.
    """
    if not model.is_file():
        raise FileNotFoundError(
            f"{model} does not exist: run scripts/make_tiny_model.py (docs/llamacpp.md)"
        )
    port = free_port()
    folder = log_dir or Path(tempfile.mkdtemp(prefix="reaper-llama-"))
    log_path = folder / f"llama-server-{port}.log"
    args = [
        str(binary),
        "--model", str(model),
        "--host", "127.0.0.1",
        "--port", str(port),
        "--ctx-size", str(ctx_size),
        "--parallel", "1",
        "--threads", "1",
        "--seed", "1",
        "--no-webui",
        *(["--verbose"] if verbose else []),
        *(["--api-key", api_key] if api_key else []),
        *extra_args,
    ]  # fmt: skip
    with log_path.open("wb") as log:
        process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
    server = LlamaServer(process, port, log_path, api_key, args)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"llama-server exited with {process.returncode}:\n{server.log()}")
        try:
            if httpx.get(server.base_url + "/health", timeout=1).status_code == 200:
                return server
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    server.stop()
    raise TimeoutError(f"llama-server was not healthy within {timeout} s:\n{server.log()}")


def serve_tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LlamaServer]:
    """Body of a fixture: the real server with the tiny model, or a skip saying what is missing."""
    binary = binary_path()
    if binary is None:
        pytest.skip("LLAMA_SERVER is not set; see docs/llamacpp.md")
    if not model_path().is_file():
        pytest.skip(f"{model_path()} is missing; run scripts/make_tiny_model.py")
    server = start_llama_server(binary, model_path(), log_dir=tmp_path_factory.mktemp("llama"))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def llama_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LlamaServer]:
    """A real llama-server with the tiny model, shared by a module's tests."""
    yield from serve_tiny_model(tmp_path_factory)


# --- captures -------------------------------------------------------------------------------

PREFIX = "def add(a, b):\n    return "
SUFFIX = "\n\nprint(add(1, 2))\n"


def _save(out: Path, name: str, response: httpx.Response) -> None:
    """Status and content type, a blank line, the body bytes; the model's folder (a local
    path) is written as /models/."""
    head = f"HTTP {response.status_code}\ncontent-type: {response.headers.get('content-type')}"
    body = response.content.replace(str(model_path().parent).encode() + b"/", b"/models/")
    (out / name).write_bytes(head.encode() + b"\n\n" + body)


def capture(base_url: str, out: Path) -> list[str]:
    """Ask the server each request the fakes imitate and save the answers as they came."""
    out.mkdir(parents=True, exist_ok=True)
    written: list[str] = []

    def save(name: str, response: httpx.Response) -> None:
        _save(out, name, response)
        written.append(name)

    infill = {
        "input_prefix": PREFIX,
        "input_suffix": SUFFIX,
        "input_extra": [{"filename": "util.py", "text": "def sub(a, b):\n    return a - b\n"}],
        "n_predict": 6,
        "temperature": 0,
        "cache_prompt": True,
    }
    long_prefix = "x = 1\n" * 2000
    # A fresh connection per request: llama-server closes a connection after a streamed
    # response without saying so, and a pooled one reused at once is often already dead.
    fresh = httpx.Limits(max_keepalive_connections=0)
    with httpx.Client(base_url=base_url, timeout=60, limits=fresh) as client:
        save("health.txt", client.get("/health"))
        save("props.txt", client.get("/props"))
        save("v1_models.txt", client.get("/v1/models"))
        save("infill_stream.txt", client.post("/infill", json={**infill, "stream": True}))
        save("infill.txt", client.post("/infill", json={**infill, "stream": False}))
        save(
            "infill_stop.txt",
            client.post("/infill", json={**infill, "n_predict": 40, "stop": [" "]}),
        )
        save(
            "infill_exceeds_context.txt",
            client.post("/infill", json={**infill, "input_prefix": long_prefix, "stream": True}),
        )
        save(
            "completion_exceeds_context.txt",
            client.post("/v1/completions", json={"prompt": long_prefix, "max_tokens": 4}),
        )
        save("infill_no_prefix.txt", client.post("/infill", json={"input_suffix": SUFFIX}))
        save(
            "infill_bad_extra.txt",
            client.post("/infill", json={**infill, "input_extra": [{"filename": "a.py"}]}),
        )
        save(
            "infill_extra_not_list.txt",
            client.post("/infill", json={**infill, "input_extra": "util.py"}),
        )
        for name, suffix in (("v1_completions_suffix.txt", SUFFIX), ("v1_completions.txt", None)):
            body: dict[str, Any] = {"prompt": PREFIX, "max_tokens": 4, "stream": True}
            body["temperature"] = 0
            if suffix is not None:
                body["suffix"] = suffix
            save(name, client.post("/v1/completions", json=body))
        chat = {
            "messages": [{"role": "user", "content": "Say hi"}],
            "max_tokens": 4,
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        save("v1_chat_stream.txt", client.post("/v1/chat/completions", json=chat))
    return written


def capture_startup(binary: Path, model: Path, out: Path) -> list[str]:
    """The 503 every endpoint answers while the model loads, and the 401 of a wrong key."""
    port = free_port()
    args = [str(binary), "--model", str(model), "--host", "127.0.0.1", "--port", str(port),
            "--ctx-size", str(CTX_SIZE), "--parallel", "1", "--api-key", "sk-local"]  # fmt: skip
    process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    written: list[str] = []

    def save(name: str, response: httpx.Response) -> None:
        _save(out, name, response)
        written.append(name)

    try:
        deadline = time.monotonic() + 60
        loading_saved = False
        while time.monotonic() < deadline:
            try:
                response = httpx.get(base + "/health", timeout=1)
            except httpx.TransportError:
                time.sleep(0.002)
                continue
            if response.status_code == 503 and not loading_saved:
                save("loading.txt", response)
                loading_saved = True
            if response.status_code == 200:
                break
        save(
            "unauthorized.txt",
            httpx.get(base + "/v1/models", headers={"authorization": "Bearer x"}),
        )
    finally:
        process.terminate()
        process.wait(10)
    return written


def main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[0] != "capture":
        print("usage: python -m tests.e2e.llamacpp_server capture DIR", file=sys.stderr)
        return 2
    binary = binary_path()
    if binary is None:
        print("set LLAMA_SERVER to a llama-server binary", file=sys.stderr)
        return 2
    server = start_llama_server(binary, model_path(), verbose=False)
    try:
        names = capture(server.base_url, Path(argv[1]))
        names += capture_startup(binary, model_path(), Path(argv[1]))
        print(json.dumps({"written": names, "args": server.args[1:]}, indent=1))
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
