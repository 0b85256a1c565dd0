"""The connector resources' shared base: how a client opens (mode, live credentials, the sample world),
the per-account limiter and its persisted budget, and the config the sample resources are built with."""

import json
from types import SimpleNamespace

import pytest

from revops_pipelines.connectors.base import ConnectorResource
from revops_pipelines.connectors.gong import GongResource
from revops_pipelines.connectors.hubspot import HubSpotResource
from revops_pipelines.connectors.resources import (
    SAMPLE_DAILY_BUDGET,
    SAMPLE_REQUESTS_PER_SECOND,
    connector_resources,
)
from revops_pipelines.connectors.salesforce import SalesforceResource
from revops_pipelines.errors import ConfigurationError

RESOURCES = (GongResource, HubSpotResource, SalesforceResource)


@pytest.mark.parametrize(
    ("resource", "setting"),
    [
        (HubSpotResource(mode="live", state_dir="s"), "HUBSPOT_ACCESS_TOKEN"),
        (SalesforceResource(mode="live", state_dir="s", client_id="id"), "SALESFORCE_CLIENT_ID"),
        (GongResource(mode="live", state_dir="s", access_key="k"), "GONG_ACCESS_KEY"),
        (HubSpotResource(mode="replay", state_dir="s"), "hubspot.mode"),
        (SalesforceResource(state_dir="s"), "salesforce.sample_path"),
        (GongResource(state_dir="s"), "gong.sample_path"),
    ],
)
def test_a_client_that_cannot_open_names_the_setting(resource, setting):
    with pytest.raises(ConfigurationError) as exc, resource.client():
        pass
    assert exc.value.setting == setting


def test_the_sample_world_names_the_account_by_source_seed_size_and_generator(tmp_path):
    (tmp_path / "manifest.json").write_text(json.dumps({"seed": 7, "accounts": 30, "generator_version": 3}))
    for cls in RESOURCES:
        world = cls(sample_path=str(tmp_path), state_dir=str(tmp_path))._world()
        assert world.root == tmp_path
        assert world.account == f"{cls.source}-sample-7-30-v3"
    assert GongResource(mode="live", state_dir="s")._world() is None  # Gong checks its credentials in _auth


def test_one_limiter_per_account_and_rate_and_only_gong_keeps_its_budget(tmp_path):
    account = f"acct-{tmp_path.name}"  # the limiters are process-wide: a name no other test uses
    for cls in RESOURCES:
        res = cls(state_dir=str(tmp_path / cls.source), daily_budget=5, **{cls.rate_field: 1000.0})
        lim = res._limiter(account)
        assert lim is res._limiter(account)
        assert lim is not cls(state_dir=str(tmp_path), **{cls.rate_field: 999.0})._limiter(account)
        assert (lim.source, lim.per_second, lim.per_day) == (cls.source, 1000.0, 5)
        lim.acquire()
        budget = tmp_path / cls.source / f"{account}.budget.json"
        assert budget.exists() == cls.persist_budget
    assert GongResource.persist_budget and not (
        HubSpotResource.persist_budget or SalesforceResource.persist_budget
    )
    saved = json.loads((tmp_path / "gong" / f"{account}.budget.json").read_text())
    assert saved["used"] == 1
    # another limiter of the account (as in a new process) continues from what was spent today
    again = GongResource(state_dir=str(tmp_path / "gong"), daily_budget=5, requests_per_second=999.0)
    assert again._limiter(account).used_today == 1


def test_the_sample_resources_share_one_pace_and_the_live_ones_keep_their_env_vars(tmp_path):
    settings = SimpleNamespace(
        source_mode="sample", state_dir=tmp_path / "state", sample_dir=tmp_path / "world"
    )
    built = connector_resources(settings)
    assert {type(r) for r in built.values()} == set(RESOURCES)
    for res in built.values():
        assert isinstance(res, ConnectorResource)
        assert (res.mode, res.sample_path, res.state_dir) == (
            "sample",
            str(tmp_path / "world"),
            str(tmp_path / "state/connectors"),
        )
        assert getattr(res, res.rate_field) == SAMPLE_REQUESTS_PER_SECOND
        assert res.daily_budget == SAMPLE_DAILY_BUDGET
    live = connector_resources(
        SimpleNamespace(source_mode="live", state_dir=tmp_path, env_var=lambda n: f"T_{n}")
    )
    assert live["hubspot"].access_token == "T_HUBSPOT_ACCESS_TOKEN"
    assert (live["salesforce"].client_id, live["salesforce"].timeout_s) == ("T_SALESFORCE_CLIENT_ID", 60.0)
    assert live["gong"].access_key_secret == "T_GONG_ACCESS_KEY_SECRET"


def test_the_shared_fields_keep_their_run_config_names_and_defaults():
    for cls in RESOURCES:
        fields = cls.to_config_schema().as_field().config_type.fields
        for name in (
            "mode",
            "sample_path",
            "state_dir",
            "timeout_s",
            "max_attempts",
            "backoff_s",
            "daily_budget",
        ):
            assert name in fields, (cls.__name__, name)
        assert fields["mode"].default_value == "sample" and fields["state_dir"].is_required
        assert (fields["max_attempts"].default_value, fields["backoff_s"].default_value) == (6, 0.5)
        assert cls.rate_field in fields


def test_screen_keeps_valid_records_and_quarantines_the_rest_with_their_key_and_reason():
    from datetime import UTC, datetime

    from revops_pipelines.connectors.base import screen

    records = [{"Id": "001A", "x": 1}, {"Id": None, "x": "y" * 20_000}, {"Id": "001B"}]
    good, bad = screen(
        records,
        lambda r: None if r.get("Id") else "no Id",
        lambda r: {"object": "Account", "record_id": str(r.get("Id"))[:40]},
    )
    assert good == [records[0], records[2]]
    (row,) = bad
    assert list(row) == ["object", "record_id", "reason", "raw", "quarantined_at"]
    assert (row["object"], row["record_id"], row["reason"]) == ("Account", "None", "no Id")
    assert len(row["raw"]) == 10_000 and row["raw"].startswith('{"Id": null')
    assert (datetime.now(UTC) - datetime.fromisoformat(row["quarantined_at"])).total_seconds() < 60
