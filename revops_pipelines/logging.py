"""One logging setup: structured (JSON) records carrying run and trace ids, with secrets redacted.

Use :func:`get_logger` everywhere. Values of registered secrets, and anything that looks like a
credential in ``key=value`` / JSON form, are replaced with ``***`` before a record is written —
whatever handler Dagster or the CLI attaches.
"""

from __future__ import annotations

import contextvars
import json
import logging
import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

_trace_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("revops_trace_id", default=None)
_run_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("revops_run_id", default=None)
_SECRETS: set[str] = set()

_SECRET_KEYS = r"(?:password|passwd|secret|token|api[_-]?key|access[_-]?key|client[_-]?secret|authorization)"
_KV = re.compile(rf"(?i)({_SECRET_KEYS}[\"']?\s*[:=]\s*[\"']?)([^\s\"',;&}}]+)")
_BEARER = re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]{8,}")


def register_secret(value: str | None) -> None:
    """Remember a secret value so it is masked in every log record from now on."""
    if value and len(value) >= 4:
        _SECRETS.add(value)


def redact(text: str) -> str:
    for s in sorted(_SECRETS, key=len, reverse=True):
        if s in text:
            text = text.replace(s, "***")
    text = _BEARER.sub(lambda m: m.group(1) + " ***", text)
    return _KV.sub(lambda m: m.group(1) + "***", text)


def new_trace_id() -> str:
    return uuid.uuid4().hex[:16]


@contextmanager
def trace(trace_id: str | None = None, run_id: str | None = None) -> Iterator[str]:
    """Bind a trace id (and optionally a Dagster run id) to every record logged inside the block."""
    tid = trace_id or _trace_id.get() or new_trace_id()
    t1 = _trace_id.set(tid)
    t2 = _run_id.set(run_id or _run_id.get())
    try:
        yield tid
    finally:
        _trace_id.reset(t1)
        _run_id.reset(t2)


def current_trace_id() -> str | None:
    return _trace_id.get()


class RedactingFilter(logging.Filter):
    """Adds ``trace_id``/``run_id`` to records and masks secrets in the rendered message."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.trace_id = _trace_id.get()
        record.run_id = _run_id.get()
        msg = record.getMessage()
        record.msg = redact(msg)
        record.args = None
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        payload = {
            "ts": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
            "trace_id": getattr(record, "trace_id", None),
            "run_id": getattr(record, "run_id", None),
        }
        fields = getattr(record, "fields", None)
        if fields:
            payload["fields"] = json.loads(redact(json.dumps(fields, default=str)))
        if record.exc_info:
            payload["exc"] = redact(self.formatException(record.exc_info))
        return json.dumps(payload, default=str)


_configured = False


def configure(level: int | str = "INFO", json_output: bool = True) -> None:
    """Configure the ``revops`` logger tree once (idempotent)."""
    global _configured
    root = logging.getLogger("revops")
    root.setLevel(level)
    if _configured:
        return
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter() if json_output else logging.Formatter("%(levelname)s %(message)s"))
    handler.addFilter(RedactingFilter())
    root.addHandler(handler)
    root.propagate = False
    _configured = True


def get_logger(name: str) -> logging.Logger:
    logger = logging.getLogger(name if name.startswith("revops") else f"revops.{name}")
    if not any(isinstance(f, RedactingFilter) for f in logger.filters):
        logger.addFilter(RedactingFilter())
    return logger
