"""SSRF guard and the pinned, capped fetcher: refused URLs never get a connection."""

from __future__ import annotations

import io
import socket
import threading
import time

import pytest

from serve_app.errors import MediaTooLarge
from serve_app.net.fetch import FetchFailed, FetchPolicy, SafeHttp, system_connector
from serve_app.net.netguard import UrlRefused, is_public, parse_target, system_resolver
from tests.support.http_servers import PUBLIC_IP, Network, counting_server, slow


def ok(body: bytes = b"video-bytes"):
    return lambda method, path, headers, data: (200, {}, body)


def redirect(location: str):
    return lambda method, path, headers, data: (302, {"Location": location}, b"")


class Recording:
    """The real resolver and connector, recording every connection attempt."""

    def __init__(self) -> None:
        self.connected: list[tuple[str, int]] = []

    def connect(self, ip: str, port: int, timeout_s: float):
        self.connected.append((ip, port))
        return system_connector(ip, port, timeout_s)


REFUSED = [
    "http://127.0.0.1:{port}/v.mp4",
    "http://localhost:{port}/v.mp4",
    "http://[::1]:{port}/v.mp4",
    "http://169.254.169.254/latest/meta-data/",
    "http://10.0.0.7:{port}/v.mp4",
    "http://172.16.0.1/v.mp4",
    "http://192.168.1.1/v.mp4",
    "http://100.64.0.1/v.mp4",
    "http://0.0.0.0:{port}/v.mp4",
    "http://[::ffff:127.0.0.1]:{port}/v.mp4",
    "http://[::ffff:7f00:1]:{port}/v.mp4",
    "http://[64:ff9b::7f00:1]/v.mp4",
    "http://[2002:7f00:1::]/v.mp4",
    "http://[fe80::1]/v.mp4",
    "http://[fd00::1]/v.mp4",
    "http://224.0.0.1/v.mp4",
    "http://2130706433:{port}/v.mp4",
    "http://0x7f000001:{port}/v.mp4",
    "http://0x7f.1:{port}/v.mp4",
    "http://127.1:{port}/v.mp4",
    "http://0177.0.0.1:{port}/v.mp4",
    "http://017700000001:{port}/v.mp4",
    "file:///etc/passwd",
    "ftp://example.com/v.mp4",
    "gopher://127.0.0.1:{port}/_",
    "http://user:pass@example.com/v.mp4",
    "http:///v.mp4",
    "http://example.com:99999/v.mp4",
]


@pytest.mark.parametrize("template", REFUSED)
def test_refused_urls_never_connect(template: str) -> None:
    recording = Recording()
    with counting_server(ok()) as server:
        http = SafeHttp(FetchPolicy(max_bytes=1000), connector=recording.connect)
        with pytest.raises(UrlRefused):
            http.fetch_to(template.format(port=server.port), io.BytesIO())
        assert server.connections == 0
    assert recording.connected == []


@pytest.mark.parametrize(
    "location",
    [
        "http://127.0.0.1:{inner}/secret",
        "http://localhost:{inner}/secret",
        "http://[::1]:{inner}/secret",
        "http://169.254.169.254/latest/meta-data/",
        "http://10.1.2.3/secret",
        "http://[::ffff:127.0.0.1]:{inner}/secret",
        "http://2130706433:{inner}/secret",
        "http://0x7f.1:{inner}/secret",
        "file:///etc/passwd",
    ],
)
def test_redirects_to_private_addresses_are_refused_before_connecting(location: str) -> None:
    with counting_server(ok(b"secret")) as inner, counting_server(redirect("")) as front:
        front.handler = redirect(location.format(inner=inner.port))
        net = Network(
            names={"public.test": [PUBLIC_IP], "localhost": ["127.0.0.1"]},
            routes={(PUBLIC_IP, 80): front.port},
        )
        http = SafeHttp(FetchPolicy(max_bytes=1000), resolver=net.resolve, connector=net.connect)
        with pytest.raises(UrlRefused):
            http.fetch_to("http://public.test/v.mp4", io.BytesIO())
        assert front.connections == 1
        assert inner.connections == 0
    assert net.connected == [(PUBLIC_IP, 80)]


def test_names_with_any_private_record_are_refused() -> None:
    net = Network(names={"mixed.test": [PUBLIC_IP, "10.0.0.1"], "none.test": []})
    http = SafeHttp(FetchPolicy(max_bytes=10), resolver=net.resolve, connector=net.connect)
    for url in ("http://mixed.test/", "http://none.test/"):
        with pytest.raises(UrlRefused):
            http.fetch_to(url, io.BytesIO())
    assert net.connected == []


def test_the_checked_address_is_the_one_connected_to() -> None:
    """DNS rebinding: the host is resolved once per hop and the socket pinned to it."""
    answers = iter([[PUBLIC_IP], ["127.0.0.1"]])
    with counting_server(ok(b"data")) as server:
        net = Network(routes={(PUBLIC_IP, 8080): server.port})
        net.resolve = lambda host, port: next(answers)  # type: ignore[method-assign]
        http = SafeHttp(FetchPolicy(max_bytes=100), resolver=net.resolve, connector=net.connect)
        out = io.BytesIO()
        result = http.fetch_to("http://rebind.test:8080/v.mp4?x=1", out)
    assert out.getvalue() == b"data" and result.size == 4
    assert net.connected == [(PUBLIC_IP, 8080)]
    method, path, headers, _ = server.requests[0]
    assert (method, path, headers["host"]) == ("GET", "/v.mp4?x=1", "rebind.test:8080")


def test_up_to_three_redirects_are_followed() -> None:
    def chain(method, path, headers, data):
        hops = {"/0": "/1", "/1": "http://public.test/2", "/2": "/3", "/3": "/4"}
        if path in hops:
            return 302, {"Location": hops[path]}, b""
        return 200, {}, b"final"

    with counting_server(chain) as server:
        net = Network(names={"public.test": [PUBLIC_IP]}, routes={(PUBLIC_IP, 80): server.port})
        http = SafeHttp(FetchPolicy(max_bytes=100), resolver=net.resolve, connector=net.connect)
        out = io.BytesIO()
        assert http.fetch_to("http://public.test/1", out).final_url == "http://public.test/4"
        assert out.getvalue() == b"final"
        with pytest.raises(FetchFailed, match="redirects"):
            http.fetch_to("http://public.test/0", io.BytesIO())
        assert len(net.resolved) == 4 + 4  # every hop resolved and checked again


def test_byte_cap_status_and_timeouts() -> None:
    def handler(method, path, headers, data):
        if path == "/declared":
            return 200, {"Content-Length": "5000"}, b"x" * 5000
        if path == "/chunked":
            chunk = b"x" * 600
            body = b"%x\r\n%s\r\n" % (len(chunk), chunk) * 2 + b"0\r\n\r\n"
            return 200, {"Transfer-Encoding": "chunked"}, body
        return 404, {}, b"no"

    with counting_server(handler) as server:
        net = Network(names={"p.test": [PUBLIC_IP]}, routes={(PUBLIC_IP, 80): server.port})
        http = SafeHttp(FetchPolicy(max_bytes=1000), resolver=net.resolve, connector=net.connect)
        for path in ("/declared", "/chunked"):
            with pytest.raises(MediaTooLarge):
                http.fetch_to(f"http://p.test{path}", io.BytesIO())
        with pytest.raises(FetchFailed, match="404"):
            http.fetch_to("http://p.test/missing", io.BytesIO())
    with pytest.raises(FetchFailed, match="cannot reach"):
        http.fetch_to("http://p.test/gone", io.BytesIO())
    with counting_server(slow(1.0)) as server:
        net = Network(names={"p.test": [PUBLIC_IP]}, routes={(PUBLIC_IP, 80): server.port})
        policy = FetchPolicy(max_bytes=1000, read_timeout_s=0.2)
        http = SafeHttp(policy, resolver=net.resolve, connector=net.connect)
        with pytest.raises(FetchFailed):
            http.fetch_to("http://p.test/slow", io.BytesIO())


def test_address_rules() -> None:
    import ipaddress

    assert is_public(ipaddress.ip_address("8.8.8.8"))
    assert is_public(ipaddress.ip_address("2606:4700::1111"))
    for text in ("192.0.0.8", "198.18.0.1", "240.0.0.1", "233.252.0.1", "ff02::1", "2001:db8::1"):
        assert not is_public(ipaddress.ip_address(text)), text
    assert parse_target("https://Example.com/a?b=1").host_header == "example.com"
    assert parse_target("https://cafe.be/x").literal is None  # hex-looking names are names
    assert parse_target("http://[2606:4700::1111]:8080/").host_header == "[2606:4700::1111]:8080"
    with pytest.raises(UrlRefused):
        system_resolver("name.invalid", 80)


def test_the_total_deadline_holds_against_a_trickling_server() -> None:
    """One byte just inside the read timeout, for ever: cut off at the total deadline."""
    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def trickle() -> None:
        conn, _ = listener.accept()
        conn.recv(4096)
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n")
        while not stop.is_set():
            try:
                conn.sendall(b"x")
            except OSError:
                break
            stop.wait(0.2)
        conn.close()

    thread = threading.Thread(target=trickle, daemon=True)
    thread.start()
    port = listener.getsockname()[1]
    net = Network(names={"p.test": [PUBLIC_IP]}, routes={(PUBLIC_IP, 80): port})
    policy = FetchPolicy(max_bytes=1_000_000, read_timeout_s=0.5, total_timeout_s=1.0)
    http = SafeHttp(policy, resolver=net.resolve, connector=net.connect)
    started = time.monotonic()
    try:
        with pytest.raises(FetchFailed, match="too long"):
            http.fetch_to("http://p.test/trickle", io.BytesIO())
        assert time.monotonic() - started < 2.0
    finally:
        stop.set()
        thread.join(timeout=5)
        listener.close()
