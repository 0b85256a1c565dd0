"""Gong credentials chosen by environment: access key + secret (Basic) or an OAuth access token
(Bearer), from settings through the resources to the Authorization header the stand-in sees."""

import base64

import dagster as dg
import pytest

from assets.gong import DAILY, gong_sync
from revops_pipelines.connectors.resources import connector_resources
from revops_pipelines.errors import ConfigurationError
from revops_pipelines.settings import load_settings
from revops_pipelines.testing.fake_gong import FakeGong
from revops_pipelines.warehouse.duckdb import DuckDBWarehouse

from .conftest import read_jsonl

TODAY = DAILY.get_last_partition_key()  # today's partition: the incremental sync

OTHER_SOURCES = {
    "SALESFORCE_CLIENT_ID": "i",
    "SALESFORCE_CLIENT_SECRET": "s",
    "HUBSPOT_ACCESS_TOKEN": "t",
}


def _live(tmp_path, **env):
    return {"REVOPS_HOME": str(tmp_path / "home"), "REVOPS_SOURCE_MODE": "live", **OTHER_SOURCES, **env}


def test_gong_auth_is_chosen_by_environment(tmp_path):
    basic = load_settings(_live(tmp_path, GONG_ACCESS_KEY="k", GONG_ACCESS_KEY_SECRET="s"))
    assert (basic.gong_auth, basic.gong_base_url) == ("basic", "https://api.gong.io")
    token_only = load_settings(_live(tmp_path, GONG_OAUTH_ACCESS_TOKEN="tok"))
    assert token_only.gong_auth == "oauth"
    both = _live(tmp_path, GONG_ACCESS_KEY="k", GONG_ACCESS_KEY_SECRET="s", GONG_OAUTH_ACCESS_TOKEN="tok")
    assert load_settings(both).gong_auth == "basic"  # explicit wins; default stays basic
    assert load_settings({**both, "GONG_AUTH": "OAuth"}).gong_auth == "oauth"
    custom = load_settings(
        _live(tmp_path, GONG_OAUTH_ACCESS_TOKEN="tok", GONG_API_BASE_URL="https://us-42.api.gong.io/")
    )
    assert custom.gong_base_url == "https://us-42.api.gong.io"


@pytest.mark.parametrize(
    ("env", "setting"),
    [
        (
            {"GONG_AUTH": "oauth", "GONG_ACCESS_KEY": "k", "GONG_ACCESS_KEY_SECRET": "s"},
            "GONG_OAUTH_ACCESS_TOKEN",
        ),
        ({"GONG_AUTH": "basic", "GONG_OAUTH_ACCESS_TOKEN": "tok"}, "GONG_ACCESS_KEY"),
        ({"GONG_ACCESS_KEY": "k"}, "GONG_ACCESS_KEY_SECRET"),
        ({"GONG_AUTH": "saml", "GONG_OAUTH_ACCESS_TOKEN": "tok"}, "GONG_AUTH"),
        ({"GONG_OAUTH_ACCESS_TOKEN": "tok", "GONG_API_BASE_URL": "http://api.gong.io"}, "GONG_API_BASE_URL"),
    ],
)
def test_wrong_gong_credentials_are_named_at_load(tmp_path, env, setting):
    with pytest.raises(ConfigurationError) as exc:
        load_settings(_live(tmp_path, **env))
    assert exc.value.setting == setting
    assert "tok" not in str(exc.value)


def _sync(tmp_path, small_world, monkeypatch, env, **fake_kw):
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    with FakeGong.from_world(small_world, **fake_kw) as fake:
        settings = load_settings(_live(tmp_path, GONG_API_BASE_URL=fake.url, **env))
        gong = connector_resources(settings)["gong"]
        wh = DuckDBWarehouse(path=str(tmp_path / "w.duckdb"))
        result = dg.materialize(
            [gong_sync], resources={"warehouse": wh, "gong": gong}, partition_key=TODAY, raise_on_error=False
        )
        return result, wh, [r.headers.get("Authorization") for r in fake.log]


def test_oauth_token_reaches_gong_as_bearer(tmp_path, small_world, monkeypatch):
    result, wh, headers = _sync(
        tmp_path,
        small_world,
        monkeypatch,
        {"GONG_OAUTH_ACCESS_TOKEN": "oauth-token-123"},
        access_key="unused",
        access_key_secret="unused",
        bearer_token="oauth-token-123",
    )
    assert result.success
    assert headers and set(headers) == {"Bearer oauth-token-123"}
    assert wh.row_count("raw_gong_calls") == len(read_jsonl(small_world / "gong/calls.jsonl"))


def test_access_key_reaches_gong_as_basic(tmp_path, small_world, monkeypatch):
    env = {"GONG_ACCESS_KEY": "key-1", "GONG_ACCESS_KEY_SECRET": "secret-1"}
    result, wh, headers = _sync(
        tmp_path, small_world, monkeypatch, env, access_key="key-1", access_key_secret="secret-1"
    )
    assert result.success
    assert set(headers) == {"Basic " + base64.b64encode(b"key-1:secret-1").decode()}


def test_a_rejected_token_is_an_authentication_error_naming_gong(tmp_path, small_world, monkeypatch):
    result, wh, headers = _sync(
        tmp_path,
        small_world,
        monkeypatch,
        {"GONG_OAUTH_ACCESS_TOKEN": "expired-token"},
        bearer_token="fresh-token",
    )
    assert not result.success
    [failure] = [e for e in result.all_events if e.is_step_failure]
    error, message = failure.step_failure_data.error, ""
    while error is not None:  # Dagster wraps the connector's error: read the whole chain
        message += error.message
        error = error.cause
    assert "AuthenticationFailed" in message
    assert "gong" in message.lower() and "GONG_OAUTH_ACCESS_TOKEN" in message
    assert "expired-token" not in message
    assert len(headers) == 1  # a 401 is not retried
