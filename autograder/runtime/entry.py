"""How a sandbox starts the runtime: `entry ADDRESS LIMIT [single|zygote]`."""

from __future__ import annotations

import os
import socket
import sys

from . import server, zygote


def connect(address: str) -> socket.socket:
    """The grader's socket: an inherited fd ("7") or a Unix socket path ("unix:/run/x")."""
    if address.startswith("unix:"):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.connect(address.removeprefix("unix:"))
        return sock
    return socket.socket(fileno=int(address))


def main(argv: list[str]) -> int:
    limit = int(argv[1])
    mode = argv[2] if len(argv) > 2 else "single"
    sock = connect(argv[0])
    if mode == "zygote":
        zygote.main(sock, limit)
    else:
        server.preload()
        server.Runtime(sock, limit).serve()
    sys.stdout.flush()
    # Skip interpreter teardown: student atexit hooks and finalizers have nothing to report.
    os._exit(0)
