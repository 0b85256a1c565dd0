"""Writing and reading a sample world directory (JSONL for vendor records, Parquet for tables)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

JSONL = {
    "salesforce/Account.jsonl": ("salesforce", "Account"),
    "salesforce/Contact.jsonl": ("salesforce", "Contact"),
    "salesforce/Opportunity.jsonl": ("salesforce", "Opportunity"),
    "salesforce/OpportunityHistory.jsonl": ("salesforce", "OpportunityHistory"),
    "salesforce/Case.jsonl": ("salesforce", "Case"),
    "salesforce/Task.jsonl": ("salesforce", "Task"),
    "hubspot/companies.jsonl": ("hubspot", "companies"),
    "hubspot/contacts.jsonl": ("hubspot", "contacts"),
    "hubspot/deals.jsonl": ("hubspot", "deals"),
    **{f"hubspot/{e}.jsonl": ("hubspot", e) for e in ("calls", "emails", "meetings", "notes", "tasks")},
    "hubspot/associations.jsonl": ("hubspot", "associations"),
    "gong/calls.jsonl": ("gong_calls", None),
    "gong/transcripts.jsonl": ("gong_transcripts", None),
    "billing/invoices.jsonl": ("invoices", None),
}
PARQUET = {
    "product/usage_daily.parquet": ("usage", ("usage_date",)),
    "truth/accounts.parquet": ("truth_accounts", ("customer_since", "churn_date")),
    "truth/churn_oracle.parquet": ("oracle", ("snapshot_date",)),
}
FILES = tuple(JSONL) + tuple(PARQUET)
MANIFEST = "manifest.json"


def _records(world, attr: str, key: str | None) -> list[dict]:
    obj = getattr(world, attr)
    return obj[key] if key is not None else obj


def _read_jsonl(path: Path) -> list[dict]:
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


ROW_GROUP = 1 << 20


def _to_arrow(df: pd.DataFrame, date_cols: tuple[str, ...]) -> pa.Table:
    table = pa.Table.from_pandas(df, preserve_index=False)
    for col in date_cols:
        i = table.schema.get_field_index(col)
        table = table.set_column(i, col, table.column(col).cast(pa.date32()))
    return table


def _write_parquet(path: Path, df: pd.DataFrame, date_cols: tuple[str, ...]) -> None:
    """Row group by row group, so a 30M-row usage table never exists twice in memory."""
    first = _to_arrow(df.iloc[:ROW_GROUP], date_cols)
    with pq.ParquetWriter(path, first.schema, compression="zstd") as w:
        w.write_table(first, row_group_size=ROW_GROUP)
        for lo in range(ROW_GROUP, len(df), ROW_GROUP):
            w.write_table(_to_arrow(df.iloc[lo : lo + ROW_GROUP], date_cols), row_group_size=ROW_GROUP)


def _read_parquet(path: Path) -> pd.DataFrame:
    return pq.read_table(path).to_pandas(date_as_object=False)


class WorldWriter:
    """Writes parts of a world as they come; JSONL parts may arrive in several chunks (appended)."""

    def __init__(self, out_dir: Path):
        self.out_dir = out_dir
        self._handles: dict[str, object] = {}
        self._dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode

    def __enter__(self) -> WorldWriter:
        self.out_dir.mkdir(parents=True, exist_ok=True)
        return self

    def write(self, rel: str, part) -> None:
        path = self.out_dir / rel
        if rel in PARQUET:
            path.parent.mkdir(parents=True, exist_ok=True)
            _write_parquet(path, part, PARQUET[rel][1])
            return
        if rel not in JSONL:
            raise KeyError(f"unknown sample world file {rel}")
        f = self._handles.get(rel)
        if f is None:
            path.parent.mkdir(parents=True, exist_ok=True)
            f = self._handles[rel] = open(path, "w", encoding="utf-8", newline="\n")  # noqa: SIM115
        dumps = self._dumps
        for lo in range(0, len(part), 5000):
            f.write("".join(dumps(r) + "\n" for r in part[lo : lo + 5000]))

    def write_manifest(self, manifest: dict) -> None:
        for rel in JSONL:  # every file exists, even when a part was empty
            if rel not in self._handles:
                self.write(rel, [])
        (self.out_dir / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")

    def __exit__(self, *exc) -> None:
        for f in self._handles.values():
            f.close()
        self._handles.clear()


def write_world(world, out_dir: Path) -> dict:
    """Write every file of ``world`` under ``out_dir`` (created if needed); returns the manifest."""
    with WorldWriter(out_dir) as w:
        for rel, (attr, key) in JSONL.items():
            w.write(rel, _records(world, attr, key))
        for rel, (attr, _d) in PARQUET.items():
            w.write(rel, getattr(world, attr))
        manifest = dict(world.manifest)
        w.write_manifest(manifest)
    return manifest


def load_world(out_dir: Path):
    """Read a directory written by :func:`write_world` back into a ``World`` (exact round trip)."""
    from revops_pipelines.errors import ValidationFailed
    from revops_pipelines.sample.generator import World, no_gc

    missing = [rel for rel in (*FILES, MANIFEST) if not (out_dir / rel).is_file()]
    if missing:
        raise ValidationFailed(
            f"sample world directory {out_dir}", [f"{m}: file is missing" for m in missing]
        )
    data: dict = {"salesforce": {}, "hubspot": {}}
    for rel, (attr, key) in JSONL.items():
        with no_gc():
            recs = _read_jsonl(out_dir / rel)
        if key is None:
            data[attr] = recs
        else:
            data[attr][key] = recs
    for rel, (attr, _d) in PARQUET.items():
        data[attr] = _read_parquet(out_dir / rel)
    data["manifest"] = json.loads((out_dir / MANIFEST).read_text(encoding="utf-8"))
    return World(**data)
