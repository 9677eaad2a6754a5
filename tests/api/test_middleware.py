import httpx
import pytest
from fastapi import FastAPI, Request

from serve_app.http.middleware import BodySizeLimitMiddleware, RequestIdMiddleware


def make_app(max_bytes: int) -> FastAPI:
    app = FastAPI()

    @app.post("/echo")
    async def echo(request: Request) -> dict[str, object]:
        body = await request.body()
        return {"size": len(body), "request_id": request.state.request_id}

    app.add_middleware(BodySizeLimitMiddleware, max_bytes=max_bytes)
    app.add_middleware(RequestIdMiddleware)
    return app


@pytest.fixture
def client():
    transport = httpx.ASGITransport(app=make_app(max_bytes=1000))
    return httpx.AsyncClient(transport=transport, base_url="http://test")


async def test_small_body_passes_with_a_request_id(client):
    response = await client.post("/echo", content=b"a" * 10)
    assert response.status_code == 200
    assert response.json()["size"] == 10
    assert response.headers["x-request-id"] == response.json()["request_id"]
    assert len(response.headers["x-request-id"]) == 32


async def test_safe_client_request_id_is_kept_and_unsafe_one_replaced(client):
    ok = await client.post("/echo", content=b"", headers={"X-Request-ID": "abc-123"})
    assert ok.headers["x-request-id"] == "abc-123"
    bad = await client.post("/echo", content=b"", headers={"X-Request-ID": "a b\r\nc"})
    assert bad.headers["x-request-id"] != "a b\r\nc"


async def test_declared_oversized_body_is_413(client):
    response = await client.post("/echo", content=b"a" * 1001)
    assert response.status_code == 413
    assert "limit" in response.json()["detail"]


async def test_streamed_oversized_body_without_length_is_413(client):
    async def chunks():
        for _ in range(5):
            yield b"b" * 400

    response = await client.post("/echo", content=chunks())
    assert response.status_code == 413
    assert "limit" in response.json()["detail"]


async def test_invalid_content_length_is_400(client):
    response = await client.post("/echo", content=b"abc", headers={"content-length": "abc"})
    assert response.status_code == 400


async def test_request_id_is_the_logging_context_while_the_request_runs():
    from serve_app.observability.logging import request_id_var

    app = FastAPI()

    @app.get("/id")
    async def current() -> dict[str, str]:
        return {"context": request_id_var.get()}

    app.add_middleware(RequestIdMiddleware)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        response = await client.get("/id", headers={"X-Request-ID": "ctx-42"})
    assert response.json() == {"context": "ctx-42"}
    assert request_id_var.get() == ""


async def test_echo_can_be_left_to_a_proxy():
    app = FastAPI()

    @app.get("/id")
    async def current(request: Request) -> dict[str, str]:
        return {"id": request.state.request_id}

    app.add_middleware(RequestIdMiddleware, echo=False)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        response = await client.get("/id", headers={"X-Request-ID": "from-proxy"})
    assert response.json() == {"id": "from-proxy"}
    assert "x-request-id" not in response.headers
