"""The pure parts of the Copilot-compatible surface: the suggestion ids that feed the usage
tally, the lenient decoding of the plugins' params, and Copilot's own settings keys, which the
config loader neither reads nor warns about."""

from __future__ import annotations

import pytest

from reaper_lsp import config
from reaper_lsp.core.document import Position
from reaper_lsp.lsp.copilot_params import DocParams, ItemParams, NotifyParams, decode
from reaper_lsp.lsp.features import create_server
from reaper_lsp.services.errors import InvalidRequest
from reaper_lsp.services.feedback import SuggestionFeedback
from reaper_lsp.services.usage import Usage
from tests.e2e import copilot_messages as cm


def tally(usage: Usage) -> dict[str, dict[str, dict[str, int]]]:
    return usage.snapshot()


def test_feedback_counts_shown_once_then_accepted_under_provider_and_language() -> None:
    usage = Usage()
    feedback = SuggestionFeedback(usage)
    key = feedback.issue("openai", "python", "total = compute_total(items)")
    for _ in range(3):  # copilot.vim says it on every redraw
        feedback.shown(key)
    feedback.accepted(key, cm.utf16_len("total = compute_total(items)"))
    feedback.accepted(key)  # said twice: counted once
    assert tally(usage) == {
        "openai": {"python": {"shown": 1, "accepted": 1, "partial": 0, "rejected": 0}}
    }


def test_feedback_a_shorter_accept_is_partial_and_the_rest_stays_on_offer() -> None:
    usage = Usage()
    feedback = SuggestionFeedback(usage)
    key = feedback.issue("local", "go", "fmt.Println(x)")
    feedback.accepted(key, 4)
    feedback.partial(key)
    feedback.rejected([key])
    assert tally(usage)["local"]["go"] == {"shown": 0, "accepted": 0, "partial": 2, "rejected": 1}


def test_feedback_ignores_ids_it_never_issued_and_forgets_old_ones() -> None:
    usage = Usage()
    feedback = SuggestionFeedback(usage, max_issued=2)
    first = feedback.issue("claude", "rust", "a")
    feedback.issue("claude", "rust", "b")
    feedback.issue("claude", "rust", "c")
    feedback.shown(first)  # pushed out by newer ones
    feedback.accepted("never-issued")
    feedback.rejected(["never-issued"])
    assert tally(usage) == {}


def test_params_decode_ignores_the_plugins_extra_fields() -> None:
    uri = "file:///p/a.py"
    p = decode(cm.copilot_lua_get_completions(uri, 7, 2, 12, "a.py"), DocParams, "getCompletions")
    assert (p.uri, p.version, p.cursor) == (uri, 7, Position(2, 12))
    item = {"insertText": "x", "command": {"command": cm.ACCEPT_COMMAND, "arguments": ["id-1"]}}
    shown = decode(cm.copilot_vim_did_partially_accept(item, 3), ItemParams, "partial")
    assert (shown.item.uuid, shown.acceptedLength) == ("id-1", 3)
    assert decode(cm.copilot_lsp_did_show_inline_edit({}), ItemParams, "shown").item.uuid is None


def test_params_decode_takes_what_pygls_hands_over() -> None:
    """pygls turns params of methods it does not know into namedtuples (`_` renamed)."""
    protocol = create_server().protocol
    params = cm.copilot_lua_notify_accepted("id-9", 12)
    message = protocol.structure_message(
        {"jsonrpc": "2.0", "id": 1, "method": "notifyAccepted", "params": params}
    )
    assert not isinstance(message.params, dict)
    assert decode(message.params, NotifyParams, "notifyAccepted") == NotifyParams("id-9", 12)


def test_params_decode_names_what_is_missing_or_wrong() -> None:
    with pytest.raises(InvalidRequest, match="position"):
        _ = decode({"textDocument": {"uri": "file:///a"}}, DocParams, "getCompletions").cursor
    with pytest.raises(InvalidRequest, match=r"notifyShown.*uuid"):
        decode({"_": True}, NotifyParams, "notifyShown")
    with pytest.raises(InvalidRequest, match="an object"):
        decode([1, 2], NotifyParams, "notifyShown")


def test_copilots_settings_keys_are_neither_read_nor_warned_about() -> None:
    lua = cm.copilot_lua_settings(proxy="http://proxy:3128", enterprise_uri="https://ghe.example")
    for settings in (
        lua["settings"],
        cm.copilot_lua_workspace_configuration()["settings"],
        cm.copilot_vim_settings()["settings"],
        cm.copilot_lsp_settings()["settings"],
    ):
        loaded = config.load(env={}, client_settings=settings)
        assert loaded.warnings == [] and loaded.errors == [], settings
    options = cm.copilot_vim_initialize_vim()["initializationOptions"]
    options["copilotIntegrationId"] = "vim"
    assert config.load(env={}, init_options=options).warnings == []


def test_our_own_keys_beside_them_still_count_and_still_warn() -> None:
    settings = {
        **cm.copilot_lua_settings(proxy="http://proxy:3128")["settings"],
        "completion": {"debounce_ms": 5, "debounse": 1},
        "http": {"proxy": "x", "read_timeout": 1},  # not Copilot's shape: ours, and refused
    }
    loaded = config.load(env={}, client_settings=settings)
    assert loaded.settings.completion.debounce_ms == 5
    assert any("completion.debounse" in w for w in loaded.warnings)
    assert any("http" in w for w in loaded.warnings)
