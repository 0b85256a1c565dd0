import pytest

from revops_pipelines.errors import ConfigurationError
from revops_pipelines.settings import load_settings


def test_embedded_default_lives_under_revops_home(tmp_path):
    s = load_settings({"REVOPS_HOME": str(tmp_path)})
    assert s.warehouse == "duckdb"
    assert s.duckdb_path == tmp_path / "warehouse.duckdb"
    assert s.vector_uri == str(tmp_path / "lancedb")
    assert s.model_store_uri == str(tmp_path / "models")
    assert s.dry_run is True
    assert s.executor == "in_process"


@pytest.mark.parametrize(
    "missing", ["FIREBOLT_CLIENT_ID", "FIREBOLT_CLIENT_SECRET", "FIREBOLT_ACCOUNT", "FIREBOLT_ENGINE"]
)
def test_firebolt_cloud_without_credentials_names_the_setting(missing):
    env = {
        "REVOPS_WAREHOUSE": "firebolt",
        "FIREBOLT_CLIENT_ID": "id",
        "FIREBOLT_CLIENT_SECRET": "s3cr3t-value",
        "FIREBOLT_ACCOUNT": "acme",
        "FIREBOLT_ENGINE": "revops_engine",
    }
    del env[missing]
    with pytest.raises(ConfigurationError) as exc:
        load_settings(env)
    assert exc.value.setting == missing
    assert missing in str(exc.value)
    assert "s3cr3t-value" not in str(exc.value)


def test_firebolt_core_needs_only_url():
    s = load_settings({"REVOPS_WAREHOUSE": "firebolt", "FIREBOLT_URL": "http://127.0.0.1:3473"})
    assert s.firebolt.mode == "core"
    assert s.executor == "multiprocess"


@pytest.mark.parametrize(
    "env, setting",
    [
        ({"REVOPS_WAREHOUSE": "snowflake"}, "REVOPS_WAREHOUSE"),
        ({"REVOPS_DRY_RUN": "maybe"}, "REVOPS_DRY_RUN"),
        ({"REVOPS_SAMPLE_ACCOUNTS": "0"}, "REVOPS_SAMPLE_ACCOUNTS"),
        ({"REVOPS_SAMPLE_SEED": "-1"}, "REVOPS_SAMPLE_SEED"),
        ({"REVOPS_EXECUTOR": "multiprocess"}, "REVOPS_EXECUTOR"),
    ],
)
def test_invalid_settings_are_named(env, setting):
    with pytest.raises(ConfigurationError) as exc:
        load_settings(env)
    assert exc.value.setting == setting


def test_live_sources_need_every_vendor_credential():
    env = {
        "REVOPS_SOURCE_MODE": "live",
        "GONG_ACCESS_KEY": "k",
        "GONG_ACCESS_KEY_SECRET": "s",
        "SALESFORCE_CLIENT_ID": "i",
        "SALESFORCE_CLIENT_SECRET": "s",
    }
    with pytest.raises(ConfigurationError) as exc:
        load_settings(env)
    assert exc.value.setting == "HUBSPOT_ACCESS_TOKEN"
    assert load_settings({**env, "HUBSPOT_ACCESS_TOKEN": "t"}).source_mode == "live"


def test_live_actions_need_their_credentials():
    with pytest.raises(ConfigurationError) as exc:
        load_settings({"REVOPS_DRY_RUN": "false", "SLACK_BOT_TOKEN": "xoxb-1"})
    assert exc.value.setting == "HUBSPOT_ACCESS_TOKEN"
    s = load_settings(
        {
            "REVOPS_DRY_RUN": "false",
            "SLACK_BOT_TOKEN": "x",
            "HUBSPOT_ACCESS_TOKEN": "y",
            "REVOPS_WEBHOOK_SECRET": "z",
        }
    )
    assert s.dry_run is False
