"""HTTP(S) requests to client-given URLs without SSRF: checked, pinned, capped.

Each hop is checked by :mod:`serve_app.net.netguard`, its host resolved once, and
the connection made to exactly that address (the TLS handshake still verifies the
host name), so DNS rebinding cannot swap in another address between the check and
the connect. Redirects are followed by hand (at most ``max_redirects``), each one
checked like the first. Bodies are streamed with a byte cap and one total deadline
that covers every hop, the headers and each wait for bytes (a server that trickles
a byte just inside the read timeout is cut off at the deadline all the same).
"""

from __future__ import annotations

import contextlib
import http.client
import socket
import ssl
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import BinaryIO
from urllib.parse import urljoin

from serve_app.errors import MediaTooLarge, ServeAppError
from serve_app.net.netguard import (
    HostUnresolved,
    Network,
    Resolver,
    Target,
    parse_target,
    resolve_public,
    system_resolver,
)

#: ``(ip, port, timeout_s)`` → a connected socket; tests route it to local servers.
Connector = Callable[[str, int, float], socket.socket]
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_CHUNK = 1 << 20
USER_AGENT = "serve_app-videoinfer/1"


class FetchFailed(ServeAppError):
    """The remote server could not be reached or did not return the content."""


@dataclass(frozen=True)
class FetchPolicy:
    max_bytes: int
    connect_timeout_s: float = 10.0
    read_timeout_s: float = 30.0
    total_timeout_s: float = 1800.0
    max_redirects: int = 3


@dataclass(frozen=True)
class FetchResult:
    size: int
    final_url: str
    content_type: str


def _limit_wait(
    conn: http.client.HTTPConnection, read_timeout_s: float, deadline: float | None
) -> None:
    """Bound the next socket wait by the read timeout and what is left of ``deadline``."""
    timeout = read_timeout_s
    if deadline is not None:
        timeout = min(timeout, max(0.001, deadline - time.monotonic()))
    if conn.sock is not None:
        conn.sock.settimeout(timeout)


def system_connector(ip: str, port: int, timeout_s: float) -> socket.socket:
    return socket.create_connection((ip, port), timeout=timeout_s)


class SafeHttp:
    """GETs into files and POSTs of small bodies, under one :class:`FetchPolicy`."""

    def __init__(
        self,
        policy: FetchPolicy,
        *,
        resolver: Resolver = system_resolver,
        connector: Connector = system_connector,
        ssl_context: ssl.SSLContext | None = None,
        allowed: Sequence[Network] = (),
    ) -> None:
        self.policy = policy
        self._allowed = tuple(allowed)
        self._resolve = resolver
        self._connect = connector
        self._ssl = ssl_context or ssl.create_default_context()

    def _open(
        self,
        target: Target,
        method: str,
        body: bytes | None,
        headers: dict[str, str],
        deadline: float | None = None,
    ) -> tuple[http.client.HTTPConnection, http.client.HTTPResponse]:
        ip = resolve_public(target, self._resolve, self._allowed)
        sock: socket.socket | None = None
        try:
            sock = self._connect(str(ip), target.port, self.policy.connect_timeout_s)
            if target.scheme == "https":
                sock = self._ssl.wrap_socket(sock, server_hostname=target.host)
            conn = http.client.HTTPConnection(target.host, target.port)
            conn.sock = sock  # pinned: http.client never resolves or connects itself
            _limit_wait(conn, self.policy.read_timeout_s, deadline)
            conn.putrequest(method, target.path, skip_host=True, skip_accept_encoding=True)
            for name, value in {
                "Host": target.host_header,
                "User-Agent": USER_AGENT,
                "Accept-Encoding": "identity",
                "Connection": "close",
                **headers,
            }.items():
                conn.putheader(name, value)
            if body is not None:
                conn.putheader("Content-Length", str(len(body)))
            conn.endheaders(body)
            return conn, conn.getresponse()
        except (OSError, http.client.HTTPException) as exc:
            if sock is not None:  # connected, then failed (e.g. no answer in time)
                sock.close()
            raise FetchFailed(f"cannot reach {target.host_header}: {type(exc).__name__}") from None

    def check(self, url: str) -> Target:
        """Refuse ``url`` now, before anything is stored, if it may not be fetched.

        The same checks as a fetch (this client's ``allowed`` networks included), with
        the host resolved but nothing connected. A host that does not resolve now is
        let through (DNS may be down for a moment); every fetch checks again.

        Raises:
            UrlRefused: the form, the host spelling, or any address it resolves to.
        """
        target = parse_target(url, self._allowed)
        with contextlib.suppress(HostUnresolved):
            resolve_public(target, self._resolve, self._allowed)
        return target

    def fetch_to(self, url: str, out: BinaryIO) -> FetchResult:
        """GET ``url`` (following checked redirects) and write the body to ``out``.

        Raises:
            UrlRefused: this or a redirect target is not allowed (nothing connected).
            FetchFailed: connection errors, timeouts, a status other than 200.
            MediaTooLarge: the body exceeds ``policy.max_bytes``.
        """
        deadline = time.monotonic() + self.policy.total_timeout_s
        current = url
        for _hop in range(self.policy.max_redirects + 1):
            target = parse_target(current, self._allowed)
            if time.monotonic() >= deadline:
                raise FetchFailed("downloading the input took too long")
            conn, response = self._open(target, "GET", None, {}, deadline)
            try:
                if response.status in _REDIRECTS:
                    location = response.getheader("Location")
                    if not location:
                        raise FetchFailed(f"HTTP {response.status} without a Location header")
                    current = urljoin(current, location)
                    continue
                if response.status != 200:
                    raise FetchFailed(f"the input URL answered HTTP {response.status}")
                declared = response.getheader("Content-Length")
                if declared and declared.isdigit() and int(declared) > self.policy.max_bytes:
                    raise MediaTooLarge(
                        f"the input is {declared} bytes; the limit is {self.policy.max_bytes}"
                    )
                size = self._copy(conn, response, out, deadline)
                return FetchResult(size, current, response.getheader("Content-Type") or "")
            finally:
                conn.close()
        raise FetchFailed(f"more than {self.policy.max_redirects} redirects")

    def _copy(
        self,
        conn: http.client.HTTPConnection,
        response: http.client.HTTPResponse,
        out: BinaryIO,
        deadline: float,
    ) -> int:
        size = 0
        try:
            while True:
                # Each wait for bytes ends at the read timeout or the total deadline,
                # whichever is first: a server trickling bytes cannot stretch the total.
                _limit_wait(conn, self.policy.read_timeout_s, deadline)
                chunk = response.read1(_CHUNK)
                if not chunk:
                    break
                size += len(chunk)
                if size > self.policy.max_bytes:
                    raise MediaTooLarge(
                        f"the input exceeds the limit of {self.policy.max_bytes} bytes"
                    )
                out.write(chunk)
        except TimeoutError:
            if time.monotonic() >= deadline:
                raise FetchFailed("downloading the input took too long") from None
            raise FetchFailed("the download broke off: TimeoutError") from None
        except (OSError, http.client.HTTPException) as exc:
            raise FetchFailed(f"the download broke off: {type(exc).__name__}") from None
        return size

    def post(self, url: str, body: bytes, headers: dict[str, str]) -> int:
        """POST ``body`` to ``url`` (no redirects followed); returns the HTTP status.

        Raises:
            UrlRefused, FetchFailed: as for :meth:`fetch_to`.
        """
        target = parse_target(url, self._allowed)
        conn, response = self._open(target, "POST", body, headers)
        try:
            response.read(64 * 1024)
            return response.status
        finally:
            conn.close()
