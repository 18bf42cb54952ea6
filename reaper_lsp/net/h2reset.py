"""Make closing an unfinished HTTP/2 response cancel its stream.

httpcore (1.0.x) forgets an HTTP/2 stream when its response is closed early but never tells
the server, so a provider keeps generating — and sending — a suggestion nobody will read. This
sends RST_STREAM(CANCEL) for a stream that is still open when its response is closed; the
connection and the other streams on it are untouched. If httpcore's internals ever change
shape, the patch is skipped and closing falls back to httpcore's own behaviour.
"""

from __future__ import annotations

import contextlib
import logging
from typing import Any

log = logging.getLogger(__name__)

_installed = False


def install() -> None:
    global _installed
    if _installed:
        return
    _installed = True
    try:
        from h2.errors import ErrorCodes
        from httpcore._async.http2 import HTTP2ConnectionByteStream
    except ImportError:  # HTTP/2 support not installed
        return
    original = getattr(HTTP2ConnectionByteStream, "aclose", None)
    if original is None:
        log.debug("httpcore has no HTTP2ConnectionByteStream.aclose; stream reset not installed")
        return

    async def aclose(self: Any) -> None:
        if not getattr(self, "_closed", True):
            connection = self._connection
            stream = connection._h2_state.streams.get(self._stream_id)
            if stream is not None and not stream.closed:
                with contextlib.suppress(Exception):
                    connection._h2_state.reset_stream(self._stream_id, ErrorCodes.CANCEL)
                    await connection._write_outgoing_data(self._request)
        await original(self)

    setattr(HTTP2ConnectionByteStream, "aclose", aclose)  # noqa: B010
