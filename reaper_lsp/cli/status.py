"""`reaper-lsp status` and `reaper-lsp config`. Status, for a person: probe each provider's
address, then say in a few lines what is usable now, who is signed in, which config file is in
force (and what is wrong with it) and how the last server run went; `--json` gives all of it."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import sys
import threading
import time
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from reaper_lsp.cli.output import out
from reaper_lsp.config import LoadedConfig
from reaper_lsp.settings import Settings

PROBE_SECONDS = 1.0


def endpoints(settings: Settings) -> dict[str, str]:
    """The address each remote provider's requests go to first (Copilot: the GitHub API that
    mints its token)."""
    p = settings.providers
    claude = p.claude.vertex_api() if p.claude.backend == "vertex" else p.claude.base_url
    return {
        "copilot": p.copilot.github_api_url,
        "claude": claude,
        "openai": p.openai.base_url,
        "ollama": p.ollama.base_url,
        "llamacpp": p.llamacpp.base_url,
    }


def _resolve(host: str, port: int) -> asyncio.Future[list[Any]]:
    """getaddrinfo in a daemon thread: a resolver that hangs must neither hold the probe past
    its timeout nor keep the process alive at exit (the loop's executor would do both)."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[list[Any]] = loop.create_future()

    def settle(result: list[Any] | None, error: BaseException | None) -> None:
        if future.done():
            return
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result or [])

    def work() -> None:
        try:
            found: list[Any] = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except OSError as exc:
            loop.call_soon_threadsafe(settle, None, exc)
            return
        loop.call_soon_threadsafe(settle, found, None)

    threading.Thread(target=work, daemon=True).start()
    return future


def _via_proxy(url: str) -> str:
    """The address a connection to `url` really opens: the proxy from the environment, as
    httpx honours it, unless the host is exempt."""
    parts = urlsplit(url)
    proxies = urllib.request.getproxies_environment()
    proxy = proxies.get(parts.scheme) or proxies.get("all")
    if proxy and not urllib.request.proxy_bypass(parts.hostname or ""):
        return proxy
    return url


async def probe(url: str, timeout: float = PROBE_SECONDS) -> str | None:
    """None when something accepts a TCP connection at `url`'s host and port within
    `timeout`; else why not, in a few words."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        return "not a valid address"
    try:
        async with asyncio.timeout(timeout):
            addresses = await _resolve(host, port)
            if not addresses:
                return "host name not found"
            address = addresses[0][4]
            _, writer = await asyncio.open_connection(host=address[0], port=address[1])
    except TimeoutError:
        return f"no answer within {timeout:g} s"
    except socket.gaierror:
        return "host name not found"
    except ConnectionRefusedError:
        return "connection refused"
    except OSError as exc:
        return exc.strerror or type(exc).__name__
    writer.close()
    return None


async def probe_all(names: Sequence[str], settings: Settings) -> dict[str, str | None]:
    """Probe the named providers' addresses at once (so status waits one timeout at most)."""
    urls = endpoints(settings)
    wanted = [name for name in names if name in urls]
    found = await asyncio.gather(*(probe(_via_proxy(urls[name])) for name in wanted))
    return dict(zip(wanted, found, strict=True))


def _config_line(loaded: LoadedConfig, explicit: bool) -> str:
    path = loaded.user_file
    if path is None:
        return "config file: none (built-in defaults)"
    if path.exists():
        return f"config file: {path}"
    if explicit:
        return f"config file: {path} NOT FOUND (named by REAPER_CONFIG); using built-in defaults"
    return f"config file: none ({path} does not exist; built-in defaults)"


def _provider_line(name: str, info: Mapping[str, Any], url: str, problem: str | None) -> str:
    """The server's own reading of the provider (`summary`), with what the probe found."""
    summary = str(info.get("summary") or "")
    if name == "local":
        summary = "ready (offline engine, always last)"
    elif info.get("state") != "ready":
        pass
    elif problem is None:
        summary = f"ready at {url}"
    elif name == "ollama":
        summary = f"not running at {url} ({problem})"
    else:
        summary = f"unreachable at {url} ({problem})"
    return f"  {name:8} {summary}"


def _sign_in_line(sign_in: Mapping[str, Any]) -> str:
    parts = []
    for account, label in (("github", "GitHub (Copilot)"), ("google", "Google (Vertex)")):
        info = sign_in.get(account)
        if not isinstance(info, Mapping):
            continue
        if info.get("signedIn"):
            source = info.get("source")
            parts.append(f"{label}: signed in" + (f" (from {source})" if source else ""))
        else:
            parts.append(f"{label}: not signed in")
    return "sign-ins: " + ("; ".join(parts) if parts else "none")


def _ago(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    if seconds < 172800:
        return f"{seconds / 3600:.0f} h"
    return f"{seconds / 86400:.0f} days"


def _last_run_lines(last: Mapping[str, Any] | None, path: Path, now: float) -> list[str]:
    if last is None:
        return ["last server run: none recorded yet"]
    try:
        ended = now - path.stat().st_mtime
    except OSError:
        ended = 0.0
    ran = _ago(float(last.get("uptimeSeconds", 0)))
    lines = [
        f"last server run: ended {_ago(ended)} ago after {ran}"
        f" (reaper-lsp {last.get('version', '?')})"
    ]
    cache = last.get("cache")
    if isinstance(cache, Mapping):
        lines.append(
            f"  cache: {cache.get('hits', 0)} hits, {cache.get('typedThrough', 0)} typed"
            f" through, {cache.get('misses', 0)} misses"
        )
    used = []
    providers = last.get("providers")
    for name, info in (providers if isinstance(providers, Mapping) else {}).items():
        http = info.get("http") if isinstance(info, Mapping) else None
        if isinstance(http, Mapping) and http.get("requests"):
            used.append(
                f"{name} {http['requests']} ({http.get('failures', 0)} failed,"
                f" {http.get('latencyMsP50', 0):g} ms median)"
            )
    lines.append("  requests: " + (", ".join(used) if used else "none to a provider"))
    lines.append(f"  figures: {path} (all of them: reaper-lsp status --json)")
    return lines


def summary(
    status: Mapping[str, Any],
    loaded: LoadedConfig,
    probes: Mapping[str, str | None],
    *,
    explicit_config: bool,
    last_run: Mapping[str, Any] | None,
    last_run_path: Path,
) -> list[str]:
    """The human form of `status` (the dict `reaper.status` returns), at most a dozen lines."""
    settings = loaded.settings
    chain = [str(name) for name in status.get("completionChain", ())]
    urls = endpoints(settings)
    lines = [_config_line(loaded, explicit_config)]
    lines.append("completion chain: " + " → ".join(chain))
    providers = status.get("providers")
    for name, info in (providers if isinstance(providers, Mapping) else {}).items():
        lines.append(_provider_line(name, info, urls.get(name, ""), probes.get(name)))
    lines.append(_sign_in_line(status.get("signIn") or {}))
    lines.extend(_last_run_lines(last_run, last_run_path, time.time()))
    return lines


def show_config() -> int:
    """`reaper-lsp config`: every key, its value (secrets masked) and where it came from."""
    from reaper_lsp import config

    loaded = config.load(workspace_root=Path.cwd())
    out(f"# config file: {loaded.user_file or '(none)'}")
    for key, value, source in loaded.describe():
        out(f"{key} = {value}  # {source}")
    _problems(loaded)
    return 1 if loaded.errors else 0


def _problems(loaded: LoadedConfig) -> None:
    for warning in loaded.warnings:
        out(f"warning: {warning}", sys.stderr)
    for problem in loaded.errors:
        out(f"error: {problem}", sys.stderr)


def show_status(*, as_json: bool) -> int:
    """`reaper-lsp status [--json]`."""
    from reaper_lsp.cli.local import close, local_session
    from reaper_lsp.services.status import status_file

    session = local_session(Path.cwd(), report=False)
    loaded = session.loaded
    status = session.status().to_json()
    asyncio.run(close(session))
    providers = status["providers"]
    assert isinstance(providers, dict)
    wanted = [n for n, info in providers.items() if info["configured"] and info["used"]]
    probes = asyncio.run(probe_all(wanted, loaded.settings))
    path = status_file()
    last = _read_json(path)
    if as_json:
        reachable = {name: problem or "ok" for name, problem in probes.items()}
        problems = {"errors": loaded.errors, "warnings": loaded.warnings}
        print(json.dumps({**status, "reachable": reachable, "lastRun": last,
                          "config": problems}, indent=2))  # fmt: skip
        return 0
    explicit = bool(os.environ.get("REAPER_CONFIG", "").strip())
    for line in summary(
        status, loaded, probes, explicit_config=explicit, last_run=last, last_run_path=path
    ):
        out(line)
    _problems(loaded)
    return 0


def _read_json(path: Path) -> dict[str, object] | None:
    try:
        found = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return found if isinstance(found, dict) else None
