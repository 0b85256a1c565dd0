"""All agents by name — the flow compiler validates each step's ``agent`` and ``action`` here."""

from revops_pipelines.agents.base import Agent
from revops_pipelines.agents.data import DataAgent
from revops_pipelines.agents.decision import DecisionAgent
from revops_pipelines.agents.execution import ExecutionAgent

AGENTS: dict[str, type[Agent]] = {a.name: a for a in (DataAgent, DecisionAgent, ExecutionAgent)}
