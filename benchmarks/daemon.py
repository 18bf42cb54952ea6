"""`python -m benchmarks.daemon [--quick] [--save]`: what the per-user daemon costs and saves an
editor, against today's in-process server (`reaper-lsp --no-daemon`) measured in the same run.

(a) the first editor's spawn → `initialize` answer when the forwarder must start the daemon;
(b) a second editor's, the daemon warm; (c) through a 50 ms round trip (benchmarks/link.py,
root only), a second editor's first completion — it should ride the daemon's warm connection —
and a context another editor already asked for (the shared cache); (d) the memory of five
editors: five forwarders and one daemon against five servers (VmRSS); (e) through the link, a
fresh daemon's first completion to an origin it learnt HTTP/3 and a session ticket for in an
earlier life (0-RTT).

Every run has its own HOME, XDG folders and a short XDG_RUNTIME_DIR (the socket's place), and
stops the daemons it started. A table on stdout; with `--save`, benchmarks/results/daemon.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from lsprotocol import types as lsp

from benchmarks.link import ANSWER, ROOT, RTT_MS, DelayLink, Unavailable
from benchmarks.run import Session, isolated_env, start
from tests.fakes import openai as fake_openai
from tests.fakes.runner import FakeServer
from tests.fakes.script import Reply
from tests.tomlw import write_user_config

REAPER = str(Path(sys.executable).parent / "reaper-lsp")
DAEMON, IN_PROCESS = [REAPER], [REAPER, "--no-daemon"]
RESULTS = ROOT / "benchmarks" / "results" / "daemon.json"
OPTIONS = {"completion": {"providers": ["openai"], "debounce_ms": 0, "prefetch": False}}
"""What the editor sends: remote completions at once, nothing fetched ahead of a request."""
EDITORS = 5


class Env:
    """One isolated user: a home and a runtime folder short enough for a socket path."""

    def __init__(self, tmp: Path, name: str) -> None:
        self.home = tmp / name
        (self.home / "project").mkdir(parents=True)
        self.runtime = Path(tempfile.mkdtemp(prefix="rl", dir="/tmp"))
        self.runtime.chmod(0o700)

    @property
    def vars(self) -> dict[str, str]:
        return {"XDG_RUNTIME_DIR": str(self.runtime)}

    def configure(self, base_url: str, *, key: bool = True, **http: Any) -> None:
        openai: dict[str, Any] = {"base_url": base_url}
        openai.update({"api_key": "sk-test"} if key else {"api_key_env": "REAPER_BENCH_UNSET"})
        write_user_config(self.home, {"providers": {"openai": openai}, "http": http})

    async def editor(self, cmd: list[str]) -> tuple[Session, float]:
        """An editor's server started with `cmd`, and its spawn → initialize time in ms."""
        session, took = await start(cmd, self.home, OPTIONS, **self.vars)
        return session, took * 1000

    def daemon(self, action: str) -> dict[str, Any]:
        """`reaper-lsp daemon ACTION --json` in this environment."""
        done = subprocess.run(
            [REAPER, "daemon", action, "--json"],
            env=isolated_env(self.home, **self.vars),
            capture_output=True,
            text=True,
            timeout=30,
        )
        try:
            return dict(json.loads(done.stdout))
        except ValueError:
            return {}

    def stop(self) -> None:
        """Stop this environment's daemon and wait until it is gone."""
        pid = self.daemon("stop").get("pid")
        for _ in range(200):
            if not isinstance(pid, int) or not Path(f"/proc/{pid}").exists():
                break
            time.sleep(0.025)

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.runtime, ignore_errors=True)


def rss_mib(pid: int | None) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


async def complete(s: Session, name: str) -> float:
    """A completion in document `name` (asked again, the same context); round trip in ms."""
    uri = (s.workdir / name).as_uri()
    if uri not in s.versions:
        s.open(name, f"def {name[:-3]}(value):\n    return \n")
    began = time.perf_counter()
    got = await s.inline(uri, 1, 11, invoked=True)
    took = (time.perf_counter() - began) * 1000
    if got != [ANSWER]:
        raise RuntimeError(f"unexpected answer {got!r}")
    return took


async def command(s: Session, name: str) -> dict[str, Any]:
    result = await s.client.workspace_execute_command_async(
        lsp.ExecuteCommandParams(command=name, arguments=[])
    )
    return dict(result)


def stats(values: list[float]) -> dict[str, Any]:
    """Median and spread (the machine is shared: say how noisy it was)."""
    return {
        "median": round(statistics.median(values), 1),
        "min": round(min(values), 1),
        "max": round(max(values), 1),
        "n": len(values),
    }


# -- (a), (b), (d): on this machine's loopback ---------------------------------------------------


async def startup(tmp: Path, repeat: int, fake: FakeServer) -> dict[str, Any]:
    cold, in_process, warm = [], [], []
    for i in range(repeat):
        alone = Env(tmp, f"alone{i}")
        alone.configure(fake.base_url + "/v1")
        s, took = await alone.editor(IN_PROCESS)
        in_process.append(took)
        await s.close()
        alone.close()
        env = Env(tmp, f"cold{i}")
        env.configure(fake.base_url + "/v1")
        first, took = await env.editor(DAEMON)
        cold.append(took)
        for _ in range(3):
            second, took = await env.editor(DAEMON)
            warm.append(took)
            await second.close()
        await first.close()
        env.close()
    # Each cold start against the in-process start just before it: the machine's load drifts.
    paired = [c - i for c, i in zip(cold, in_process, strict=True)]
    return {
        "in_process": stats(in_process),
        "cold": stats(cold),
        "cold_minus_in_process": stats(paired),
        "warm": stats(warm),
    }


async def memory(tmp: Path, fake: FakeServer) -> dict[str, Any]:
    async def editors(env: Env, cmd: list[str]) -> list[Session]:
        sessions = []
        for i in range(EDITORS):
            s, _ = await env.editor(cmd)
            await complete(s, f"m{i}.py")
            sessions.append(s)
        await asyncio.sleep(0.5)
        return sessions

    env = Env(tmp, "memory")
    env.configure(fake.base_url + "/v1")
    forwarders = await editors(env, DAEMON)
    daemon = env.daemon("status")
    forwarder_rss = [rss_mib(s.pid) for s in forwarders]
    daemon_rss = rss_mib(daemon.get("pid"))
    for s in forwarders:
        await s.close()
    env.close()
    alone = Env(tmp, "memory-alone")
    alone.configure(fake.base_url + "/v1")
    servers = await editors(alone, IN_PROCESS)
    server_rss = [rss_mib(s.pid) for s in servers]
    for s in servers:
        await s.close()
    alone.close()
    return {
        "daemon_mib": round(daemon_rss, 1),
        "forwarder_mib": stats(forwarder_rss),
        "with_daemon_mib": round(sum(forwarder_rss) + daemon_rss, 1),
        "in_process_mib": round(sum(server_rss), 1),
        "server_mib": stats(server_rss),
    }


# -- (c), (e): through the 50 ms link ------------------------------------------------------------


async def shared(link: DelayLink, tmp: Path, repeat: int) -> dict[str, Any]:
    """A second editor's first completions on a daemon another editor has warmed up, against
    a new in-process server's, both asked right after `initialize`."""
    env = Env(tmp, "shared")
    env.configure(link.url("tcp"), protocol="http2", tls={"ca_file": link.ca})
    first, _ = await env.editor(link.netns(*DAEMON))
    await asyncio.sleep(1.5)  # the warm-up after `initialized` has opened the connection
    await complete(first, "seen.py")  # a context the next editors will ask for again
    warm = [await complete(first, f"w{i}.py") for i in range(10)]
    new_context, cached, alone = [], [], []
    try:
        for i in range(repeat):
            s, _ = await env.editor(link.netns(*DAEMON))
            new_context.append(await complete(s, f"n{i}.py"))
            hits = (await command(s, "reaper.status"))["cache"]["hits"]
            cached.append(await complete(s, "seen.py"))
            if (await command(s, "reaper.status"))["cache"]["hits"] != hits + 1:
                raise RuntimeError("the context another editor asked for missed the cache")
            await s.close()
            own = Env(tmp, f"shared-alone{i}")
            own.configure(link.url("tcp"), protocol="http2", tls={"ca_file": link.ca})
            s, _ = await own.editor(link.netns(*IN_PROCESS))
            alone.append(await complete(s, f"n{i}.py"))
            await s.close()
            own.close()
    finally:
        await first.close()
        env.close()
    return {
        "warm": stats(warm),
        "second_editor_new_context": stats(new_context),
        "second_editor_cached_context": stats(cached),
        "in_process_first": stats(alone),
    }


async def fresh_0rtt(link: DelayLink, tmp: Path, repeat: int) -> dict[str, Any]:
    """A new daemon's first completion in a data folder where an earlier daemon learnt h3 and
    a session ticket: asked right after `initialize`, the key in the user file from the start
    (the warm-up after `initialized` races it, as in an editor opened to type at once); and
    with the key given after start-up, so the completion is the daemon's first request."""
    env = Env(tmp, "zero")
    http = {"protocol": "auto", "tls": {"ca_file": link.ca}}
    env.configure(link.url("tcp"), **http)
    seed, _ = await env.editor(link.netns(*DAEMON))
    for i in range(4):
        await complete(seed, f"seed{i}.py")
    await seed.close()
    env.stop()  # leaves the ticket on disk
    at_once, late, warm, used = [], [], [], []
    try:
        for i in range(repeat):
            s, _ = await env.editor(link.netns(*DAEMON))
            at_once.append(await complete(s, f"a{i}.py"))
            await s.close()
            env.stop()
            env.configure(link.url("tcp"), key=False, **http)
            s, _ = await env.editor(link.netns(*DAEMON))
            await asyncio.sleep(1.0)  # the daemon's start-up work is over
            env.configure(link.url("tcp"), **http)
            s.client.workspace_did_change_configuration(
                lsp.DidChangeConfigurationParams(settings={})
            )
            late.append(await complete(s, f"z{i}.py"))
            transports = (await command(s, "reaper.status"))["transports"]
            [origin] = transports["openai"]["origins"].values()
            used.append(bool(origin.get("lastUsed0rtt")))
            warm.extend([await complete(s, f"z{i}w{j}.py") for j in range(5)])
            await s.close()
            env.stop()
    finally:
        env.close()
    if not all(used):
        raise RuntimeError(f"0-RTT was not used every time: {used}")
    return {"key_at_start": stats(at_once), "first": stats(late), "warm": stats(warm)}


# -- the run and its table -----------------------------------------------------------------------


async def bench(repeat: int) -> dict[str, Any]:
    tmp = Path(tempfile.mkdtemp(prefix="reaper-daemon-bench-"))
    out: dict[str, Any] = {"load_before": [round(x, 2) for x in os.getloadavg()]}
    try:
        with FakeServer(fake_openai.create_app()) as fake:
            fake.script.default = Reply(text=ANSWER)
            out["startup_ms"] = await startup(tmp, repeat, fake)
            out["memory"] = await memory(tmp, fake)
        try:
            async with DelayLink() as link:
                out["rtt_ms"] = RTT_MS
                out["shared"] = await shared(link, tmp, repeat)
                out["fresh_daemon_0rtt"] = await fresh_0rtt(link, tmp, repeat)
        except Unavailable as exc:
            out["link_skipped"] = str(exc)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    out["load_after"] = [round(x, 2) for x in os.getloadavg()]
    out["machine"] = {"cpus": os.cpu_count()}
    return out


Row = tuple[str, str, str, str, bool]


def _ms(s: dict[str, Any]) -> str:
    return f"{s['median']:.0f} ({s['min']:.0f}–{s['max']:.0f})"


def rows(r: dict[str, Any]) -> list[Row]:
    st = r["startup_ms"]
    extra, warm = st["cold_minus_in_process"], st["warm"]["median"]
    m = r["memory"]
    out: list[Row] = [
        ("(a) 1st editor: spawn → initialize, daemon cold", _ms(st["cold"]),
         _ms(st["in_process"]), f"≤ in-process + 50 (paired: {_ms(extra)})",
         extra["median"] <= 50),
        ("(b) 2nd editor: spawn → initialize, daemon warm", _ms(st["warm"]),
         _ms(st["in_process"]), "≤ 100", warm <= 100),
        (f"(d) RSS of {EDITORS} editors (MiB)", f"{m['with_daemon_mib']:.0f}",
         f"{m['in_process_mib']:.0f}", "less than in-process",
         m["with_daemon_mib"] < m["in_process_mib"]),
        ("    one forwarder's RSS (MiB)", f"{m['forwarder_mib']['median']:.1f}",
         f"{m['server_mib']['median']:.1f}", "≤ 20", m["forwarder_mib"]["median"] <= 20),
    ]  # fmt: skip
    if "shared" in r:
        rtt, sh = r["rtt_ms"], r["shared"]
        server = max(0.0, sh["warm"]["median"] - rtt)
        bound = 1.3 * rtt + server
        new, cached = sh["second_editor_new_context"], sh["second_editor_cached_context"]
        zero = r["fresh_daemon_0rtt"]["first"]
        at_once = r["fresh_daemon_0rtt"]["key_at_start"]
        out += [
            (f"(c) 2nd editor's 1st completion, {rtt:.0f} ms RTT", _ms(new),
             _ms(sh["in_process_first"]), f"≈ 1 RTT: ≤ 1.3 RTT + server = {bound:.0f}",
             new["median"] <= bound),
            ("(c) 2nd editor, a context another editor asked for", _ms(cached), "—",
             "≈ 0 RTT: ≤ 0.2 RTT", cached["median"] <= 0.2 * rtt),
            ("(e) fresh daemon's 1st completion, 0-RTT (key given late)", _ms(zero), "—",
             "≤ 65", zero["median"] <= 65),
            ("(e) fresh daemon's 1st completion, right after initialize", _ms(at_once), "—",
             "≤ 65", at_once["median"] <= 65),
        ]  # fmt: skip
    return out


def table(r: dict[str, Any]) -> str:
    lines = [
        "| figure (ms unless said; median (min–max)) | daemon | in-process, same run | target | |",
        "|---|---|---|---|---|",
    ]
    for name, daemon, alone, target, met in rows(r):
        lines.append(f"| {name} | {daemon} | {alone} | {target} | {'met' if met else 'MISSED'} |")
    if "shared" in r:
        lines.append(f"\nwarm completion through the link: {_ms(r['shared']['warm'])} ms")
    else:
        lines.append(f"\n(c) and (e) skipped: {r.get('link_skipped')}")
    lines.append(f"load average before {r['load_before']}, after {r['load_after']}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.daemon")
    parser.add_argument("--quick", action="store_true", help="fewer repetitions")
    parser.add_argument("--repeat", type=int, default=None, help="repetitions per figure")
    parser.add_argument("--save", action="store_true", help=f"write {RESULTS.name}")
    args = parser.parse_args()
    repeat = args.repeat or (3 if args.quick else 7)
    results = asyncio.run(bench(repeat))
    print(table(results))
    if args.save:
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
        print(f"\nresults: {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
