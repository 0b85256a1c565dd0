"""Deterministic identifiers in the shapes the vendors use.

* Salesforce: 15-character base-62 record ids (3-char key prefix, 2-char instance, 10-char sequence)
  extended to 18 characters with Salesforce's case-safety checksum. Sequences are assigned in
  creation order, like a real org, starting at a seed-dependent offset.
* Stripe: ``in_``/``cus_`` + base-62 text from a 64-bit mix of (seed, kind, index).
* Gong / HubSpot: numeric strings.

Nothing here uses wall-clock time, ``uuid4`` or process-dependent hashing.
"""

from __future__ import annotations

import numpy as np

B62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
SF_PREFIX = {
    "Account": "001",
    "Contact": "003",
    "Opportunity": "006",
    "Case": "500",
    "User": "005",
    "Task": "00T",
}
_CHECK = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"
_MASK64 = (1 << 64) - 1


def mix64(*parts: int) -> int:
    """SplitMix64-style mixing of integers (stable across processes and platforms)."""
    h = 0x9E3779B97F4A7C15
    for p in parts:
        h = (h ^ (int(p) & _MASK64)) & _MASK64
        h = (h + 0x9E3779B97F4A7C15) & _MASK64
        z = h
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK64
        h = z ^ (z >> 31)
    return h


def mix64_array(seed: int, kind: int, idx: np.ndarray) -> np.ndarray:
    """Vectorised SplitMix64 of ``(seed, kind, i)`` for every ``i`` in ``idx`` (uint64)."""
    with np.errstate(over="ignore"):
        base = np.uint64(mix64(seed, kind))
        z = idx.astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15) + base
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return z ^ (z >> np.uint64(31))


def b62(n: int, width: int) -> str:
    out = []
    for _ in range(width):
        n, r = divmod(n, 62)
        out.append(B62[r])
    return "".join(reversed(out))


def sf_checksum(id15: str) -> str:
    """The 3-character suffix that makes a 15-character Salesforce id case-insensitively unique."""
    out = []
    for chunk in (id15[0:5], id15[5:10], id15[10:15]):
        bits = 0
        for pos, ch in enumerate(chunk):
            if "A" <= ch <= "Z":
                bits |= 1 << pos
        out.append(_CHECK[bits])
    return "".join(out)


def sf_ids(sobject: str, n: int, seed: int) -> list[str]:
    """``n`` sequential 18-character ids for ``sobject`` (prefix 001/003/006/500/005/00T)."""
    prefix = SF_PREFIX[sobject] + "8d"
    start = 1_000_000_000 + mix64(seed, sum(map(ord, sobject))) % 50_000_000_000
    out = []
    for i in range(n):
        id15 = prefix + b62(start + i, 10)
        out.append(id15 + sf_checksum(id15))
    return out


def b62_tokens(seed: int, kind: int, n: int, width: int) -> list[str]:
    """``n`` pseudo-random base-62 tokens of ``width`` characters (10 characters per 64-bit mix)."""
    idx = np.arange(n, dtype=np.uint64)
    chars = np.frombuffer(B62.encode(), dtype=np.uint8)
    cols = []
    for j in range(-(-width // 10)):
        h = mix64_array(seed, kind * 131 + j, idx)
        for _ in range(min(10, width - 10 * j)):
            cols.append(chars[(h % np.uint64(62)).astype(np.int64)])
            h = h // np.uint64(62)
    mat = np.ascontiguousarray(np.stack(cols, axis=1))
    return [row.tobytes().decode() for row in mat]


def numeric_ids(seed: int, kind: int, n: int, digits: int = 19) -> list[str]:
    """``n`` distinct-looking numeric strings with ``digits`` digits (Gong style)."""
    lo = 10 ** (digits - 1)
    span = 9 * lo
    h = mix64_array(seed, kind, np.arange(n, dtype=np.uint64))
    vals = [lo + int(v) % span for v in h]
    # Guarantee uniqueness (collisions are astronomically rare but cheap to rule out).
    seen: set[int] = set()
    out = []
    for v in vals:
        while v in seen:
            v = lo + (v * 6364136223846793005 + 1442695040888963407) % span
        seen.add(v)
        out.append(str(v))
    return out


def sequential_numeric_ids(seed: int, kind: int, n: int, base: int) -> list[str]:
    """HubSpot-style increasing numeric ids starting near ``base``."""
    start = base + mix64(seed, kind) % (base // 10)
    return [str(start + 3 * i) for i in range(n)]
