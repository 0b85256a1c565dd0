"""The quality suite runs on both backends, with the warehouse suite's fixtures."""

from tests.warehouse.conftest import blocked_hosts, fresh_migration_cache, standin, warehouse  # noqa: F401
