"""Warehouse layer: declared schemas, the resource interface and its DuckDB / Firebolt implementations."""

from revops_pipelines.warehouse.base import MergeResult, Warehouse, frame_to_arrow
from revops_pipelines.warehouse.schema import Column, TableSchema, ident, table

__all__ = ["Column", "MergeResult", "TableSchema", "Warehouse", "frame_to_arrow", "ident", "table"]
