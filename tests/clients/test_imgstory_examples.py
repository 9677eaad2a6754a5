"""The ImgStory document's curl, Python requests and JavaScript fetch examples, as
written (host aside), without credentials against the real Serve graph: local
anonymous mode (the cluster listens on 127.0.0.1 only)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.clients.conftest import Service
from tests.support.media_files import make_image

pytestmark = [pytest.mark.ray, pytest.mark.slow]
EXAMPLES = Path(__file__).with_name("examples")
DOCUMENT_HOST = "http://localhost:8000"
#: node has no file input: the document's ``imageFile`` becomes a Blob of image.jpg.
NODE_PRELUDE = (
    "const imageFile = new Blob([require('fs').readFileSync('image.jpg')], {type: 'image/jpeg'});\n"
)


def example(name: str, service: Service) -> str:
    return (EXAMPLES / name).read_text().replace(DOCUMENT_HOST, service.url)


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    make_image(tmp_path / "image.jpg", width=96, height=64)
    return tmp_path


def run(argv: list[str], cwd: Path, *, stderr_ok: bool = False) -> str:
    done = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert stderr_ok or not done.stderr.strip(), done.stderr
    return done.stdout


def assert_story_lines(stdout: str) -> None:
    """english, thai, token_usage: two non-empty stories, then the usage object."""
    lines = [line for line in stdout.splitlines() if line.strip()]
    assert len(lines) >= 3, stdout
    assert "undefined" not in stdout and "KeyError" not in stdout
    assert "input_tokens" in lines[-1] and "total_tokens" in lines[-1], stdout


def test_curl_example(service: Service, workdir: Path) -> None:
    curl = shutil.which("curl")
    if curl is None:
        pytest.skip("curl is not installed")
    script = example("curl.sh", service).replace("/path/to/your/image.jpg", "image.jpg")
    stdout = run(["bash", "-c", script], workdir, stderr_ok=True)  # curl's progress meter
    body = json.loads(stdout)
    assert set(body) == {"english", "thai", "token_usage"}
    assert body["english"].strip() and body["thai"].strip()
    assert body["token_usage"]["total_tokens"] > 0


def test_python_requests_example(service: Service, workdir: Path) -> None:
    (workdir / "example.py").write_text(example("requests_example.py", service))
    assert_story_lines(run([sys.executable, "example.py"], workdir))


def test_javascript_fetch_example(service: Service, workdir: Path) -> None:
    node = shutil.which("node") or shutil.which("nodejs")
    if node is None:
        pytest.skip("node is not installed (.ci/run installs Debian's nodejs)")
    (workdir / "example.js").write_text(NODE_PRELUDE + example("fetch_example.js", service))
    assert_story_lines(run([node, "example.js"], workdir))
