"""YAML flows: the typed spec, a loader that reports file:line:column, and the Dagster compiler."""
