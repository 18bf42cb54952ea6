"""A session's privacy policy and suggestion switches, in one process: the rule that keeps a
document local is named, a workspace file only tightens, the switches follow the settings until
`reaper.toggle` overrides them, and every session of one App agrees on the toggles."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from reaper_lsp import config
from reaper_lsp.core.document import Position
from reaper_lsp.net.retry import RetryPolicy
from reaper_lsp.providers.chain import Chain
from reaper_lsp.services.app import App
from reaper_lsp.services.completion import PREFETCH_WAIT_MAX
from reaper_lsp.services.errors import InvalidRequest
from reaper_lsp.services.session import Session
from tests.unit.test_services import Fake

QUICK = {"debounce_ms": 0, "prefetch": False}


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return {"XDG_CONFIG_HOME": str(tmp_path / "xdg"), "HOME": str(tmp_path / "home"),
            "XDG_STATE_HOME": str(tmp_path / "state")}  # fmt: skip


@pytest.fixture
def app(env: dict[str, str]) -> App:
    return App(config.load(env=env), env=env)


def session(app: App, root: Path, completion: dict[str, Any] | None = None) -> Session:
    root.mkdir(parents=True, exist_ok=True)
    s = Session(app, roots=[root], editor="nvim/0.11")
    options = {"completion": {**QUICK, **(completion or {})}}
    s.apply(config.load(env=app.env, init_options=options, workspace_root=root))
    return s


def test_the_rule_that_keeps_a_document_local_is_named(app: App, tmp_path: Path) -> None:
    s = session(app, tmp_path / "p")
    policy = s.policy
    assert policy.private((tmp_path / "p" / "app.py").as_uri()) == ""
    env = (tmp_path / "p" / "config" / ".env.local").as_uri()
    assert policy.excluded_by(env) == "config/.env.local is excluded by [privacy] pattern '.env.*'"
    aws = (tmp_path / "home" / ".aws" / "credentials").as_uri()
    assert (
        policy.excluded_by(aws)
        == "credentials is a secret store under the home directory, never sent"
    )
    assert s.excluded(aws) and not s.excluded((tmp_path / "p" / "app.py").as_uri())


def test_a_workspace_file_adds_exclusions_and_turns_remote_off(app: App, tmp_path: Path) -> None:
    root = tmp_path / "p"
    root.mkdir()
    (root / ".reaper.toml").write_text(
        '[privacy]\nexclude_extra = ["settings_local.py"]\nremote = false\n', encoding="utf-8"
    )
    s = session(app, root)
    local = (root / "settings_local.py").as_uri()
    assert s.policy.excluded_by(local).endswith("pattern 'settings_local.py'")
    assert s.policy.private((root / "app.py").as_uri()) == (
        "remote providers are off for this project ([privacy] remote = false)"
    )
    origin = s.policy.origin("completion", (root / "app.py").as_uri(), "python", prefix="é")
    assert origin.private and origin.client == "nvim/0.11" and origin.prefix_bytes == 2


def test_switches_follow_the_settings_and_an_allow_list_wins(app: App, tmp_path: Path) -> None:
    uri = (tmp_path / "p" / "a.md").as_uri()
    denied = session(app, tmp_path / "p", {"disabled_languages": ["Markdown"]})
    assert not denied.policy.enabled(uri, "markdown") and denied.policy.enabled(uri, "python")
    allowed = session(app, tmp_path / "q", {"enabled_languages": ["python"],
                                             "disabled_languages": ["python"]})  # fmt: skip
    assert allowed.policy.enabled(uri, "python") and not allowed.policy.enabled(uri, "rust")
    off = session(app, tmp_path / "r", {"enabled": False})
    assert not off.policy.enabled(uri, "python")


def test_every_session_of_one_app_agrees_on_the_toggles(app: App, tmp_path: Path) -> None:
    one, two = session(app, tmp_path / "one"), session(app, tmp_path / "two")
    a = (tmp_path / "one" / "a.py").as_uri()
    b = (tmp_path / "two" / "b.py").as_uri()
    one.workspace.documents.open(a, "python", 1, "x = 1\n")
    assert one.policy.toggle("language", a) == {
        "scope": "language", "enabled": False, "language": "python"
    }  # fmt: skip
    assert not two.policy.enabled(b, "python") and two.policy.enabled(b, "rust")
    assert two.policy.toggle("global") == {"scope": "global", "enabled": False}
    assert not one.policy.enabled(a, "rust")
    two.policy.toggle("global")
    # A workspace is switched off by its root: the other session's project is not.
    assert one.policy.toggle("workspace", a)["workspace"] == str(tmp_path / "one")
    assert not one.policy.enabled(a, "rust") and two.policy.enabled(b, "rust")
    assert two.status().to_json()["suggestions"]["toggles"] == {  # type: ignore[index]
        "global": True, "languages": {"python": False},
        "workspaces": {str(tmp_path / "one"): False},
    }  # fmt: skip
    with pytest.raises(InvalidRequest, match="needs the textDocument"):
        one.policy.toggle("language")
    with pytest.raises(InvalidRequest, match="scope must be one of"):
        one.policy.toggle("file", a)


async def test_a_toggled_off_language_asks_no_provider(app: App, tmp_path: Path) -> None:
    fake = Fake("openai", "one", "two")
    app.chain = Chain({"openai": fake}, policy=RetryPolicy(max_retries=0))
    s = session(app, tmp_path / "p", {"providers": ["openai"]})
    uri = (tmp_path / "p" / "a.py").as_uri()
    s.workspace.documents.open(uri, "python", 1, "x = \n")
    s.policy.toggle("language", uri)
    assert await s.completion.complete(uri, Position(0, 4), invoked=True) is None
    assert fake.requests == []
    s.policy.toggle("language", uri)
    found = await s.completion.complete(uri, Position(0, 4), invoked=True)
    assert found is not None and found.text == "one" and len(fake.requests) == 1
    await s.close()


async def test_an_excluded_document_without_excluded_local_gets_nothing(
    app: App, tmp_path: Path
) -> None:
    fake = Fake("openai", "remote")
    app.chain = Chain({"openai": fake}, policy=RetryPolicy(max_retries=0))
    root = tmp_path / "p"
    root.mkdir()
    (root / ".reaper.toml").write_text("[privacy]\nexcluded_local = false\n", encoding="utf-8")
    s = session(app, root, {"providers": ["openai"]})
    uri = (root / ".env").as_uri()
    s.workspace.documents.open(uri, "dotenv", 1, "TOKEN_NAME = TOKEN_\n")
    assert await s.completion.complete(uri, Position(0, 19), invoked=True) is None
    assert fake.requests == []
    await s.close()


def test_the_usage_tally_feeds_the_audit_log(app: App) -> None:
    app.usage.feedback("accepted", "openai", "python")
    app.ledger.close()
    lines = app.ledger.path.read_text(encoding="utf-8").splitlines()
    assert '"event": "feedback"' in lines[0] and '"kind": "accepted"' in lines[0]


def test_without_a_folder_the_workspace_is_the_documents_folder(app: App, tmp_path: Path) -> None:
    s = Session(app, roots=[], editor="nvim/0.11")
    a = (tmp_path / "src" / "a.py").as_uri()
    deeper = (tmp_path / "src" / "pkg" / "b.py").as_uri()
    elsewhere = (tmp_path / "docs" / "c.py").as_uri()
    assert s.policy.toggle("workspace", a) == {
        "scope": "workspace", "enabled": False, "workspace": str(tmp_path / "src")
    }  # fmt: skip
    assert not s.policy.enabled(a, "python") and not s.policy.enabled(deeper, "python")
    assert s.policy.enabled(elsewhere, "python")
    with pytest.raises(InvalidRequest, match="needs the textDocument"):
        s.policy.toggle("workspace")


async def test_switching_off_cancels_the_prefetch_of_a_suggestion_shown(
    app: App, tmp_path: Path
) -> None:
    fake = Fake("openai", "name.upper()", "ahead")
    app.chain = Chain({"openai": fake}, policy=RetryPolicy(max_retries=0))
    s = session(app, tmp_path / "p", {"providers": ["openai"], "prefetch": True})
    uri = (tmp_path / "p" / "a.py").as_uri()
    s.workspace.documents.open(uri, "python", 1, "def f(name):\n    return \n")
    shown = await s.completion.complete(uri, Position(1, 11), invoked=True)
    assert shown is not None and shown.text == "name.upper()"
    s.policy.toggle("global")  # before the prefetch after it goes out
    await asyncio.sleep(PREFETCH_WAIT_MAX + 0.2)
    assert len(fake.requests) == 1
    await s.close()
