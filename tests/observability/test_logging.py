"""JSON and text log lines carry the request id bound in the current context."""

from __future__ import annotations

import asyncio
import io
import json
import logging
from collections.abc import Iterator

import pytest

from serve_app.observability.logging import (
    JsonFormatter,
    bind_request_id,
    configure_logging,
    request_id_var,
)

LOGGER = "serve_app.tests.observability"


@pytest.fixture
def stream() -> Iterator[io.StringIO]:
    out = io.StringIO()
    handler = configure_logging(json=True, stream=out, logger_name=LOGGER)
    yield out
    logging.getLogger(LOGGER).removeHandler(handler)


def lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_json_line_has_request_id_and_extras(stream: io.StringIO) -> None:
    log = logging.getLogger(LOGGER)
    with bind_request_id("req-1"):
        log.info("described %s", "clip.mp4", extra={"model": "m", "output_tokens": 12})
    log.warning("outside")
    first, second = lines(stream)
    assert first["message"] == "described clip.mp4"
    assert first["request_id"] == "req-1"
    assert first["level"] == "INFO" and first["logger"] == LOGGER
    assert first["model"] == "m" and first["output_tokens"] == 12
    assert str(first["ts"]).endswith("+00:00")
    assert "request_id" not in second


def test_exceptions_are_one_json_line(stream: io.StringIO) -> None:
    log = logging.getLogger(LOGGER)
    try:
        raise ValueError("bad")
    except ValueError:
        log.exception("failed", extra={"path": object()})
    [entry] = lines(stream)
    assert "ValueError: bad" in str(entry["exc_info"])
    assert str(entry["path"]).startswith("<object")


def test_bind_restores_the_previous_id_and_ignores_empty_ones() -> None:
    with bind_request_id("outer"):
        with bind_request_id("inner"):
            assert request_id_var.get() == "inner"
        with bind_request_id(""):
            assert request_id_var.get() == "outer"
        assert request_id_var.get() == "outer"
    assert request_id_var.get() == ""


async def test_concurrent_tasks_keep_their_own_ids(stream: io.StringIO) -> None:
    log = logging.getLogger(LOGGER)

    async def one(request_id: str) -> None:
        with bind_request_id(request_id):
            await asyncio.sleep(0.01)
            log.info("done")

    await asyncio.gather(*(one(f"r{i}") for i in range(5)))
    assert sorted(str(e["request_id"]) for e in lines(stream)) == [f"r{i}" for i in range(5)]


def test_text_format_and_idempotent_configuration() -> None:
    out = io.StringIO()
    configure_logging(json=False, stream=io.StringIO(), logger_name=LOGGER)
    handler = configure_logging(json=False, stream=out, logger_name=LOGGER)
    log = logging.getLogger(LOGGER)
    try:
        ours = [h for h in log.handlers if h.get_name() == handler.get_name()]
        assert ours == [handler]
        with bind_request_id("abc"):
            log.info("hello")
        log.info("anonymous")
        first, second = out.getvalue().splitlines()
        assert first.endswith("INFO serve_app.tests.observability [abc] hello")
        assert "[-] anonymous" in second
    finally:
        log.removeHandler(handler)


def test_formatter_works_without_the_filter() -> None:
    record = logging.LogRecord(LOGGER, logging.INFO, __file__, 1, "plain", None, None)
    with bind_request_id("ctx"):
        assert json.loads(JsonFormatter().format(record))["request_id"] == "ctx"
