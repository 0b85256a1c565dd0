"""Pin a function's signature before Dagster builds a definition from it."""

import inspect
from collections.abc import Callable
from typing import TypeVar

F = TypeVar("F", bound=Callable)


def pinned(fn: F) -> F:
    """``fn`` with its signature computed once (``fn.__signature__``), returned unchanged otherwise.

    Dagster inspects the signature of an asset's, op's or check's function ~16 times while building
    its definition; each ``inspect.signature`` call re-derives it. Pinned, the definitions load ~0.1 ms
    faster per function. Apply it under the Dagster decorator (``@dg.asset(...)`` then ``@pinned``)."""
    fn.__signature__ = inspect.signature(fn)  # type: ignore[attr-defined]
    return fn
