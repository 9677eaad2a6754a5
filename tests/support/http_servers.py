"""Tiny loopback HTTP servers that count connections (for SSRF and callback tests)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

#: ``(method, path, headers, body)`` → ``(status, headers, body)``.
Handler = Callable[[str, str, dict[str, str], bytes], tuple[int, dict[str, str], bytes]]
#: A public-looking address the tests' connector routes to a loopback server.
PUBLIC_IP = "93.184.216.34"


@dataclass
class CountingServer:
    server: ThreadingHTTPServer
    #: Answers requests; tests may swap it while the server runs.
    handler: Handler
    connections: int = 0
    requests: list[tuple[str, str, dict[str, str], bytes]] = field(default_factory=list)

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])


@contextmanager
def counting_server(handler: Handler) -> Iterator[CountingServer]:
    """A server on 127.0.0.1 that answers with ``handler`` and counts connections."""
    state: dict[str, CountingServer] = {}

    class Handle(BaseHTTPRequestHandler):
        def setup(self) -> None:
            state["s"].connections += 1
            super().setup()

        def _any(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            headers = {k.lower(): v for k, v in self.headers.items()}
            state["s"].requests.append((self.command, self.path, headers, body))
            status, out_headers, out = state["s"].handler(self.command, self.path, headers, body)
            self.send_response(status)
            for name, value in out_headers.items():
                self.send_header(name, value)
            if "Content-Length" not in out_headers and "Transfer-Encoding" not in out_headers:
                self.send_header("Content-Length", str(len(out)))
            self.end_headers()
            if out:
                self.wfile.write(out)

        do_GET = do_POST = do_PUT = _any

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handle)
    state["s"] = CountingServer(server, handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    try:
        yield state["s"]
    finally:
        server.shutdown()
        server.server_close()


@dataclass
class Network:
    """A fake resolver and connector: names → public IPs → loopback test servers."""

    names: dict[str, list[str]] = field(default_factory=dict)
    routes: dict[tuple[str, int], int] = field(default_factory=dict)
    connected: list[tuple[str, int]] = field(default_factory=list)
    resolved: list[str] = field(default_factory=list)

    def resolve(self, host: str, port: int) -> list[str]:
        self.resolved.append(host)
        return list(self.names.get(host, []))

    def connect(self, ip: str, port: int, timeout_s: float) -> socket.socket:
        self.connected.append((ip, port))
        target = self.routes.get((ip, port))
        if target is None:
            raise ConnectionRefusedError(f"no test route to {ip}:{port}")
        return socket.create_connection(("127.0.0.1", target), timeout=timeout_s)


def slow(seconds: float) -> Handler:
    def handler(method: str, path: str, headers: dict[str, str], body: bytes) -> tuple:
        time.sleep(seconds)
        return 200, {}, b"late"

    return handler
