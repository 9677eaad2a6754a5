"""The Long videos page (``/ui/summaries``) over the real app in process, without a browser."""

from __future__ import annotations

import re
from pathlib import Path

from serve_app.story.languages import LANGUAGES
from serve_app.summaries.plan import DEFAULT_FRAMES_PER_CHUNK
from tests.web.conftest import Site, build_site

PATH = "/ui/summaries"


async def test_signed_out_visitors_are_sent_to_sign_in(site: Site) -> None:
    async with site.client() as client:
        response = await client.get(PATH)
    assert response.status_code == 303
    assert response.headers["location"] == f"/ui/login?next={PATH}"


async def test_the_page_for_a_signed_in_user(site: Site) -> None:
    async with site.signed_in() as client:
        response = await client.get(PATH)
        script = re.search(r'src="(/ui/static/js/summaries\.js\?v=\w+)"', response.text)
        assert script, "the page loads its own module"
        module = await client.get(script.group(1))
        shared = await client.get("/ui/static/js/signed_upload.js")
    html = response.text
    assert response.status_code == 200
    assert '<a href="/ui/summaries" aria-current="page">Long videos</a>' in html
    assert "<h1>Long videos</h1>" in html
    controls = (
        "sum-file",
        "sum-url",
        "sum-chunk",
        "sum-overlap",
        "sum-frames",
        "sum-language",
        "sum-audio",
    )
    for control in controls:
        assert f'id="{control}"' in html and f'for="{control}"' in html
    # The API's own defaults and bounds (SummaryRequest, settings.summaries).
    assert 'id="sum-chunk" name="chunk_s" min="1" max="600" step="any"' in html
    assert 'inputmode="decimal" value="30"' in html
    frames = 'name="frames_per_chunk" min="1" step="1" inputmode="numeric"'
    assert f'{frames} value="{DEFAULT_FRAMES_PER_CHUNK}"' in html
    # Every language and "No translation", then the three speech choices.
    assert html.count("<option value=") == len(LANGUAGES) + 1 + 3
    for choice in ("auto", "transcribe", "off"):
        assert f'<option value="{choice}"' in html
    page_parts = ("sum-preflight", "sum-start", "sum-video", "sum-timeline", "sum-captions")
    for element in (*page_parts, "sum-transcript"):
        assert f'id="{element}"' in html
    # The module imports the shared uploader; server text goes in as text, never HTML.
    assert module.status_code == 200 and shared.status_code == 200
    assert 'from "./signed_upload.js"' in module.text
    assert "innerHTML" not in module.text and "insertAdjacentHTML" not in module.text
    assert "/video_upload_signed_url/" in shared.text


async def test_the_page_may_play_a_pasted_url_but_nothing_else_loosens(site: Site) -> None:
    async with site.signed_in() as client:
        summaries = await client.get(PATH)
        jobs = await client.get("/ui/jobs")
    policy = summaries.headers["content-security-policy"]
    assert "media-src 'self' blob: https: http:;" in policy
    assert "script-src 'self';" in policy and "connect-src 'self';" in policy
    assert "media-src 'self' blob:;" in jobs.headers["content-security-policy"]


async def test_without_jobs_the_page_says_so(tiny_engine, tmp_path: Path) -> None:
    site, close = build_site(tiny_engine, tmp_path, story=False, jobs=False)
    try:
        async with site.signed_in() as client:
            html = (await client.get(PATH)).text
    finally:
        close()
    assert "Long-video summaries are not enabled on this service." in html
    assert 'id="sum-form"' not in html
