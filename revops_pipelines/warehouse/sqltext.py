"""Small, dependency-free SQL text helpers: mask literals and comments, split statements, find the
tables a statement writes. Used on every write (so no parser import there); the Data Agent's
read-only guard adds a real parse (sqlglot) on top of these."""

from __future__ import annotations

import re

_WRITE_TARGET = re.compile(
    r"^\s*(?:INSERT\s+(?:OR\s+\w+\s+)?INTO|DELETE\s+FROM|UPDATE|MERGE\s+INTO|TRUNCATE(?:\s+TABLE)?"
    r"|DROP\s+TABLE(?:\s+IF\s+EXISTS)?|ALTER\s+TABLE|CREATE(?:\s+OR\s+REPLACE)?"
    r"(?:\s+(?:FACT|DIMENSION|TEMP|TEMPORARY))?\s+TABLE(?:\s+IF\s+NOT\s+EXISTS)?)"
    r"\s+(?:(?:public|main)\s*\.\s*)?([A-Za-z_][A-Za-z0-9_]*)",
    re.I,
)


def mask_sql(sql: str) -> str:
    """``sql`` with the insides of string literals, quoted identifiers and comments replaced by
    ``_``/spaces (same length), so keyword scans never look inside them. An unterminated literal
    or comment masks to the end."""
    out: list[str] = []
    i, n = 0, len(sql)
    while i < n:
        c = sql[i]
        if c in "'\"":
            j = i + 1
            while j < n:
                if sql[j] == c:
                    if sql[j + 1 : j + 2] == c:
                        j += 2
                        continue
                    break
                if c == "'" and sql[j] == "\\":
                    j += 1
                j += 1
            j = min(j, n - 1)
            out.append(c + "_" * (j - i - 1) + (sql[j] if j > i else ""))
            i = j + 1
        elif sql.startswith("--", i):
            j = sql.find("\n", i)
            j = n if j < 0 else j
            out.append(" " * (j - i))
            i = j
        elif sql.startswith("/*", i):
            j = sql.find("*/", i + 2)
            j = n if j < 0 else j + 2
            out.append(" " * (j - i))
            i = j
        else:
            out.append(c)
            i += 1
    return "".join(out)[:n]


def statements(sql: str) -> list[str]:
    """The non-empty statements of ``sql`` (split on ``;`` outside literals and comments)."""
    masked = mask_sql(sql)
    out, start = [], 0
    for pos, ch in enumerate(masked):
        if ch == ";":
            out.append((sql[start:pos], masked[start:pos]))
            start = pos + 1
    out.append((sql[start:], masked[start:]))
    return [s.strip() for s, m in out if m.strip()]


def normalise(sql: str) -> str:
    """Whitespace collapsed and comments dropped outside literals; a trailing ``;`` removed.
    Keywords are not re-cased (identifiers may be case-sensitive)."""
    masked = mask_sql(sql)
    out: list[str] = []
    for ch, m in zip(sql, masked, strict=True):
        if m.isspace():  # real whitespace, or a comment masked to spaces
            if out and out[-1] != " ":
                out.append(" ")
        else:
            out.append(ch)
    return "".join(out).strip().rstrip(";").strip()


_CREATE_IF_NOT_EXISTS = re.compile(r"^\s*CREATE\s+(?:\w+\s+)*?TABLE\s+IF\s+NOT\s+EXISTS\b", re.I)


def written_tables(sql: str) -> list[str]:
    """Tables a statement changes (INSERT/DELETE/UPDATE/MERGE/TRUNCATE/DROP/ALTER/CREATE TABLE).
    ``CREATE TABLE IF NOT EXISTS`` is not counted: it changes nothing that anyone could have read."""
    found = []
    for stmt in statements(sql):
        masked = mask_sql(stmt)
        m = _WRITE_TARGET.match(masked)
        if m and not _CREATE_IF_NOT_EXISTS.match(masked):
            found.append(m.group(1).lower())
    return found
