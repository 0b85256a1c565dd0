"""Source schema drift: what a source delivers now against the schema recorded for it.

A source (a vendor object, an export file) is observed as a field → type map:
:func:`infer_schema` flattens records (nested objects become dotted names, ``metaData.id``) and names
each field's JSON type (``string``, ``integer``, ``number``, ``boolean``, ``object``, ``array``;
``null`` when every sampled value is null); a Parquet file or a DataFrame is read from its column
types (plus ``date``, ``timestamp``).

The first observation of a source is recorded in ``_revops_source_schemas`` as its baseline.
Later observations are compared with it (:func:`compare`): new fields are a warning (the load
ignores them until they are declared); removed fields and changed types are errors (a mapping
reads a field that is gone or no longer the type it expects). The baseline changes only when a
drift is accepted on purpose (:func:`accept`; ``revops warehouse accept-source-schema SOURCE``),
so a drift keeps showing until someone has looked at it.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from itertools import islice
from typing import TYPE_CHECKING, Any

from revops_pipelines.warehouse.schema import table

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

    from revops_pipelines.warehouse.base import Warehouse

SOURCE_SCHEMAS = table(
    "_revops_source_schemas",
    [
        ("source", "TEXT"),
        ("field", "TEXT"),
        ("type", "TEXT", False),
        ("recorded_at", "TIMESTAMP", False),
    ],
    keys=("source", "field"),
    kind="dimension",
    description="The recorded (accepted) schema of every source: one row per source field.",
    group="warehouse",
)

NULL = "null"
SAMPLE_RECORDS = 2000


def _json_type(v: Any) -> str:
    if v is None:
        return NULL
    if isinstance(v, bool):
        return "boolean"
    if isinstance(v, int):
        return "integer"
    if isinstance(v, float):
        return "number"
    if isinstance(v, str):
        return "string"
    if isinstance(v, list | tuple):
        return "array"
    if isinstance(v, dict):
        return "object"
    if isinstance(v, dt.datetime):
        return "timestamp"
    if isinstance(v, dt.date):
        return "date"
    return type(v).__name__


def _merge_type(a: str | None, b: str) -> str:
    if a is None or a == NULL:
        return b
    if b == NULL or a == b:
        return a
    if {a, b} == {"integer", "number"}:
        return "number"
    return f"{a}|{b}" if b not in a.split("|") else a


def _flatten(record: Mapping[str, Any], prefix: str, out: dict[str, str]) -> None:
    for k, v in record.items():
        name = f"{prefix}{k}"
        if isinstance(v, Mapping) and v:
            _flatten(v, name + ".", out)
        else:
            out[name] = _merge_type(out.get(name), _json_type(v))


def infer_schema(records: Iterable[Mapping[str, Any]], limit: int = SAMPLE_RECORDS) -> dict[str, str]:
    """Field → type over the first ``limit`` records (a field seen in any of them is present)."""
    out: dict[str, str] = {}
    for r in islice(records, limit):
        if not isinstance(r, Mapping):
            raise ValueError(f"a source record must be a JSON object, got {type(r).__name__}")
        _flatten(r, "", out)
    return dict(sorted(out.items()))


def _arrow_name(t: pa.DataType) -> str:
    import pyarrow as pa

    if pa.types.is_boolean(t):
        return "boolean"
    if pa.types.is_integer(t):
        return "integer"
    if pa.types.is_floating(t) or pa.types.is_decimal(t):
        return "number"
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        return "string"
    if pa.types.is_dictionary(t):
        return _arrow_name(t.value_type)
    if pa.types.is_timestamp(t):
        return "timestamp"
    if pa.types.is_date(t):
        return "date"
    if pa.types.is_list(t) or pa.types.is_large_list(t):
        return "array"
    if pa.types.is_struct(t):
        return "object"
    return str(t)


def arrow_schema(schema: pa.Schema) -> dict[str, str]:
    """Field → type of an Arrow schema (a Parquet file's, read without its rows)."""
    return dict(sorted((f.name, _arrow_name(f.type)) for f in schema))


def frame_schema(df: pd.DataFrame) -> dict[str, str]:
    """Field → type of a DataFrame's columns."""
    import pyarrow as pa

    return arrow_schema(pa.Schema.from_pandas(df.head(SAMPLE_RECORDS), preserve_index=False))


@dataclass
class SchemaDiff:
    added: dict[str, str] = field(default_factory=dict)
    removed: dict[str, str] = field(default_factory=dict)
    changed: dict[str, tuple[str, str]] = field(default_factory=dict)  # field -> (recorded, observed)

    @property
    def breaking(self) -> bool:
        return bool(self.removed or self.changed)

    def __bool__(self) -> bool:
        return bool(self.added or self.removed or self.changed)

    def as_dict(self) -> dict[str, Any]:
        return {
            "added": self.added,
            "removed": self.removed,
            "changed": {k: {"recorded": a, "observed": b} for k, (a, b) in self.changed.items()},
        }

    def summary(self) -> str:
        parts = []
        if self.added:
            parts.append(f"new field(s) {sorted(self.added)}")
        if self.removed:
            parts.append(f"removed field(s) {sorted(self.removed)}")
        if self.changed:
            parts.append(
                "changed type(s) "
                + ", ".join(f"{k}: {a} -> {b}" for k, (a, b) in sorted(self.changed.items()))
            )
        return "; ".join(parts) or "no drift"


def _retyped(was: str, now: str) -> bool:
    if NULL in (was, now) or was == now:
        return False
    return not (was == "number" and now == "integer")  # whole numbers in a number field


def compare(recorded: Mapping[str, str], observed: Mapping[str, str]) -> SchemaDiff:
    """What changed from ``recorded`` to ``observed``. A field null in every sampled record on either
    side has no known type, so it is never a type change."""
    d = SchemaDiff()
    for f, t in observed.items():
        if f not in recorded:
            d.added[f] = t
        elif _retyped(recorded[f], t):
            d.changed[f] = (recorded[f], t)
    for f, t in recorded.items():
        if f not in observed:
            d.removed[f] = t
    return d


def recorded(wh: Warehouse, source: str) -> dict[str, str]:
    """The recorded schema of ``source`` ({} when none has been recorded)."""
    wh.execute(SOURCE_SCHEMAS.ddl(wh.dialect))
    df = wh.query(f"SELECT field, type FROM {SOURCE_SCHEMAS.name} WHERE source = ? ORDER BY field", [source])
    return dict(zip(df["field"], df["type"], strict=True)) if len(df) else {}


def accept(wh: Warehouse, source: str, observed: Mapping[str, str]) -> None:
    """Make ``observed`` the recorded schema of ``source`` (replacing the previous one)."""
    import pandas as pd

    if not source:
        raise ValueError("source name must not be empty")
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    wh.ensure_table(SOURCE_SCHEMAS)
    wh.execute(f"DELETE FROM {SOURCE_SCHEMAS.name} WHERE source = ?", [source])
    rows = pd.DataFrame(
        [(source, f, t, now) for f, t in sorted(observed.items())], columns=SOURCE_SCHEMAS.column_names
    )
    if len(rows):
        wh.merge(SOURCE_SCHEMAS, rows)


@dataclass
class Observation:
    source: str
    observed: dict[str, str]
    recorded: dict[str, str]
    diff: SchemaDiff
    baseline_recorded: bool  # this observation was the first and became the baseline

    def metadata(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "drift": self.diff.summary(),
            "diff": json.loads(json.dumps(self.diff.as_dict())),
            "observed_fields": len(self.observed),
            "recorded_fields": len(self.recorded),
            "baseline_recorded": self.baseline_recorded,
        }


def observe(wh: Warehouse, source: str, observed: Mapping[str, str]) -> Observation:
    """Compare ``observed`` with the recorded schema of ``source``; the first observation of a
    source becomes its recorded schema."""
    if not observed:
        raise ValueError(f"source {source}: no fields observed (empty source?)")
    base = recorded(wh, source)
    if not base:
        accept(wh, source, observed)
        return Observation(source, dict(observed), dict(observed), SchemaDiff(), True)
    return Observation(source, dict(observed), base, compare(base, observed), False)
