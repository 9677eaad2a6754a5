"""The API reference builder and the redirect-target check (pure functions)."""

from __future__ import annotations

import shlex

import pytest

from serve_app.http.navigation import login_url, safe_next
from serve_app.http.web.api_reference import build_reference, inline_markup

SPEC = {
    "paths": {
        "/api/analyze": {
            "post": {
                "tags": ["analysis"],
                "summary": "Analyze",
                "description": "Describe media.\n\nSend ``file`` or chunks.",
                "security": [{"HTTPBearer": []}],
                "requestBody": {
                    "content": {
                        "multipart/form-data": {
                            "schema": {"$ref": "#/components/schemas/Body_analyze"}
                        }
                    }
                },
                "responses": {"200": {"description": "OK"}, "413": {"description": "Too big"}},
            }
        },
        "/videoinfer/": {
            "post": {
                "tags": ["video inference"],
                "summary": "Submit",
                "security": [{"HTTPBearer": []}],
                "requestBody": {
                    "content": {
                        "application/json": {"schema": {"$ref": "#/components/schemas/Job"}}
                    }
                },
                "responses": {"200": {"description": "OK"}},
            },
            "get": {
                "tags": ["video inference"],
                "parameters": [
                    {"name": "job_id", "in": "query", "required": True, "schema": {}},
                ],
                "responses": {"200": {"description": "OK"}},
            },
        },
        "/uploads/{name}": {
            "put": {"tags": ["video inference"], "operationId": "put_upload", "responses": {}}
        },
    },
    "components": {
        "schemas": {
            "Body_analyze": {
                "properties": {
                    "file": {"anyOf": [{"type": "string", "format": "binary"}, {"type": "null"}]},
                    "prompt": {"anyOf": [{"type": "string"}, {"type": "null"}]},
                    "upload_id": {"type": "string", "description": "Your id"},
                },
            },
            "Job": {
                "required": ["input_url", "models"],
                "properties": {
                    "input_url": {"type": "string"},
                    "infer_fps": {"type": "number"},
                    "models": {"type": "array", "items": {"$ref": "#/components/schemas/M"}},
                    "callback_url": {"type": "string"},
                },
            },
        }
    },
}


def endpoints() -> dict[tuple[str, str], object]:
    sections = build_reference(SPEC, "http://host:8000")
    assert [s.title for s in sections] == ["Analysis", "Video inference"]
    return {(e.method, e.path): e for s in sections for e in s.endpoints}


def test_multipart_example_sends_the_file_and_known_fields() -> None:
    analyze = endpoints()[("POST", "/api/analyze")]
    argv = shlex.split(analyze.curl)
    assert argv[:3] == ["curl", "-H", "Authorization: Bearer $TOKEN"]
    assert argv[3:5] == ["-F", "file=@clip.mp4"]
    assert "prompt=What happens in this clip?" in argv
    assert not any(a.startswith("upload_id=") for a in argv)  # optional, no example
    assert argv[-1] == "http://host:8000/api/analyze"
    assert [p.type for p in analyze.parameters] == ["file", "string", "string"]
    assert [str(d) for d in analyze.description] == [
        "Describe media.",
        "Send <code>file</code> or chunks.",
    ]
    assert analyze.needs_auth and [c for c, _ in analyze.responses] == ["200", "413"]


def test_json_example_keeps_variables_expandable() -> None:
    submit = endpoints()[("POST", "/videoinfer/")]
    argv = shlex.split(submit.curl)
    body = argv[argv.index("-d") + 1]
    # shlex leaves $SIGNED_URL for the shell to expand inside double quotes.
    assert body.startswith('{"input_url": "$SIGNED_URL"')
    assert '"models": [{"model_id": "face-detection"' in body
    assert "callback_url" not in body


def test_query_path_and_raw_upload_examples() -> None:
    found = endpoints()
    status = shlex.split(found[("GET", "/videoinfer/")].curl)
    assert status == ["curl", "http://host:8000/videoinfer/?job_id=$JOB_ID"]
    upload = shlex.split(found[("PUT", "/uploads/{name}")].curl)
    assert upload == ["curl", "-X", "PUT", "--data-binary", "@clip.mp4", "$SIGNED_URL"]


def test_descriptions_are_escaped() -> None:
    assert str(inline_markup("<script>``x<y``")) == "&lt;script&gt;<code>x&lt;y</code>"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("/ui/jobs?x=1", "/ui/jobs?x=1"),
        (None, "/p/ui/analyze"),
        ("", "/p/ui/analyze"),
        ("//evil.example", "/p/ui/analyze"),
        ("https://evil.example", "/p/ui/analyze"),
        ("/\\evil.example", "/p/ui/analyze"),
        ("/ui/\nx", "/p/ui/analyze"),
        ("/" + "a" * 3000, "/p/ui/analyze"),
    ],
)
def test_safe_next(value: str | None, expected: str) -> None:
    assert safe_next(value, "/p") == expected


def test_login_url_quotes_the_target() -> None:
    assert login_url("", "/ui/jobs?a=1&b=2", "expired") == (
        "/ui/login?next=/ui/jobs%3Fa%3D1%26b%3D2&error=expired"
    )
