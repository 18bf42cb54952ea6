"""CompletionService and ChatService with in-process providers: the request path without a
server process or a network."""

from __future__ import annotations

import asyncio
import builtins
import json
import os
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from reaper_lsp.config import ChatSettings, CompletionSettings, LoadedConfig, Settings
from reaper_lsp.core.cache import CompletionCache
from reaper_lsp.core.document import Change, Position
from reaper_lsp.net.retry import RetryPolicy
from reaper_lsp.providers.base import ChatRequest, CompletionRequest
from reaper_lsp.providers.chain import Chain
from reaper_lsp.providers.errors import ProviderUnavailable
from reaper_lsp.providers.local import LocalProvider
from reaper_lsp.services.app import App
from reaper_lsp.services.chat import ChatService
from reaper_lsp.services.completion import CompletionService
from reaper_lsp.services.conversations import Conversations
from reaper_lsp.services.session import Session
from reaper_lsp.workspace import Workspace


class Fake:
    """A provider answering from a list; `None` raises, a float waits that long first."""

    def __init__(self, name: str, *answers: str | float | BaseException) -> None:
        self.name = name
        self.answers = list(answers)
        self.requests: list[CompletionRequest | ChatRequest] = []
        self.cancelled = 0
        self.cancelled_requests: list[CompletionRequest | ChatRequest] = []

    def unusable_reason(self) -> str | None:
        return None

    def model_for(self, kind: str) -> str:
        return f"{self.name}-model"

    async def _answer(self, request: CompletionRequest | ChatRequest) -> AsyncIterator[str]:
        self.requests.append(request)
        answer = self.answers.pop(0) if self.answers else ""
        try:
            if isinstance(answer, float):
                await asyncio.sleep(answer)
                answer = "late"
            if isinstance(answer, BaseException):
                raise answer
            if "|" in answer:  # "first|rest": stream the first part, then stall
                first, rest = answer.split("|", 1)
                yield first
                await asyncio.sleep(5)
                yield rest
                return
            for piece in (answer[:3], answer[3:]):
                if piece:
                    yield piece
        except asyncio.CancelledError:
            self.cancelled += 1
            self.cancelled_requests.append(request)
            raise

    def stream_completion(self, request: CompletionRequest) -> AsyncIterator[str]:
        return self._answer(request)

    def stream_chat(self, request: ChatRequest) -> AsyncIterator[str]:
        return self._answer(request)

    async def aclose(self) -> None:
        return None


@dataclass
class Shared:
    """What the services need of an App: a chain of fakes, a cache, conversations."""

    chain: Chain
    cache: CompletionCache = field(
        default_factory=lambda: CompletionCache(
            ttl_seconds=60, max_entries=100, clock=time.monotonic
        )
    )
    conversations: Conversations = field(default_factory=lambda: Conversations(24_000))


def service(
    tmp_path: Path, *providers: Fake, **settings: Any
) -> tuple[CompletionService, Workspace]:
    ws = Workspace([tmp_path])
    local = LocalProvider(ws.documents)
    chain = Chain({p.name: p for p in providers}, policy=RetryPolicy(max_retries=0))
    options = {"providers": tuple(p.name for p in providers), "debounce_ms": 0, **settings}
    return CompletionService(Shared(chain), ws, local, CompletionSettings(**options)), ws


async def test_a_completion_carries_its_document_line_and_stop_sequences(tmp_path: Path) -> None:
    ai = Fake("ai", "name.upper()")
    svc, ws = service(tmp_path, ai)
    uri = (tmp_path / "a.py").as_uri()
    ws.documents.open(uri, "python", 1, "def f(name):\n    return \n")
    found = await svc.complete(uri, Position(1, 11))
    assert found is not None and (found.text, found.provider) == ("name.upper()", "ai")
    request = ai.requests[0]
    assert isinstance(request, CompletionRequest)
    assert (request.context.uri, request.context.line) == (uri, 1)
    assert request.stop and "\n" in request.stop[0]


async def test_the_cache_answers_before_the_provider(tmp_path: Path) -> None:
    ai = Fake("ai", "name.upper()")
    svc, ws = service(tmp_path, ai, prefetch=False)
    uri = (tmp_path / "a.py").as_uri()
    ws.documents.open(uri, "python", 1, "def f(name):\n    return \n")
    await svc.complete(uri, Position(1, 11))
    again = await svc.complete(uri, Position(1, 11))
    assert again is not None and again.text == "name.upper()"
    assert len(ai.requests) == 1


async def test_any_exception_from_a_provider_falls_back_to_the_offline_engine(
    tmp_path: Path,
) -> None:
    broken = Fake("broken", TypeError("int() argument must be a string"))
    svc, ws = service(tmp_path, broken)
    uri = (tmp_path / "a.py").as_uri()
    ws.documents.open(
        uri, "python", 1, "total = compute_total(items)\nprint(total)\ntotal = comp\n"
    )
    found = await svc.complete(uri, Position(2, 12), invoked=True)
    assert found is not None and found.provider == "local"
    assert found.text == "ute_total(items)"
    assert svc.chain.health["broken"].failures == 1


def typed(ws: Workspace, uri: str, line: int, col: int, text: str) -> None:
    doc = ws.documents.get(uri)
    assert doc is not None
    at = Position(line, col)
    ws.documents.change(uri, doc.version + 1, [Change(text, at, at)])


async def test_a_keystroke_that_agrees_with_the_call_in_flight_keeps_it_and_is_served(
    tmp_path: Path,
) -> None:
    slow = Fake("slow", 0.3)  # answers "late" after 0.3 s
    svc, ws = service(tmp_path, slow, prefetch=False)
    uri = (tmp_path / "a.py").as_uri()
    ws.documents.open(uri, "python", 1, "x = \n")
    older = asyncio.ensure_future(svc.complete(uri, Position(0, 4)))
    await asyncio.sleep(0.1)  # the call is on its way
    typed(ws, uri, 0, 4, "la")
    newer = await svc.complete(uri, Position(0, 6))
    assert await older is None  # the editor moved on: the older request answers nothing
    assert newer is not None and newer.text == "te"  # the rest of the answer
    first = slow.requests[0]
    assert first not in slow.cancelled_requests  # the call in flight was kept


async def test_a_keystroke_that_disagrees_with_the_stream_cancels_the_call(
    tmp_path: Path,
) -> None:
    ai = Fake("ai", "foo|bar", "xyz")
    svc, ws = service(tmp_path, ai, prefetch=False)
    uri = (tmp_path / "a.py").as_uri()
    ws.documents.open(uri, "python", 1, "x = \n")
    older = asyncio.ensure_future(svc.complete(uri, Position(0, 4)))
    for _ in range(100):
        await asyncio.sleep(0.01)
        if ai.requests:
            break
    await asyncio.sleep(0.05)  # "foo" has streamed
    typed(ws, uri, 0, 4, "q")
    newer = await svc.complete(uri, Position(0, 5))
    assert await older is None
    assert newer is not None and newer.text == "xyz"
    assert ai.cancelled == 1


async def test_two_requests_for_the_same_cursor_share_one_call(tmp_path: Path) -> None:
    ai = Fake("ai", 0.2)
    svc, ws = service(tmp_path, ai, prefetch=False)
    uri = (tmp_path / "a.py").as_uri()
    ws.documents.open(uri, "python", 1, "x = \n")
    ghost, menu = await asyncio.gather(
        svc.complete(uri, Position(0, 4), kind="inline"),
        svc.complete(uri, Position(0, 4), kind="menu"),
    )
    assert ghost is not None and menu is not None and ghost.text == menu.text == "late"
    assert len(ai.requests) == 1


async def test_the_next_suggestion_is_fetched_when_one_is_served(tmp_path: Path) -> None:
    ai = Fake("ai", "name.upper()", "  # shout")
    svc, ws = service(tmp_path, ai)
    uri = (tmp_path / "a.py").as_uri()
    ws.documents.open(uri, "python", 1, "def f(name):\n    return \n")
    first = await svc.complete(uri, Position(1, 11))
    assert first is not None and first.text == "name.upper()"
    for _ in range(100):  # the prefetch for the cursor after the suggestion
        await asyncio.sleep(0.01)
        if len(ai.requests) == 2 and not svc.in_flight:
            break
    request = ai.requests[1]
    assert isinstance(request, CompletionRequest)
    assert request.context.prefix.endswith("return name.upper()")
    typed(ws, uri, 1, 11, "name.upper()")  # the user accepts it
    after = await svc.complete(uri, Position(1, 23))
    assert after is not None and after.text == "  # shout"
    prefixes = [r.context.prefix for r in ai.requests if isinstance(r, CompletionRequest)]
    assert prefixes.count(request.context.prefix) == 1  # served from the prefetch


async def test_an_unopened_file_outside_the_workspace_is_never_read(tmp_path: Path) -> None:
    ai = Fake("ai", "leak")
    svc, _ = service(tmp_path / "project", ai)
    (tmp_path / "project").mkdir()
    secret = tmp_path / "secret.py"
    secret.write_text("API_KEY = 'sk-live'\n")
    assert await svc.complete(secret.as_uri(), Position(0, 3), invoked=True) is None
    assert await svc.complete("file:///proc/self/environ", Position(0, 0), invoked=True) is None
    assert ai.requests == []


async def test_chat_attaches_the_document_and_streams_from_the_first_provider(
    tmp_path: Path,
) -> None:
    down = Fake("down", ProviderUnavailable("503", provider="down"))
    up = Fake("up", "It adds two numbers.")
    ws = Workspace([tmp_path])
    chain = Chain({"down": down, "up": up}, policy=RetryPolicy(max_retries=0))
    chat = ChatService(
        Shared(chain),
        ws,
        LocalProvider(ws.documents),
        ChatSettings(providers=("down", "up")),
        timeout=5,
    )
    uri = (tmp_path / "add.py").as_uri()
    ws.documents.open(uri, "python", 1, "def add(a, b):\n    return a + b\n")
    messages = await chat.messages("What does this do?", [("system", "Be brief.")], uri=uri)
    pieces = [piece async for piece in chat.stream(messages)]
    assert "".join(p.text for p in pieces) == "It adds two numbers."
    assert {p.provider for p in pieces} == {"up"}
    request = up.requests[0]
    assert isinstance(request, ChatRequest)
    assert request.messages[0].content == "Be brief."
    assert "add.py" in request.messages[1].content and "return a + b" in request.messages[1].content


async def test_no_credential_file_is_read_on_the_completion_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "home"
    folder = home / "config" / "github-copilot"
    folder.mkdir(parents=True)
    token = "ghu_" + "x" * 20
    (folder / "apps.json").write_text(
        json.dumps({"github.com:Iv1.b507a08c87ecfe98": {"user": "u", "oauth_token": token}})
    )
    reads: list[str] = []
    real_os_open = os.open
    real_open = builtins.open

    def counting_os_open(path: Any, *args: Any, **kwargs: Any) -> int:
        reads.append(Path(path).name)
        return real_os_open(path, *args, **kwargs)

    def counting_open(path: Any, *args: Any, **kwargs: Any) -> Any:
        if isinstance(path, str | Path):
            reads.append(Path(path).name)
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(os, "open", counting_os_open)
    monkeypatch.setattr(builtins, "open", counting_open)
    monkeypatch.setenv("XDG_DATA_HOME", str(home / "data"))
    env = {"HOME": str(home), "XDG_CONFIG_HOME": str(home / "config")}
    settings = Settings()
    app = App(LoadedConfig(settings=settings), env=env)
    session = Session(app, roots=[tmp_path])
    try:
        uri = (tmp_path / "a.py").as_uri()
        doc = session.workspace.documents.open(uri, "python", 1, "x = 1\ny = \n")
        assert app.github.signed_in()  # the first look reads copilot.vim's files
        assert "apps.json" in reads
        before = len(reads)
        for _ in range(5):  # what every keystroke does before the network
            session.completion.cached(session.completion.context_at(doc, Position(1, 4)))
            assert app.chain.usable(settings.completion.providers)[0] == "copilot"
        credential_files = {"auth.json", "apps.json", "hosts.json"}
        assert not credential_files & set(reads[before:])
    finally:
        await session.close()
        await app.aclose()


async def test_the_prefetch_serves_the_cursor_after_a_taken_suggestion_whose_snippets_moved(
    tmp_path: Path,
) -> None:
    """Taking `compute_tax_rate(zone)` puts that name on the cursor's line: the prompt for the
    next cursor would show taxes.py, the prefetch's did not. It was made for exactly that
    cursor a moment before, so it serves it (a cache key alone would miss it)."""
    ai = Fake("ai", "compute_tax_rate(zone)", "  # per zone")
    svc, ws = service(tmp_path, ai)
    ws.documents.open(
        (tmp_path / "taxes.py").as_uri(), "python", 1,
        "def compute_tax_rate(zone):\n    return 0.2\n",
    )  # fmt: skip
    uri = (tmp_path / "main.py").as_uri()
    ws.documents.open(uri, "python", 1, "x = 1\nrate = \n")
    first = await svc.complete(uri, Position(1, 7))
    assert first is not None and first.text == "compute_tax_rate(zone)"
    for _ in range(100):  # the prefetch for the cursor after the suggestion lands
        await asyncio.sleep(0.01)
        if len(ai.requests) == 2 and not svc.in_flight:
            break
    prefetch = ai.requests[1]
    assert isinstance(prefetch, CompletionRequest) and not prefetch.snippets
    typed(ws, uri, 1, 7, "compute_tax_rate(zone)")  # the user takes it
    doc = ws.documents.get(uri)
    assert doc is not None
    after = svc.context_at(doc, Position(1, 29))
    assert (await svc.related_at(doc, after, Position(1, 29))).snippets  # taxes.py now
    found = await svc.complete(uri, Position(1, 29))
    assert found is not None and found.text == "  # per zone"
    assert len(ai.requests) == 2  # served by the prefetch


async def test_alternatives_keep_the_suggestion_being_typed_through_first(tmp_path: Path) -> None:
    ai = Fake("ai", "name.upper()", "me.lower()")
    svc, ws = service(tmp_path, ai, prefetch=False)
    uri = (tmp_path / "a.py").as_uri()
    ws.documents.open(uri, "python", 1, "def f(name):\n    return \n")
    first = await svc.complete(uri, Position(1, 11))
    assert first is not None and first.text == "name.upper()"
    typed(ws, uri, 1, 11, "na")
    found = await svc.alternatives(uri, Position(1, 13))
    # The rest of the one being typed, then what the new call gave.
    assert [s.text for s in found] == ["me.upper()", "me.lower()"]
    request = ai.requests[-1]
    assert isinstance(request, CompletionRequest) and request.n == 3
