"""Action handlers of the Execution Agent: one per action type, each with the same four steps.

``verify(params)`` checks parameters, allow-lists and anything knowable before sending (problems name
the field); ``execute(params, key)`` performs the side effect once, carrying the idempotency key to
the vendor where it can store it; ``find(params, key)`` looks the key up at the vendor (used before a
retry, so a request whose reply was lost is not repeated); ``confirm(params, result)`` checks
afterwards that the effect exists (message in the channel history, task readable, row written).
Errors are classified: :class:`TransientError` (retried with backoff, honouring ``Retry-After``) and
:class:`PermanentError` (dead-lettered with the reason).
"""

from __future__ import annotations

from typing import Any, Protocol


class TransientError(Exception):
    """Worth retrying (rate limit, 5xx, timeout, connection)."""

    def __init__(self, message: str, retry_after: float | None = None):
        super().__init__(message)
        self.retry_after = retry_after


class PermanentError(Exception):
    """Retrying cannot help (bad parameters, unknown channel, auth, 4xx)."""


class ActionHandler(Protocol):
    type: str

    def verify(self, params: dict[str, Any]) -> list[str]: ...

    def execute(self, params: dict[str, Any], key: str) -> dict[str, Any]: ...

    def find(self, params: dict[str, Any], key: str) -> dict[str, Any] | None: ...

    def confirm(self, params: dict[str, Any], result: dict[str, Any]) -> bool: ...
