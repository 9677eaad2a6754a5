"""Graceful behaviour of the real Ray Serve graph: backpressure, crashes, drains.

One app (``resilience`` at ``/resilience``) on the session's Ray cluster: Ingress →
FrameExtractor → VisionLanguageModel, the tiny transformers model doing the real
generation. The model replica's engine is that real engine behind a gate
(:class:`GatedEngine`): a request whose prompt contains :data:`HOLD` writes a marker
file and waits until the test lets it go, so the test knows the request is inside the
model replica when it kills, redeploys or deletes things. (A request of the tiny
model lasts well under a second; a fixed sleep could not tell "in flight" from "not
yet arrived" on a loaded 2-core machine.)

Limits are tiny so backpressure is reachable with a handful of requests: Ingress takes
2 requests at once and lets 1 wait at the proxy; the model replica takes 1 at once and
lets 1 wait per caller.

Proven here, over HTTP unless said otherwise:

- backpressure: the proxy's refusal (Ingress queue full) is a 503 with Retry-After;
  a handle's ``BackPressureError`` maps to a retryable ``BackendUnavailable``;
- a model replica killed mid-request: 503 with Retry-After, the paying user's credits
  are reserved then released (balance unchanged, no open reservation); the
  controller replaces the replica and a retry succeeds and is charged once;
- a request in flight while a redeploy replaces every replica (rolling update), or
  while the whole app is deleted, completes with 200: Serve drains each stopping
  replica for up to its ``graceful_shutdown_timeout_s``.
"""

from __future__ import annotations

import asyncio
import functools
import os
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from serve_app.accounts.context import open_accounts
from serve_app.accounts.credits import ReservationState
from serve_app.accounts.models import CreditLedgerRow, ReservationRow
from serve_app.config import Settings
from serve_app.deployments.frame_extractor import FrameExtractor
from serve_app.deployments.handles import domain_error
from serve_app.deployments.ingress import Ingress
from serve_app.deployments.options import BACKPRESSURE_RETRY_S, deployment
from serve_app.deployments.vision_language_model import VisionLanguageModel
from serve_app.engines.base import Engine, GenerationRequest, GenerationResult
from serve_app.engines.factory import build_engine
from serve_app.engines.profile import ModelProfile
from serve_app.errors import BackendUnavailable
from tests.support.graphs import FAST_ACCOUNTS, create_api_token, tiny_profile
from tests.support.media_files import make_image

APP, PREFIX = "resilience", "/resilience"
MODEL_DEPLOYMENT = "VisionLanguageModel"
#: A prompt containing this is held in the model replica until the test lets it go.
HOLD = "[hold]"
#: A held request goes on by itself after this long, so a failed test hangs nothing.
HOLD_LIMIT_S = 60.0
COST = 10


class GatedEngine(Engine):
    """The real transformers engine of ``profile``, held at a file gate for :data:`HOLD`.

    A held request writes ``held-<ticket>`` (holding the replica's pid) into
    ``gate_dir`` and waits for ``go-<ticket>``. The inner engine is built in the
    replica (``start``) and left out of pickles: a loaded engine holds locks and a
    model, which do not pickle.
    """

    name = "gated-transformers"
    supports_batching = False

    def __init__(self, profile: ModelProfile, data_dir: str, gate_dir: str) -> None:
        self._profile = profile
        self._data_dir = data_dir
        self._gate = Path(gate_dir)
        self._inner: Engine | None = None

    def __getstate__(self) -> dict[str, Any]:
        # Serve pickles a replica's init args again after __init__ (to find handles).
        return {**self.__dict__, "_inner": None}

    async def start(self) -> None:
        self._inner = build_engine(self._profile, Path(self._data_dir))
        await self._inner.start()

    async def generate(self, request: GenerationRequest) -> GenerationResult:
        assert self._inner is not None
        if HOLD in request.prompt:
            ticket = uuid.uuid4().hex
            (self._gate / f"held-{ticket}").write_text(str(os.getpid()))
            deadline = time.monotonic() + HOLD_LIMIT_S
            while not (self._gate / f"go-{ticket}").exists() and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
        return await self._inner.generate(request)

    async def check_health(self) -> None:
        if self._inner is not None:
            await self._inner.check_health()

    async def shutdown(self) -> None:
        if self._inner is not None:
            await self._inner.shutdown()


def build(data_dir: Path, gate: Path, profile: ModelProfile, model_cpus: float = 0.1) -> Any:
    """The analysis graph of ``build_graph`` (no Story API, no jobs), small limits."""
    settings = Settings(data_dir=data_dir, accounts=FAST_ACCOUNTS)
    small = {"ray_actor_options": {"num_cpus": 0.1}}
    model_options = {
        "num_replicas": 1,
        "max_ongoing_requests": 1,
        "max_queued_requests": 1,
        "ray_actor_options": {"num_cpus": model_cpus},
    }
    model = deployment(VisionLanguageModel, MODEL_DEPLOYMENT, model_options).bind(
        functools.partial(GatedEngine, profile, str(data_dir), str(gate)), profile
    )
    frames = deployment(FrameExtractor, "FrameExtractor", small).bind(settings.media)
    ingress_options = {"max_ongoing_requests": 2, "max_queued_requests": 1, **small}
    ingress = deployment(Ingress, "Ingress", ingress_options)
    return ingress.bind(
        frames, {profile.name: model}, {profile.name: profile}, profile.name, settings
    )


# -- the mapping of Ray's errors, without a cluster -----------------------------------


def test_ray_faults_become_retryable_errors() -> None:
    from ray.exceptions import ActorDiedError
    from ray.serve.exceptions import BackPressureError, RayServeException

    busy = domain_error(BackPressureError(num_queued_requests=1, max_queued_requests=1))
    assert isinstance(busy, BackendUnavailable) and busy.retry_after_s == 2
    told = domain_error(BackPressureError(1, 1, retry_after_s=7.5))
    assert isinstance(told, BackendUnavailable) and told.retry_after_s == 8
    dead = domain_error(ActorDiedError())
    assert isinstance(dead, BackendUnavailable) and dead.retry_after_s == 5
    # Serve's error for a request whose upstream replica (passed by reference) died.
    upstream = RayServeException("an upstream actor died")
    upstream.__cause__ = ActorDiedError()
    assert isinstance(domain_error(upstream), BackendUnavailable)
    plain = RayServeException("something else")
    assert domain_error(plain) is plain


# -- the real graph -------------------------------------------------------------------


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("resilience")


@pytest.fixture(scope="module")
def gate(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("gate")


@pytest.fixture(scope="module")
def users(data_dir: Path) -> dict[str, tuple[str, int]]:
    settings = {"data_dir": str(data_dir), "accounts": FAST_ACCOUNTS}
    return {
        "admin": create_api_token(settings, "admin", admin=True),
        "payer": create_api_token(settings, "payer", credits=100),
    }


@pytest.fixture(scope="module")
def profile(tiny_model_dir: Path) -> ModelProfile:
    return tiny_profile(tiny_model_dir)


@pytest.fixture(scope="module")
def app(
    ray_serve: int, data_dir: Path, gate: Path, profile: ModelProfile, users: Any
) -> Iterator[str]:
    from ray import serve

    serve.run(build(data_dir, gate, profile), name=APP, route_prefix=PREFIX)
    try:
        yield f"http://127.0.0.1:{ray_serve}{PREFIX}"
    finally:
        if APP in serve.status().applications:
            serve.delete(APP)


@pytest.fixture(scope="module")
def image(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_image(tmp_path_factory.mktemp("resilience-media") / "a.jpg", "jpeg", 96, 64)


def release(gate: Path) -> None:
    """Let every held request go on."""
    for marker in gate.glob("held-*"):
        (gate / marker.name.replace("held-", "go-", 1)).touch()


@pytest.fixture
def held(gate: Path) -> Iterator[Callable[[], int]]:
    """Empties the gate; yields how many requests the model replica holds (or held)."""
    for path in gate.iterdir():
        path.unlink()
    try:
        yield lambda: len(list(gate.glob("held-*")))
    finally:
        release(gate)  # nothing stays held after a failure


@pytest.fixture
def pool() -> Iterator[ThreadPoolExecutor]:
    with ThreadPoolExecutor(max_workers=10) as executor:
        yield executor


def wait_until(predicate: Callable[[], bool], timeout_s: float = 30.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what or predicate}"
        time.sleep(0.05)


def analyze(url: str, image: Path, token: str, prompt: str = "Describe it.") -> httpx.Response:
    return httpx.post(
        f"{url}/api/analyze",
        files={"file": (image.name, image.read_bytes(), "image/jpeg")},
        data={"prompt": prompt},
        headers={"Authorization": f"Bearer {token}"},
        timeout=120,
    )


def app_status() -> str:
    from ray import serve

    status = serve.status().applications.get(APP)
    return "" if status is None else str(status.status).rsplit(".", 1)[-1]


def replica_states(deployment: str) -> dict[str, int]:
    from ray import serve

    status = serve.status().applications.get(APP)
    if status is None or deployment not in status.deployments:
        return {}
    states = status.deployments[deployment].replica_states
    return {str(state).rsplit(".", 1)[-1]: n for state, n in states.items() if n}


def credits_of(data_dir: Path, user_id: int) -> tuple[int, list[tuple[str, int]], int]:
    """Balance, ledger (kind, delta) in order, and reservations still ``reserved``."""
    accounts = open_accounts(Settings(data_dir=data_dir, accounts=FAST_ACCOUNTS))
    try:
        with accounts.database.transaction() as session:
            ledger = session.execute(
                select(CreditLedgerRow.kind, CreditLedgerRow.delta)
                .where(CreditLedgerRow.user_id == user_id)
                .order_by(CreditLedgerRow.id)
            ).all()
            open_reservations = session.scalars(
                select(ReservationRow.id).where(
                    ReservationRow.user_id == user_id,
                    ReservationRow.state == ReservationState.RESERVED.value,
                )
            ).all()
        return (
            accounts.credits.balance(user_id),
            [(kind, int(delta)) for kind, delta in ledger],
            len(open_reservations),
        )
    finally:
        accounts.close()


@pytest.mark.ray
@pytest.mark.slow
def test_backpressure_is_503_with_retry_after(app, image, users, held, pool, gate) -> None:
    from ray import serve
    from ray.serve.exceptions import BackPressureError

    admin = users["admin"][0]
    first = pool.submit(analyze, app, image, admin, HOLD)
    wait_until(lambda: held() == 1, what="the first request in the model replica")
    # Ingress holds 2 (the first, one waiting for the model) and the proxy queues 1:
    # of three more requests at least one is refused at once.
    more: list[Future[httpx.Response]] = []
    for _ in range(3):
        more.append(pool.submit(analyze, app, image, admin, HOLD))
        time.sleep(0.3)
    done, _ = wait(more, timeout=30, return_when=FIRST_COMPLETED)
    assert done, "no request was refused"
    refused = done.pop().result()
    assert refused.status_code == 503, refused.text
    assert refused.headers["retry-after"] == str(BACKPRESSURE_RETRY_S)
    assert "backpressure" in refused.text  # the proxy refused it, not the ingress

    # A handle caller past the model's max_queued_requests gets BackPressureError,
    # which the ingress and the job runner turn into a retryable BackendUnavailable.
    handle = serve.get_deployment_handle(MODEL_DEPLOYMENT, app_name=APP)
    calls = [handle.ready.remote() for _ in range(3)]  # 1 may wait, the rest are refused
    answers = [pool.submit(call.result, timeout_s=60) for call in calls]
    done, _ = wait(answers, timeout=30, return_when=FIRST_COMPLETED)
    assert done, "no handle call was refused"
    error = done.pop().exception()
    assert isinstance(error, BackPressureError), error
    mapped = domain_error(error)
    assert isinstance(mapped, BackendUnavailable) and mapped.retry_after_s >= 1

    def all_answered() -> bool:
        release(gate)  # the waiting ones reach the engine one at a time
        return all(f.done() for f in [first, *more])

    wait_until(all_answered, timeout_s=60, what="every request to be answered")
    assert first.result().status_code == 200
    statuses = sorted(f.result().status_code for f in more)
    assert statuses.count(200) >= 1 and set(statuses) <= {200, 503}, statuses
    outcomes = [a.exception(timeout=60) or a.result() for a in answers]
    assert all(o is True or isinstance(o, BackPressureError) for o in outcomes), outcomes
    assert sum(isinstance(o, BackPressureError) for o in outcomes) >= 2, outcomes


def kill_model_replica() -> None:
    import ray

    prefix = f"SERVE_REPLICA::{APP}#{MODEL_DEPLOYMENT}#"
    actors = [
        a for a in ray.util.list_named_actors(all_namespaces=True) if a["name"].startswith(prefix)
    ]
    assert len(actors) == 1, actors
    ray.kill(ray.get_actor(actors[0]["name"], namespace=actors[0]["namespace"]), no_restart=True)


@pytest.mark.ray
@pytest.mark.slow
def test_a_replica_crash_is_503_and_costs_nothing(app, image, users, held, pool, data_dir):
    token, user_id = users["payer"]
    balance, ledger, _ = credits_of(data_dir, user_id)
    pending = pool.submit(analyze, app, image, token, HOLD)
    wait_until(lambda: held() == 1, what="the request in the model replica")
    kill_model_replica()

    response = pending.result(timeout=60)
    assert response.status_code == 503, response.text
    assert int(response.headers["retry-after"]) >= 1
    assert "retry" in response.json()["detail"]
    after, after_ledger, open_reservations = credits_of(data_dir, user_id)
    assert after == balance
    assert after_ledger[len(ledger) :] == [("reserve", -COST), ("release", COST)]
    assert open_reservations == 0

    # Serve replaces the replica; the client's retry is served and charged once.
    deadline = time.monotonic() + 90
    while (retry := analyze(app, image, token)).status_code == 503:
        assert time.monotonic() < deadline, "the model replica did not come back"
        time.sleep(0.5)
    assert retry.status_code == 200, retry.text
    assert retry.json()["remaining_tokens"] == balance - COST
    final, final_ledger, open_reservations = credits_of(data_dir, user_id)
    assert final == balance - COST and open_reservations == 0
    assert sum(delta for _, delta in final_ledger) == final


@pytest.mark.ray
@pytest.mark.slow
def test_a_rolling_redeploy_drains_the_request_in_flight(
    app, image, users, held, pool, gate, data_dir, profile
) -> None:
    from ray import serve

    admin = users["admin"][0]
    pending = pool.submit(analyze, app, image, admin, HOLD)
    wait_until(lambda: held() == 1, what="the request in the model replica")
    # serve.run gives every deployment a new code version: all replicas are replaced.
    update = build(data_dir, gate, profile, model_cpus=0.11)
    deploying = pool.submit(serve.run, update, name=APP, route_prefix=PREFIX)
    wait_until(
        lambda: replica_states(MODEL_DEPLOYMENT).get("STOPPING", 0) == 1,
        timeout_s=60,
        what="the old model replica to be stopping",
    )
    assert not pending.done()
    release(gate)
    response = pending.result(timeout=60)
    assert response.status_code == 200, response.text
    assert response.json()["result"].strip()
    deploying.result(timeout=120)
    assert replica_states(MODEL_DEPLOYMENT) == {"RUNNING": 1}
    assert analyze(app, image, admin).status_code == 200


@pytest.mark.ray
@pytest.mark.slow
def test_deleting_the_app_drains_the_request_in_flight(app, image, users, held, pool, gate):
    from ray import serve

    pending = pool.submit(analyze, app, image, users["admin"][0], HOLD)
    wait_until(lambda: held() == 1, what="the request in the model replica")
    deleting = pool.submit(serve.delete, APP)
    wait_until(lambda: app_status() == "DELETING", what="the app to be deleting")
    # The proxy drops the app's route at once: new requests get 404 ...
    wait_until(
        lambda: httpx.get(f"{app}/healthz", timeout=10).status_code == 404,
        what="the route to be gone",
    )
    # ... while the request already inside the replicas is still being served.
    assert not pending.done()
    release(gate)
    response = pending.result(timeout=60)
    assert response.status_code == 200, response.text
    deleting.result(timeout=120)
    assert APP not in serve.status().applications
