"""Every declared warehouse table, collected from the modules that own them.

A module owns a table by holding its :class:`TableSchema` at module level (usually also in its
``TABLES`` list); nothing is listed twice. A new domain module is added to :data:`SCHEMA_MODULES`.
"""

from __future__ import annotations

import importlib

from revops_pipelines.errors import WarehouseError
from revops_pipelines.warehouse.schema import TableSchema

SCHEMA_MODULES = (
    "assets.sample_world",
    "assets.salesforce",
    "assets.hubspot",
    "assets.gong",
    "assets.conversations",
    "assets.product",
    "assets.features",
    "models.churn",
    "models.classification",
    "models.segmentation",
    "kb_assets.assets",
    "revops_pipelines.kb.training",
    "revops_pipelines.agents.base",
    "revops_pipelines.agents.decision",
    "revops_pipelines.agents.execution",
    "revops_pipelines.agents.data",
)


def declared_schemas(modules: tuple[str, ...] | None = None) -> list[TableSchema]:
    """Every TableSchema held by ``modules`` (module attributes and their ``TABLES`` lists), by name.

    Two different declarations under one name are an error (each table has one owner)."""
    found: dict[str, TableSchema] = {}
    owners: dict[str, str] = {}
    for mod_name in SCHEMA_MODULES if modules is None else modules:
        mod = importlib.import_module(mod_name)
        candidates = [v for v in vars(mod).values() if isinstance(v, TableSchema)]
        candidates += [t for t in getattr(mod, "TABLES", []) if isinstance(t, TableSchema)]
        for schema in candidates:
            if schema.name.startswith("_revops_"):
                continue
            prev = found.get(schema.name)
            if prev is not None and prev.signature() != schema.signature():
                raise WarehouseError(
                    f"table {schema.name} is declared differently in {owners[schema.name]} and {mod_name}"
                )
            if prev is None:
                found[schema.name] = schema
                owners[schema.name] = mod_name
    return [found[n] for n in sorted(found)]


def declared(name: str) -> TableSchema | None:
    return next((s for s in declared_schemas() if s.name == name), None)
