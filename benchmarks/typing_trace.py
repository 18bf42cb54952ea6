"""`python -m benchmarks.typing_trace [--quick] [--idle SECONDS] [--save]`: what the user waits for.

A pygls client types lines of code like a person — seeded Gaussian gaps (at least 30 ms) at 40,
80 and 120 wpm, one didChange plus one automatic `textDocument/inlineCompletion` per keystroke,
no client-side cancellation (as Neovim 0.12 and VS Code send them) — and pauses in the middle of
each line. The figure is the time from that last keystroke to the answer of its request.

The fake backend speaks OpenAI's streaming chat API on 127.0.0.1 in three modes: instant and
unrelated text; instant and a "perfect model" that answers the rest of the line being typed (it
knows the file); the perfect model behind a 200 ms first byte. Also: accept a suggestion, then
the time to the next one; and the first request after an idle spell (no new TLS handshake).
The floor is the same client's round trip to a server that answers at once (measured here).
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.run import FLOOR, KEY, REAPER, Session, start, summary, timed
from benchmarks.saving import add_save_option, finish
from tests.fakes import openai as fake_openai
from tests.fakes.runner import FakeServer
from tests.fakes.script import Reply, Script

TARGET = """\
def area(width, height):
    return width * height


def describe(shape, width, height):
    size = area(width, height)
    label = f"{shape} of {width} by {height}"
    return {"label": label, "size": size}


class Inventory:
    def __init__(self, items):
        self.items = list(items)
        self.total = sum(item.price for item in self.items)
"""
UNRELATED = "zq_unrelated(1)"
SPEEDS = (40, 80, 120)


class PerfectModel(Script):
    """Answers the rest of the line being typed (or, at its end, the next line) from TARGET;
    in `unrelated` mode, the same text whatever was asked."""

    def __init__(self, *, delay: float, unrelated: bool) -> None:
        super().__init__()
        self.delay = delay
        self.unrelated = unrelated

    def next_reply(self) -> Reply:
        if self.unrelated:
            return Reply(text=UNRELATED, first_byte_delay=self.delay)
        body = self.requests[-1].body or {}
        prompt = str(body.get("messages", [{}])[-1].get("content", ""))
        # The file's own block comes last, after any snippets of other files.
        code = prompt.rsplit("<code>\n", 1)[-1].rsplit("\n</code>", 1)[0]
        prefix = code.split("<cursor>", 1)[0]
        text = ""
        if TARGET.startswith(prefix):
            rest = TARGET[len(prefix) :]
            end = rest.find("\n")
            text = rest[:end] if end > 0 else rest[: rest.find("\n", 1)]
        return Reply(text=text, first_byte_delay=self.delay, chunk_size=8)


def gaps(rng: random.Random, wpm: int, n: int) -> list[float]:
    mean = 60.0 / (wpm * 5)
    return [max(0.03, rng.gauss(mean, mean * 0.3)) for _ in range(n)]


async def type_file(
    s: Session, fake: FakeServer, wpm: int, seed: int, lines: int
) -> dict[str, Any]:
    """Type the first `lines` lines of TARGET, pausing mid-line; latency per pause."""
    rng = random.Random(seed)
    uri = s.open(f"typed_{wpm}_{seed}.py", "\n")
    waits: list[float] = []
    right = 0
    keystrokes = 0
    before = len(fake.script.requests)
    pending: list[asyncio.Future[list[str]]] = []
    for row, line in enumerate(TARGET.splitlines()[:lines]):
        if not line.strip():
            s.type(uri, row, 0, "\n")
            continue
        pause_at = len(line) // 2 + rng.randint(-3, 3)
        for col, (ch, gap) in enumerate(zip(line, gaps(rng, wpm, len(line)), strict=True)):
            s.type(uri, row, col, ch)
            keystrokes += 1
            sent = time.perf_counter()
            request = asyncio.ensure_future(s.inline(uri, row, col + 1))
            pending.append(request)
            if col + 1 == pause_at:
                got = await request
                waits.append((time.perf_counter() - sent) * 1000)
                right += got == [line[col + 1 :]]
                await asyncio.sleep(0.6)  # the user reads the suggestion, then types on
            else:
                await asyncio.sleep(gap)
        s.type(uri, row, len(line), "\n")
    await asyncio.gather(*pending, return_exceptions=True)
    calls = len(fake.script.requests) - before
    return {
        "pauses": len(waits),
        "wait_ms": summary(waits) | {"p90": round(sorted(waits)[int(0.9 * len(waits))], 3)},
        "rest_of_line_right": right,
        "upstream_per_keystroke": round(calls / max(1, keystrokes), 3),
    }


async def accept_then_next(s: Session, fake: FakeServer, rounds: int) -> list[float]:
    """Pause mid-line, accept the suggestion (one edit inserting it), and time the request at
    the end of the accepted text — the next suggestion."""
    out = []
    line = "def describe(shape, width, height):"
    before = TARGET[: TARGET.index(line)]
    row = before.count("\n")
    for i in range(rounds):
        uri = s.open(f"accept_{i}.py", before + "\n")
        head = line[:8]
        for col, ch in enumerate(head):
            s.type(uri, row, col, ch)
        got = await s.inline(uri, row, len(head))
        assert got == [line[len(head) :]], got
        await asyncio.sleep(0.4)  # the user reads it, then presses Tab
        s.type(uri, row, len(head), got[0])
        t = time.perf_counter()
        nxt = await s.inline(uri, row, len(line))
        out.append((time.perf_counter() - t) * 1000)
        assert nxt and nxt[0].strip().startswith("size = area"), nxt
    return out


def options(fake: FakeServer, tls: bool = False) -> dict[str, Any]:
    opts: dict[str, Any] = {
        "completion": {"providers": ["openai"]},
        "providers": {"openai": {"base_url": fake.base_url + "/v1"}},
    }
    if tls:
        opts["http"] = {"tls": {"ca_file": fake.ca_file}}
    return opts


async def bench(quick: bool, idle: float) -> dict[str, Any]:
    tmp = Path(tempfile.mkdtemp(prefix="reaper-typing-"))
    counter = iter(range(1000))

    def home() -> Path:
        path = tmp / f"h{next(counter)}"
        path.mkdir()
        return path

    out: dict[str, Any] = {}
    s, _ = await start(FLOOR, home())
    uri = s.open("a.py", "x = \n")
    await timed(lambda: s.inline(uri, 0, 4), 20)
    out["floor_rtt_ms"] = summary(await timed(lambda: s.inline(uri, 0, 4), 100))
    await s.close()

    lines = 4 if quick else len(TARGET.splitlines())
    modes = {"instant_unrelated": (0.0, True), "instant_perfect": (0.0, False),
             "slow_perfect": (0.2, False), "slow_unrelated": (0.2, True)}  # fmt: skip
    for mode, (delay, unrelated) in modes.items():
        speeds = (80,) if mode == "slow_unrelated" else SPEEDS
        for wpm in speeds:
            app = fake_openai.create_app()
            app.script = PerfectModel(delay=delay, unrelated=unrelated)
            with FakeServer(app) as fake:
                s, _ = await start(REAPER, home(), options(fake), **KEY)
                await asyncio.sleep(0.3)  # the prewarm after `initialized`
                out[f"{mode}_{wpm}wpm"] = await type_file(s, fake, wpm, seed=wpm, lines=lines)
                print(f"{mode} {wpm} wpm: {out[f'{mode}_{wpm}wpm']}", file=sys.stderr, flush=True)
                await s.close()

    app = fake_openai.create_app()
    app.script = PerfectModel(delay=0.2, unrelated=False)
    with FakeServer(app) as fake:
        s, _ = await start(REAPER, home(), options(fake), **KEY)
        await asyncio.sleep(0.3)
        out["accept_then_next_ms"] = summary(await accept_then_next(s, fake, 3 if quick else 8))
        await s.close()
    if idle > 0:  # over TLS: a new connection is a handshake, which is what must not happen
        app = fake_openai.create_app()
        app.script = PerfectModel(delay=0.0, unrelated=False)
        with FakeServer(app, tls=True) as fake:
            s, _ = await start(REAPER, home(), options(fake, tls=True), **KEY)
            uri = s.open("idle.py", "\n")
            await asyncio.sleep(1.0)
            opened = fake.connections_opened
            await asyncio.sleep(idle)
            for col, ch in enumerate("def ar"):
                s.type(uri, 0, col, ch)
            before = fake.connections_opened
            t = time.perf_counter()
            await s.inline(uri, 0, 6, invoked=True)
            first = (time.perf_counter() - t) * 1000
            handshake = fake.connections_opened != before
            s.type(uri, 0, 6, "e")
            t = time.perf_counter()
            await s.inline(uri, 0, 7, invoked=True)  # a second request, warm, for comparison
            out["after_idle"] = {
                "idle_s": idle,
                "first_request_ms": round(first, 1),
                "warm_request_ms": round((time.perf_counter() - t) * 1000, 1),
                "handshake_on_the_request": handshake,
                "connections_opened_while_idle": before - opened,
            }
            await s.close()
    return out


TARGETS = {"instant_unrelated": "≤ 40", "instant_perfect": "≤ 10", "slow_perfect": "≤ 10",
           "slow_unrelated": "≤ 250"}  # fmt: skip


def table(r: dict[str, Any]) -> str:
    lines = [
        f"floor round trip p50 {r['floor_rtt_ms']['p50']:.2f} ms",
        "",
        "| backend | wpm | last keystroke → answer p50 / p90 (ms) | target p50 | "
        "rest of line right | upstream / keystroke |",
        "|---|---|---|---|---|---|",
    ]
    for key, value in r.items():
        if not isinstance(value, dict) or "wait_ms" not in value:
            continue
        mode, wpm = key.rsplit("_", 1)
        w = value["wait_ms"]
        right = f"{value['rest_of_line_right']}/{value['pauses']}" if "perfect" in mode else "—"
        lines.append(
            f"| {mode.replace('_', ' ')} | {wpm[:-3]} | {w['p50']:.1f} / {w['p90']:.1f} | "
            f"{TARGETS[mode]} | {right} | {value['upstream_per_keystroke']:.2f} |"
        )
    a = r["accept_then_next_ms"]
    lines.append(f"\naccept, then the next suggestion: p50 {a['p50']:.1f} ms (target ≤ 10)")
    if "after_idle" in r:
        i = r["after_idle"]
        lines.append(
            f"first request after {i['idle_s']:.0f} s idle (TLS): {i['first_request_ms']:.1f} ms "
            f"(a warm one: {i['warm_request_ms']:.1f} ms); new TLS handshake on that request: "
            f"{'yes' if i['handshake_on_the_request'] else 'no'} (target no); connections "
            f"opened ahead of need while idle: {i['connections_opened_while_idle']}"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.typing_trace")
    parser.add_argument("--quick", action="store_true", help="fewer lines")
    parser.add_argument("--idle", type=float, default=180.0, help="idle seconds (0: skip)")
    add_save_option(parser, "typing.json")
    args = parser.parse_args()
    results = asyncio.run(bench(args.quick, args.idle))
    finish(results, "typing.json", args.save, table(results))


if __name__ == "__main__":
    main()
