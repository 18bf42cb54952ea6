"""One reaper-lsp daemon per user and install, shared by every editor window.

`forwarder` is what editors start: it connects to the daemon's Unix socket (starting the daemon
when absent) and passes bytes through. `listener` is the daemon's side, agnostic of LSP: it
hands each connection to a session host. `paths` names the socket after everything that must
match; `protocol` is the one-line handshake in front of the LSP stream.

Nothing is imported here: the forwarder's start-up time is part of every editor's start-up.
"""
