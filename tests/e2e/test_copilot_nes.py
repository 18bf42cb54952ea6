"""Next-edit suggestions through the real server, as copilot-lsp and sidekick.nvim ask for them
(`textDocument/copilotInlineEdit`): the offline engine's renames, a chat model's proposal
parsed from its answer, nothing from a garbage answer or for a document that changed
meanwhile, and never a model for an excluded file."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from tests.e2e import copilot_messages as cm
from tests.e2e.raw_client import RawClient, StartClient, start_client
from tests.e2e.test_copilot_clients import KEY, OFFLINE_ONLY, open_doc, openai_config, problems
from tests.fakes.runner import FakeServer
from tests.fakes.script import Reply

__all__ = ["start_client"]  # a fixture, used by name

AREA = "def area(width, height):\n    return width * height\n\n\nprint(area(2, 3))\n"
PRICES = (
    "TAX = 0.2\n\n\ndef net(price):\n    return price * (1 - TAX)\n\n\n"
    "def gross(price):\n    return price * (1 + TAX)\n"
)
ROUNDED = """<<<<<<< lines 5-5
    return price * (1 - TAX)
=======
    return round(price * (1 - TAX), 2)
>>>>>>>
"""


def change(client: RawClient, uri: str, version: int, at: tuple[int, int, int, int], text: str):
    """An incremental didChange, as Neovim sends it."""
    sl, sc, el, ec = at
    rng = {"start": {"line": sl, "character": sc}, "end": {"line": el, "character": ec}}
    client.notify(
        "textDocument/didChange",
        {
            "textDocument": {"uri": uri, "version": version},
            "contentChanges": [{"range": rng, "text": text}],
        },
    )


def applied(text: str, edits: list[dict[str, Any]]) -> str:
    """`text` with the edits made, last first (their ranges are all in its coordinates)."""
    lines = text.split("\n")
    for edit in sorted(
        edits,
        key=lambda e: (e["range"]["start"]["line"], e["range"]["start"]["character"]),
        reverse=True,
    ):
        start, end = edit["range"]["start"], edit["range"]["end"]
        head = lines[start["line"]][: start["character"]]
        tail = lines[end["line"]][end["character"] :]
        lines[start["line"] : end["line"] + 1] = (head + edit["text"] + tail).split("\n")
    return "\n".join(lines)


async def start_copilot_lsp(start: StartClient, workspace: Path, **kw: Any) -> RawClient:
    client = await start(cm.copilot_lsp_initialize(workspace.as_uri(), str(workspace)), **kw)
    cm.check_initialize_result(client.initialize_result)
    client.notify("workspace/didChangeConfiguration", cm.copilot_lsp_settings())
    return client


def nes_calls(fake: FakeServer) -> list[Any]:
    """The requests that asked the fake for next edits (completions go there too)."""
    return [
        r
        for r in fake.script.requests
        if r.body and "next edits" in str(r.body.get("messages", [{}])[0].get("content", ""))
    ]


async def test_renaming_a_parameter_proposes_its_other_uses_offline(
    start_client: StartClient, workspace: Path
) -> None:
    client = await start_copilot_lsp(start_client, workspace, user_config=OFFLINE_ONLY)
    uri = open_doc(client, workspace, "area.py", AREA)
    change(client, uri, 2, (0, 9, 0, 14), "w")  # `width` -> `w` in the signature
    still_typing = await client.request(
        "textDocument/copilotInlineEdit", cm.copilot_lsp_nes(uri, 2, 0, 10)
    )
    cm.check_nes_result(still_typing, uri, 2)
    assert still_typing == {"edits": []}  # the cursor is still at the end of the new name

    result = await client.request("textDocument/copilotInlineEdit", cm.sidekick_nes(uri, 2, 0, 9))
    cm.check_nes_result(result, uri, 2)
    edited = applied(AREA.replace("(width,", "(w,"), result["edits"])
    assert edited == AREA.replace("width", "w")
    [edit] = result["edits"]
    assert edit["range"] == {
        "start": {"line": 1, "character": 11},
        "end": {"line": 1, "character": 16},
    }
    shown = cm.copilot_lsp_did_show_inline_edit(edit)
    client.notify("textDocument/didShowInlineEdit", shown)
    accept = {"command": edit["command"]["command"], "arguments": edit["command"]["arguments"]}
    assert await client.request("workspace/executeCommand", accept) is None
    await client.close()
    assert problems(client) == []


async def test_a_chat_models_proposal_becomes_edits(
    start_client: StartClient, workspace: Path, openai_fake: FakeServer
) -> None:
    openai_fake.script.queue(Reply(text=ROUNDED))
    client = await start_copilot_lsp(
        start_client, workspace, user_config=openai_config(openai_fake), env=KEY
    )
    uri = open_doc(client, workspace, "prices.py", PRICES)
    change(client, uri, 2, (0, 6, 0, 9), "0.25")  # not a rename: the offline engine has nothing
    result = await client.request(
        "textDocument/copilotInlineEdit", cm.copilot_lsp_nes(uri, 2, 0, 9)
    )
    cm.check_nes_result(result, uri, 2)
    after = PRICES.replace("0.2\n", "0.25\n")
    assert applied(after, result["edits"]) == after.replace(
        "price * (1 - TAX)", "round(price * (1 - TAX), 2)"
    )
    [call] = nes_calls(openai_fake)
    system, user = (m["content"] for m in call.body["messages"])
    assert "<<<<<<< lines A-B" in system
    assert "-TAX = 0.2\n+TAX = 0.25" in user and "5 |     return price * (1 - TAX)" in user


async def test_a_garbage_answer_proposes_nothing(
    start_client: StartClient, workspace: Path, openai_fake: FakeServer
) -> None:
    openai_fake.script.queue(
        Reply(text="Sure! Consider rounding the prices.\n<<<<<<< lines 900-901\nx\n=======\n")
    )
    client = await start_copilot_lsp(
        start_client, workspace, user_config=openai_config(openai_fake), env=KEY
    )
    uri = open_doc(client, workspace, "prices.py", PRICES)
    change(client, uri, 2, (0, 6, 0, 9), "0.25")
    result = await client.request(
        "textDocument/copilotInlineEdit", cm.copilot_lsp_nes(uri, 2, 0, 9)
    )
    cm.check_nes_result(result, uri, 2)
    assert result == {"edits": []}
    assert len(nes_calls(openai_fake)) == 1


async def test_edits_for_a_document_changed_meanwhile_are_dropped(
    start_client: StartClient, workspace: Path, openai_fake: FakeServer
) -> None:
    openai_fake.script.queue(Reply(text=ROUNDED, first_byte_delay=1.0))
    client = await start_copilot_lsp(
        start_client, workspace, user_config=openai_config(openai_fake), env=KEY
    )
    uri = open_doc(client, workspace, "prices.py", PRICES)
    change(client, uri, 2, (0, 6, 0, 9), "0.25")
    pending = client.send("textDocument/copilotInlineEdit", cm.copilot_lsp_nes(uri, 2, 0, 9))
    assert await asyncio.to_thread(openai_fake.script.wait_for_requests, 1, 10)
    change(client, uri, 3, (1, 0, 1, 0), "# rates\n")  # typed while the model thinks
    result = await asyncio.wait_for(pending, 20)
    cm.check_nes_result(result, uri, 2)
    assert result == {"edits": []}


async def test_an_excluded_file_never_reaches_the_model_but_gets_offline_renames(
    start_client: StartClient, workspace: Path, openai_fake: FakeServer
) -> None:
    openai_fake.script.default = Reply(text=ROUNDED)
    config = openai_config(openai_fake)
    config["privacy"] = {"exclude_extra": ["secret_*.py"]}
    client = await start_copilot_lsp(start_client, workspace, user_config=config, env=KEY)
    for name in ("prices.py", "secret_prices.py"):
        uri = open_doc(client, workspace, name, PRICES)
        change(client, uri, 2, (0, 6, 0, 9), "0.25")
        result = await client.request(
            "textDocument/copilotInlineEdit", cm.copilot_lsp_nes(uri, 2, 0, 9)
        )
        cm.check_nes_result(result, uri, 2)
        if name == "prices.py":
            assert len(result["edits"]) == 1 and len(nes_calls(openai_fake)) == 1
        else:
            assert result == {"edits": []}
    assert len(nes_calls(openai_fake)) == 1  # only prices.py's text went upstream
    assert all("secret_prices" not in str(r.body) for r in openai_fake.script.requests)

    secret = (workspace / "secret_area.py").as_uri()
    open_doc(client, workspace, "secret_area.py", AREA)
    change(client, secret, 2, (0, 9, 0, 14), "w")
    result = await client.request(
        "textDocument/copilotInlineEdit", cm.copilot_lsp_nes(secret, 2, 0, 9)
    )
    cm.check_nes_result(result, secret, 2)
    assert [e["text"] for e in result["edits"]] == ["w"]
    assert len(nes_calls(openai_fake)) == 1


async def test_a_newer_request_answers_the_older_with_no_edits_and_stops_its_model_call(
    start_client: StartClient, workspace: Path, openai_fake: FakeServer
) -> None:
    """copilot-lsp shows every error it gets: a superseded request must answer, not fail."""
    openai_fake.script.queue(Reply(text=ROUNDED, first_byte_delay=5.0), Reply(text=ROUNDED))
    client = await start_copilot_lsp(
        start_client, workspace, user_config=openai_config(openai_fake), env=KEY
    )
    uri = open_doc(client, workspace, "prices.py", PRICES)
    change(client, uri, 2, (0, 6, 0, 9), "0.25")
    older = client.send("textDocument/copilotInlineEdit", cm.copilot_lsp_nes(uri, 2, 0, 9))
    assert await asyncio.to_thread(openai_fake.script.wait_for_requests, 1, 10)
    newer = await client.request("textDocument/copilotInlineEdit", cm.sidekick_nes(uri, 2, 0, 8))
    assert await asyncio.wait_for(older, 3) == {"edits": []}
    cm.check_nes_result(newer, uri, 2)
    assert len(newer["edits"]) == 1
    assert await asyncio.to_thread(openai_fake.script.requests[0].disconnected.wait, 5)
