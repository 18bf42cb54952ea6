"""Make closing an unfinished HTTP/2 response cancel its stream.

httpcore (1.0.x) forgets an HTTP/2 stream when its response is closed early but never tells
the server, so a provider keeps generating — and sending — a suggestion nobody will read. This
sends RST_STREAM(CANCEL) for a stream that is still open when its response is closed; the
connection and the other streams on it are untouched. The hook goes in through
`httpcore_internals`; if httpcore ever changes shape it is skipped and closing falls back to
httpcore's own behaviour.
"""

from __future__ import annotations

from typing import Any

from reaper_lsp.net import httpcore_internals as internals

_installed = False


def install() -> None:
    global _installed
    if _installed:
        return
    _installed = True
    try:
        from h2.errors import ErrorCodes
    except ImportError:  # HTTP/2 support not installed
        return

    async def cancel(connection: Any, stream_id: int, request: Any) -> None:
        await internals.reset_h2_stream(connection, stream_id, request, ErrorCodes.CANCEL)

    internals.on_h2_response_close(cancel)
