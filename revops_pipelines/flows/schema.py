"""The published JSON Schema of the flow language (``flows_yaml/schema.json``), generated from
:class:`FlowSpec` so the two cannot drift (a test compares them). Point editors at it, e.g. the YAML
language server: ``# yaml-language-server: $schema=./schema.json``."""

from __future__ import annotations

import json
from typing import Any

from revops_pipelines.flows.spec import FlowSpec


def flow_schema() -> dict[str, Any]:
    schema = FlowSpec.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = "https://revops.local/flows_yaml/schema.json"
    schema["title"] = "RevOps flow"
    return schema


def schema_text() -> str:
    return json.dumps(flow_schema(), indent=2, sort_keys=True) + "\n"
