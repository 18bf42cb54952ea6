"""`python -m benchmarks.run [--quick]`: reaper-lsp against a floor measured in the same run.

Everything runs on loopback against the tests' fake providers: the real `reaper-lsp` process
over stdio, driven by pygls's client, with an isolated home (no real config or credentials).
A table on stdout; with --save, the full figures to benchmarks/results/latest.json.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import os
import platform
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
from lsprotocol import types as lsp
from pygls.lsp.client import LanguageClient

from benchmarks.saving import add_save_option, finish
from tests import tomlw
from tests.e2e.conftest import merge_user_config
from tests.fakes import ollama as fake_ollama
from tests.fakes import openai as fake_openai
from tests.fakes.runner import FakeServer
from tests.fakes.script import Reply

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
REAPER = [str(BIN / "reaper-lsp"), "--no-daemon"]
"""In the benchmark's own process, as before the daemon (benchmarks/daemon.py measures that)."""
FLOOR = [sys.executable, str(ROOT / "benchmarks" / "floor_server.py")]
RESULTS = ROOT / "benchmarks" / "results" / "latest.json"


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def summary(values: list[float]) -> dict[str, float]:
    return {"p50": round(pct(values, 0.5), 3), "p99": round(pct(values, 0.99), 3), "n": len(values)}


class Session:
    def __init__(self, client: LanguageClient, proc_pid: int | None, workdir: Path) -> None:
        self.client = client
        self.pid = proc_pid
        self.workdir = workdir
        self.versions: dict[str, int] = {}

    def open(self, name: str, text: str) -> str:
        uri = (self.workdir / name).as_uri()
        self.versions[uri] = 1
        self.client.text_document_did_open(
            lsp.DidOpenTextDocumentParams(lsp.TextDocumentItem(uri, "python", 1, text))
        )
        return uri

    def type(self, uri: str, line: int, col: int, text: str) -> None:
        self.versions[uri] += 1
        at = lsp.Position(line, col)
        self.client.text_document_did_change(
            lsp.DidChangeTextDocumentParams(
                lsp.VersionedTextDocumentIdentifier(version=self.versions[uri], uri=uri),
                [lsp.TextDocumentContentChangePartial(lsp.Range(at, at), text)],
            )
        )

    async def inline(self, uri: str, line: int, col: int, invoked: bool = False) -> list[str]:
        kind = (
            lsp.InlineCompletionTriggerKind.Invoked
            if invoked
            else lsp.InlineCompletionTriggerKind.Automatic
        )
        result = await self.client.text_document_inline_completion_async(
            lsp.InlineCompletionParams(
                context=lsp.InlineCompletionContext(trigger_kind=kind),
                text_document=lsp.TextDocumentIdentifier(uri),
                position=lsp.Position(line, col),
            )
        )
        items = result.items if isinstance(result, lsp.InlineCompletionList) else result or []
        return [str(i.insert_text) for i in items]

    def rss_mb(self) -> float:
        if self.pid is None:
            return 0.0
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return 0.0

    async def close(self) -> None:
        try:
            await asyncio.wait_for(self.client.shutdown_async(None), 5)
            self.client.exit(None)
        except Exception:
            pass
        await self.client.stop()


def isolated_env(home: Path, **extra: str) -> dict[str, str]:
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(home),
        "XDG_CONFIG_HOME": str(home / "config"),
        "XDG_DATA_HOME": str(home / "data"),
        "XDG_STATE_HOME": str(home / "state"),
        "XDG_CACHE_HOME": str(home / "cache"),
        "LANG": "C.UTF-8",
    }
    env.update(extra)
    return env


async def start(
    cmd: list[str], home: Path, options: dict[str, Any] | None = None, **env: str
) -> tuple[Session, float]:
    """A session and the seconds from spawn to the initialize result. What only the user's
    config file may set (endpoints, keys, HTTP) goes there: the server ignores it in
    `initializationOptions`, so the fakes would never be asked."""
    client = LanguageClient("bench", "1")
    workdir = home / "project"
    workdir.mkdir(exist_ok=True)
    editor, user = tomlw.split(options or {})
    if user:  # endpoints and keys: the user's config file, as for a real user
        merge_user_config(isolated_env(home), user)
    began = time.perf_counter()
    await client.start_io(cmd[0], *cmd[1:], env=isolated_env(home, **env))
    await client.initialize_async(
        lsp.InitializeParams(
            capabilities=lsp.ClientCapabilities(),
            root_uri=workdir.as_uri(),
            workspace_folders=[lsp.WorkspaceFolder(workdir.as_uri(), "project")],
            initialization_options=editor,
        )
    )
    elapsed = time.perf_counter() - began
    client.initialized(lsp.InitializedParams())
    proc = getattr(client, "_server", None)
    return Session(client, getattr(proc, "pid", None), workdir), elapsed


async def timed(call: Callable[[], Awaitable[Any]], n: int) -> list[float]:
    out = []
    for _ in range(n):
        t = time.perf_counter()
        await call()
        out.append((time.perf_counter() - t) * 1000)
    return out


def openai_options(fake: FakeServer, **completion: Any) -> dict[str, Any]:
    # Prefetch off: these figures count upstream requests per scenario; what prefetch costs and
    # saves is measured by benchmarks/typing_trace.py.
    return {
        "completion": {"providers": ["openai"], "prefetch": False, **completion},
        "providers": {"openai": {"base_url": fake.base_url + "/v1"}},
    }


KEY = {"OPENAI_API_KEY": "sk-test"}


async def bench(quick: bool) -> dict[str, Any]:
    n = 60 if quick else 300
    out: dict[str, Any] = {}
    tmp = Path(tempfile.mkdtemp(prefix="reaper-bench-"))

    def home(name: str) -> Path:
        path = tmp / name
        path.mkdir()
        return path

    # 1. floor round trip, and 2. start-up of both servers
    starts_floor, starts_reaper = [], []
    for i in range(3 if quick else 8):
        s, t = await start(FLOOR, home(f"floor{i}"))
        starts_floor.append(t * 1000)
        if i == 0:
            uri = s.open("a.py", "x = \n")
            floor = functools.partial(s.inline, uri, 0, 4)
            await timed(floor, 20)
            out["floor_rtt_ms"] = summary(await timed(floor, n))
        await s.close()
        s, t = await start(REAPER, home(f"reaper{i}"), {"completion": {"providers": []}})
        starts_reaper.append(t * 1000)
        await s.close()
    out["startup_floor_ms"] = summary(starts_floor)
    out["startup_reaper_ms"] = summary(starts_reaper)

    with FakeServer(fake_openai.create_app()) as fake:
        fake.script.default = Reply(text="value + 1")
        # 3. cache hit
        s, _ = await start(REAPER, home("cache"), openai_options(fake, debounce_ms=0), **KEY)
        uri = s.open("a.py", "def f(value):\n    return \n")
        assert await s.inline(uri, 1, 11) == ["value + 1"]
        await timed(lambda: s.inline(uri, 1, 11), 20)
        out["cache_hit_rtt_ms"] = summary(await timed(lambda: s.inline(uri, 1, 11), n))
        out["rss_idle_mb"] = round(s.rss_mb(), 1)

        # 4. provider path: new text every time (invoked, no debounce) vs a direct request
        counter = iter(range(10**6))

        async def new_text() -> None:
            i = next(counter)
            s.type(uri, 1, 11, "\n    return ")  # a fresh line: cache miss by construction
            line = 2 + i
            got = await s.inline(uri, line, 11, invoked=True)
            assert got, got

        await timed(new_text, 10)
        out["provider_rtt_ms"] = summary(await timed(new_text, n // 2))
        body = fake.script.requests[-1].body
        async with httpx.AsyncClient() as direct:

            async def direct_request() -> None:
                async with direct.stream(
                    "POST",
                    fake.base_url + "/v1/chat/completions",
                    headers={"authorization": "Bearer sk-test"},
                    json=body,
                ) as response:
                    async for _ in response.aiter_raw():
                        pass

            await timed(direct_request, 10)
            out["direct_httpx_ms"] = summary(await timed(direct_request, n // 2))
        out["provider_overhead_ms"] = round(
            out["provider_rtt_ms"]["p50"] - out["direct_httpx_ms"]["p50"], 3
        )
        await s.close()

        # default debounce, automatic requests after a pause
        s, _ = await start(REAPER, home("debounce"), openai_options(fake), **KEY)
        uri = s.open("b.py", "x = 0\n")

        async def after_pause() -> None:
            line = s.versions[uri]
            s.type(uri, line, 0, f"v{line} = \n")
            await asyncio.sleep(0.3)  # a pause: the rhythm says "not typing"
            t = time.perf_counter()
            await s.inline(uri, line, len(f"v{line} = "))
            latencies.append((time.perf_counter() - t) * 1000)

        latencies: list[float] = []
        for _ in range(10 if quick else 30):
            await after_pause()
        out["new_text_default_debounce_ms"] = summary(latencies)
        await s.close()

        # 5. typing burst: 20 keystrokes 40 ms apart, an automatic request after each
        fake.script.reset()
        fake.script.default = Reply(text=" + 1", first_byte_delay=0.1)
        s, _ = await start(REAPER, home("burst"), openai_options(fake), **KEY)
        uri = s.open("c.py", "total = \n")
        pending = []
        for i, ch in enumerate("compute_total(items)"):
            s.type(uri, 0, 8 + i, ch)
            pending.append(asyncio.ensure_future(s.inline(uri, 0, 9 + i)))
            await asyncio.sleep(0.04)
        await asyncio.gather(*pending)
        await asyncio.sleep(0.3)
        started = fake.script.requests
        out["typing_burst"] = {
            "keystrokes": 20,
            "upstream_started": len(started),
            "upstream_cancelled": sum(r.disconnected.is_set() for r in started),
            "upstream_completed": sum(r.completed.is_set() for r in started),
        }

        # 6. typed-through: type the suggestion shown
        fake.script.reset()
        fake.script.default = Reply(text="name.upper()")
        uri = s.open("d.py", "def f(name):\n    return \n")
        assert await s.inline(uri, 1, 11, invoked=True) == ["name.upper()"]
        before = len(fake.script.requests)
        for i, ch in enumerate("name.uppe"):
            s.type(uri, 1, 11 + i, ch)
            assert await s.inline(uri, 1, 12 + i) == ["name.upper()"[i + 1 :]]
        out["typed_through_upstream"] = len(fake.script.requests) - before

        # 8. memory with 500 open 20 KB documents
        filler = "".join(f"value_{i} = compute(value_{i - 1}, {i})\n" for i in range(600))[:20_000]
        for i in range(500):
            s.open(f"doc{i}.py", filler)
        await s.inline(uri, 1, 20)
        await asyncio.sleep(0.5)
        out["rss_500_docs_mb"] = round(s.rss_mb(), 1)
        await s.close()

    # 7. 50 concurrent completions across 10 documents over TLS/HTTP/2
    with FakeServer(fake_openai.create_app(), tls=True) as fake:
        fake.script.default = Reply(text="0", first_byte_delay=0.02)
        options = openai_options(fake, debounce_ms=0)
        options["http"] = {"tls": {"ca_file": fake.ca_file}}
        s, _ = await start(REAPER, home("h2"), options, **KEY)
        uris = [s.open(f"m{i}.py", "\n" * 5) for i in range(10)]
        calls = [
            s.inline(uris[i % 10], i // 10, 0, invoked=True)  # a different line each time
            for i in range(50)
        ]
        await asyncio.gather(*calls)
        out["concurrency"] = {
            "completions": 50,
            "upstream_requests": len(fake.script.requests),
            "tcp_connections": fake.connections_opened,
        }
        await s.close()

    # 9. hedging: primary silent for 800 ms, secondary instant, hedge_ms = 150
    with (
        FakeServer(fake_openai.create_app()) as primary,
        FakeServer(fake_ollama.create_app()) as secondary,
    ):
        primary.script.default = Reply(text="late", first_byte_delay=0.8)
        secondary.script.default = Reply(text="quick")
        options = openai_options(primary, debounce_ms=0, hedge_ms=150)
        options["completion"]["providers"] = ["openai", "ollama"]
        options["providers"]["ollama"] = {"base_url": secondary.base_url}
        s, _ = await start(REAPER, home("hedge"), options, **KEY)
        uri = s.open("e.py", "\n" * 40)
        hedged = []
        for i in range(5 if quick else 15):
            t = time.perf_counter()
            got = await s.inline(uri, i, 0, invoked=True)
            hedged.append((time.perf_counter() - t) * 1000)
            assert got == ["quick"], got
        out["hedged_answer_ms"] = summary(hedged)
        await s.close()
    return out


Figure = Callable[[dict[str, Any]], float]


def _ratio_cache(r: dict[str, Any]) -> float:
    return float(r["cache_hit_rtt_ms"]["p50"] / r["floor_rtt_ms"]["p50"])


def _startup_delta(r: dict[str, Any]) -> float:
    return float(r["startup_reaper_ms"]["p50"] - r["startup_floor_ms"]["p50"])


TARGETS: list[tuple[str, Figure, str]] = [
    ("cache hit / floor (p50)", _ratio_cache, "≤ 1.5×"),
    ("provider overhead over direct httpx (p50 ms)", lambda r: r["provider_overhead_ms"], "≤ 1"),
    (
        "new text after a pause, default debounce 25 ms (p50 ms)",
        lambda r: r["new_text_default_debounce_ms"]["p50"],
        "≤ 30",
    ),
    ("start-up minus floor (p50 ms)", _startup_delta, "≤ 50"),
    (
        "typing burst: upstream starts / 20 keys (a cost, not the goal)",
        lambda r: r["typing_burst"]["upstream_started"],
        "—",
    ),
    ("typed-through: upstream requests", lambda r: r["typed_through_upstream"], "0"),
    ("50 concurrent: TCP connections", lambda r: r["concurrency"]["tcp_connections"], "1"),
    ("RSS idle (MB)", lambda r: r["rss_idle_mb"], "≤ 60"),
    ("RSS with 500 × 20 KB docs (MB)", lambda r: r["rss_500_docs_mb"], "≤ 120"),
    ("hedged answer, hedge_ms=150 (p50 ms)", lambda r: r["hedged_answer_ms"]["p50"], "≤ 200"),
]


def table(results: dict[str, Any]) -> str:
    lines = [
        f"floor round trip: p50 {results['floor_rtt_ms']['p50']:.2f} ms, "
        f"p99 {results['floor_rtt_ms']['p99']:.2f} ms",
        f"start-up: floor p50 {results['startup_floor_ms']['p50']:.0f} ms, "
        f"reaper-lsp p50 {results['startup_reaper_ms']['p50']:.0f} ms",
        f"provider round trip p50 {results['provider_rtt_ms']['p50']:.2f} ms vs direct httpx "
        f"{results['direct_httpx_ms']['p50']:.2f} ms",
        "",
        "| figure | measured | target |",
        "|---|---|---|",
    ]
    for name, value, target in TARGETS:
        v = value(results)
        lines.append(
            f"| {name} | {v:.2f} | {target} |"
            if isinstance(v, float)
            else f"| {name} | {v} | {target} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run")
    parser.add_argument("--quick", action="store_true", help="fewer iterations")
    add_save_option(parser, RESULTS.name)
    args = parser.parse_args()
    results = asyncio.run(bench(args.quick))
    results["machine"] = {"python": platform.python_version(), "cpus": os.cpu_count()}
    finish(results, RESULTS.name, args.save, table(results))


if __name__ == "__main__":
    main()
