"""Input standardisation for agent contracts: annotated pydantic types that normalise on the way in.

* ``EntityId`` — trimmed; Salesforce 15-character ids are widened to their case-safe 18-character form,
  so the same account arrives under one id whatever system produced it.
* ``Day`` — ``date``, ISO strings (``2025-12-01``, ``2025-12-01T10:00:00Z``) and datetimes become a date.
* ``Money`` — numbers or strings like ``"$1,250.50"``, ``"EUR 12k"``, ``"1.2M"`` become a float (>= 0).
* ``Currency`` — ISO 4217 code, upper case (``usd`` → ``USD``; symbols ``$ € £`` mapped).
* ``Name`` — inner whitespace collapsed, trimmed, non-empty.

Unknown fields are rejected by :class:`revops_pipelines.validation.StrictModel` (``field: unknown field``).
"""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator

_SF_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"


def sf_id18(value: str) -> str:
    """Salesforce 15 → 18 character case-safe id (checksum of the upper-case positions)."""
    if len(value) != 15 or not value.isalnum():
        return value
    suffix = ""
    for block in range(3):
        bits = sum(1 << i for i, ch in enumerate(value[block * 5 : block * 5 + 5]) if ch.isupper())
        suffix += _SF_ALPHABET[bits]
    return value + suffix


def _entity_id(v: Any) -> Any:
    if isinstance(v, int) and not isinstance(v, bool):
        v = str(v)
    if not isinstance(v, str):
        return v
    v = v.strip()
    if not v:
        raise ValueError("must not be empty")
    if not re.fullmatch(r"[A-Za-z0-9_.:@-]{1,128}", v):
        raise ValueError("may contain only letters, digits and _ . : @ -")
    return sf_id18(v)


def _day(v: Any) -> Any:
    if isinstance(v, datetime):
        return v.date()
    if isinstance(v, str):
        s = v.strip()
        try:
            return date.fromisoformat(s[:10]) if len(s) >= 10 else date.fromisoformat(s)
        except ValueError:
            raise ValueError(f"not an ISO date: {v!r}") from None
    if hasattr(v, "to_pydatetime"):  # pandas Timestamp
        return v.to_pydatetime().date()
    return v


_MULT = {"k": 1e3, "m": 1e6, "b": 1e9}


def _money(v: Any) -> Any:
    if isinstance(v, str):
        s = re.sub(r"(?i)^\s*(usd|eur|gbp|cad|aud|[$€£])\s*|\s*(usd|eur|gbp|cad|aud)\s*$", "", v)
        s = s.replace(",", "").replace("_", "").strip()
        m = re.fullmatch(r"(-?\d+(?:\.\d+)?)\s*([kKmMbB]?)", s)
        if not m:
            raise ValueError(f"not an amount: {v!r}")
        return float(m.group(1)) * _MULT.get(m.group(2).lower(), 1.0)
    return v


def _non_negative(v: float) -> float:
    if v != v or v < 0:  # NaN or negative
        raise ValueError("must be a non-negative amount")
    return float(v)


_SYMBOLS = {"$": "USD", "€": "EUR", "£": "GBP"}


def _currency(v: Any) -> Any:
    if isinstance(v, str):
        s = v.strip()
        s = _SYMBOLS.get(s, s).upper()
        if not re.fullmatch(r"[A-Z]{3}", s):
            raise ValueError(f"not an ISO 4217 currency code: {v!r}")
        return s
    return v


def _name(v: Any) -> Any:
    if isinstance(v, str):
        v = " ".join(v.split())
        if not v:
            raise ValueError("must not be empty")
    return v


EntityId = Annotated[str, BeforeValidator(_entity_id)]
Day = Annotated[date, BeforeValidator(_day)]
Money = Annotated[float, BeforeValidator(_money), AfterValidator(_non_negative)]
Currency = Annotated[str, BeforeValidator(_currency)]
Name = Annotated[str, BeforeValidator(_name)]
