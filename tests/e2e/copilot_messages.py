"""The messages copilot.lua, copilot.vim, copilot-lsp and sidekick.nvim send a Copilot language
server, and checks of the result shapes those plugins read.

This is the executable half of docs/copilot-protocol.md: e2e tests replay these params over stdio
(CI cannot run the plugins) and pass the answers to the `check_*` functions, which raise
AssertionError naming the field a plugin would trip on. Data and shape checks only.
"""

from __future__ import annotations

from typing import Any

JSON = dict[str, Any]

NEOVIM_VERSION = "0.11.2"
VIM_VERSION = "9.1.0"
COPILOT_LUA_PLUGIN = {"name": "copilot.lua", "version": "1.515.0"}
COPILOT_VIM_PLUGIN = {"name": "copilot.vim", "version": "1.40.0"}
COPILOT_LSP_PLUGIN = {"name": "Github Copilot LSP for Neovim", "version": "0.0.1"}

ACCEPT_COMMAND = "github.copilot.didAcceptCompletionItem"
FINISH_DEVICE_FLOW_COMMAND = "github.copilot.finishDeviceFlow"
NEOVIM_EXEC_COMMANDS = (ACCEPT_COMMAND, FINISH_DEVICE_FLOW_COMMAND)
"""Neovim's `Client:exec_cmd` sends a command only if the server advertised its name."""

COPILOT_LUA_DISABLED_FILETYPES = tuple(
    sorted(("yaml", "markdown", "help", "gitcommit", "gitrebase", "hgcommit", "svn", "cvs", "."))
)
"""Filetypes copilot.lua disables unless the user enables them, as sent in disabledLanguages."""

STATUS_KINDS = ("Normal", "Error", "Warning", "Inactive")
STATUS_NOTIFICATION_STATUSES = ("", "Normal", "InProgress", "Warning", "Error")
INLINE_TRIGGER_INVOKED = 1
INLINE_TRIGGER_AUTOMATIC = 2


def utf16_len(text: str) -> int:
    """Length in UTF-16 code units, the unit of every position these plugins send."""
    return len(text) + sum(1 for ch in text if ord(ch) > 0xFFFF)


def _pos(line: int, character: int) -> JSON:
    return {"line": line, "character": character}


def _range(start_line: int, start_char: int, end_line: int, end_char: int) -> JSON:
    return {"start": _pos(start_line, start_char), "end": _pos(end_line, end_char)}


def _neovim_capabilities() -> JSON:
    """The parts of `vim.lsp.protocol.make_client_capabilities()` a server's choices depend on.

    Neovim lists UTF-8 first: a server that follows client preference would get UTF-8 ranges in
    Neovim's didChange while copilot.lua and copilot-lsp compute UTF-16 positions themselves.
    """
    return {
        "general": {"positionEncodings": ["utf-8", "utf-16", "utf-32"]},
        "textDocument": {
            "synchronization": {
                "dynamicRegistration": False,
                "willSave": True,
                "willSaveWaitUntil": True,
                "didSave": True,
            },
            "completion": {"completionItem": {"snippetSupport": False}},
        },
        "window": {
            "workDoneProgress": True,
            "showMessage": {"messageActionItem": {"additionalPropertiesSupport": True}},
            "showDocument": {"support": True},
        },
        "workspace": {
            "workspaceFolders": True,
            "configuration": True,
            "didChangeConfiguration": {"dynamicRegistration": False},
            "applyEdit": True,
        },
    }


# ---------------------------------------------------------------------------------------------
# initialize and configuration
# ---------------------------------------------------------------------------------------------


def copilot_lua_initialize(root_uri: str, root_name: str, process_id: int = 4242) -> JSON:
    """copilot.lua's `vim.lsp.start`: Neovim's capabilities with `workspace` replaced."""
    capabilities = _neovim_capabilities()
    capabilities["workspace"] = {"workspaceFolders": True}
    return {
        "processId": process_id,
        "clientInfo": {"name": "Neovim", "version": NEOVIM_VERSION},
        "rootUri": root_uri,
        "rootPath": root_name,
        "workspaceFolders": [{"uri": root_uri, "name": root_name}],
        "capabilities": capabilities,
        "initializationOptions": {
            "editorInfo": {"name": "Neovim", "version": NEOVIM_VERSION},
            "editorPluginInfo": dict(COPILOT_LUA_PLUGIN),
        },
        "trace": "off",
    }


def copilot_lua_settings(proxy: str | None = None, enterprise_uri: str | None = None) -> JSON:
    """First didChangeConfiguration: Neovim sends the client's `settings` after `initialized`."""
    settings: JSON = {"telemetry": {"telemetryLevel": "all"}, "advanced": {"timeout": 30000}}
    if proxy is not None:
        settings["http"] = {"proxy": proxy, "proxyStrictSSL": False}
    if enterprise_uri is not None:
        settings["github-enterprise"] = {"uri": enterprise_uri}
    return {"settings": settings}


def copilot_lua_workspace_configuration(
    model: str = "",
    enable_auto_completions: bool = True,
    disabled_languages: tuple[str, ...] = COPILOT_LUA_DISABLED_FILETYPES,
) -> JSON:
    """Second didChangeConfiguration, sent from copilot.lua's on_init (and on model change)."""
    return {
        "settings": {
            "github": {"copilot": {"selectedCompletionModel": model}},
            "enableAutoCompletions": enable_auto_completions,
            "disabledLanguages": [{"languageId": lang} for lang in sorted(disabled_languages)],
        }
    }


def copilot_lua_set_trace() -> JSON:
    return {"value": "off"}


def copilot_vim_initialize_vim(process_id: int = 4242) -> JSON:
    """copilot.vim under Vim: its own client, no textDocument capabilities and no root."""
    return {
        "initializationOptions": {
            "editorInfo": {"name": "Vim", "version": VIM_VERSION},
            "editorPluginInfo": dict(COPILOT_VIM_PLUGIN),
        },
        "workspaceFolders": [],
        "capabilities": {
            "workspace": {"workspaceFolders": True},
            "window": {"showDocument": {"support": True}},
        },
        "processId": process_id,
    }


def copilot_vim_initialize_nvim(process_id: int = 4242) -> JSON:
    """copilot.vim under Neovim: `vim.lsp.start_client` without root_dir or folders."""
    return {
        "processId": process_id,
        "clientInfo": {"name": "Neovim", "version": NEOVIM_VERSION},
        "rootUri": None,
        "rootPath": None,
        "workspaceFolders": None,
        "capabilities": _neovim_capabilities(),
        "initializationOptions": {
            "editorInfo": {"name": "Neovim", "version": NEOVIM_VERSION},
            "editorPluginInfo": dict(COPILOT_VIM_PLUGIN),
        },
        "trace": "off",
    }


def copilot_vim_settings(proxy: str | None = None, enterprise_uri: str | None = None) -> JSON:
    """copilot.vim's didChangeConfiguration: nulls are sent, not omitted."""
    return {
        "settings": {
            "http": {"proxy": proxy, "proxyStrictSSL": None},
            "github-enterprise": {"uri": enterprise_uri},
        }
    }


def copilot_lsp_initialize(root_uri: str, root_name: str, process_id: int = 4242) -> JSON:
    """copilot-lsp's `lsp/copilot_ls.lua` through `vim.lsp.enable`."""
    return {
        "processId": process_id,
        "clientInfo": {"name": "Neovim", "version": NEOVIM_VERSION},
        "rootUri": root_uri,
        "rootPath": root_name,
        "workspaceFolders": [{"uri": root_uri, "name": root_name}],
        "capabilities": _neovim_capabilities(),
        "initializationOptions": {
            "editorInfo": {"name": "neovim", "version": NEOVIM_VERSION},
            "editorPluginInfo": dict(COPILOT_LSP_PLUGIN),
        },
        "trace": "off",
    }


def copilot_lsp_settings() -> JSON:
    return {"settings": {"nextEditSuggestions": {"enabled": True}}}


# ---------------------------------------------------------------------------------------------
# copilot.lua requests (every request carries `_: true`)
# ---------------------------------------------------------------------------------------------


def copilot_lua_check_status(local_checks_only: bool = False) -> JSON:
    if local_checks_only:
        return {"options": {"localChecksOnly": True}, "_": True}
    return {"_": True}


def copilot_lua_sign_in_initiate() -> JSON:
    return {"_": True}


def copilot_lua_sign_in_confirm(user_code: str) -> JSON:
    return {"userCode": user_code, "_": True}


def copilot_lua_sign_out() -> JSON:
    return {"_": True}


def copilot_lua_get_completions(
    uri: str,
    version: int,
    line: int,
    character: int,
    relative_path: str,
    insert_spaces: bool = True,
    tab_size: int = 4,
) -> JSON:
    """`util.get_doc_params()`: the position twice, indentation, and a relative path."""
    position = _pos(line, character)
    return {
        "doc": {
            "uri": uri,
            "version": version,
            "relativePath": relative_path,
            "insertSpaces": insert_spaces,
            "tabSize": tab_size,
            "indentSize": tab_size,
            "position": dict(position),
        },
        "textDocument": {"uri": uri, "version": version, "relativePath": relative_path},
        "position": position,
        "_": True,
    }


def copilot_lua_get_completions_cycling(
    uri: str, version: int, line: int, character: int, relative_path: str
) -> JSON:
    """Cycling resends exactly the params of the first request."""
    return copilot_lua_get_completions(uri, version, line, character, relative_path)


def copilot_lua_panel_id(request_number: int, path: str) -> str:
    return f"{request_number}:copilot://{path}"


def copilot_lua_get_panel_completions(
    uri: str, version: int, line: int, character: int, relative_path: str, panel_id: str
) -> JSON:
    params = copilot_lua_get_completions(uri, version, line, character, relative_path)
    params["panelId"] = panel_id
    return params


def copilot_lua_notify_shown(uuid: str) -> JSON:
    return {"uuid": uuid, "_": True}


def copilot_lua_notify_accepted(uuid: str, accepted_length: int | None = None) -> JSON:
    """Suggestion accept sends the UTF-16 length of the whole `text`; panel accept sends none."""
    params: JSON = {"uuid": uuid, "_": True}
    if accepted_length is not None:
        params["acceptedLength"] = accepted_length
    return params


def copilot_lua_notify_rejected(uuids: list[str]) -> JSON:
    return {"uuids": list(uuids), "_": True}


def copilot_lua_get_models() -> JSON:
    return {"_": True}


def copilot_lua_nes(uri: str, version: int, line: int, character: int) -> JSON:
    """copilot.lua's nes module is copilot-lsp driven with copilot.lua's client."""
    return copilot_lsp_nes(uri, version, line, character)


# ---------------------------------------------------------------------------------------------
# copilot.vim
# ---------------------------------------------------------------------------------------------


def copilot_vim_did_open(uri: str, language_id: str, version: int, text: str) -> JSON:
    """Vim opens a buffer on its first request, with `b:changedtick` as the version."""
    return {
        "textDocument": {"text": text, "uri": uri, "version": version, "languageId": language_id}
    }


def copilot_vim_did_change_full(uri: str, version: int, text: str) -> JSON:
    """Before every request under Vim: the whole buffer, no range, whatever sync we advertise."""
    return {"textDocument": {"uri": uri, "version": version}, "contentChanges": [{"text": text}]}


def copilot_vim_did_focus(uri: str) -> JSON:
    return {"textDocument": {"uri": uri}}


def copilot_vim_inline_completion(
    uri: str,
    version: int,
    line: int,
    character: int,
    insert_spaces: bool = True,
    tab_size: int = 4,
    trigger_kind: int = INLINE_TRIGGER_AUTOMATIC,
) -> JSON:
    """Typing sends triggerKind 2; cycling (next/previous) resends with 1."""
    return {
        "textDocument": {"uri": uri, "version": version},
        "position": _pos(line, character),
        "formattingOptions": {"insertSpaces": insert_spaces, "tabSize": tab_size},
        "context": {"triggerKind": trigger_kind},
    }


def copilot_vim_did_show_completion(item: JSON) -> JSON:
    """Sent on every preview refresh with the item exactly as received."""
    return {"item": item}


def copilot_vim_accepted_length(line_before_cursor: str, accepted: str, item: JSON) -> int:
    """UTF-16 width of line-before-cursor + accepted text, minus the item's start column."""
    start = int(item["range"]["start"]["character"])
    return utf16_len(line_before_cursor + accepted) - start


def copilot_vim_did_partially_accept(item: JSON, accepted_length: int) -> JSON:
    return {"item": item, "acceptedLength": accepted_length}


def copilot_vim_accept_command(item: JSON) -> JSON:
    """A full accept sends the item's command object itself as executeCommand params."""
    command = item["command"]
    assert isinstance(command, dict)
    return dict(command)


def copilot_vim_panel_completion(
    uri: str,
    version: int,
    line: int,
    character: int,
    partial_result_token: int = 1,
    work_done_token: int = 2,
) -> JSON:
    """Vim numbers its progress tokens itself (integers)."""
    return {
        "textDocument": {"uri": uri, "version": version},
        "position": _pos(line, character),
        "partialResultToken": partial_result_token,
        "workDoneToken": work_done_token,
    }


def copilot_vim_check_status(local_checks_only: bool = False) -> JSON:
    return {"options": {"localChecksOnly": True}} if local_checks_only else {}


def copilot_vim_sign_in_initiate() -> JSON:
    return {}


def copilot_vim_sign_in_confirm(user_code: str) -> JSON:
    """1.40 sends the code; later versions send `{}` (only for `:Copilot! setup`)."""
    return {"userCode": user_code}


def copilot_vim_sign_in() -> JSON:
    return {}


def copilot_vim_sign_out() -> JSON:
    return {}


def copilot_vim_get_version() -> JSON:
    return {}


def copilot_vim_notify_change_configuration(
    enable_auto_completions: bool, disabled_languages: tuple[str, ...]
) -> JSON:
    """1.40's `:Copilot enable|disable` (a custom notification)."""
    return {
        "settings": {
            "enableAutoCompletions": enable_auto_completions,
            "disabledLanguages": [{"languageId": lang} for lang in disabled_languages],
        }
    }


# ---------------------------------------------------------------------------------------------
# copilot-lsp and sidekick.nvim (next-edit suggestions)
# ---------------------------------------------------------------------------------------------


def copilot_lsp_nes(uri: str, version: int, line: int, character: int) -> JSON:
    return {"textDocument": {"uri": uri, "version": version}, "position": _pos(line, character)}


def copilot_lsp_did_show_inline_edit(edit: JSON) -> JSON:
    """Only the first edit's command is echoed back; `{item: {}}` when it had none."""
    item: JSON = {}
    if edit.get("command") is not None:
        item["command"] = edit["command"]
    return {"item": item}


def copilot_lsp_sign_in() -> JSON:
    return {}


def copilot_lsp_did_focus(uri: str) -> JSON:
    return {"textDocument": {"uri": uri}}


def sidekick_nes(uri: str, version: int, line: int, character: int) -> JSON:
    params = copilot_lsp_nes(uri, version, line, character)
    params["context"] = {"triggerKind": INLINE_TRIGGER_AUTOMATIC}
    return params


def sidekick_did_focus(uri: str) -> JSON:
    return {"textDocument": {"uri": uri}}


# ---------------------------------------------------------------------------------------------
# checks of what the plugins read
# ---------------------------------------------------------------------------------------------


def _check_position(value: Any, where: str) -> tuple[int, int]:
    assert isinstance(value, dict), f"{where}: not an object: {value!r}"
    line, character = value.get("line"), value.get("character")
    assert isinstance(line, int) and line >= 0, f"{where}.line: {line!r}"
    assert isinstance(character, int) and character >= 0, f"{where}.character: {character!r}"
    return line, character


def _check_range(value: Any, where: str) -> tuple[int, int, int, int]:
    assert isinstance(value, dict), f"{where}: not an object: {value!r}"
    start = _check_position(value.get("start"), f"{where}.start")
    end = _check_position(value.get("end"), f"{where}.end")
    assert start <= end, f"{where}: start {start} after end {end}"
    return start[0], start[1], end[0], end[1]


def _check_command(value: Any, where: str, advertised: tuple[str, ...] | None) -> None:
    assert isinstance(value, dict), f"{where}: not an object: {value!r}"
    name = value.get("command")
    assert isinstance(name, str) and name, f"{where}.command: {name!r}"
    args = value.get("arguments", [])
    assert args is None or isinstance(args, list), f"{where}.arguments: {args!r}"
    if advertised is not None:
        assert name in advertised, f"{where}: {name!r} not advertised, Neovim would not run it"


def _utf16_prefix(text: str, units: int) -> str:
    """The longest prefix of `text` that is at most `units` UTF-16 code units long."""
    count = 0
    for index, ch in enumerate(text):
        count += 2 if ord(ch) > 0xFFFF else 1
        if count > units:
            return text[:index]
    return text


def check_initialize_result(result: Any) -> None:
    """copilot.vim needs `serverInfo`; Neovim clients need UTF-16 and the command names."""
    assert isinstance(result, dict), f"initialize result: {result!r}"
    info = result.get("serverInfo")
    assert isinstance(info, dict) and isinstance(info.get("name"), str), (
        "initialize result needs serverInfo.name: copilot.vim reads result.serverInfo"
    )
    caps = result.get("capabilities")
    assert isinstance(caps, dict), "initialize result needs capabilities"
    encoding = caps.get("positionEncoding", "utf-16")
    assert encoding == "utf-16", f"positionEncoding {encoding!r}: the plugins compute UTF-16"
    provider = caps.get("executeCommandProvider")
    commands = provider.get("commands", []) if isinstance(provider, dict) else []
    for name in NEOVIM_EXEC_COMMANDS:
        assert name in commands, f"executeCommandProvider.commands lacks {name!r}"


def check_copilot_lua_check_status_result(result: Any, expect_user: bool = True) -> None:
    """Ghost text in copilot.lua is requested only while `user` is truthy."""
    assert isinstance(result, dict), f"checkStatus result: {result!r}"
    assert isinstance(result.get("status"), str), f"checkStatus.status: {result.get('status')!r}"
    user = result.get("user")
    if expect_user:
        assert isinstance(user, str) and user, "checkStatus.user missing: copilot.lua stays silent"
        assert result["status"] in ("OK", "MaybeOK"), f"status {result['status']!r} with a user"
    else:
        assert not user, f"checkStatus.user {user!r} while signed out"


def check_copilot_lua_sign_in_initiate_result(result: Any) -> None:
    assert isinstance(result, dict), f"signInInitiate result: {result!r}"
    if result.get("status") == "AlreadySignedIn":
        assert isinstance(result.get("user"), str), "AlreadySignedIn needs a user"
        return
    for key in ("verificationUri", "userCode"):
        assert isinstance(result.get(key), str) and result[key], f"signInInitiate.{key} missing"


def check_copilot_lua_sign_in_confirm_result(result: Any) -> None:
    """copilot.lua lower-cases `status`; anything but "ok" must carry `error.message`."""
    assert isinstance(result, dict), f"signInConfirm result: {result!r}"
    status = result.get("status")
    assert isinstance(status, str), f"signInConfirm.status: {status!r}"
    if status.lower() == "ok":
        assert isinstance(result.get("user"), str) and result["user"], "signInConfirm.user"
    else:
        error = result.get("error")
        assert isinstance(error, dict) and isinstance(error.get("message"), str), (
            "a failed signInConfirm needs error.message"
        )


def check_sign_in_result(result: Any) -> None:
    """`signIn` as copilot-lsp and later copilot.vim read it."""
    assert isinstance(result, dict), f"signIn result: {result!r}"
    if result.get("status") == "AlreadySignedIn":
        assert isinstance(result.get("user"), str), "AlreadySignedIn needs a user"
        return
    for key in ("userCode", "verificationUri"):
        assert isinstance(result.get(key), str) and result[key], f"signIn.{key} missing"
    _check_command(result.get("command"), "signIn.command", NEOVIM_EXEC_COMMANDS)


def check_copilot_lua_completions_result(
    result: Any, line_text: str, line: int, cursor: int
) -> None:
    """`text` is the whole line from column 0 plus the completion; range (line,0)-(line,cursor)."""
    assert isinstance(result, dict), f"getCompletions result: {result!r}"
    completions = result.get("completions")
    assert isinstance(completions, list), "getCompletions.completions must be a list"
    typed = _utf16_prefix(line_text, cursor)
    for i, item in enumerate(completions):
        where = f"completions[{i}]"
        assert isinstance(item, dict), f"{where}: {item!r}"
        for key in ("uuid", "text", "displayText"):
            assert isinstance(item.get(key), str), f"{where}.{key} must be a string"
        assert item["uuid"], f"{where}.uuid is empty"
        sl, sc, el, ec = _check_range(item.get("range"), f"{where}.range")
        assert sl == line == el, f"{where}.range must be on the cursor line {line}"
        assert sc == 0, f"{where}.range.start.character {sc}: copilot.lua assumes column 0"
        assert ec == cursor, f"{where}.range.end.character {ec}, cursor is at {cursor}"
        text, display = item["text"], item["displayText"]
        assert text.startswith(typed), f"{where}.text must start with the typed line {typed!r}"
        assert text.split("\n")[1:] == display.split("\n")[1:], (
            f"{where}: displayText lines after the first are rendered and must match text"
        )


def check_copilot_lua_panel_result(result: Any) -> None:
    assert isinstance(result, dict), f"getPanelCompletions result: {result!r}"
    target = result.get("solutionCountTarget")
    assert isinstance(target, int) and target >= 0, f"solutionCountTarget: {target!r}"


def check_copilot_lua_panel_solution(params: Any, panel_id: str, line: int) -> None:
    assert isinstance(params, dict), f"PanelSolution: {params!r}"
    assert params.get("panelId") == panel_id, f"PanelSolution.panelId {params.get('panelId')!r}"
    for key in ("solutionId", "completionText", "displayText"):
        assert isinstance(params.get(key), str), f"PanelSolution.{key} must be a string"
    assert params["solutionId"], "PanelSolution.solutionId is empty"
    assert params["displayText"].strip(), "an all-blank displayText crashes copilot.lua's panel"
    score = params.get("score")
    assert isinstance(score, int | float), f"PanelSolution.score: {score!r}"
    start_line = _check_range(params.get("range"), "PanelSolution.range")[0]
    assert start_line == line, f"PanelSolution.range.start.line {start_line}, expected {line}"


def check_copilot_lua_panel_done(params: Any, panel_id: str) -> None:
    assert isinstance(params, dict), f"PanelSolutionsDone: {params!r}"
    assert params.get("panelId") == panel_id, "PanelSolutionsDone.panelId"
    assert params.get("status") in ("OK", "Error"), f"status {params.get('status')!r}"
    if params["status"] == "Error":
        assert isinstance(params.get("message"), str), "an Error needs a message"


def check_inline_items(
    items: Any, line_text: str, line: int, cursor: int, advertised: tuple[str, ...] | None = None
) -> None:
    """copilot.vim: line[:range.start] + insertText must begin with what is typed."""
    assert isinstance(items, list), f"items: {items!r}"
    typed = _utf16_prefix(line_text, cursor)
    for i, item in enumerate(items):
        where = f"items[{i}]"
        assert isinstance(item, dict), f"{where}: {item!r}"
        assert isinstance(item.get("insertText"), str), f"{where}.insertText must be a string"
        sl, sc, el, ec = _check_range(item.get("range"), f"{where}.range")
        assert sl == line == el, f"{where}.range must stay on the cursor line {line}"
        assert sc <= cursor <= ec, f"{where}.range {sc}-{ec} must contain the cursor {cursor}"
        shown = _utf16_prefix(line_text, sc) + item["insertText"]
        assert shown.startswith(typed), f"{where}: insertText does not continue {typed!r}"
        if item.get("command") is not None:
            _check_command(item["command"], f"{where}.command", advertised)


def check_copilot_vim_inline_completion_result(
    result: Any, line_text: str, line: int, cursor: int
) -> None:
    """A null result is fine for copilot.vim (no suggestion); otherwise `{items}` or a list."""
    if result is None:
        return
    items = result if isinstance(result, list) else result.get("items")
    check_inline_items(items, line_text, line, cursor, NEOVIM_EXEC_COMMANDS)


def check_copilot_vim_panel_result(final: Any, partial_values: list[Any]) -> None:
    """The final result is appended to streamed items: it must be empty after streaming."""
    streamed = 0
    for value in partial_values:
        items = value if isinstance(value, list) else (value or {}).get("items")
        assert isinstance(items, list), f"partial result value: {value!r}"
        streamed += len(items)
    assert isinstance(final, dict) and isinstance(final.get("items"), list), f"result: {final!r}"
    if streamed:
        assert final["items"] == [], "items were streamed; the final result would duplicate them"


def check_nes_result(
    result: Any, uri: str, version: int, advertised: tuple[str, ...] | None = NEOVIM_EXEC_COMMANDS
) -> None:
    """copilot-lsp iterates `result.edits` unguarded; sidekick drops other versions."""
    assert isinstance(result, dict), f"copilotInlineEdit result {result!r}: copilot-lsp errors"
    edits = result.get("edits")
    assert isinstance(edits, list), "copilotInlineEdit.edits must be a list"
    for i, edit in enumerate(edits):
        where = f"edits[{i}]"
        assert isinstance(edit, dict), f"{where}: {edit!r}"
        assert isinstance(edit.get("text"), str), f"{where}.text must be a string"
        _check_range(edit.get("range"), f"{where}.range")
        doc = edit.get("textDocument")
        assert isinstance(doc, dict), f"{where}.textDocument missing"
        assert doc.get("uri") == uri, f"{where}.textDocument.uri {doc.get('uri')!r}"
        assert doc.get("version") == version, (
            f"{where}.textDocument.version {doc.get('version')!r} != {version}: sidekick drops it"
        )
        if edit.get("command") is not None:
            _check_command(edit["command"], f"{where}.command", advertised)


def check_status_notification(params: Any) -> None:
    """`statusNotification`, the shape copilot.lua and copilot.vim 1.40 listen to."""
    assert isinstance(params, dict), f"statusNotification: {params!r}"
    assert params.get("status") in STATUS_NOTIFICATION_STATUSES, f"status {params.get('status')!r}"
    assert isinstance(params.get("message", ""), str), "statusNotification.message"


def check_did_change_status(params: Any) -> None:
    """`didChangeStatus`, the shape later copilot.vim, copilot-lsp and sidekick listen to."""
    assert isinstance(params, dict), f"didChangeStatus: {params!r}"
    assert isinstance(params.get("busy"), bool), f"didChangeStatus.busy {params.get('busy')!r}"
    assert params.get("kind") in STATUS_KINDS, f"didChangeStatus.kind {params.get('kind')!r}"
    message = params.get("message")
    assert message is None or isinstance(message, str), f"didChangeStatus.message {message!r}"
    if params.get("command") is not None:
        _check_command(params["command"], "didChangeStatus.command", None)
