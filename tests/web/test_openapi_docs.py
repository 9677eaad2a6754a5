"""``/docs`` and ``/redoc`` over the real app: assets served locally, under the prefix."""

from __future__ import annotations

import re

import pytest

from tests.web.conftest import Site

ASSETS = {
    "swagger-ui-bundle.js": "javascript",
    "swagger-ui.css": "text/css",
    "redoc.standalone.js": "javascript",
    "favicon.png": "image/png",
}


#: Attributes and Swagger UI options that name a URL the page loads.
URL = re.compile(r"""(?:src|href|spec-url)=["']([^"']+)["']|url: ?["']([^"']+)["']""")


def referenced(html: str) -> list[str]:
    """Every URL the page loads by itself."""
    return [a or b for a, b in URL.findall(html)]


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
@pytest.mark.parametrize("prefix", ["", "/vision"])
async def test_docs_pages_load_nothing_from_other_hosts(site: Site, page: str, prefix: str) -> None:
    async with site.client(root_path=prefix) as client:
        response = await client.get(prefix + page)
        assert response.status_code == 200
        urls = referenced(response.text)
        assert urls, response.text
        for url in urls:
            assert url.startswith(prefix + "/"), f"{url} is not served by the service"
            if not url.endswith("openapi.json"):
                asset = await client.get(url)
                assert asset.status_code == 200, url
                assert ASSETS[url.rsplit("/", 1)[1]] in asset.headers["content-type"]
        assert prefix + "/openapi.json" in urls
        assert "cdn" not in response.text and "fonts.googleapis" not in response.text
        policy = response.headers["content-security-policy"]
        assert "default-src 'self'" in policy and "http" not in policy


async def test_openapi_schema_lists_no_docs_pages(site: Site) -> None:
    async with site.client() as client:
        spec = (await client.get("/openapi.json")).json()
        redirect = await client.get("/docs/oauth2-redirect")
    assert not any(path.startswith(("/docs", "/redoc")) for path in spec["paths"])
    assert redirect.status_code == 200 and "oauth2" in redirect.text
