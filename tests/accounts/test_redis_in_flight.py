"""Per-user in-flight caps shared through Redis by every ingress replica (issue 18, item 3).

Each test runs its own ``redis-server`` (tests/support/redis_servers.py); two
RedisInFlightCaps (or two ingress apps) over one Redis stand in for two replicas.
"""

from __future__ import annotations

import asyncio
import time

import pytest
from starlette.requests import Request
from starlette.responses import JSONResponse

from serve_app.accounts.context import AccountsContext
from serve_app.accounts.redis_in_flight import GROW_STEP_BYTES, RedisInFlightCaps
from serve_app.accounts.redis_limits import OUTAGE_BACKOFF_S, RedisLimits
from serve_app.accounts.settings import AdmissionSettings
from serve_app.accounts.users import create_user
from serve_app.errors import BackendUnavailable, RateLimited
from serve_app.http.admission import AdmissionMiddleware
from tests.support.accounts_app import client_for
from tests.support.databases import FAST_SETTINGS, SESSION_KEY
from tests.support.redis_servers import RedisServer

MiB = 1024 * 1024


def replicas(url: str, n: int = 2, outage: str = "open", **caps) -> list[RedisInFlightCaps]:
    options = {"max_requests": 2, "max_bytes": 100, "lease_s": 30.0, **caps}
    return [RedisInFlightCaps(RedisLimits(url, outage), **options) for _ in range(n)]  # type: ignore[arg-type]


def test_two_replicas_share_the_request_and_byte_caps(redis_server: RedisServer) -> None:
    a, b = replicas(redis_server.url)
    first = a.admit(1, 60)
    with pytest.raises(RateLimited, match="MiB"):
        b.admit(1, 41)  # 60 + 41 > 100 bytes across both replicas
    b.admit(2, 100)  # another user has their own caps
    second = b.admit(1, 40)
    with pytest.raises(RateLimited, match="2 uploads") as refused:
        a.admit(1, 0)
    assert refused.value.retry_after_s == 2
    assert a.in_flight(1) == b.in_flight(1) == (2, 100)
    first.release()
    first.release()  # once only
    assert b.in_flight(1) == (1, 40)
    third = b.admit(1, 0)
    second.release()
    third.release()
    assert a.in_flight(1) == (0, 0)
    assert not a._limits.client.exists("serve_app:inflight:1")


def test_bodies_of_unknown_length_reserve_shared_bytes_in_steps(redis_server: RedisServer) -> None:
    a, b = replicas(redis_server.url, max_bytes=3 * MiB)
    lease = a.admit(1, 0)
    lease.grow(10)
    assert b.in_flight(1) == (1, GROW_STEP_BYTES)  # one step reserved ahead
    calls = redis_server_calls(a)
    for _ in range(100):
        lease.grow(1000)  # within the step: no Redis call
    assert redis_server_calls(a) == calls + 1  # the INFO call itself
    b.admit(1, 2 * MiB)
    with pytest.raises(RateLimited):
        lease.grow(GROW_STEP_BYTES)  # the other replica's 2 MiB leave no room
    lease.release()
    assert b.in_flight(1) == (1, 2 * MiB)


def redis_server_calls(caps: RedisInFlightCaps) -> int:
    return int(caps._limits.client.info("stats")["total_commands_processed"])


def test_a_dead_replicas_leases_expire_a_live_ones_are_renewed(redis_server: RedisServer) -> None:
    live, dead, other = replicas(redis_server.url, 3, lease_s=0.6)
    live.admit(1, 10)
    dead.admit(1, 10)  # then its process dies: nobody renews or releases it
    with pytest.raises(RateLimited):
        other.admit(1, 0)
    for _ in range(5):  # 1 s: the dead lease is past its 0.6 s, the live one renewed
        time.sleep(0.2)
        live.renew()  # the HoldLeases beat of a running replica
    assert other.in_flight(1) == (1, 10)
    other.admit(1, 0)
    with pytest.raises(RateLimited):
        other.admit(1, 0)


def test_outage_open_falls_back_to_each_replicas_own_caps(redis_server: RedisServer) -> None:
    a, b = replicas(redis_server.url, outage="open")
    held = a.admit(1, 50)
    b.admit(1, 50)
    redis_server.stop()
    started = time.monotonic()
    during = [a.admit(1, 50), a.admit(1, 50)]  # Redis's counts are unknown: a's own
    with pytest.raises(RateLimited):
        a.admit(1, 0)  # still at most max_requests per replica
    assert time.monotonic() - started < 1.0  # one timeout, then the backoff skips Redis
    for lease in during:
        lease.release()
    redis_server.start()  # an empty Redis on the same port
    time.sleep(OUTAGE_BACKOFF_S + 0.1)
    a.renew()  # the beat puts a's running request back
    assert b.in_flight(1) == (1, 50)
    held.release()


def test_outage_closed_refuses_with_retry_after(redis_server: RedisServer) -> None:
    (caps,) = replicas(redis_server.url, 1, outage="closed")
    lease = caps.admit(1, 10)
    redis_server.stop()
    with pytest.raises(BackendUnavailable) as refused:
        caps.admit(1, 10)
    assert refused.value.retry_after_s >= 1
    with pytest.raises(BackendUnavailable):
        lease.grow(50)  # more bytes cannot be counted either
    lease.release()  # unanswered: the lease would expire on its own


async def test_two_ingress_apps_share_the_cap_over_http(database, redis_server) -> None:
    settings = FAST_SETTINGS.model_copy(update={"redis_url": redis_server.url})
    first, second = (AccountsContext.build(database, settings, SESSION_KEY) for _ in "ab")
    alice = create_user(database, first.passwords, "alice", "password123", credits=0)
    headers = {"Authorization": f"Bearer {first.tokens.create(alice.id, 'ci').token}"}
    admission = AdmissionSettings(max_requests_in_flight_per_user=1)
    release = asyncio.Event()

    async def upload(scope, receive, send) -> None:
        body = await Request(scope, receive).body()
        await release.wait()
        await JSONResponse({"size": len(body)})(scope, receive, send)

    apps = [AdmissionMiddleware(upload, ctx, admission) for ctx in (first, second)]
    assert isinstance(apps[0]._caps, RedisInFlightCaps)
    async with client_for(apps[0]) as a, client_for(apps[1]) as b:  # type: ignore[arg-type]
        held = asyncio.create_task(a.post("/upload", content=b"x" * 100, headers=headers))
        while apps[0]._caps.in_flight(alice.id) == (0, 0):
            await asyncio.sleep(0.01)
        refused = await b.post("/upload", content=b"y", headers=headers)
        release.set()
        assert (await held).status_code == 200
        assert refused.status_code == 429 and refused.headers["retry-after"]
        assert (await b.post("/upload", content=b"y", headers=headers)).status_code == 200


def test_without_redis_url_the_caps_stay_in_process(database) -> None:
    context = AccountsContext.build(database, FAST_SETTINGS, SESSION_KEY)
    assert type(context.in_flight_caps(2, 100, 1)).__name__ == "InFlightCaps"
