"""deploy/<mode>/dagster.yaml: each loads as a real Dagster instance (SQLite; Postgres on a throwaway
server; the ECS run launcher and S3 compute logs against moto), reads every credential from the
environment, and rejects a malformed configuration before connecting anywhere."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pytest
import yaml

from revops_pipelines.platform import production
from tests.platform.conftest import BUCKET

CREDENTIAL_KEYS = {"username", "password", "hostname", "db_name", "port", "bucket", "task_definition"}


@dg.asset
def ping() -> dg.MaterializeResult:
    return dg.MaterializeResult(metadata={"ok": True})


def _load(config: dict, home: Path) -> dg.DagsterInstance:
    home.mkdir(parents=True, exist_ok=True)
    (home / "dagster.yaml").write_text(yaml.safe_dump(config))
    return dg.DagsterInstance.from_config(str(home))


def _config(mode: str) -> dict:
    return yaml.safe_load(production.instance_yaml(mode).read_text())


def _walk(node, path=()):
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _walk(v, (*path, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _walk(v, (*path, i))
    else:
        yield path, node


@pytest.mark.parametrize("mode", production.MODES)
def test_every_credential_comes_from_the_environment(mode):
    config = _config(mode)
    for path, value in _walk(config):
        if CREDENTIAL_KEYS & set(map(str, path)):
            assert path[-1] == "env", (
                f"{mode}: {'.'.join(map(str, path))} = {value!r} is not an env reference"
            )
    assert production.missing_env(mode, {}) == production.env_vars(mode)
    assert production.missing_env(mode, dict.fromkeys(production.env_vars(mode), "x")) == []


def test_local_mode_loads_and_stores_runs_in_sqlite(tmp_path, monkeypatch):
    home = tmp_path / "dagster_home"
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    instance = _load(_config("local"), home)
    try:
        assert type(instance.run_coordinator).__name__ == "QueuedRunCoordinator"
        assert dg.materialize([ping], instance=instance).success
        assert len(instance.get_runs()) == 1
        assert any(p.suffix == ".db" for p in home.rglob("*.db"))
    finally:
        instance.dispose()


def test_postgres_mode_runs_against_a_real_postgres(postgres_server, tmp_path):
    instance = _load(_config("postgres"), tmp_path / "dagster_home")
    try:
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
        result = dg.materialize([ping], instance=instance)
        assert result.success
        assert instance.get_runs()[0].run_id == result.run_id
        assert instance.fetch_materializations(dg.AssetKey("ping"), limit=1).records
        assert "pg-Secret" not in dg.serialize_value(instance.get_run_by_id(result.run_id))
    finally:
        instance.dispose()


def test_a_malformed_configuration_is_rejected_before_connecting(tmp_path, monkeypatch):
    config = _config("postgres")
    db = config["storage"]["postgres"]["postgres_db"]
    db["hostnme"] = db.pop("hostname")  # a typo: caught by Dagster's config schema, no connection tried
    for var in production.env_vars("postgres"):
        monkeypatch.setenv(var, "5432" if var.endswith("PORT") else "x")
    with pytest.raises(dg.DagsterInvalidConfigError):
        instance = _load(config, tmp_path / "home")
        instance.run_storage  # noqa: B018 - storage is built lazily


def test_ecs_mode_builds_the_ecs_run_launcher_and_s3_compute_logs(s3, tmp_path, monkeypatch, request):
    """The run launcher and compute log manager sections exactly as in deploy/ecs/dagster.yaml, against
    moto's ECS and S3; storage is the real Postgres when installed, else SQLite."""
    import boto3

    ecs = boto3.client("ecs")
    ecs.register_task_definition(
        family="revops-run",
        containerDefinitions=[{"name": "run", "image": "revops:latest", "memory": 512}],
    )
    monkeypatch.setenv("DAGSTER_ECS_TASK_DEFINITION", "revops-run")
    monkeypatch.setenv("DAGSTER_COMPUTE_LOG_BUCKET", BUCKET)
    config = _config("ecs")
    try:
        request.getfixturevalue("postgres_server")
    except pytest.skip.Exception:
        monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster_home"))
        config["storage"] = _config("local")["storage"]
    instance = _load(config, tmp_path / "dagster_home")
    try:
        launcher = instance.run_launcher
        assert type(launcher).__name__ == "EcsRunLauncher"
        # resolved through ECS DescribeTaskDefinition (moto): the family name became its ARN
        assert launcher.task_definition.endswith(":task-definition/revops-run:1")
        assert launcher.container_name == "run"
        assert "REVOPS_WAREHOUSE" in launcher.env_vars and "FIREBOLT_CLIENT_SECRET" not in launcher.env_vars
        assert "REVOPS_STATE_URL" in launcher.env_vars  # every run task shares the agent/flow state
        logs = instance.compute_log_manager
        assert type(logs).__name__ == "S3ComputeLogManager"
        assert dg.materialize([ping], instance=instance).success  # compute logs uploaded to S3
        keys = [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET).get("Contents", [])]
        assert any(k.startswith("dagster-compute-logs/") for k in keys), keys
    finally:
        instance.dispose()
