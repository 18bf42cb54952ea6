"""Suggestions that know the code around them, through the real server: the definition of
`compute_tax_rate` in `taxes.py` — open in the editor, or only imported — reaches every
provider in that provider's own prompt shape; an excluded file never does; a suggestion made
with other snippets is not reused; and an explicit request gets alternatives."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from lsprotocol import types as lsp

from tests.e2e.conftest import Session, openai_options
from tests.e2e.test_copilot import github_fake, sign_in
from tests.e2e.test_copilot import options as copilot_options
from tests.fakes.llamacpp import FakeLlamaServer
from tests.fakes.runner import FakeServer
from tests.fakes.script import Recorded, Reply

__all__ = ["github_fake"]  # a fixture, used by name

TAXES = """\
RATES = {"north": 0.2, "south": 0.1}


def compute_tax_rate(region, year):
    base = RATES[region]
    return base * (1 + 0.01 * (year - 2000))
"""
SECRET = """\
def compute_secret_rate(region, year):
    return 0.42  # the one number nobody outside may see
"""
DEFINITION = "def compute_tax_rate(region, year):"
BODY = "region = 'north'\nrate = compute_"
LINE, COLUMN = 1, len("rate = compute_")
ANSWER = "tax_rate(region, 2024)"
KEYS = {"OPENAI_API_KEY": "sk-test", "ANTHROPIC_API_KEY": "sk-ant-test"}


@pytest.fixture
def llama() -> Iterator[FakeServer]:
    server = FakeServer(FakeLlamaServer())
    server.start()
    try:
        yield server
    finally:
        server.stop()


def provider_options(provider: str, fake: FakeServer) -> dict[str, Any]:
    """The user's config for one provider in front of the offline engine."""
    if provider in ("openai", "openai-fim"):
        return openai_options(fake, fim=provider == "openai-fim")
    if provider == "copilot":
        return copilot_options(fake)
    url = {"claude": fake.base_url + "/v1"}.get(provider, fake.base_url)
    return {
        "completion": {"providers": [provider], "debounce_ms": 0, "prefetch": False},
        "providers": {provider: {"base_url": url}},
    }


def completion_posts(fake: FakeServer) -> list[Recorded]:
    paths = ("/chat/completions", "/completions", "/messages", "/api/generate", "/infill")
    return [
        r
        for r in fake.script.requests
        if r.method == "POST"
        and r.path.endswith(paths)
        and (r.path != "/api/generate" or r.body.get("prompt"))  # not Ollama's warm-up
    ]


def shown(provider: str, sent: Recorded, name: str = "taxes.py", prefix: str = BODY) -> str:
    """Where each provider's prompt shows the snippets, checked to have that provider's shape
    (`prefix`: main.py's text before the cursor); the text of the snippet of `name`."""
    body = sent.body
    if provider in ("openai", "claude"):
        user = body["messages"][-1]["content"]
        assert user.startswith("Code from other files of the project, for reference only:\n")
        assert user.index(f"File: {name}\n<code>\n") < user.index("File: main.py (python)")
        assert f"File: main.py (python)\n<code>\n{prefix}<cursor>" in user
        return str(user.split(f"File: {name}\n<code>\n")[1].split("\n</code>")[0])
    if provider in ("openai-fim", "copilot"):
        prompt = body["prompt"]
        assert prompt.startswith(f"# Path: {name}\n")
        assert prompt.endswith("# Path: main.py\n" + prefix)
        head = prompt.split("# Path: main.py\n")[0].split("\n")[1:]
        return "\n".join(row.removeprefix("# ").removeprefix("#") for row in head)
    if provider == "ollama":  # qwen2.5-coder: its repository-level tokens, sent raw
        assert body["raw"] is True and "suffix" not in body
        prompt = body["prompt"]
        assert prompt.startswith(f"<|repo_name|>workspace\n<|file_sep|>{name}\n")
        assert prompt.endswith(
            f"<|file_sep|>main.py\n<|fim_prefix|>{prefix}<|fim_suffix|>\n<|fim_middle|>"
        )
        return str(prompt.split(f"<|file_sep|>{name}\n")[1].split("<|file_sep|>")[0])
    assert provider == "llamacpp"
    extra = {e["filename"]: e["text"] for e in body["input_extra"]}
    assert body["input_prefix"] == prefix
    return str(extra[name])


PROVIDERS = ["openai", "openai-fim", "ollama", "llamacpp", "claude", "copilot"]


@pytest.fixture
def fake(
    request: pytest.FixtureRequest,
    openai_fake: FakeServer,
    anthropic_fake: FakeServer,
    ollama_fake: FakeServer,
    llama: FakeServer,
    github_fake: FakeServer,
) -> FakeServer:
    by_name = {"openai": openai_fake, "openai-fim": openai_fake, "claude": anthropic_fake,
               "ollama": ollama_fake, "llamacpp": llama, "copilot": github_fake}  # fmt: skip
    found: FakeServer = by_name[request.param]
    found.script.default = Reply(text=ANSWER)
    return found


async def start(start_session: Any, provider: str, fake: FakeServer, **extra: Any) -> Session:
    s: Session = await start_session({**provider_options(provider, fake), **extra}, KEYS)
    if provider == "copilot":
        await sign_in(s)
    return s


@pytest.mark.parametrize("fake", PROVIDERS, indirect=True)
async def test_the_definition_in_another_open_file_reaches_the_provider(
    start_session: Any, fake: FakeServer, request: pytest.FixtureRequest
) -> None:
    provider = request.node.callspec.params["fake"]
    s = await start(start_session, provider, fake)
    s.open("taxes.py", TAXES)
    uri = s.open("main.py", BODY + "\n")
    assert await s.inline(uri, LINE, COLUMN) == [ANSWER]
    [sent] = completion_posts(fake)
    snippet = shown(provider, sent)
    assert DEFINITION in snippet and "base * (1 + 0.01" in snippet


@pytest.mark.parametrize("fake", PROVIDERS, indirect=True)
async def test_the_definition_in_an_imported_workspace_file_reaches_the_provider(
    start_session: Any, fake: FakeServer, request: pytest.FixtureRequest, workspace: Path
) -> None:
    provider = request.node.callspec.params["fake"]
    (workspace / "billing").mkdir()
    (workspace / "billing" / "taxes.py").write_text(TAXES, encoding="utf-8")
    s = await start(start_session, provider, fake)
    head = "from billing.taxes import compute_tax_rate\n\n"
    uri = s.open("main.py", head + BODY + "\n")
    assert await s.inline(uri, LINE + 2, COLUMN) == [ANSWER]
    [sent] = completion_posts(fake)
    snippet = shown(provider, sent, "billing/taxes.py", head + BODY)
    assert DEFINITION in snippet and "base * (1 + 0.01" in snippet
    assert json.dumps(sent.body).count("billing/taxes.py") == 1  # one section for the file


@pytest.mark.parametrize("fake", ["openai", "ollama", "copilot"], indirect=True)
async def test_an_excluded_file_never_reaches_the_provider_open_or_imported(
    start_session: Any, fake: FakeServer, request: pytest.FixtureRequest, workspace: Path
) -> None:
    provider = request.node.callspec.params["fake"]
    (workspace / "secret_rates.py").write_text(SECRET, encoding="utf-8")
    (workspace / "taxes.py").write_text(TAXES, encoding="utf-8")
    privacy = {"privacy": {"exclude_extra": ["secret_*.py"]}}
    s = await start(start_session, provider, fake, **privacy)
    s.open("secret_rates.py", SECRET)
    head = "from secret_rates import compute_secret_rate\nfrom taxes import compute_tax_rate\n"
    uri = s.open("main.py", head + BODY + "\n")
    assert await s.inline(uri, LINE + 2, COLUMN) == [ANSWER]
    [sent] = completion_posts(fake)
    dumped = json.dumps(sent.body)
    assert DEFINITION in dumped  # the snippets are there...
    assert "0.42" not in dumped and "nobody outside" not in dumped  # ...but not that one


async def test_a_suggestion_made_with_other_snippets_is_not_reused(
    start_session: Any, openai_fake: FakeServer
) -> None:
    openai_fake.script.queue(Reply(text=ANSWER), Reply(text="rate(region)"))
    s: Session = await start_session(openai_options(openai_fake), KEYS)
    taxes = s.open("taxes.py", TAXES)
    uri = s.open("main.py", BODY + "\n")
    assert await s.inline(uri, LINE, COLUMN) == [ANSWER]
    s.client.text_document_did_close(
        lsp.DidCloseTextDocumentParams(lsp.TextDocumentIdentifier(taxes))
    )
    # The same cursor, but the model would no longer see compute_tax_rate: ask again.
    assert await s.inline(uri, LINE, COLUMN) == ["rate(region)"]
    first, second = completion_posts(openai_fake)
    assert DEFINITION in json.dumps(first.body) and DEFINITION not in json.dumps(second.body)
    assert await s.inline(uri, LINE, COLUMN) == ["rate(region)"]  # that one is cached
    assert len(completion_posts(openai_fake)) == 2


@pytest.mark.parametrize("fake", ["openai", "copilot"], indirect=True)
async def test_an_invoked_request_gets_up_to_three_alternatives_best_first(
    start_session: Any, fake: FakeServer, request: pytest.FixtureRequest
) -> None:
    provider = request.node.callspec.params["fake"]
    others = ("tax_rate(region, year)", ANSWER, "tax_rate('south', 2024)")
    fake.script.default = Reply(text=ANSWER, alternatives=others)
    s = await start(start_session, provider, fake)
    uri = s.open("main.py", BODY + "\n")
    assert await s.inline(uri, LINE, COLUMN) == [ANSWER]  # automatic: one, n not asked
    automatic = completion_posts(fake)[-1].body
    assert automatic.get("n", 1) == 1 and automatic["temperature"] == 0
    uri2 = s.open("other.py", BODY + "\n")  # a cursor nothing is cached for
    found = await s.inline(uri2, LINE, COLUMN, invoked=True)
    # Three asked; the repeat of the first is left out.
    assert found == [ANSWER, "tax_rate(region, year)"]
    invoked = completion_posts(fake)[-1].body
    assert invoked["n"] == 3 and invoked["temperature"] > 0
    assert await s.inline(uri2, LINE, COLUMN, invoked=True) == found  # kept together
    assert len(completion_posts(fake)) == 2


async def test_a_provider_with_one_answer_gives_one_when_invoked(
    start_session: Any, ollama_fake: FakeServer
) -> None:
    ollama_fake.script.default = Reply(text=ANSWER)
    s = await start(start_session, "ollama", ollama_fake)
    uri = s.open("main.py", BODY + "\n")
    assert await s.inline(uri, LINE, COLUMN, invoked=True) == [ANSWER]
    [sent] = completion_posts(ollama_fake)
    assert "n" not in sent.body and "n" not in sent.body["options"]


async def test_a_server_refusing_several_choices_is_asked_for_one(
    start_session: Any, llama: FakeServer
) -> None:
    """llama-server's OpenAI-style API answers `n` > 1 with a 400: the invoked request still
    gets its answer, at once, and later ones ask for one choice only."""
    llama.script.default = Reply(text=ANSWER)
    options = openai_options(llama)
    options["providers"]["openai"]["base_url"] = llama.base_url + "/v1"
    s: Session = await start_session(options, {"OPENAI_API_KEY": "sk-local"})
    uri = s.open("main.py", BODY + "\n")
    assert await s.inline(uri, LINE, COLUMN, invoked=True) == [ANSWER]
    other = s.open("other.py", BODY + "\n")
    assert await s.inline(other, LINE, COLUMN, invoked=True) == [ANSWER]
    asked = [r.body.get("n", 1) for r in completion_posts(llama)]
    assert asked == [3, 1, 1]
