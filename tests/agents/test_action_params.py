"""The light table of action parameter models (used to validate flows while the definitions load)
is exactly what the agents declare, and loading the definitions does not import the agents."""

import json
import subprocess
import sys

from revops_pipelines.agents.params import ACTION_PARAMS
from revops_pipelines.agents.registry import AGENTS


def test_action_params_mirror_the_agents():
    assert set(ACTION_PARAMS) == set(AGENTS)
    for name, agent in AGENTS.items():
        assert {a: spec.params for a, spec in agent.actions.items()} == ACTION_PARAMS[name], name


def test_loading_the_definitions_does_not_import_the_agents():
    code = (
        "import json, sys, revops_pipelines.definitions; "
        "print(json.dumps(sorted(m for m in sys.modules if m.startswith('revops_pipelines.agents.'))))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    loaded = json.loads(out)
    assert loaded and "revops_pipelines.agents.params" in loaded
    for heavy in ("registry", "data", "decision", "execution"):
        assert f"revops_pipelines.agents.{heavy}" not in loaded
