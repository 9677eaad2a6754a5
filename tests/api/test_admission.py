"""Hostile request bodies against the real app on a real server (uvicorn, raw sockets)."""

from __future__ import annotations

import secrets
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from serve_app.accounts.settings import AccountSettings, AdmissionSettings
from serve_app.config import Settings
from serve_app.deployments.options import DEFAULT_OPTIONS
from tests.support.live_service import LiveService, live_service, read_status

IDLE_S = 1.0
ANONYMOUS_SLOTS = 3
USER_REQUESTS, USER_BYTES = 2, 1_000_000
#: The stalled attack of the issue: a 50 MB body is declared, 1 KB sent.
STALLED_HEAD = (
    "POST /api/analyze HTTP/1.1\nHost: test\nContent-Length: 50000000\n"
    "Content-Type: multipart/form-data; boundary=xx\n"
)
#: The start of a file part: what follows is the file's bytes.
PART = b'--xx\r\nContent-Disposition: form-data; name="file"; filename="a.mp4"\r\n\r\n'


@pytest.fixture
def service(tmp_path: Path) -> Iterator[LiveService]:
    settings = Settings(
        data_dir=tmp_path / "data",
        accounts=AccountSettings(argon2_time_cost=1, argon2_memory_kib=8, rate_limit_burst=10_000),
        admission=AdmissionSettings(
            body_idle_timeout_s=IDLE_S,
            body_grace_s=0.5,
            body_min_bytes_per_s=10_000,
            max_anonymous_bodies=ANONYMOUS_SLOTS,
            max_requests_in_flight_per_user=USER_REQUESTS,
            max_bytes_in_flight_per_user=USER_BYTES,
        ),
    )
    with live_service(settings) as live:
        yield live


def test_stalled_anonymous_bodies_are_capped_and_cut_off(service: LiveService) -> None:
    sockets = [service.raw_request(STALLED_HEAD, PART + b"-" * 1024) for _ in range(10)]
    started = time.monotonic()
    with httpx.Client(base_url=service.url, timeout=2) as client:
        assert client.get("/healthz").status_code == 200
    statuses = [read_status(s) for s in sockets]
    elapsed = time.monotonic() - started
    for s in sockets:
        s.close()
    # The slots beyond the anonymous cap are refused at once; the rest are cut off
    # after the idle timeout instead of holding their slot for ever.
    assert sorted(statuses) == [408] * ANONYMOUS_SLOTS + [503] * (10 - ANONYMOUS_SLOTS)
    assert elapsed < IDLE_S + 10  # a loaded machine adds seconds


def test_a_trickling_body_is_cut_off_below_the_minimum_rate(service: LiveService) -> None:
    sock = service.raw_request(STALLED_HEAD.replace("50000000", "100000"), PART)
    started = time.monotonic()
    sock.settimeout(0.2)
    status = None
    while status is None and time.monotonic() - started < 10:
        try:
            sock.sendall(b"-" * 100)  # 500 bytes/s, never idle for a second
        except OSError:
            break
        status = read_status(sock)
    sock.settimeout(5)
    status = status or read_status(sock)
    sock.close()
    assert status == 408
    assert time.monotonic() - started < 5


def test_an_invalid_token_is_refused_before_the_body(service: LiveService) -> None:
    head = STALLED_HEAD + "Authorization: Bearer sa_not-a-real-token\n"
    sock = service.raw_request(head, PART + b"-" * 1024)
    assert read_status(sock) == 401
    sock.close()


def test_authenticated_bodies_do_not_use_anonymous_slots(service: LiveService) -> None:
    anonymous = [service.raw_request(STALLED_HEAD, PART) for _ in range(ANONYMOUS_SLOTS)]
    time.sleep(0.2)
    files = {"file": ("x.txt", b"not an image", "text/plain")}
    headers = {"Authorization": f"Bearer {service.token}"}
    with httpx.Client(base_url=service.url, timeout=10) as client:
        response = client.post("/api/analyze", files=files, headers=headers)
    assert response.status_code == 400  # reached the route: the media is checked
    for s in anonymous:
        s.close()


def test_anonymous_body_slots_stay_below_the_ingress_request_cap() -> None:
    ingress_cap = DEFAULT_OPTIONS["Ingress"]["max_ongoing_requests"]
    assert AdmissionSettings().max_anonymous_bodies <= ingress_cap // 4


def _upload_head(service: LiveService, length: int) -> str:
    return STALLED_HEAD.replace("50000000", str(length)) + (
        f"Authorization: Bearer {service.token}\n"
    )


def _response_head(sock: socket.socket) -> bytes:
    return sock.recv(4096).split(b"\r\n\r\n", 1)[0].lower()


def test_one_users_parallel_uploads_are_capped_before_their_bodies(service: LiveService) -> None:
    held = [service.raw_request(_upload_head(service, 100_000), PART) for _ in range(USER_REQUESTS)]
    time.sleep(0.3)
    extra = service.raw_request(_upload_head(service, 100_000), PART)
    head = _response_head(extra)
    assert head.startswith(b"http/1.1 429")
    assert b"retry-after: " in head
    for s in [*held, extra]:
        s.close()
    # Closed uploads give their slots back.
    time.sleep(0.5)
    files = {"file": ("x.txt", b"not an image", "text/plain")}
    headers = {"Authorization": f"Bearer {service.token}"}
    with httpx.Client(base_url=service.url, timeout=10) as client:
        assert client.post("/api/analyze", files=files, headers=headers).status_code == 400


def test_one_users_bytes_in_flight_are_capped(service: LiveService) -> None:
    big = service.raw_request(_upload_head(service, USER_BYTES - 1000), PART)
    time.sleep(0.3)
    second = service.raw_request(_upload_head(service, 2000), PART)
    assert _response_head(second).startswith(b"http/1.1 429")
    big.close()
    second.close()


def test_invalid_tokens_are_throttled_per_address_valid_ones_are_not(service: LiveService) -> None:
    burst = service.accounts.settings.failed_auth_burst
    with httpx.Client(base_url=service.url, timeout=10) as client:
        statuses = [
            client.get(
                "/api/me", headers={"Authorization": f"Bearer sa_{secrets.token_urlsafe(32)}"}
            ).status_code
            for _ in range(burst + 5)
        ]
        assert statuses[:burst] == [401] * burst
        assert set(statuses[burst:]) == {429}
        valid = {"Authorization": f"Bearer {service.token}"}
        assert client.get("/api/me", headers=valid).status_code == 200
