"""The pages over the real app (in process): sign-in flow, rendering, headers, links."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from serve_app.http.web.rendering import NAVIGATION
from tests.web.conftest import PASSWORD, Site, build_site

PAGES = [item.path for item in NAVIGATION]


def page_config(html: str) -> dict:
    match = re.search(
        r'<script type="application/json" id="page-config">(.*?)</script>', html, re.S
    )
    assert match, "every page carries its config as JSON"
    return json.loads(match.group(1))


@pytest.mark.parametrize("path", PAGES)
async def test_signed_out_pages_redirect_to_sign_in(site: Site, path: str) -> None:
    async with site.client() as client:
        response = await client.get(path)
    assert response.status_code == 303
    assert response.headers["location"] == f"/ui/login?next={path}"


async def test_main_page_for_a_signed_out_visitor(site: Site) -> None:
    async with site.client() as client:
        response = await client.get("/")
        assert (await client.get("/ui")).headers["location"] == "/ui/analyze"
    html = response.text
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert response.headers["content-security-policy"].startswith("default-src 'self'")
    assert "Describe images and videos" in html
    assert 'id="sign-in" href="/ui/login"' in html and "serve-app create-user" in html
    for link in ('href="/docs"', 'href="/redoc"', 'href="/ui/api"', 'href="/openapi.json"'):
        assert link in html
    for family in ("POST /api/analyze", "POST /analyze/", "POST /videoinfer/", "/v1/chat"):
        assert family in html
    assert "page-config" in html and 'id="sign-out"' not in html


async def test_main_page_for_a_signed_in_visitor_links_to_the_app(site: Site) -> None:
    async with site.signed_in() as client:
        response = await client.get("/")
    html = response.text
    assert response.status_code == 200
    assert 'id="open-app" href="/ui/analyze"' in html and 'id="sign-in"' not in html
    assert 'id="sign-out"' in html and "<strong>alice</strong>" in html
    assert page_config(html)["user"]["username"] == "alice"


async def test_main_page_names_only_the_mounted_apis(tiny_engine, tmp_path: Path) -> None:
    built, close = build_site(tiny_engine, tmp_path, story=False, jobs=False)
    try:
        async with built.client(root_path="/web") as client:
            html = (await client.get("/web/")).text
    finally:
        close()
    assert "POST /web/api/analyze" in html and 'href="/web/docs"' in html
    assert "/analyze/</code>" not in html and "/videoinfer/" not in html


async def test_sign_in_page(site: Site) -> None:
    async with site.client() as client:
        response = await client.get("/ui/login", params={"next": "/ui/jobs"})
    html = response.text
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert '<label for="username">' in html and '<label for="password">' in html
    assert 'name="next" value="/ui/jobs"' in html
    assert page_config(html) == {"base": "", "next": "/ui/jobs"}
    assert 'id="login-error" role="alert" hidden' in html


@pytest.mark.parametrize(
    "target", ["//evil.example/x", "https://evil.example/", "/\\evil", "javascript:alert(1)"]
)
async def test_sign_in_never_redirects_off_site(site: Site, target: str) -> None:
    async with site.client() as client:
        page = await client.get("/ui/login", params={"next": target})
        assert page_config(page.text)["next"] == "/ui/analyze"
        form = {"username": "alice", "password": PASSWORD, "next": target}
        response = await client.post("/login", data=form)
    assert response.status_code == 303 and response.headers["location"] == "/ui/analyze"


async def test_form_sign_in_goes_to_the_page_asked_for(site: Site) -> None:
    async with site.client() as client:
        form = {"username": "alice", "password": PASSWORD, "next": "/ui/jobs"}
        response = await client.post("/login", data=form)
        assert response.status_code == 303 and response.headers["location"] == "/ui/jobs"
        page = await client.get("/ui/jobs")
    assert page.status_code == 200 and "Video jobs" in page.text


async def test_form_sign_in_with_a_wrong_password_says_so(site: Site) -> None:
    async with site.client() as client:
        form = {"username": "alice", "password": "wrong", "next": "/ui/tokens"}
        response = await client.post("/login", data=form)
        assert response.status_code == 303
        assert response.headers["location"] == "/ui/login?next=/ui/tokens&error=invalid"
        page = await client.get(response.headers["location"])
        assert "Wrong username or password." in page.text
        assert (await client.get("/ui/tokens")).status_code == 303  # still signed out


async def test_json_sign_in_errors_stay_json(site: Site) -> None:
    async with site.client() as client:
        response = await client.post("/login", json={"username": "alice", "password": "no"})
    assert response.status_code == 401 and "detail" in response.json()


@pytest.mark.parametrize("path", PAGES)
async def test_signed_in_pages_render(site: Site, path: str) -> None:
    async with site.signed_in() as client:
        response = await client.get(path)
        csrf_cookie = client.cookies.get("csrf_token")
    html = response.text
    assert response.status_code == 200
    headers = response.headers
    assert "script-src 'self'" in headers["content-security-policy"]
    assert "frame-ancestors 'none'" in headers["content-security-policy"]
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["cache-control"] == "no-store"
    # No inline script or style: the CSP would block them.
    assert not re.search(r"<script(?![^>]*(type=\"application/json\"|src=))", html)
    assert " style=" not in html
    active = next(item for item in NAVIGATION if item.path == path)
    assert f'<a href="{path}" aria-current="page">{active.label}</a>' in html
    assert "alice" in html and "70 credits" in html
    config = page_config(html)
    assert config["csrfToken"] == csrf_cookie
    assert config["user"] == {"username": "alice", "isAdmin": False, "balance": 70}
    assert config["capabilities"]["analysis"]["default_model"] == "tiny-qwen2.5-vl"
    # Every visible form control with an id has a <label for=...> (or an aria-label).
    for tag in re.findall(r"<(?:input|select|textarea)\b[^>]*>", html):
        control = re.search(r'\bid="([^"]+)"', tag)
        if control is None or 'type="hidden"' in tag:
            continue
        assert f'for="{control.group(1)}"' in html or "aria-label=" in tag, tag


async def test_forms_show_the_services_own_options(site: Site) -> None:
    async with site.signed_in() as client:
        analyze = (await client.get("/ui/analyze")).text
        story = (await client.get("/ui/story")).text
        jobs = (await client.get("/ui/jobs")).text
    assert '<option value="tiny-qwen2.5-vl" selected>tiny-qwen2.5-vl</option>' in analyze
    assert 'value="10"' in analyze  # the default interval
    assert "Costs 10 credits" in analyze
    assert '<option value="ja"' in story and "Japanese (ja)" in story
    assert 'value="face-detection"' in jobs and 'data-type="object-detection"' in jobs
    assert 'value="frame-captioner"' in jobs and 'data-type="vlm"' in jobs


async def test_features_that_are_off_say_so(tiny_engine, tmp_path: Path) -> None:
    site, close = build_site(tiny_engine, tmp_path, story=False, jobs=False)
    try:
        async with site.signed_in() as client:
            story = (await client.get("/ui/story")).text
            jobs = (await client.get("/ui/jobs")).text
        assert "The story feature is not enabled on this service." in story
        assert 'id="story-form"' not in story
        assert "Batch video jobs are not enabled on this service." in jobs
    finally:
        close()


async def test_an_invalid_session_is_sent_to_sign_in(site: Site) -> None:
    async with site.client() as client:
        client.cookies.set("serve_app_session", "forged.value")
        response = await client.get("/ui/stats")
    assert response.status_code == 303 and response.headers["location"].startswith("/ui/login")


async def test_signed_out_after_logout(site: Site) -> None:
    async with site.signed_in() as client:
        csrf = client.cookies["csrf_token"]
        assert (await client.post("/logout", headers={"X-CSRF-Token": csrf})).status_code == 204
        assert (await client.get("/ui/analyze")).status_code == 303


async def test_unknown_pages_are_404_pages(site: Site) -> None:
    async with site.signed_in() as client:
        response = await client.get("/ui/no-such-page")
    assert response.status_code == 404
    assert "Page not found" in response.text and "content-security-policy" in response.headers


async def test_static_files_are_served_with_their_types(site: Site) -> None:
    async with site.client() as client:
        page = (await client.get("/ui/login")).text
        css = re.search(r'href="(/ui/static/app\.css\?v=\w+)"', page)
        js = re.search(r'src="(/ui/static/js/login\.js\?v=\w+)"', page)
        assert css and js
        css_response = await client.get(css.group(1))
        js_response = await client.get(js.group(1))
        missing = await client.get("/ui/static/js/nope.js")
    assert css_response.status_code == 200 and "text/css" in css_response.headers["content-type"]
    assert js_response.status_code == 200
    assert "javascript" in js_response.headers["content-type"]
    assert missing.status_code == 404


async def test_every_link_follows_the_mount_point(site: Site) -> None:
    """Behind a Serve route prefix every URL a page makes starts with the prefix."""
    client = site.client(root_path="/vision")
    async with client:
        login = await client.post("/vision/login", data={"username": "alice", "password": PASSWORD})
        assert login.headers["location"] == "/vision/ui/analyze"
        response = await client.get("/vision/ui/analyze")
        assert response.status_code == 200
        html = response.text
        for url in re.findall(r'(?:href|src|action)="([^"#]+)"', html):
            assert url.startswith("/vision/"), url
        assert page_config(html)["base"] == "/vision"
        assert (await client.get("/vision/ui/static/app.css")).status_code == 200
        signed_out = site.client(root_path="/vision")
        async with signed_out:
            redirect = await signed_out.get("/vision/ui/jobs")
        assert redirect.headers["location"] == "/vision/ui/login?next=/vision/ui/jobs"


async def test_api_documentation_covers_every_operation(site: Site) -> None:
    async with site.signed_in() as client:
        html = (await client.get("/ui/api")).text
        spec = (await client.get("/openapi.json")).json()
    operations = [
        (method.upper(), path)
        for path, item in spec["paths"].items()
        for method in item
        if method in ("get", "post", "put", "patch", "delete")
    ]
    assert len(operations) > 20
    assert html.count('<article class="endpoint"') == len(operations)
    for method, path in operations:
        assert f'<span class="method {method.lower()}">{method}</span>' in html
        assert f'<span class="path">{path}</span>' in html
    assert 'href="/docs"' in html
    assert html.count('<pre class="curl"><code>curl ') == len(operations)


async def test_pages_are_not_in_the_openapi_schema(site: Site) -> None:
    async with site.client() as client:
        spec = (await client.get("/openapi.json")).json()
    assert not any(path.startswith("/ui") or path == "/" for path in spec["paths"])


@pytest.mark.parametrize("path", ["/api/me", "/ui/analyze"])
async def test_pages_and_api_share_the_session(site: Site, path: str) -> None:
    async with site.signed_in() as client:
        assert (await client.get(path)).status_code == 200
