"""CORS headers over the real app (in process): allow-list, preflights, no credentials."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pydantic
import pytest
import yaml

from serve_app.config import PROJECT_ROOT, HttpSettings, Settings
from serve_app.http.cors import origin_regex
from tests.support.media_files import real_photo
from tests.web.conftest import Site, build_site

PAGE = "http://127.0.0.1:5173"
PREFLIGHT = {
    "Origin": PAGE,
    "Access-Control-Request-Method": "POST",
    "Access-Control-Request-Headers": "authorization, content-type, idempotency-key",
}


def cors_headers(response: httpx.Response) -> dict[str, str]:
    return {k: v for k, v in response.headers.items() if k.startswith("access-control-")}


@pytest.fixture
async def listed(tiny_engine, tmp_path: Path) -> AsyncIterator[Site]:
    """A site that allows one explicit origin and any port of localhost."""
    built, close = build_site(
        tiny_engine,
        tmp_path,
        http={"cors_allow_origins": ["https://app.example.com", "http://localhost:*"]},
    )
    yield built
    close()


async def test_preflight_from_a_loopback_page_is_answered(site: Site) -> None:
    async with site.client() as client:
        response = await client.options("/analyze/", headers=PREFLIGHT)
    assert response.status_code == 200
    headers = cors_headers(response)
    assert headers["access-control-allow-origin"] == PAGE
    methods = {m.strip() for m in headers["access-control-allow-methods"].split(",")}
    assert {"GET", "POST", "PUT", "DELETE"} <= methods
    allowed = {h.strip().lower() for h in headers["access-control-allow-headers"].split(",")}
    assert {"authorization", "content-type", "idempotency-key"} <= allowed
    assert "access-control-allow-credentials" not in headers
    assert "Origin" in response.headers["vary"]


@pytest.mark.parametrize(
    "origin",
    ["http://127.0.0.1:8080", "http://127.0.0.1", "http://localhost:3000", "http://[::1]:9000"],
)
async def test_default_allows_every_loopback_port(site: Site, origin: str) -> None:
    async with site.client() as client:
        response = await client.options("/api/analyze", headers={**PREFLIGHT, "Origin": origin})
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == origin


@pytest.mark.parametrize(
    "origin",
    [
        "http://evil.example",
        "http://127.0.0.1.evil.example:8000",
        "http://localhost.evil.example",
        "https://127.0.0.1:8443",
        "http://127.0.0.1:80/x",
        "null",
    ],
)
async def test_other_origins_get_no_cors_headers(site: Site, origin: str) -> None:
    async with site.client() as client:
        preflight = await client.options("/analyze/", headers={**PREFLIGHT, "Origin": origin})
        simple = await client.get("/healthz", headers={"Origin": origin})
    assert preflight.status_code == 400 and cors_headers(preflight) == {}
    assert simple.status_code == 200 and cors_headers(simple) == {}
    assert "Origin" in simple.headers["vary"]


async def test_story_call_from_an_allowed_page_is_readable(site: Site) -> None:
    token = site.accounts.tokens.create(site.user.id, "cors").token
    photo = real_photo().read_bytes()
    async with site.client() as client:
        response = await client.post(
            "/analyze/",
            headers={"Origin": PAGE, "Authorization": f"Bearer {token}"},
            files={"files": ("photo.png", photo, "image/png")},
        )
    assert response.status_code == 200, response.text
    assert response.json()["english"]
    headers = cors_headers(response)
    assert headers["access-control-allow-origin"] == PAGE
    exposed = {h.strip().lower() for h in headers["access-control-expose-headers"].split(",")}
    assert {"retry-after", "x-request-id"} <= exposed
    assert "access-control-allow-credentials" not in headers


async def test_refusals_carry_cors_headers_too(site: Site) -> None:
    """A page must be able to read a 401 or 404 (the error body says why)."""
    async with site.client() as client:
        unauthorized = await client.get("/api/me", headers={"Origin": PAGE})
        missing = await client.get("/no/such/path", headers={"Origin": PAGE})
    assert unauthorized.status_code == 401
    assert unauthorized.headers["access-control-allow-origin"] == PAGE
    assert missing.status_code == 404
    assert missing.headers["access-control-allow-origin"] == PAGE


async def test_cookies_are_never_allowed_cross_origin(site: Site) -> None:
    async with site.signed_in() as client:
        preflight = await client.options(
            "/api/me", headers={**PREFLIGHT, "Access-Control-Request-Method": "GET"}
        )
        response = await client.get("/api/me", headers={"Origin": PAGE})
    assert response.status_code == 200  # same site: the browser sends no Origin there
    for answer in (preflight, response):
        assert "access-control-allow-credentials" not in answer.headers
        assert set(cors_headers(answer)) <= {
            "access-control-allow-origin",
            "access-control-allow-methods",
            "access-control-allow-headers",
            "access-control-max-age",
            "access-control-expose-headers",
        }


async def test_an_explicit_allow_list(listed: Site) -> None:
    async with listed.client() as client:
        allowed = await client.options(
            "/analyze/", headers={**PREFLIGHT, "Origin": "https://app.example.com"}
        )
        any_port = await client.options(
            "/analyze/", headers={**PREFLIGHT, "Origin": "http://localhost:41234"}
        )
        refused = await client.options("/analyze/", headers=PREFLIGHT)  # 127.0.0.1: not listed
    assert allowed.headers["access-control-allow-origin"] == "https://app.example.com"
    assert any_port.headers["access-control-allow-origin"] == "http://localhost:41234"
    assert refused.status_code == 400 and cors_headers(refused) == {}


async def test_an_empty_list_turns_cors_off(tiny_engine, tmp_path: Path) -> None:
    built, close = build_site(tiny_engine, tmp_path, http={"cors_allow_origins": []})
    try:
        async with built.client() as client:
            preflight = await client.options("/analyze/", headers=PREFLIGHT)
            simple = await client.get("/healthz", headers={"Origin": PAGE})
    finally:
        close()
    assert preflight.status_code == 405 and cors_headers(preflight) == {}
    assert cors_headers(simple) == {}


def production_settings() -> list[dict]:
    serve = yaml.safe_load((PROJECT_ROOT / "serve_config.yaml").read_text())
    manifest = yaml.safe_load((PROJECT_ROOT / "configs/kuberay/rayservice.yaml").read_text())
    kuberay = yaml.safe_load(manifest["spec"]["serveConfigV2"])
    return [config["applications"][0]["args"]["settings"] for config in (serve, kuberay)]


@pytest.mark.parametrize("settings", production_settings(), ids=["serve_config", "kuberay"])
def test_production_profiles_allow_no_origin(settings: dict) -> None:
    assert Settings(**settings).http.cors_allow_origins == []


def test_embedded_default_allows_loopback_only() -> None:
    assert Settings().http.cors_allow_origins == [
        "http://127.0.0.1:*",
        "http://localhost:*",
        "http://[::1]:*",
    ]


def test_origin_patterns() -> None:
    pattern = re.compile(origin_regex(["http://localhost:*", "https://a.example"]) or "")
    assert pattern.fullmatch("http://localhost:1")
    assert pattern.fullmatch("http://localhost")
    assert pattern.fullmatch("https://a.example")
    assert not pattern.fullmatch("http://localhostX:1")
    assert not pattern.fullmatch("https://a.example:8443")
    assert not pattern.fullmatch("http://a.example")
    assert origin_regex([]) is None


@pytest.mark.parametrize(
    "bad", ["127.0.0.1:8000", "http://host/path", "ftp://host", "http://*.example", ""]
)
def test_settings_refuse_what_is_not_an_origin(bad: str) -> None:
    with pytest.raises(pydantic.ValidationError):
        HttpSettings(cors_allow_origins=[bad])


def test_settings_normalise_origins() -> None:
    settings = HttpSettings(cors_allow_origins=[" HTTPS://App.Example.com/ "])
    assert settings.cors_allow_origins == ["https://app.example.com"]
