"""Run an ASGI app with uvicorn on a loopback socket in a background thread (demo, tests, benchmarks).

A vault app must know the URL it is served at before it is built (its public URL is the token audience): bind
first with :func:`listen`, build the app with ``listener.url``, then serve it on that listener::

    listener = listen()
    app = create_app(Settings(..., public_url=listener.url))
    with serve_in_thread(app, listener=listener) as url:
        ...
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import uvicorn

__all__ = ["Listener", "listen", "serve_in_thread"]


@dataclass(frozen=True)
class Listener:
    """A bound socket and the base URL it will answer on."""

    sock: socket.socket
    url: str


def listen(host: str = "127.0.0.1", port: int = 0) -> Listener:
    """Bind ``host:port`` now (a free port when ``port`` is 0), so the URL is known before the app is built."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    return Listener(sock, f"http://{host}:{sock.getsockname()[1]}")


@contextmanager
def serve_in_thread(
    app: Any, host: str = "127.0.0.1", port: int = 0, *, listener: Listener | None = None
) -> Iterator[str]:
    """Serve ``app`` until the block ends, on ``listener`` or a new socket on ``host:port``; yields its base URL."""
    listener = listener or listen(host, port)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off", access_log=False))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listener.sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the server did not start")
        time.sleep(0.01)
    try:
        yield listener.url
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        listener.sock.close()
