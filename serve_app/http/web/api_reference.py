"""The API documentation page's content, built from the app's own OpenAPI schema.

Every documented operation becomes an entry with its parameters, responses and a
``curl`` example, so the page can never miss or misdescribe an endpoint.
"""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass, field
from typing import Any

from markupsafe import Markup, escape

_METHODS = ("get", "post", "put", "patch", "delete")

#: Example values for well-known fields (everything else gets a typed placeholder).
FIELD_EXAMPLES: dict[str, Any] = {
    "prompt": "What happens in this clip?",
    "interval": 30,
    "language": "ja",
    "file_name": "clip.mp4",
    "input_url": "$SIGNED_URL",
    "infer_fps": 1,
    "models": [{"model_id": "face-detection", "inference_type": "object-detection"}],
    "name": "laptop",
    "username": "alice",
    "password": "$PASSWORD",
    "amount": 100,
    "limit": 20,
    "frame_offset": 0,
}
#: Files sent by multipart fields of these names.
FILE_EXAMPLES = {"file": "clip.mp4", "files": "photo.jpg"}
#: Operations whose body is not described by a schema (raw uploads).
RAW_BODY_OPERATIONS = {"put_upload": "PUT", "post_upload": "POST"}
#: Operations that read their body themselves: the example states it.
EXAMPLE_BODIES: dict[tuple[str, str], list[str]] = {
    ("post", "/login"): ["-c", "cookies.txt", "-H", "'Content-Type: application/json'", "-d"],
    ("post", "/logout"): ["-b", "cookies.txt", "-H", '"X-CSRF-Token: $CSRF_TOKEN"'],
}
LOGIN_BODY = {"username": "alice", "password": "$PASSWORD"}
#: JSON bodies of operations whose schema alone makes a poor example.
JSON_EXAMPLES: dict[tuple[str, str], dict[str, Any]] = {
    ("post", "/v1/chat/completions"): {
        "model": "$MODEL",
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,$IMAGE"}},
                    {"type": "text", "text": "What is in this picture?"},
                ],
            }
        ],
        "max_tokens": 64,
    },
}
#: Python examples with the ``openai`` SDK, by operation; ``{base}`` is the service URL.
SDK_EXAMPLES: dict[tuple[str, str], str] = {
    ("get", "/v1/models"): """from openai import OpenAI

client = OpenAI(base_url="{base}/v1", api_key=TOKEN)
print([m.id for m in client.models.list()])""",
    ("post", "/v1/chat/completions"): """import base64
from openai import OpenAI

client = OpenAI(base_url="{base}/v1", api_key=TOKEN)
video = base64.b64encode(open("clip.mp4", "rb").read()).decode()
stream = client.chat.completions.create(
    model=MODEL,
    messages=[{{"role": "user", "content": [
        {{"type": "video_url", "video_url": {{"url": f"data:video/mp4;base64,{{video}}"}}}},
        {{"type": "text", "text": "What happens in this clip?"}},
    ]}}],
    max_tokens=128,
    stream=True,
    extra_body={{"media_io_kwargs": {{"video": {{"fps": 2, "num_frames": 16}}}}}},
)
for chunk in stream:
    print(chunk.choices[0].delta.content or "", end="", flush=True)""",
}
_CODE = re.compile(r"``(.+?)``|`([^`]+)`")


def inline_markup(text: str) -> Markup:
    """Docstring text as HTML: escaped, with ``code`` spans."""
    parts: list[str] = []
    position = 0
    for match in _CODE.finditer(text):
        parts.append(str(escape(text[position : match.start()])))
        parts.append(f"<code>{escape(match.group(1) or match.group(2))}</code>")
        position = match.end()
    parts.append(str(escape(text[position:])))
    return Markup("".join(parts))  # noqa: S704 - every piece is escaped above


@dataclass(frozen=True)
class Parameter:
    name: str
    where: str
    required: bool
    type: str
    description: Markup


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str
    summary: str
    description: list[Markup]
    anchor: str
    needs_auth: bool
    parameters: list[Parameter]
    responses: list[tuple[str, Markup]]
    curl: str
    #: The same call with the ``openai`` Python SDK (``/v1`` only).
    python: str | None = None


@dataclass
class Section:
    title: str
    endpoints: list[Endpoint] = field(default_factory=list)


def build_reference(openapi: dict[str, Any], base_url: str) -> list[Section]:
    """Sections (by OpenAPI tag, in first-seen order) of documented endpoints."""
    sections: dict[str, Section] = {}
    components = openapi.get("components", {}).get("schemas", {})
    for path, item in openapi.get("paths", {}).items():
        for method in _METHODS:
            operation = item.get(method)
            if operation is None:
                continue
            tag = (operation.get("tags") or ["other"])[0]
            section = sections.setdefault(tag, Section(tag.capitalize()))
            section.endpoints.append(_endpoint(method, path, operation, components, base_url))
    return list(sections.values())


def _endpoint(
    method: str, path: str, operation: dict[str, Any], components: dict[str, Any], base: str
) -> Endpoint:
    needs_auth = bool(operation.get("security"))
    parameters = [
        Parameter(
            name=p["name"],
            where=p.get("in", "query"),
            required=bool(p.get("required")),
            type=_type_name(p.get("schema", {}), components),
            description=inline_markup(
                p.get("description") or p.get("schema", {}).get("description", "")
            ),
        )
        for p in operation.get("parameters", [])
    ]
    content_type, body = _body_schema(operation, components)
    if body is not None:
        required = set(body.get("required", []))
        where = "form" if content_type != "application/json" else "JSON"
        for name, prop in body.get("properties", {}).items():
            resolved = _resolve(prop, components)
            parameters.append(
                Parameter(
                    name=name,
                    where=where,
                    required=name in required,
                    type=_type_name(resolved, components),
                    description=inline_markup(resolved.get("description", "")),
                )
            )
    paragraphs = (operation.get("description") or "").strip().split("\n\n")
    description = [inline_markup(" ".join(p.split())) for p in paragraphs if p.strip()]
    summary = operation.get("summary") or method.upper() + " " + path
    return Endpoint(
        method=method.upper(),
        path=path,
        summary=summary,
        description=description,
        anchor=re.sub(r"[^a-z0-9]+", "-", f"{method}-{path}".lower()).strip("-"),
        needs_auth=needs_auth,
        parameters=parameters,
        responses=[
            (code, inline_markup((value.get("description") or "").strip()))
            for code, value in operation.get("responses", {}).items()
        ],
        curl=_curl(method, path, operation, needs_auth, parameters, content_type, base),
        python=_sdk_example(method, path, base),
    )


def _sdk_example(method: str, path: str, base: str) -> str | None:
    template = SDK_EXAMPLES.get((method, path))
    return template.format(base=base.rstrip("/")) if template is not None else None


def _resolve(schema: dict[str, Any], components: dict[str, Any]) -> dict[str, Any]:
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/components/schemas/"):
        resolved: dict[str, Any] = components.get(ref.rsplit("/", 1)[1], {})
        return resolved
    return schema


def _branches(schema: dict[str, Any]) -> list[dict[str, Any]]:
    options = schema.get("anyOf") or schema.get("oneOf")
    if isinstance(options, list):
        return [o for o in options if o.get("type") != "null"]
    return [schema]


def _is_binary(schema: dict[str, Any], components: dict[str, Any]) -> bool:
    for branch in _branches(_resolve(schema, components)):
        if branch.get("format") == "binary" or "contentMediaType" in branch:
            return True
        items = branch.get("items")
        if isinstance(items, dict) and _is_binary(items, components):
            return True
    return False


def _type_name(schema: dict[str, Any], components: dict[str, Any]) -> str:
    if _is_binary(schema, components):
        return "file"
    names = []
    for branch in _branches(schema):
        if "$ref" in branch:
            names.append("object")
        elif branch.get("type") == "array":
            item = branch.get("items", {})
            names.append(f"list of {_type_name(item, components)}")
        else:
            names.append(str(branch.get("type", "any")))
    return " or ".join(dict.fromkeys(names)) or "any"


def _body_schema(
    operation: dict[str, Any], components: dict[str, Any]
) -> tuple[str | None, dict[str, Any] | None]:
    content = operation.get("requestBody", {}).get("content", {})
    for content_type, value in content.items():
        return content_type, _resolve(value.get("schema", {}), components)
    return None, None


def _example(param: Parameter) -> Any:
    if param.name in FIELD_EXAMPLES:
        return FIELD_EXAMPLES[param.name]
    if param.type.startswith("integer") or param.type.startswith("number"):
        return 1
    if param.type.startswith("boolean"):
        return True
    return f"${param.name.upper()}"


def _quote(text: str) -> str:
    """Quote for a POSIX shell, keeping ``$VARIABLES`` expandable."""
    if "$" not in text:
        return shlex.quote(text)
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("`", "\\`")
    return f'"{escaped}"'


def _curl(
    method: str,
    path: str,
    operation: dict[str, Any],
    needs_auth: bool,
    parameters: list[Parameter],
    content_type: str | None,
    base: str,
) -> str:
    url_path = re.sub(r"\{([^}]+)\}", lambda m: "$" + m.group(1).upper(), path)
    query = [
        f"{p.name}={_example(p)}"
        for p in parameters
        if p.where == "query" and (p.required or p.name in FIELD_EXAMPLES)
    ]
    url = base + url_path + ("?" + "&".join(query) if query else "")
    parts = ["curl"]
    if method != "get" and not (method == "post" and content_type):
        parts += ["-X", method.upper()]
    if needs_auth:
        parts += ["-H", '"Authorization: Bearer $TOKEN"']
    raw = RAW_BODY_OPERATIONS.get(operation.get("operationId", ""))
    example_body = EXAMPLE_BODIES.get((method, path))
    if example_body is not None:
        parts += example_body
        if path == "/login":
            parts.append(_quote(json.dumps(LOGIN_BODY)))
    elif raw is not None:
        parts = ["curl", "-X", raw, "--data-binary", "@clip.mp4"]
        url = "$SIGNED_URL"
    elif (method, path) in JSON_EXAMPLES:
        body = JSON_EXAMPLES[(method, path)]
        parts += ["-H", "'Content-Type: application/json'", "-d", _quote(json.dumps(body))]
    elif content_type == "application/json":
        body = {
            p.name: _example(p)
            for p in parameters
            if p.where == "JSON" and (p.required or p.name in FIELD_EXAMPLES)
        }
        parts += ["-H", "'Content-Type: application/json'", "-d", _quote(json.dumps(body))]
    elif content_type is not None:
        for p in parameters:
            if p.where != "form":
                continue
            if p.type.endswith("file"):
                parts += ["-F", f"{p.name}=@{FILE_EXAMPLES.get(p.name, 'media.bin')}"]
            elif p.required or p.name in FIELD_EXAMPLES:
                parts += ["-F", _quote(f"{p.name}={_example(p)}")]
    parts.append(f'"{url}"')
    return " ".join(parts)
