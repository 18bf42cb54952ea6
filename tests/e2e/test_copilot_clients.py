"""copilot.lua, copilot.vim and copilot-lsp against the real server over stdio: their exact
requests (tests/e2e/copilot_messages.py) replayed, and every answer read by the `check_*`
validators of the fields those plugins use — status, sign-in through a fake GitHub, ghost text,
accept and partial accept, cycling and both panels."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.e2e import copilot_messages as cm
from tests.e2e.raw_client import RawClient, StartClient, start_client
from tests.e2e.test_copilot import options as copilot_options
from tests.e2e.test_emacs import github_fake
from tests.fakes.runner import FakeServer
from tests.fakes.script import Reply

__all__ = ["github_fake", "start_client"]  # fixtures, used by name

KEY = {"OPENAI_API_KEY": "sk-test"}
OFFLINE_ONLY = {
    "completion": {"providers": [], "debounce_ms": 0, "prefetch": False},
    "chat": {"providers": []},
}
SOURCE = "total = compute_total(items)\nprint(total)\ntotal = comp\n"
LINE, CURSOR = 2, 12  # after "total = comp": the offline engine offers "ute_total(items)"
OFFLINE_TEXT = "ute_total(items)"


def openai_config(fake: FakeServer) -> dict[str, Any]:
    return {
        "completion": {"providers": ["openai"], "debounce_ms": 0, "prefetch": False},
        "chat": {"providers": ["openai"]},
        "providers": {"openai": {"base_url": fake.base_url + "/v1"}},
    }


def open_doc(client: RawClient, workspace: Path, name: str, text: str, version: int = 1) -> str:
    uri = (workspace / name).as_uri()
    item = {"uri": uri, "languageId": "python", "version": version, "text": text}
    client.notify("textDocument/didOpen", {"textDocument": item})
    return uri


async def start_copilot_lua(start: StartClient, workspace: Path, **kw: Any) -> RawClient:
    """copilot.lua's start: initialize, then Neovim's settings, its own, and setTrace."""
    client = await start(cm.copilot_lua_initialize(workspace.as_uri(), str(workspace)), **kw)
    cm.check_initialize_result(client.initialize_result)
    client.notify(
        "workspace/didChangeConfiguration", cm.copilot_lua_settings(proxy="http://p:3128")
    )
    client.notify("workspace/didChangeConfiguration", cm.copilot_lua_workspace_configuration())
    client.notify("$/setTrace", cm.copilot_lua_set_trace())
    return client


def problems(client: RawClient) -> list[str]:
    """Log lines a plugin's messages should never cause: config warnings, failed handlers."""
    words = ("unknown key", "cannot be set", "failed", "Traceback", "unknown method")
    return [line for line in client.log_text().splitlines() if any(w in line for w in words)]


async def test_copilot_lua_gets_ghost_text_from_the_offline_engine_and_reports_back(
    start_client: StartClient, workspace: Path
) -> None:
    client = await start_copilot_lua(start_client, workspace, user_config=OFFLINE_ONLY)
    for params in (cm.copilot_lua_check_status(), cm.copilot_lua_check_status(True)):
        status = await client.request("checkStatus", params)
        cm.check_copilot_lua_check_status_result(status)
        assert status == {"status": "OK", "user": "reaper (local)"}
    cm.check_status_notification(await client.wait_for("statusNotification"))
    changed = await client.wait_for("didChangeStatus")
    cm.check_did_change_status(changed)
    assert changed["kind"] == "Normal"

    uri = open_doc(client, workspace, "totals.py", SOURCE)
    params = cm.copilot_lua_get_completions(uri, 7, LINE, CURSOR, "totals.py")
    result = await client.request("getCompletions", params)
    cm.check_copilot_lua_completions_result(result, "total = comp", LINE, CURSOR)
    [item] = result["completions"]
    assert (item["text"], item["displayText"]) == ("total = compute_total(items)", OFFLINE_TEXT)

    uuid = item["uuid"]
    assert await client.request("notifyShown", cm.copilot_lua_notify_shown(uuid)) is None
    length = cm.utf16_len(item["text"])
    accepted = cm.copilot_lua_notify_accepted(uuid, length)
    assert await client.request("notifyAccepted", accepted) is None
    rejected = cm.copilot_lua_notify_rejected([uuid, "not-one-of-ours"])
    assert await client.request("notifyRejected", rejected) is None
    await client.close()
    assert problems(client) == []


async def test_copilot_lua_cycling_and_panel_offer_each_providers_own_answer(
    start_client: StartClient, workspace: Path, openai_fake: FakeServer
) -> None:
    openai_fake.script.default = Reply(text="ute_grand_total()")
    client = await start_copilot_lua(
        start_client, workspace, user_config=openai_config(openai_fake), env=KEY
    )
    assert (await client.request("checkStatus", cm.copilot_lua_check_status()))["user"] == (
        "reaper (openai)"
    )
    uri = open_doc(client, workspace, "totals.py", SOURCE)
    params = cm.copilot_lua_get_completions_cycling(uri, 3, LINE, CURSOR, "totals.py")
    result = await client.request("getCompletionsCycling", params)
    cm.check_copilot_lua_completions_result(result, "total = comp", LINE, CURSOR)
    assert [c["displayText"] for c in result["completions"]] == ["ute_grand_total()", OFFLINE_TEXT]
    assert len({c["uuid"] for c in result["completions"]}) == 2

    panel_id = cm.copilot_lua_panel_id(1, "totals.py")
    params = cm.copilot_lua_get_panel_completions(uri, 3, LINE, CURSOR, "totals.py", panel_id)
    answer = await client.request("getPanelCompletions", params)
    cm.check_copilot_lua_panel_result(answer)
    done = await client.wait_for("PanelSolutionsDone")
    cm.check_copilot_lua_panel_done(done, panel_id)
    solutions = [p for m, p in client.notifications if m == "PanelSolution"]
    for solution in solutions:
        cm.check_copilot_lua_panel_solution(solution, panel_id, LINE)
    assert answer["solutionCountTarget"] == len(solutions) == 2
    order = [a for a in client.arrivals if "Panel" in a]  # copilot.vim 1.26 drops them before
    assert order == [
        "answer:getPanelCompletions",
        "PanelSolution",
        "PanelSolution",
        "PanelSolutionsDone",
    ]
    assert {s["completionText"] for s in solutions} == {
        "total = compute_grand_total()",
        "total = compute_total(items)",
    }
    accepted = cm.copilot_lua_notify_accepted(solutions[0]["solutionId"])
    assert await client.request("notifyAccepted", accepted) is None


async def test_copilot_vim_in_vim_shows_accepts_in_part_and_in_full(
    start_client: StartClient, workspace: Path
) -> None:
    client = await start_client(cm.copilot_vim_initialize_vim(), user_config=OFFLINE_ONLY)
    cm.check_initialize_result(client.initialize_result)
    client.notify("workspace/didChangeConfiguration", cm.copilot_vim_settings())
    cm.check_copilot_lua_check_status_result(
        await client.request("checkStatus", cm.copilot_vim_check_status())
    )
    uri = (workspace / "totals.py").as_uri()
    client.notify("textDocument/didOpen", cm.copilot_vim_did_open(uri, "python", 40, "x = 1\n"))
    client.notify("textDocument/didChange", cm.copilot_vim_did_change_full(uri, 41, SOURCE))
    params = cm.copilot_vim_inline_completion(uri, 41, LINE, CURSOR)
    result = await client.request("textDocument/inlineCompletion", params)
    cm.check_copilot_vim_inline_completion_result(result, "total = comp", LINE, CURSOR)
    [item] = result["items"]
    assert item["insertText"] == OFFLINE_TEXT
    assert item["command"]["command"] == cm.ACCEPT_COMMAND and item["command"]["arguments"]

    for _ in range(2):  # on every redraw
        client.notify("textDocument/didShowCompletion", cm.copilot_vim_did_show_completion(item))
    length = cm.copilot_vim_accepted_length("total = comp", "ute_", item)
    partial = cm.copilot_vim_did_partially_accept(item, length)
    client.notify("textDocument/didPartiallyAcceptCompletion", partial)
    accept = cm.copilot_vim_accept_command(item)
    assert await client.request("workspace/executeCommand", accept) is None
    cm.check_copilot_lua_check_status_result(await client.request("checkStatus", {}))
    await client.close()
    assert problems(client) == []


async def test_copilot_vim_panel_streams_its_items_as_partial_results(
    start_client: StartClient, workspace: Path, openai_fake: FakeServer
) -> None:
    openai_fake.script.default = Reply(text="ute_grand_total()")
    client = await start_client(
        cm.copilot_vim_initialize_nvim(), user_config=openai_config(openai_fake), env=KEY
    )
    uri = open_doc(client, workspace, "totals.py", SOURCE)
    params = cm.copilot_vim_panel_completion(uri, 1, LINE, CURSOR, 11, 12)
    final = await client.request("textDocument/copilotPanelCompletion", params)
    partials = client.progress(11)
    cm.check_copilot_vim_panel_result(final, partials)
    items = [item for value in partials for item in value["items"]]
    cm.check_inline_items(items, "total = comp", LINE, CURSOR, cm.NEOVIM_EXEC_COMMANDS)
    assert [i["insertText"] for i in items] == [
        "total = compute_grand_total()",
        "total = compute_total(items)",
    ]
    work = client.progress(12)
    assert [v["kind"] for v in work] == ["begin", "report", "end"]
    assert work[1]["percentage"] == 100 and work[1]["message"] == "2/2"


async def test_copilot_lua_signs_in_to_github_then_ghost_text_comes_from_copilot(
    start_client: StartClient, workspace: Path, github_fake: FakeServer
) -> None:
    github_fake.script.default = Reply(text="name.upper()")
    client = await start_copilot_lua(
        start_client, workspace, user_config=copilot_options(github_fake)
    )
    told = await client.wait_for("didChangeStatus")
    cm.check_did_change_status(told)
    assert told["kind"] == "Error" and "not signed into" in told["message"]
    status = await client.request("checkStatus", cm.copilot_lua_check_status())
    assert status == {"status": "OK", "user": "reaper (local)"}  # the offline engine completes

    started = await client.request("signInInitiate", cm.copilot_lua_sign_in_initiate())
    cm.check_copilot_lua_sign_in_initiate_result(started)
    assert started["userCode"].startswith("ABCD-")
    seen = len(client.notifications)
    confirm = cm.copilot_lua_sign_in_confirm(started["userCode"])
    confirmed = await client.request("signInConfirm", confirm)
    cm.check_copilot_lua_sign_in_confirm_result(confirmed)
    assert confirmed == {"status": "OK", "user": "octocat"}
    normal = await client.wait_for("statusNotification", after=seen)
    cm.check_status_notification(normal)
    assert normal["status"] == "Normal" and "copilot" in normal["message"]
    status = await client.request("checkStatus", cm.copilot_lua_check_status())
    assert status == {"status": "OK", "user": "octocat"}
    again = await client.request("signInInitiate", cm.copilot_lua_sign_in_initiate())
    assert again == {"status": "AlreadySignedIn", "user": "octocat"}

    uri = open_doc(client, workspace, "greet.py", "def greet(name):\n    return \n")
    params = cm.copilot_lua_get_completions(uri, 9, 1, 11, "greet.py")
    result = await client.request("getCompletions", params)
    cm.check_copilot_lua_completions_result(result, "    return ", 1, 11)
    assert [c["text"] for c in result["completions"]] == ["    return name.upper()"]

    assert await client.request("signOut", cm.copilot_lua_sign_out()) == {"status": "NotSignedIn"}
    status = await client.request("checkStatus", cm.copilot_lua_check_status())
    assert status == {"status": "OK", "user": "reaper (local)"}


async def test_a_failed_sign_in_confirm_is_an_answer_copilot_lua_prints(
    start_client: StartClient, workspace: Path, github_fake: FakeServer
) -> None:
    client = await start_copilot_lua(
        start_client, workspace, user_config=copilot_options(github_fake)
    )
    answer = await client.request("signInConfirm", cm.copilot_lua_sign_in_confirm("ABCD-0000"))
    cm.check_copilot_lua_sign_in_confirm_result(answer)
    assert answer["status"] == "Error" and "no sign-in is in progress" in answer["error"]["message"]


async def test_copilot_lsp_signs_in_with_the_command_it_was_given(
    start_client: StartClient, workspace: Path, github_fake: FakeServer
) -> None:
    client = await start_client(
        cm.copilot_lsp_initialize(workspace.as_uri(), str(workspace)),
        user_config=copilot_options(github_fake),
    )
    cm.check_initialize_result(client.initialize_result)
    client.notify("workspace/didChangeConfiguration", cm.copilot_lsp_settings())
    started = await client.request("signIn", cm.copilot_lsp_sign_in())
    cm.check_sign_in_result(started)
    command = started["command"]
    finished = await client.request(
        "workspace/executeCommand",
        {"command": command["command"], "arguments": command["arguments"]},
    )
    assert finished == {"status": "OK", "user": "octocat"}
    assert await client.request("signIn", cm.copilot_lsp_sign_in()) == {
        "status": "AlreadySignedIn",
        "user": "octocat",
    }


async def test_version_and_models_name_what_serves(
    start_client: StartClient, workspace: Path, openai_fake: FakeServer
) -> None:
    client = await start_client(
        cm.copilot_vim_initialize_vim(), user_config=openai_config(openai_fake), env=KEY
    )
    version = await client.request("getVersion", cm.copilot_vim_get_version())
    assert version["version"] == client.initialize_result["serverInfo"]["version"]
    models = await client.request("copilot/models", cm.copilot_lua_get_models())
    assert [(m["id"], m["scopes"], m["default"]) for m in models] == [
        ("openai/gpt-4o-mini", ["completion"], True),
        ("openai/gpt-4o", ["chat-panel"], True),
    ]


async def test_other_editors_get_no_copilot_status_notifications(
    start_client: StartClient, workspace: Path
) -> None:
    """lsp-mode warns of every notification it does not know."""
    plain = {"processId": None, "rootUri": workspace.as_uri(), "capabilities": {}}
    client = await start_client(plain, user_config=OFFLINE_ONLY)
    uri = open_doc(client, workspace, "totals.py", SOURCE)
    params = {"textDocument": {"uri": uri}, "position": {"line": LINE, "character": CURSOR},
              "context": {"triggerKind": 1}}  # fmt: skip
    result = await client.request("textDocument/inlineCompletion", params)
    assert [i["insertText"] for i in result["items"]] == [OFFLINE_TEXT]
    assert "range" not in result["items"][0]  # copilot.vim's shape is for copilot.vim only
    assert not {"statusNotification", "didChangeStatus"} & {m for m, _ in client.notifications}
