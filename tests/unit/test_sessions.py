"""One App shared by many Sessions, in one process: what one editor window fetched serves
another, what one window configures stays its own, and one window closing leaves the others
working."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from reaper_lsp import config
from reaper_lsp.core.document import Position
from reaper_lsp.net.retry import RetryPolicy
from reaper_lsp.providers.base import CompletionRequest
from reaper_lsp.providers.chain import Chain
from reaper_lsp.services.app import App
from reaper_lsp.services.session import Session
from tests.unit.test_services import Fake

TEXT = "def shout(name):\n    return \n"
QUICK = {"completion": {"debounce_ms": 0, "prefetch": False}}


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return {"XDG_CONFIG_HOME": str(tmp_path / "xdg"), "HOME": str(tmp_path)}


def session(app: App, root: Path, options: dict[str, Any]) -> Session:
    root.mkdir(parents=True, exist_ok=True)
    s = Session(app, roots=[root], editor="test/1")
    s.apply(config.load(env=app.env, init_options=options, workspace_root=root))
    return s


def open_doc(s: Session, root: Path) -> str:
    uri = (root / "shout.py").as_uri()
    s.workspace.documents.open(uri, "python", 1, TEXT)
    return uri


async def test_one_app_two_sessions(tmp_path: Path, env: dict[str, str]) -> None:
    app = App(config.load(env=env), env=env)
    ai = Fake("openai", "name.upper()", "name.upper()")
    app.chain = Chain({"openai": ai}, policy=RetryPolicy(max_retries=0))
    first = session(app, tmp_path / "one", QUICK)
    offline = {"completion": {**QUICK["completion"], "providers": ["local"]}}
    second = session(app, tmp_path / "two", QUICK)
    third = session(app, tmp_path / "three", offline)
    try:
        # A suggestion fetched for one session is served to another at the same context.
        one = await first.completion.complete(open_doc(first, tmp_path / "one"), Position(1, 11))
        assert one is not None and (one.text, one.provider) == ("name.upper()", "openai")
        two = await second.completion.complete(open_doc(second, tmp_path / "two"), Position(1, 11))
        assert two is not None and (two.text, two.provider) == ("name.upper()", "openai")
        assert len(ai.requests) == 1
        request = ai.requests[0]
        assert isinstance(request, CompletionRequest) and request.editor == "test/1"

        # One session's overlay (providers = ["local"]) is its own: the others keep theirs.
        assert third.settings.completion.providers == ("local",)
        assert first.settings.completion.providers == config.Settings().completion.providers
        assert app.settings.completion.providers == config.Settings().completion.providers
        app.cache.clear()
        three = await third.completion.complete(
            open_doc(third, tmp_path / "three"), Position(1, 11)
        )
        assert three is None or three.provider == "local"
        assert len(ai.requests) == 1

        # Closing one session leaves the others working.
        await first.close()
        again = await second.completion.complete(
            (tmp_path / "two" / "shout.py").as_uri(), Position(1, 11), invoked=True
        )
        assert again is not None and again.provider == "openai"
        assert len(ai.requests) == 2
    finally:
        for s in (first, second, third):
            await s.close()
        await app.aclose()


async def test_status_notices_reach_every_session_and_stop_at_close(
    tmp_path: Path, env: dict[str, str]
) -> None:
    app = App(config.load(env=env), env=env)
    first, second = session(app, tmp_path / "a", {}), session(app, tmp_path / "b", {})
    heard: dict[str, list[object]] = {"a": [], "b": []}
    first.listen(heard["a"].append)
    second.listen(heard["b"].append)
    try:
        app.events.tell_once("copilot:quota", "Copilot's monthly quota is used up")
        assert len(heard["a"]) == len(heard["b"]) == 1
        await first.close()
        app.events.tell_once("openai:key", "openai rejected the API key")
        assert len(heard["a"]) == 1 and len(heard["b"]) == 2
    finally:
        await second.close()
        await app.aclose()


async def test_a_session_overlay_never_reaches_what_sessions_share(
    tmp_path: Path, env: dict[str, str]
) -> None:
    app = App(config.load(env=env), env=env)
    hostile = {
        "providers": {"openai": {"base_url": "https://evil.example/v1", "api_key": "sk-evil"}},
        "cache": {"max_entries": 1},
        "completion": {"max_tokens": 7},
    }
    s = session(app, tmp_path / "p", hostile)
    try:
        assert s.settings.completion.max_tokens == 7
        assert app.settings.providers == config.Settings().providers
        assert app.settings.cache == config.Settings().cache
        assert s.settings.providers == config.Settings().providers
    finally:
        await s.close()
        await app.aclose()


async def test_a_project_may_add_exclusions_and_turn_remote_off_never_take_them_back(
    tmp_path: Path, env: dict[str, str]
) -> None:
    user = Path(env["XDG_CONFIG_HOME"]) / "reaper-lsp" / "reaper.toml"
    user.parent.mkdir(parents=True)
    user.write_text('[privacy]\nexclude_extra = ["*.vault"]\n', encoding="utf-8")
    root = tmp_path / "project"
    root.mkdir()
    (root / ".reaper.toml").write_text(
        '[privacy]\nexclude = []\nexclude_extra = ["notes/*.txt"]\nremote = false\n',
        encoding="utf-8",
    )
    app = App(config.load(env=env), env=env)
    s = session(app, root, {"privacy": {"remote": True}})
    try:
        assert s.excluded((root / ".env").as_uri())  # the defaults stay
        assert s.excluded((root / "deploy" / "id_rsa").as_uri())
        assert s.excluded((root / "x.vault").as_uri())  # the user's own pattern stays
        assert s.excluded((root / "notes" / "todo.txt").as_uri())  # the project's addition
        assert not s.excluded((root / "notes.py").as_uri())
        assert s.excluded((Path(env["HOME"]) / ".aws" / "credentials").as_uri())
        assert not s.remote_allowed  # the project turned it off; its editor cannot turn it on
    finally:
        await s.close()
        await app.aclose()
