"""Structured logs with the request id of the HTTP request being served.

The ingress's request-id middleware sets :data:`request_id_var`; deployments bind the
id they receive (``DescribeJob.request_id``, or Ray Serve's request context, which
carries the ``X-Request-ID`` header through every handle call) with
:func:`bind_request_id`. :func:`configure_logging` installs one handler on the
``serve_app`` logger whose lines carry that id, as JSON objects or as text.

Ray Serve's own logs (``ray.serve``, access logs) are configured by Ray; set
``logging_config: {encoding: JSON}`` in the Serve config to make those JSON too.
"""

from __future__ import annotations

import datetime as dt
import json as jsonlib
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import IO, Any

#: The request id of the request this task is working for ("" outside requests).
request_id_var: ContextVar[str] = ContextVar("serve_app_request_id", default="")

ROOT_LOGGER = "serve_app"
_HANDLER_NAME = "serve_app.observability"
#: LogRecord attributes that are not user ``extra=`` fields.
_STANDARD_ATTRS = frozenset(
    vars(logging.LogRecord("", 0, "", 0, "", None, None)).keys()
    | {"message", "asctime", "request_id", "taskName"}
)
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"


@contextmanager
def bind_request_id(request_id: str | None) -> Iterator[str]:
    """Make ``request_id`` the current one for the block (no-op for empty ids)."""
    if not request_id:
        yield request_id_var.get()
        return
    token = request_id_var.set(request_id)
    try:
        yield request_id
    finally:
        request_id_var.reset(token)


class RequestIdFilter(logging.Filter):
    """Adds ``record.request_id`` from :data:`request_id_var` (``-`` when unset)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not getattr(record, "request_id", ""):
            record.request_id = request_id_var.get() or "-"
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, request id, extras.

    Fields passed with ``extra={...}`` are included (non-JSON values as strings);
    exceptions go to ``exc_info`` as formatted text.
    """

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = getattr(record, "request_id", "") or request_id_var.get()
        if request_id and request_id != "-":
            entry["request_id"] = request_id
        for key, value in vars(record).items():
            if key not in _STANDARD_ATTRS and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exc_info"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack_info"] = self.formatStack(record.stack_info)
        return jsonlib.dumps(entry, default=str, ensure_ascii=False)


def configure_logging(
    json: bool = False,
    level: int | str = logging.INFO,
    stream: IO[str] | None = None,
    logger_name: str = ROOT_LOGGER,
) -> logging.Handler:
    """Send ``logger_name``'s records to ``stream`` (stderr) as JSON or text lines.

    Idempotent: a second call replaces the handler it installed before, so every
    replica can call it in its constructor. The logger stops propagating to the root
    logger, which Ray and uvicorn configure on their own.
    """
    target = logging.getLogger(logger_name)
    for existing in list(target.handlers):
        if existing.get_name() == _HANDLER_NAME:
            target.removeHandler(existing)
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.set_name(_HANDLER_NAME)
    handler.addFilter(RequestIdFilter())
    handler.setFormatter(JsonFormatter() if json else logging.Formatter(TEXT_FORMAT))
    target.addHandler(handler)
    target.setLevel(level)
    target.propagate = False
    return handler
