"""The HTTP boundary every request leaves through, against the fake providers over real
sockets: a private origin or a spent budget sends nothing, every body is scrubbed, and each
request is reported once — with the tokens each provider's wire format says it cost."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from reaper_lsp.core.types import CompletionContext
from reaper_lsp.net.client import Clients
from reaper_lsp.net.metrics import ProviderMetrics
from reaper_lsp.net.retry import RetryPolicy
from reaper_lsp.providers.base import (
    ChatMessage,
    ChatRequest,
    CompletionRequest,
    Exchange,
    Hold,
    Origin,
)
from reaper_lsp.providers.chain import Chain
from reaper_lsp.providers.claude import ClaudeProvider
from reaper_lsp.providers.errors import QuotaExhausted, Withheld, error_from_response
from reaper_lsp.providers.http import HTTPProvider
from reaper_lsp.providers.llamacpp import LlamaCppProvider
from reaper_lsp.providers.ollama import OllamaProvider
from reaper_lsp.providers.openai import OpenAIProvider
from reaper_lsp.settings import (
    ClaudeSettings,
    HttpSettings,
    LlamaCppSettings,
    OllamaSettings,
    OpenAISettings,
)
from tests.fakes import anthropic, ollama, openai
from tests.fakes.llamacpp import FakeLlamaServer
from tests.fakes.runner import FakeServer
from tests.fakes.script import Reply

AWS_KEY = "AKIA" + "ZQ3R7N2W" + "5X4Y6T2U"
CTX = CompletionContext(
    f'key = "{AWS_KEY}"\nvalue = ', "\n", "python", "a.py", uri="file:///p/a.py"
)


class Recording:
    """A ledger that keeps what it is told, and holds whom it is told to."""

    def __init__(self, holds: dict[str, Hold] | None = None) -> None:
        self.exchanges: list[Exchange] = []
        self.holds = holds or {}

    def held(self, provider: str) -> Hold | None:
        return self.holds.get(provider)

    def record(self, exchange: Exchange) -> None:
        self.exchanges.append(exchange)


def serve(app: Any) -> Iterator[FakeServer]:
    with FakeServer(app) as server:
        yield server


@pytest.fixture
def openai_fake() -> Iterator[FakeServer]:
    yield from serve(openai.create_app())


def clients() -> Clients:
    return Clients(HttpSettings(protocol="http1"))


def with_ledger(provider: HTTPProvider, ledger: Recording) -> Any:
    provider.ledger = ledger
    return provider


def openai_provider(fake: FakeServer, ledger: Recording) -> OpenAIProvider:
    settings = OpenAISettings(base_url=fake.base_url + "/v1")
    provider = OpenAIProvider(settings, env={"OPENAI_API_KEY": "sk-test"}, clients=clients(),
                              metrics=ProviderMetrics())  # fmt: skip
    return with_ledger(provider, ledger)  # type: ignore[no-any-return]


async def drain(stream: AsyncIterator[str]) -> str:
    return "".join([piece async for piece in stream])


async def test_a_private_origin_is_withheld_before_anything_is_sent(
    openai_fake: FakeServer,
) -> None:
    ledger = Recording()
    provider = openai_provider(openai_fake, ledger)
    private = Origin(path=".env", private=".env is excluded by [privacy] pattern '.env'")
    with pytest.raises(Withheld, match=r"not sent: \.env is excluded"):
        await drain(provider.stream_completion(CompletionRequest(CTX, origin=private)))
    assert openai_fake.script.requests == [] and ledger.exchanges == []


async def test_the_body_is_scrubbed_and_the_request_recorded_with_its_usage(
    openai_fake: FakeServer,
) -> None:
    openai_fake.script.queue(Reply(text="compute()"))
    ledger = Recording()
    provider = openai_provider(openai_fake, ledger)
    origin = Origin(client="nvim/0.11", path="a.py", language="python", prefix_bytes=40)
    assert await drain(provider.stream_completion(CompletionRequest(CTX, origin=origin))) == (
        "compute()"
    )
    [sent] = openai_fake.script.requests
    assert AWS_KEY.encode() not in sent.raw and b"<secret:aws-access-key>" in sent.raw
    assert sent.body["stream_options"] == {"include_usage": True}
    [exchange] = ledger.exchanges
    assert (exchange.provider, exchange.model, exchange.origin) == ("openai", "gpt-4o-mini", origin)
    assert exchange.scrubbed == 1 and exchange.sent_bytes == len(sent.raw)
    assert (exchange.tokens_in, exchange.tokens_out, exchange.outcome) == (9, 3, "ok")
    assert exchange.estimated_tokens == 12


async def test_a_held_provider_is_withheld_with_the_rest_the_ledger_asks(
    openai_fake: FakeServer,
) -> None:
    hold = Hold("today's token budget is spent", 120.0)
    provider = openai_provider(openai_fake, Recording({"openai": hold}))
    with pytest.raises(Withheld) as caught:
        await drain(provider.stream_completion(CompletionRequest(CTX)))
    assert caught.value.rest_for == 120.0
    assert caught.value.user_message == "openai: today's token budget is spent"
    assert str(caught.value) == "openai: today's token budget is spent"
    assert openai_fake.script.requests == []


async def test_a_quota_error_rests_the_provider_with_one_message(openai_fake: FakeServer) -> None:
    openai_fake.script.queue(Reply(status=429, error_type="insufficient_quota"))
    ledger = Recording()
    provider = openai_provider(openai_fake, ledger)
    with pytest.raises(QuotaExhausted) as caught:
        await drain(provider.stream_completion(CompletionRequest(CTX)))
    assert caught.value.rest_for == 3600.0 and "quota or credit" in caught.value.user_message
    assert ledger.exchanges[0].outcome == "error: QuotaExhausted (HTTP 429)"


def test_anthropic_credit_errors_are_quota_errors() -> None:
    body = anthropic.error_body(
        400, message="Your credit balance is too low to access the Anthropic API."
    )
    error = error_from_response("claude", 400, {}, json.dumps(body).encode(), 0.0)
    assert isinstance(error, QuotaExhausted)


async def test_a_stream_read_only_in_part_is_recorded_as_stopped(openai_fake: FakeServer) -> None:
    openai_fake.script.queue(Reply(text="a" * 40, chunk_size=4))
    ledger = Recording()
    stream = openai_provider(openai_fake, ledger).stream_completion(CompletionRequest(CTX))
    assert await anext(stream)
    await stream.aclose()  # type: ignore[attr-defined]
    for _ in range(100):  # the inner streams are closed as the loop finalizes them
        if ledger.exchanges:
            break
        await asyncio.sleep(0.01)
    [exchange] = ledger.exchanges
    assert exchange.outcome == "stopped" and exchange.tokens_out is None
    assert exchange.estimated_tokens >= exchange.sent_bytes // 4 + 1  # characters, estimated


async def test_the_chain_asks_no_remote_provider_for_a_private_origin(
    openai_fake: FakeServer,
) -> None:
    chain = Chain({"openai": openai_provider(openai_fake, Recording())},
                  policy=RetryPolicy(max_retries=0))  # fmt: skip
    request = ChatRequest((ChatMessage("user", "hi"),), origin=Origin(private="remote is off"))
    with pytest.raises(Exception, match="openai: remote is off"):
        await drain_chat(chain, request)
    assert openai_fake.script.requests == []


async def drain_chat(chain: Chain, request: ChatRequest) -> str:
    return "".join([piece async for _, piece in chain.chat(request, ["openai"], timeout=5)])


async def test_anthropic_usage_from_message_start_and_delta() -> None:
    with FakeServer(anthropic.create_app()) as fake:
        fake.script.queue(Reply(text="Hello there, friend"))
        ledger = Recording()
        settings = ClaudeSettings(base_url=fake.base_url + "/v1")
        claude = ClaudeProvider(settings, env={"ANTHROPIC_API_KEY": "sk-ant-test"},
                                clients=clients(), metrics=ProviderMetrics())  # fmt: skip
        request = ChatRequest((ChatMessage("user", "hi"),))
        assert await drain(with_ledger(claude, ledger).stream_chat(request)) == (
            "Hello there, friend"
        )
    [exchange] = ledger.exchanges
    assert (exchange.tokens_in, exchange.tokens_out) == (12, len("Hello there, friend") // 4 + 1)
    assert exchange.model == "claude-sonnet-4-5" and exchange.origin.purpose == "chat"


async def test_ollama_usage_from_the_eval_counts() -> None:
    with FakeServer(ollama.create_app()) as fake:
        fake.script.queue(Reply(text="upper()"))
        ledger = Recording()
        provider = OllamaProvider(OllamaSettings(base_url=fake.base_url), clients=clients(),
                                  metrics=ProviderMetrics())  # fmt: skip
        await drain(with_ledger(provider, ledger).stream_completion(CompletionRequest(CTX)))
    [exchange] = ledger.exchanges
    assert exchange.tokens_in is not None and exchange.tokens_in > 0
    assert exchange.tokens_out == len("upper()") // 4 + 1


async def test_llamacpp_usage_from_tokens_evaluated_and_predicted() -> None:
    app = FakeLlamaServer()
    with FakeServer(app) as fake:
        fake.script.queue(Reply(text="compute(x)"))
        ledger = Recording()
        provider = LlamaCppProvider(LlamaCppSettings(base_url=fake.base_url), env={},
                                    clients=clients(), metrics=ProviderMetrics())  # fmt: skip
        await drain(with_ledger(provider, ledger).stream_completion(CompletionRequest(CTX)))
    [exchange] = ledger.exchanges
    assert exchange.tokens_in == app.infills[-1].n_prompt_tokens
    assert exchange.tokens_out is not None and exchange.tokens_out > 0


async def test_a_request_that_got_no_answer_spends_nothing() -> None:
    ledger = Recording()
    settings = OpenAISettings(base_url="http://127.0.0.1:9/v1")  # discard: nothing listens
    provider = OpenAIProvider(settings, env={"OPENAI_API_KEY": "sk-test"}, clients=clients(),
                              metrics=ProviderMetrics())  # fmt: skip
    with pytest.raises(Exception, match="cannot connect"):
        await drain(with_ledger(provider, ledger).stream_completion(CompletionRequest(CTX)))
    [exchange] = ledger.exchanges
    assert exchange.outcome == "error: Unreachable" and exchange.estimated_tokens == 0


async def test_a_server_refusing_stream_options_is_asked_again_without_them(
    openai_fake: FakeServer,
) -> None:
    refusal = {"error": {"message": "Unrecognized request argument supplied: stream_options",
                         "type": "invalid_request_error", "param": None, "code": None}}  # fmt: skip
    openai_fake.script.queue(Reply(status=400, body=refusal), Reply(text="ok"), Reply(text="ok"))
    ledger = Recording()
    chain = Chain({"openai": openai_provider(openai_fake, ledger)},
                  policy=RetryPolicy(max_retries=1, base_backoff=0.001))  # fmt: skip
    request = ChatRequest((ChatMessage("user", "hi"),))
    assert await drain_chat(chain, request) == "ok"
    assert await drain_chat(chain, request) == "ok"
    first, second, third = openai_fake.script.requests
    assert "stream_options" in first.body
    assert "stream_options" not in second.body and "stream_options" not in third.body
    assert ledger.exchanges[-1].tokens_in is None  # not reported: estimated for budgets
