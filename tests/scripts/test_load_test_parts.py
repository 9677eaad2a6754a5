"""Parts of the load test that need no service: bounds, loopback, the 503 rule, results."""

from __future__ import annotations

import httpx
import pytest

from scripts.loadtest.cli import main
from scripts.loadtest.client import Client, is_loopback_url
from scripts.loadtest.config import LoadConfig, RetryPolicy
from scripts.loadtest.jobs import results_problem
from scripts.loadtest.stats import Recorder


@pytest.mark.parametrize(
    ("url", "ok"),
    [
        ("http://127.0.0.1:8000/", True),
        ("http://127.1.2.3/", True),
        ("http://[::1]:8000/x", True),
        ("https://localhost/", True),
        ("http://10.0.0.1/", False),
        ("http://example.com/", False),
        ("http://localhost.example.com/", False),
        ("ftp://127.0.0.1/", False),
    ],
)
def test_only_loopback_urls_are_accepted(url: str, ok: bool) -> None:
    assert is_loopback_url(url) is ok


def test_the_cli_refuses_other_hosts_and_missing_tokens(capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["--url", "http://192.168.1.5:8000", "--token", "sa_x"])
    assert exc.value.code == 2
    with pytest.raises(SystemExit):
        main(["--url", "http://127.0.0.1:8000", "--token", ""])
    assert "--token" in capsys.readouterr().err


@pytest.mark.parametrize(
    "bad",
    [
        {"duration_s": 901},
        {"concurrency": 0},
        {"max_requests": 10**6},
        {"mix": {"nonsense": 1}},
        {"mix": {"stats": 0}},
        {"keyed_share": 1.5},
    ],
)
def test_config_is_bounded(bad: dict) -> None:
    with pytest.raises(ValueError):
        LoadConfig(**bad)


def _client(statuses: list[int], retry: RetryPolicy) -> tuple[Client, Recorder, list[int]]:
    sent: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        status = statuses[min(len(sent), len(statuses) - 1)]
        sent.append(status)
        return httpx.Response(status, json={"detail": "busy"}, headers={"Retry-After": "0"})

    http = httpx.AsyncClient(transport=httpx.MockTransport(handler), base_url="http://127.0.0.1/")
    recorder = Recorder()
    return Client(http, recorder, retry), recorder, sent


async def test_a_503_that_a_retry_gets_past_is_not_a_failure() -> None:
    client, recorder, sent = _client([503, 503, 200], RetryPolicy(max_retries=3, max_wait_s=1))
    answer = await client.call("k", "GET", "x")
    assert answer.status == 200 and sent == [503, 503, 200]
    stats = recorder.kinds["k"]
    assert (stats.ok, stats.retried_503, stats.failed_503, stats.server_errors) == (1, 2, 0, 0)


async def test_a_503_after_every_retry_is_a_failure() -> None:
    client, recorder, sent = _client([503], RetryPolicy(max_retries=2, max_wait_s=1))
    answer = await client.call("k", "GET", "x")
    assert answer.status == 503 and len(sent) == 3
    stats = recorder.kinds["k"]
    assert (stats.ok, stats.retried_503, stats.failed_503, stats.server_errors) == (0, 0, 1, 1)
    assert recorder.server_errors == 1 and recorder.attempts == 3


async def test_client_refuses_absolute_urls_off_loopback() -> None:
    client, _, sent = _client([200], RetryPolicy())
    with pytest.raises(ValueError):
        await client.call("k", "PUT", "http://example.com/uploads/x")
    assert sent == []


def test_results_must_have_one_entry_per_frame_and_model() -> None:
    models = [{"model_id": "face-detection"}]
    good = {"frame_offsets": [0, 6], "time_offsets": [0, 0.2], "face-detection": [{}, None]}
    assert results_problem(good, 2, models) == ""
    assert "frame_offsets" in results_problem(good, 3, models)
    short = {**good, "face-detection": [{}]}
    assert "face-detection" in results_problem(short, 2, models)
