"""What the ``roboflow`` SDK calls before it submits a video, in process."""

from __future__ import annotations

import pytest

from tests.api.job_env import Env
from tests.api.test_videoinfer_routes import env  # noqa: F401 - the fixture
from tests.jobs.conftest import make_user

pytestmark = pytest.mark.parametrize("database", ["sqlite"], indirect=True)


async def test_post_root_names_the_callers_workspace(env: Env) -> None:  # noqa: F811
    r = await env.client.post("/", params=env.key())
    assert r.status_code == 200, r.text
    assert r.json() == {"workspace": env.user.username}
    bad = await env.client.post("/", params={"api_key": "sa_wrong"})
    assert bad.status_code == 401


@pytest.mark.parametrize("slash", ["", "/"])
async def test_workspace_lists_the_job_models_as_projects(env: Env, slash: str) -> None:  # noqa: F811
    r = await env.client.get(f"/{env.user.username}{slash}", params=env.key())
    assert r.status_code == 200, r.text
    workspace = r.json()["workspace"]
    assert workspace["url"] == workspace["name"] == env.user.username
    ids = {p["id"] for p in workspace["projects"]}
    models = ("face-detection", "people-detection", "frame-captioner")
    assert ids == {f"{env.user.username}/{m}" for m in models}


@pytest.mark.parametrize("slash", ["", "/"])
async def test_project_lists_versions_with_a_model(env: Env, slash: str) -> None:  # noqa: F811
    name = env.user.username
    r = await env.client.get(f"/{name}/face-detection{slash}", params=env.key())
    assert r.status_code == 200, r.text
    body = r.json()
    project = body["project"]
    assert project["id"] == f"{name}/face-detection"
    assert project["type"] == "object-detection"
    assert project["classes"] == {"face": 0}
    assert [v["id"] for v in body["versions"]] == [f"{name}/face-detection/1"]
    assert body["versions"][0]["model"]["inference_type"] == "object-detection"


async def test_other_workspaces_and_models_are_404(env: Env) -> None:  # noqa: F811
    other = make_user(env.accounts, credits=0)
    key = env.key()
    assert (await env.client.get(f"/{other.username}", params=key)).status_code == 404
    theirs = await env.client.get(f"/{other.username}/face-detection", params=key)
    assert theirs.status_code == 404
    missing = await env.client.get(f"/{env.user.username}/no-such-model", params=key)
    assert missing.status_code == 404
    # Without credentials an unknown path stays a plain 404.
    assert (await env.client.get("/no-such-page")).status_code == 404
    assert (await env.client.get("/api/no-such-route")).json() == {"detail": "Not Found"}


async def test_upload_url_carries_its_lifetime_where_the_sdk_reads_it(env: Env) -> None:  # noqa: F811
    r = await env.client.post(
        "/video_upload_signed_url", params=env.key(), json={"file_name": "clip.mp4"}
    )
    assert r.status_code == 200, r.text
    signed_url = r.json()["signed_url"]
    # The SDK's own parsing (roboflow/models/inference.py, predict_video).
    expires = signed_url.split("&X-Goog-Expires")[1].split("&")[0].strip("=")
    assert int(expires) == env.jobs.jobs.upload_url_ttl_s


@pytest.mark.parametrize("path", ["/videoinfer", "/videoinfer/"])
async def test_videoinfer_answers_with_and_without_slash(env: Env, path: str) -> None:  # noqa: F811
    r = await env.client.get(
        path, params={**env.key(), "job_id": "00000000-0000-0000-0000-000000000000"}
    )
    assert r.status_code == 404, r.text
