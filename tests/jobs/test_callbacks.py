"""Callbacks: signed POSTs, retried with backoff, through the SSRF guard."""

from __future__ import annotations

import json
import time

from serve_app.jobs.callbacks import SIGNATURE_HEADER, TIMESTAMP_HEADER, deliver, verify_signature
from serve_app.net.fetch import FetchPolicy, SafeHttp
from tests.support.http_servers import PUBLIC_IP, Network, counting_server


async def no_sleep(seconds: float) -> None:
    SLEPT.append(seconds)


SLEPT: list[float] = []


def network(port: int) -> SafeHttp:
    net = Network(names={"hooks.test": [PUBLIC_IP]}, routes={(PUBLIC_IP, 80): port})
    return SafeHttp(FetchPolicy(max_bytes=1000), resolver=net.resolve, connector=net.connect)


async def test_a_signed_callback_is_retried_until_accepted() -> None:
    answers = iter([500, 429, 204])
    SLEPT.clear()
    with counting_server(lambda m, p, h, b: (next(answers), {}, b"")) as server:
        delivered = await deliver(
            network(server.port),
            "http://hooks.test/done",
            "s3cret",
            {"job_id": "j", "status": 0},
            attempts=5,
            backoff_s=1.0,
            sleep=no_sleep,
        )
    assert delivered and SLEPT == [1.0, 2.0]
    method, path, headers, body = server.requests[-1]
    assert (method, path) == ("POST", "/done")
    assert json.loads(body) == {"job_id": "j", "status": 0}
    assert headers["content-type"] == "application/json"
    assert verify_signature(
        "s3cret", headers[TIMESTAMP_HEADER.lower()], body, headers[SIGNATURE_HEADER.lower()]
    )
    assert not verify_signature(
        "other", headers[TIMESTAMP_HEADER.lower()], body, headers[SIGNATURE_HEADER.lower()]
    )
    assert not verify_signature(
        "s3cret", headers[TIMESTAMP_HEADER.lower()], body + b" ", headers[SIGNATURE_HEADER.lower()]
    )
    stale = str(int(time.time()) - 3600)
    assert not verify_signature("s3cret", stale, body, headers[SIGNATURE_HEADER.lower()])


async def test_client_errors_end_delivery_and_failures_give_up() -> None:
    with counting_server(lambda m, p, h, b: (404, {}, b"")) as server:
        assert not await deliver(
            network(server.port),
            "http://hooks.test/x",
            "k",
            {},
            attempts=3,
            backoff_s=1,
            sleep=no_sleep,
        )
        assert server.connections == 1
    SLEPT.clear()
    assert not await deliver(
        network(1), "http://hooks.test/x", "k", {}, attempts=3, backoff_s=0.5, sleep=no_sleep
    )
    assert SLEPT == [0.5, 1.0]


async def test_callbacks_to_private_addresses_are_never_sent() -> None:
    with counting_server(lambda m, p, h, b: (200, {}, b"")) as server:
        http = SafeHttp(FetchPolicy(max_bytes=10))
        url = f"http://127.0.0.1:{server.port}/hook"
        assert not await deliver(http, url, "k", {}, attempts=3, backoff_s=0, sleep=no_sleep)
        assert server.connections == 0
