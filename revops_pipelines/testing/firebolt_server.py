"""A loopback stand-in for Firebolt's HTTP query endpoint, backed by an in-process DuckDB database.

It speaks the protocol as firebolt-sdk 1.19 uses it in Firebolt Core mode, so tests (and a local
``make``) exercise the *real* SDK client — request building, client-side qmark formatting,
response parsing and type conversion, error mapping — without a Firebolt engine:

* ``POST /?database=<db>&output_format=JSON_Compact`` with one SQL statement as the raw body
  (header ``Firebolt-Protocol-Version``). Any other query parameter (a Firebolt setting) is refused,
  except ``query_label`` and ``query_parameters`` (server-side ``$n`` parameters).
* A statement with a result set answers ``200`` with
  ``{"meta":[{"name","type"}],"data":[[...]],"rows":N,"statistics":{...}}``; column types carry
  Firebolt names (``text``, ``bigint``, ``double precision``, ``date``, ... with `` null`` when the
  column holds NULLs). Dates and timestamps are strings, as Firebolt writes them. A statement without
  a result set answers ``200`` with an empty body.
* A refused or failed statement answers ``400`` with ``{"errors":[{"severity","name","code",
  "description"}]}`` — the structured error the SDK raises as ``FireboltStructuredError``.
* Firebolt DDL is translated for DuckDB: ``CREATE [FACT|DIMENSION] TABLE ... PRIMARY INDEX a, b``
  (kind and index are remembered and shown in ``information_schema.tables``), Firebolt type names,
  columns NOT NULL unless declared NULL, nullable primary-index columns refused.
* Strict where Firebolt is and the check is cheap: one statement per request, Firebolt types only,
  no ``PRIMARY KEY``/``CHECK``/``REFERENCES`` constraints, no ``INSERT OR REPLACE``/``ON CONFLICT``,
  no DuckDB-only statements (``PRAGMA``, ``ATTACH``, ``COPY``, ``INSTALL``, ``FROM``-first ...), no
  ``BEGIN``/``COMMIT`` (transactions are not emulated).

Fault injection for tests: :meth:`FireboltStandIn.fail_next` (answer the next N requests with an
HTTP error) and :meth:`FireboltStandIn.hang_next` (hold the next N requests past a client timeout);
every request is counted and recorded (:attr:`FireboltStandIn.received`).

Use :func:`firebolt_standin` in tests, or run it standalone::

    python -m revops_pipelines.testing.firebolt_server --port 3473 --db .revops/standin.duckdb

Only the standard library (``http.server``) and ``duckdb`` are used.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import decimal
import json
import math
import re
import signal
import socketserver
import sys
import threading
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import duckdb

DEFAULT_PORT = 3473
_ALLOWED_PARAMS = {"database", "output_format", "query_label", "query_parameters"}
_CATALOG = "fb_catalog"  # DuckDB schema holding the emulated information_schema views

# ---------------------------------------------------------------------------------------------------
# errors


class StandInError(Exception):
    """A statement refused or failed; answered as HTTP 400 with a Firebolt-style JSON error body."""

    def __init__(self, description: str, name: str = "InvalidQuery", code: str = "FB-STANDIN-400"):
        super().__init__(description)
        self.description = description
        self.name = name
        self.code = code

    def body(self) -> dict[str, Any]:
        return {
            "errors": [
                {
                    "severity": "ERROR",
                    "name": self.name,
                    "code": self.code,
                    "source": "firebolt stand-in",
                    "description": self.description,
                }
            ]
        }


# ---------------------------------------------------------------------------------------------------
# SQL scanning: literals, quoted identifiers and comments are masked so keyword rewrites and statement
# splitting never look inside them. The mask has the same length as the SQL, so spans map 1:1.


def mask_sql(sql: str) -> str:
    out: list[str] = []
    i, n = 0, len(sql)
    while i < n:
        c = sql[i]
        if c == "'" or (c in "eE" and sql[i + 1 : i + 2] == "'" and (i == 0 or not _word_char(sql[i - 1]))):
            backslash = c != "'"
            start = i + (1 if backslash else 0)
            j = start + 1
            while True:
                if j >= n:
                    raise StandInError("unterminated string literal", "SyntaxError")
                if backslash and sql[j] == "\\":
                    j += 2
                    continue
                if sql[j] == "'":
                    if sql[j + 1 : j + 2] == "'":
                        j += 2
                        continue
                    break
                j += 1
            out.append(sql[i : start + 1] + "_" * (j - start - 1) + "'")
            i = j + 1
        elif c == '"':
            j = i + 1
            while True:
                if j >= n:
                    raise StandInError("unterminated quoted identifier", "SyntaxError")
                if sql[j] == '"':
                    if sql[j + 1 : j + 2] == '"':
                        j += 2
                        continue
                    break
                j += 1
            out.append('"' + "_" * (j - i - 1) + '"')
            i = j + 1
        elif sql.startswith("--", i):
            j = sql.find("\n", i)
            j = n if j < 0 else j
            out.append(" " * (j - i))
            i = j
        elif sql.startswith("/*", i):
            j = sql.find("*/", i + 2)
            if j < 0:
                raise StandInError("unterminated comment", "SyntaxError")
            out.append(" " * (j + 2 - i))
            i = j + 2
        else:
            out.append(c)
            i += 1
    return "".join(out)


def _word_char(c: str) -> bool:
    return c.isalnum() or c == "_"


def split_statements(sql: str) -> list[tuple[str, str]]:
    """``(statement, masked statement)`` pairs; empty and comment-only pieces are dropped."""
    masked = mask_sql(sql)
    pieces, start = [], 0
    for pos, ch in enumerate(masked):
        if ch == ";":
            pieces.append((sql[start:pos], masked[start:pos]))
            start = pos + 1
    pieces.append((sql[start:], masked[start:]))
    out = []
    for s, m in pieces:
        body = m.strip()
        if body:
            lead = len(m) - len(m.lstrip())
            out.append((s[lead : lead + len(body)], body))  # same span in both, comments trimmed alike
    return out


def _matching_paren(masked: str, open_pos: int) -> int:
    depth = 0
    for pos in range(open_pos, len(masked)):
        if masked[pos] == "(":
            depth += 1
        elif masked[pos] == ")":
            depth -= 1
            if depth == 0:
                return pos
    raise StandInError("unbalanced parentheses", "SyntaxError")


def _split_top_level(masked: str) -> list[tuple[int, int]]:
    """Spans of the comma-separated items of ``masked`` at parenthesis depth 0."""
    spans, depth, start = [], 0, 0
    for pos, ch in enumerate(masked):
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif ch == "," and depth == 0:
            spans.append((start, pos))
            start = pos + 1
    spans.append((start, len(masked)))
    return spans


# ---------------------------------------------------------------------------------------------------
# Firebolt DDL -> DuckDB

_IDENT = r'(?:"_*"|[A-Za-z_][A-Za-z0-9_$]*)'
_IDENT_LIST = rf"{_IDENT}(?:\s*,\s*{_IDENT})*"
_CREATE_TABLE = re.compile(
    rf"CREATE\s+(?:(?P<kind>FACT|DIMENSION)\s+)?TABLE\s+(?P<ine>IF\s+NOT\s+EXISTS\s+)?"
    rf"(?P<name>(?:public\s*\.\s*)?{_IDENT})\s*",
    re.I,
)
_PRIMARY_INDEX = re.compile(
    rf"\s*PRIMARY\s+INDEX\s*(?P<paren>\()?\s*(?P<cols>{_IDENT_LIST})\s*(?(paren)\))", re.I
)
_PARTITION_BY = re.compile(r"\s*PARTITION\s+BY\s+", re.I)
_WITH_PAREN = re.compile(r"\s*WITH\s*\(", re.I)
_TYPE = re.compile(
    r"(?P<t>DOUBLE\s+PRECISION|TIMESTAMPTZ|TIMESTAMPNTZ|TIMESTAMP|PGDATE|DATE|TEXT|VARCHAR|STRING|BIGINT|"
    r"INTEGER|INT8|INT4|INT|LONG|REAL|FLOAT8|FLOAT4|FLOAT|DOUBLE|BOOLEAN|BOOL|BYTEA|NUMERIC|DECIMAL|ARRAY|"
    r"GEOGRAPHY|STRUCT)\b",
    re.I,
)
_DUCK_TYPE = {
    "DOUBLE PRECISION": "DOUBLE",
    "DOUBLE": "DOUBLE",
    "FLOAT8": "DOUBLE",
    "FLOAT": "DOUBLE",
    "REAL": "REAL",
    "FLOAT4": "REAL",
    "TEXT": "VARCHAR",
    "VARCHAR": "VARCHAR",
    "STRING": "VARCHAR",
    "BIGINT": "BIGINT",
    "INT8": "BIGINT",
    "LONG": "BIGINT",
    "INTEGER": "INTEGER",
    "INT4": "INTEGER",
    "INT": "INTEGER",
    "BOOLEAN": "BOOLEAN",
    "BOOL": "BOOLEAN",
    "DATE": "DATE",
    "PGDATE": "DATE",
    "TIMESTAMP": "TIMESTAMP",
    "TIMESTAMPNTZ": "TIMESTAMP",
    "TIMESTAMPTZ": "TIMESTAMPTZ",
    "BYTEA": "BLOB",
}
_FORBIDDEN_CONSTRAINT = re.compile(
    r"\b(PRIMARY\s+KEY|REFERENCES|CHECK|COLLATE|GENERATED|AUTO_?INCREMENT|IDENTITY|SERIAL)\b", re.I
)
_TABLE_CONSTRAINT = re.compile(r"\s*(PRIMARY|UNIQUE|CONSTRAINT|FOREIGN|CHECK|STATISTICS|INDEX)\b", re.I)


def _norm_ident(raw: str) -> str:
    raw = raw.strip()
    if raw.lower().startswith("public"):
        raw = re.sub(r"(?i)^public\s*\.\s*", "", raw)
    if raw.startswith('"'):
        return raw[1:-1].replace('""', '"')
    return raw.lower()


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _parse_type(masked: str, pos: int, sql: str) -> tuple[str, int]:
    """Parse a Firebolt column type at ``pos``; return the DuckDB type and the end position."""
    m = _TYPE.match(masked, pos)
    if not m:
        snippet = sql[pos : pos + 30].strip()
        raise StandInError(f"unknown or non-Firebolt data type at {snippet!r}", "UnknownType")
    name = re.sub(r"\s+", " ", m.group("t").upper())
    end = m.end()
    if name in ("GEOGRAPHY", "STRUCT"):
        raise StandInError(f"type {name} is not emulated by the stand-in", "NotSupported")
    if name in ("NUMERIC", "DECIMAL"):
        pm = re.compile(r"\s*\(\s*(\d+)\s*(?:,\s*(\d+)\s*)?\)").match(masked, end)
        if pm:
            return f"DECIMAL({pm.group(1)}, {pm.group(2) or 0})", pm.end()
        return "DECIMAL(38, 0)", end
    if name == "ARRAY":
        om = re.compile(r"\s*\(").match(masked, end)
        if not om:
            raise StandInError("ARRAY needs an element type: ARRAY(<type>)", "SyntaxError")
        inner, inner_end = _parse_type(masked, om.end(), sql)
        cm = re.compile(r"\s*(?:NOT\s+NULL|NULL)?\s*\)", re.I).match(masked, inner_end)
        if not cm:
            raise StandInError("malformed ARRAY type", "SyntaxError")
        return f"{inner}[]", cm.end()
    if re.compile(r"\s*\(").match(masked, end):
        raise StandInError(f"type {name} takes no length or precision in Firebolt", "SyntaxError")
    return _DUCK_TYPE[name], end


@dataclass
class _TableMeta:
    name: str
    kind: str
    primary_index: str
    ddl: str


def translate_create_table(sql: str, masked: str) -> tuple[str, _TableMeta]:
    """Translate ``CREATE [FACT|DIMENSION] TABLE`` (column list or CTAS) into DuckDB DDL."""
    m = _CREATE_TABLE.match(masked)
    if not m:
        raise StandInError("malformed CREATE TABLE statement", "SyntaxError")
    kind = (m.group("kind") or "FACT").upper()
    if_not_exists = "IF NOT EXISTS " if m.group("ine") else ""
    name = _norm_ident(sql[m.start("name") : m.end("name")])
    pos = m.end()
    if masked.startswith("(", pos):
        close = _matching_paren(masked, pos)
        body_sql, body_mask = sql[pos + 1 : close], masked[pos + 1 : close]
        columns, nullable = _translate_columns(body_sql, body_mask)
        tail_pos = close + 1
        index, tail_pos = _primary_index(sql, masked, tail_pos)
        tail_pos = _skip_partition_and_with(masked, tail_pos)
        if masked[tail_pos:].strip():
            raise StandInError(
                f"unexpected text after the column list: {sql[tail_pos:].strip()[:60]!r}", "SyntaxError"
            )
        for col in index:
            if col not in nullable:
                raise StandInError(f"primary index column {col!r} is not a column of {name}", "SyntaxError")
            if nullable[col]:
                raise StandInError(f"primary index column {col!r} must be NOT NULL", "InvalidIndex")
        ddl = f"CREATE TABLE {if_not_exists}{_quote(name)} (\n  " + ",\n  ".join(columns) + "\n)"
    else:
        index, pos = _primary_index(sql, masked, pos)
        am = re.compile(r"\s*AS\s+", re.I).match(masked, pos)
        if not am:
            raise StandInError("CREATE TABLE needs a column list or AS <query>", "SyntaxError")
        ddl = f"CREATE TABLE {if_not_exists}{_quote(name)} AS {sql[am.end() :]}"
    return ddl, _TableMeta(name, kind, ", ".join(index), sql)


def _primary_index(sql: str, masked: str, pos: int) -> tuple[list[str], int]:
    pm = _PRIMARY_INDEX.match(masked, pos)
    if not pm:
        return [], pos
    cols = [
        _norm_ident(sql[pm.start("cols") + a : pm.start("cols") + b])
        for a, b in _split_top_level(pm.group("cols"))
    ]
    return cols, pm.end()


def _skip_partition_and_with(masked: str, pos: int) -> int:
    if pbm := _PARTITION_BY.match(masked, pos):
        wm = re.compile(r"\bWITH\s*\(", re.I).search(masked, pbm.end())
        pos = wm.start() if wm else len(masked)
    if wm := _WITH_PAREN.match(masked, pos):
        pos = _matching_paren(masked, wm.end() - 1) + 1
    return pos


def _translate_columns(body_sql: str, body_mask: str) -> tuple[list[str], dict[str, bool]]:
    columns: list[str] = []
    nullable: dict[str, bool] = {}
    for a, b in _split_top_level(body_mask):
        part_sql, part_mask = body_sql[a:b], body_mask[a:b]
        if not part_mask.strip():
            raise StandInError("empty column definition", "SyntaxError")
        if _TABLE_CONSTRAINT.match(part_mask):
            raise StandInError(
                f"table constraints are not supported by Firebolt: {part_sql.strip()[:60]!r}", "SyntaxError"
            )
        nm = re.compile(rf"\s*({_IDENT})\s+").match(part_mask)
        if not nm:
            raise StandInError(f"malformed column definition {part_sql.strip()[:60]!r}", "SyntaxError")
        col = _norm_ident(part_sql[nm.start(1) : nm.end(1)])
        if col in nullable:
            raise StandInError(f"duplicate column {col!r}", "SyntaxError")
        duck_type, end = _parse_type(part_mask, nm.end(), part_sql)
        rest_sql, rest_mask = part_sql[end:], part_mask[end:]
        if bad := _FORBIDDEN_CONSTRAINT.search(rest_mask):
            raise StandInError(
                f"column {col}: {bad.group(1).upper()} is not supported by Firebolt", "SyntaxError"
            )
        # UNIQUE is an optimizer hint in Firebolt (not enforced); DESCRIPTION is metadata: drop both
        drops = [
            (x.start(), x.end()) for x in re.finditer(r"\bUNIQUE\b|\bDESCRIPTION\s*=\s*'_*'", rest_mask, re.I)
        ]
        for x0, x1 in reversed(drops):
            rest_sql = rest_sql[:x0] + " " * (x1 - x0) + rest_sql[x1:]
            rest_mask = rest_mask[:x0] + " " * (x1 - x0) + rest_mask[x1:]
        null_check = re.sub(r"(?i)\bDEFAULT\s+NULL\b", "", rest_mask)
        if re.search(r"\bNOT\s+NULL\b", null_check, re.I):
            is_nullable = False
        elif re.search(r"\bNULL\b", null_check, re.I):
            is_nullable = True
        else:  # Firebolt columns are NOT NULL unless declared NULL
            is_nullable = False
            rest_sql += " NOT NULL"
        nullable[col] = is_nullable
        columns.append(f"{_quote(col)} {duck_type} {' '.join(rest_sql.split())}".rstrip())
    return columns, nullable


# ---------------------------------------------------------------------------------------------------
# result serialisation (DuckDB -> Firebolt JSON_Compact)

_SCALAR_TYPES = {
    "VARCHAR": "text",
    "BIGINT": "bigint",
    "HUGEINT": "bigint",
    "UBIGINT": "bigint",
    "UHUGEINT": "bigint",
    "UINTEGER": "bigint",
    "INTEGER": "integer",
    "SMALLINT": "integer",
    "TINYINT": "integer",
    "USMALLINT": "integer",
    "UTINYINT": "integer",
    "DOUBLE": "double precision",
    "FLOAT": "real",
    "BOOLEAN": "boolean",
    "DATE": "date",
    "TIMESTAMP": "timestamp",
    "TIMESTAMP_S": "timestamp",
    "TIMESTAMP_MS": "timestamp",
    "TIMESTAMP_NS": "timestamp",
    "TIMESTAMP WITH TIME ZONE": "timestamptz",
    "BLOB": "bytea",
    '"NULL"': "text",
    "NULL": "text",
}


def firebolt_type(duck_type: str) -> str:
    """Firebolt's name for a DuckDB result type (unknown types are reported as text)."""
    t = duck_type.strip()
    if t.endswith("[]"):
        return f"array({firebolt_type(t[:-2])})"
    if dm := re.fullmatch(r"DECIMAL\((\d+),\s*(\d+)\)", t):
        return f"numeric({dm.group(1)}, {dm.group(2)})"
    return _SCALAR_TYPES.get(t, "text")


def _format_timestamp(value: dt.datetime) -> str:
    suffix = ""
    if value.tzinfo is not None:
        value = value.astimezone(dt.UTC).replace(tzinfo=None)
        suffix = "+00"
    text = value.strftime("%Y-%m-%d %H:%M:%S.%f" if value.microsecond else "%Y-%m-%d %H:%M:%S")
    return text + suffix


def json_value(value: Any, fb_type: str) -> Any:
    """A Python value from DuckDB as Firebolt writes it in JSON_Compact."""
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return value
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, dt.datetime):
        return _format_timestamp(value)
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, bytes | bytearray | memoryview):
        return "\\x" + bytes(value).hex()
    if isinstance(value, list | tuple):
        inner = fb_type[len("array(") : -1] if fb_type.startswith("array(") else "text"
        return [json_value(v, inner) for v in value]
    return str(value)


# ---------------------------------------------------------------------------------------------------
# the engine: one DuckDB connection, statements serialised


@dataclass
class Reply:
    status: int
    body: bytes = b""
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)


_RESULT_KEYWORDS = {"SELECT", "WITH", "VALUES", "EXPLAIN", "SHOW", "("}
_ALLOWED_KEYWORDS = _RESULT_KEYWORDS | {
    "INSERT",
    "UPDATE",
    "DELETE",
    "MERGE",
    "CREATE",
    "DROP",
    "TRUNCATE",
    "ALTER",
    "VACUUM",
    "USE",
}
_TRANSACTION_KEYWORDS = {"BEGIN", "START", "COMMIT", "ROLLBACK", "END", "ABORT"}


class StandInEngine:
    """Executes one Firebolt statement against DuckDB and renders the Firebolt reply."""

    def __init__(self, db_path: str = ":memory:"):
        self.db_path = db_path
        self._lock = threading.Lock()
        self._conn = duckdb.connect(db_path)
        self._closed = False
        self._setup()

    def _setup(self) -> None:
        c = self._conn
        with contextlib.suppress(duckdb.Error):  # without ICU timestamps are naive anyway
            c.execute("SET TimeZone = 'UTC'")
        c.execute("CREATE SCHEMA IF NOT EXISTS public")
        c.execute("USE public")
        c.execute(f"CREATE SCHEMA IF NOT EXISTS {_CATALOG}")
        c.execute(
            f"CREATE TABLE IF NOT EXISTS {_CATALOG}.table_meta ("
            "table_name VARCHAR PRIMARY KEY, table_kind VARCHAR, primary_index VARCHAR, ddl VARCHAR)"
        )
        type_case = " ".join(
            f"WHEN '{duck}' THEN '{fb}'" for duck, fb in _SCALAR_TYPES.items() if not duck.startswith('"')
        )
        c.execute(
            f"CREATE OR REPLACE VIEW {_CATALOG}.tables AS "
            "SELECT 'default' AS table_catalog, t.table_schema, t.table_name, "
            "CASE WHEN t.table_type = 'VIEW' THEN 'VIEW' ELSE 'BASE TABLE' END AS table_type, "
            "m.table_kind, m.primary_index, m.ddl "
            f"FROM information_schema.tables t LEFT JOIN {_CATALOG}.table_meta m ON m.table_name = t.table_name "
            "WHERE t.table_schema = 'public' AND t.table_catalog = current_database()"
        )
        c.execute(
            f"CREATE OR REPLACE VIEW {_CATALOG}.columns AS "
            "SELECT 'default' AS table_catalog, c.table_schema, c.table_name, c.column_name, "
            "c.ordinal_position, "
            f"CASE c.data_type {type_case} ELSE lower(c.data_type) END AS data_type, "
            "c.is_nullable, c.column_default "
            "FROM information_schema.columns c "
            "WHERE c.table_schema = 'public' AND c.table_catalog = current_database()"
        )

    def close(self) -> None:
        with self._lock:
            if not self._closed:
                self._closed = True
                self._conn.close()

    # ---- request entry point -----------------------------------------------------------------
    def handle(self, sql: str, params: dict[str, str]) -> Reply:
        try:
            return self._handle(sql, params)
        except StandInError as err:
            return Reply(400, json.dumps(err.body()).encode())

    def _handle(self, sql: str, params: dict[str, str]) -> Reply:
        unknown = sorted(set(params) - _ALLOWED_PARAMS)
        if unknown:
            raise StandInError(f"unknown or unsupported setting(s): {', '.join(unknown)}", "UnknownSetting")
        fmt = params.get("output_format", "JSON_Compact")
        if fmt != "JSON_Compact":
            raise StandInError(f"output_format {fmt!r} is not emulated (only JSON_Compact)", "NotSupported")
        statements = split_statements(sql)
        if not statements:
            raise StandInError("empty query", "SyntaxError")
        if len(statements) > 1:
            raise StandInError(
                f"a request carries one statement; got {len(statements)} (multi-statement requests are refused)",
                "MultiStatementNotSupported",
            )
        stmt, masked = statements[0]
        args = _query_parameters(params.get("query_parameters"))
        return self._statement(stmt, masked, args)

    def _statement(self, stmt: str, masked: str, args: list[Any]) -> Reply:
        first = re.match(r"\(|[A-Za-z_]+", masked)
        keyword = first.group(0).upper() if first else ""
        if keyword in _TRANSACTION_KEYWORDS:
            raise StandInError("transactions are not emulated by the stand-in", "NotSupported")
        if keyword not in _ALLOWED_KEYWORDS:
            raise StandInError(f"{keyword or stmt[:20]!r} statements are not supported", "SyntaxError")
        if keyword == "USE":
            return self._use(stmt, masked)
        meta: _TableMeta | None = None
        dropped: str | None = None
        if keyword == "CREATE":
            if _CREATE_TABLE.match(masked):
                stmt, meta = translate_create_table(stmt, masked)
                masked = mask_sql(stmt)
            elif not re.match(r"CREATE\s+(OR\s+REPLACE\s+)?VIEW\b", masked, re.I):
                raise StandInError(f"not supported: {stmt[:60]!r}", "SyntaxError")
        elif keyword == "INSERT":
            if bad := re.search(
                r"^INSERT\s+OR\b|\bON\s+CONFLICT\b|\bRETURNING\b|\bBY\s+NAME\b", masked, re.I
            ):
                raise StandInError(f"{bad.group(0).upper()} is not Firebolt syntax", "SyntaxError")
        elif keyword == "DROP":
            dm = re.match(rf"DROP\s+TABLE\s+(?:IF\s+EXISTS\s+)?((?:public\s*\.\s*)?{_IDENT})", masked, re.I)
            if dm:
                dropped = _norm_ident(stmt[dm.start(1) : dm.end(1)])
        stmt = _rewrite_catalog(stmt, masked)
        return self._execute(stmt, args, keyword in _RESULT_KEYWORDS, meta, dropped)

    def _use(self, stmt: str, masked: str) -> Reply:
        um = re.fullmatch(rf"USE\s+(?:DATABASE\s+)?({_IDENT})", masked, re.I)
        if not um:
            raise StandInError(
                "only USE [DATABASE] <name> is emulated (Firebolt Core has no engines)", "NotSupported"
            )
        name = _norm_ident(stmt[um.start(1) : um.end(1)])
        return Reply(200, headers={"Firebolt-Update-Parameters": f"database={name}"})

    def _execute(
        self, stmt: str, args: list[Any], has_result: bool, meta: _TableMeta | None, dropped: str | None
    ) -> Reply:
        started = time.perf_counter()
        with self._lock:
            if self._closed:
                raise StandInError("the stand-in is shutting down", "Unavailable")
            c = self._conn
            try:
                existed = meta is not None and self._table_exists(meta.name)
                c.execute(stmt, args or None)
                description = c.description if has_result else None
                rows = c.fetchall() if description else []
                if meta is not None and not existed:
                    c.execute(
                        f"INSERT OR REPLACE INTO {_CATALOG}.table_meta VALUES (?, ?, ?, ?)",
                        [meta.name, meta.kind, meta.primary_index, meta.ddl],
                    )
                if dropped is not None:
                    c.execute(f"DELETE FROM {_CATALOG}.table_meta WHERE table_name = ?", [dropped])
            except duckdb.Error as err:
                raise StandInError(str(err), type(err).__name__, "FB-STANDIN-SQL") from None
        if not description:
            return Reply(200)
        elapsed = time.perf_counter() - started
        types = [firebolt_type(str(d[1])) for d in description]
        meta_out = []
        for i, d in enumerate(description):
            null = " null" if any(r[i] is None for r in rows) else ""
            meta_out.append({"name": d[0], "type": types[i] + null})
        data = [[json_value(v, types[i]) for i, v in enumerate(row)] for row in rows]
        payload = {
            "meta": meta_out,
            "data": data,
            "rows": len(data),
            "statistics": {
                "elapsed": round(elapsed, 6),
                "rows_read": len(data),
                "bytes_read": 0,
                "time_before_execution": 0.0,
                "time_to_execute": round(elapsed, 6),
            },
        }
        return Reply(200, json.dumps(payload, ensure_ascii=False).encode("utf-8"))

    def _table_exists(self, name: str) -> bool:
        row = self._conn.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public' AND table_name = ? "
            "AND table_catalog = current_database()",
            [name],
        ).fetchone()
        return bool(row and row[0])


def _rewrite_catalog(stmt: str, masked: str) -> str:
    """Point ``information_schema.tables|columns`` at the emulated Firebolt views."""
    out, last = [], 0
    for m in re.finditer(r"\binformation_schema\s*\.\s*(tables|columns)\b", masked, re.I):
        out.append(stmt[last : m.start()])
        out.append(f"{_CATALOG}.{m.group(1).lower()}")
        last = m.end()
    out.append(stmt[last:])
    return "".join(out)


def _query_parameters(raw: str | None) -> list[Any]:
    """Server-side parameters (fb_numeric paramstyle): ``[{"name": "$1", "value": ...}, ...]``."""
    if not raw:
        return []
    try:
        items = json.loads(raw)
        by_pos = {int(str(item["name"]).lstrip("$")): item.get("value") for item in items}
    except (ValueError, TypeError, KeyError) as err:
        raise StandInError(f"malformed query_parameters: {err}", "InvalidParameters") from None
    if sorted(by_pos) != list(range(1, len(by_pos) + 1)):
        raise StandInError("query_parameters must be named $1..$n", "InvalidParameters")
    return [by_pos[i] for i in range(1, len(by_pos) + 1)]


# ---------------------------------------------------------------------------------------------------
# HTTP


@dataclass(frozen=True)
class Received:
    """One request as the stand-in received it."""

    sql: str
    params: dict[str, str]
    headers: dict[str, str]  # names lower-cased


@dataclass
class _Fault:
    status: int | None = None
    body: str = ""
    hang_s: float = 0.0


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    standin: FireboltStandIn

    def server_bind(self) -> None:
        # HTTPServer.server_bind resolves the host name (getfqdn); a loopback server needs no DNS
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name, self.server_port = str(host), int(port)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "FireboltStandIn/1.0"
    timeout = 120  # idle keep-alive connections are dropped after this
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - signature of the base class
        if self.server.standin.verbose:
            super().log_message(format, *args)

    def do_GET(self) -> None:
        self._send(Reply(404, b"not found", "text/plain"))

    def do_POST(self) -> None:
        standin = self.server.standin
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            self._send(Reply(411, b"Content-Length required", "text/plain"))
            return
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        parts = urlsplit(self.path)
        params = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        try:
            sql = raw.decode("utf-8")
        except UnicodeDecodeError:
            self._send(Reply(400, json.dumps(StandInError("body is not UTF-8").body()).encode()))
            return
        headers = {k.lower(): v for k, v in self.headers.items()}
        fault = standin._admit(Received(sql, params, headers))
        if fault is not None and fault.hang_s and standin._stopping.wait(fault.hang_s):
            self.close_connection = True  # stopping: drop the held request unanswered
            return
        if fault is not None and fault.status is not None:
            self._send(Reply(fault.status, fault.body.encode(), "text/plain"))
            return
        if parts.path not in ("", "/"):
            self._send(Reply(404, b"not found", "text/plain"))
            return
        self._send(standin.engine.handle(sql, params))

    def _send(self, reply: Reply) -> None:
        try:
            self.send_response(reply.status)
            self.send_header("Content-Type", reply.content_type)
            self.send_header("Content-Length", str(len(reply.body)))
            for key, value in reply.headers.items():
                self.send_header(key, value)
            self.end_headers()
            if reply.body:
                self.wfile.write(reply.body)
        except (BrokenPipeError, ConnectionResetError):  # the client gave up (e.g. its timeout)
            self.close_connection = True


class FireboltStandIn:
    """The stand-in server. Prefer :func:`firebolt_standin` in tests."""

    def __init__(
        self, db_path: str = ":memory:", host: str = "127.0.0.1", port: int = 0, verbose: bool = False
    ):
        self.verbose = verbose
        self.engine = StandInEngine(db_path)
        self._httpd = _Server((host, port), _Handler)
        self._httpd.standin = self
        self._lock = threading.Lock()
        self._faults: deque[_Fault] = deque()
        self._received: list[Received] = []
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._serving = False

    # ---- introspection / fault injection -------------------------------------------------------
    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def requests(self) -> int:
        """Number of requests received (including failed and held ones)."""
        with self._lock:
            return len(self._received)

    @property
    def received(self) -> list[Received]:
        with self._lock:
            return list(self._received)

    @property
    def statements(self) -> list[str]:
        """SQL bodies received, in order."""
        return [r.sql for r in self.received]

    def fail_next(self, n: int = 1, status: int = 500, body: str = "stand-in: injected failure") -> None:
        """Answer the next ``n`` requests with HTTP ``status`` (text body) without executing them."""
        with self._lock:
            self._faults.extend(_Fault(status=status, body=body) for _ in range(n))

    def hang_next(self, n: int = 1, seconds: float = 30.0) -> None:
        """Hold the next ``n`` requests for ``seconds`` before executing them (or until stop)."""
        with self._lock:
            self._faults.extend(_Fault(hang_s=seconds) for _ in range(n))

    def _admit(self, request: Received) -> _Fault | None:
        with self._lock:
            self._received.append(request)
            return self._faults.popleft() if self._faults else None

    # ---- lifecycle ------------------------------------------------------------------------------
    def start(self) -> FireboltStandIn:
        self._serving = True
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="firebolt-standin",
            daemon=True,
        )
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        self._serving = True
        self._httpd.serve_forever(poll_interval=0.2)

    def stop(self) -> None:
        self._stopping.set()
        if self._serving:
            self._httpd.shutdown()
            self._serving = False
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self.engine.close()

    def __enter__(self) -> FireboltStandIn:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


@contextmanager
def firebolt_standin(db_path: str = ":memory:", verbose: bool = False) -> Iterator[FireboltStandIn]:
    """Run the stand-in on 127.0.0.1 (a free port) in a background thread for the block."""
    standin = FireboltStandIn(db_path=str(db_path), host="127.0.0.1", port=0, verbose=verbose).start()
    try:
        yield standin
    finally:
        standin.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m revops_pipelines.testing.firebolt_server",
        description="Loopback Firebolt stand-in (Firebolt HTTP protocol over DuckDB). Not Firebolt.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT})")
    parser.add_argument(
        "--db", default=":memory:", help="DuckDB file backing the stand-in (default :memory:)"
    )
    parser.add_argument("--verbose", action="store_true", help="log every request")
    args = parser.parse_args(argv)

    def _terminate(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _terminate)
    standin = FireboltStandIn(db_path=args.db, host=args.host, port=args.port, verbose=args.verbose)
    print(
        f"Firebolt stand-in on {standin.url} (DuckDB: {args.db}); Ctrl-C to stop", file=sys.stderr, flush=True
    )
    try:
        standin.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        standin.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
