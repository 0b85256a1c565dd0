"""Source schema drift: a vendor frame that no longer matches the table declared for it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from revops_pipelines.errors import WarehouseError
from revops_pipelines.warehouse.schema import TableSchema

if TYPE_CHECKING:
    import pandas as pd


class SourceSchemaDrift(WarehouseError):
    """The source's columns changed: ``missing`` / ``unexpected`` name them."""

    def __init__(self, table: str, source: str, missing: list[str], unexpected: list[str]):
        self.table, self.source, self.missing, self.unexpected = table, source, missing, unexpected
        parts = []
        if missing:
            parts.append(f"missing column(s) {missing}")
        if unexpected:
            parts.append(f"unexpected column(s) {unexpected}")
        super().__init__(
            f"schema drift in source {source} for {table}: {' and '.join(parts)}. If the vendor changed "
            f"its export, declare the new columns (nullable) in {table}'s TableSchema and map them; "
            "the warehouse table is migrated forward on the next load"
        )


def conform_frame(
    schema: TableSchema, df: pd.DataFrame, *, source: str, allow_extra: bool = False
) -> pd.DataFrame:
    """``df`` restricted to the declared columns in declared order — or :class:`SourceSchemaDrift`
    when a declared column is missing or (unless ``allow_extra``) an undeclared one appeared."""
    missing = [c for c in schema.column_names if c not in df.columns]
    unexpected = [] if allow_extra else [c for c in df.columns if c not in schema.column_names]
    if missing or unexpected:
        raise SourceSchemaDrift(schema.name, source, missing, [str(c) for c in unexpected])
    return df[schema.column_names]
