"""Agents: plain Python services with typed, validated inputs and outputs, called from Dagster ops."""
