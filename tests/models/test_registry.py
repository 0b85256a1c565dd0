"""Model store / registry: checksums, clear errors for missing or corrupt artifacts, promote, rollback, CLI."""

from __future__ import annotations

import json

import dagster as dg
import pytest
from click.testing import CliRunner

from models import churn
from models.cli import models as models_cli
from revops_pipelines.model_store import ModelCorrupt, ModelNotFound, ModelStore


def _save(store: ModelStore, payload: bytes = b"model") -> str:
    return store.save("m", {"model.txt": payload}, {"metrics": {"model": {"auc": 0.8}}, "kind": "test"})


def test_save_records_checksums_and_loads_verified(store):
    v = _save(store)
    assert store.load("m", v, "model.txt") == b"model"
    assert set(store.meta("m", v)["checksums"]) == {"model.txt"}


def test_corrupted_artifact_gives_a_clear_error(store, tmp_path):
    v = _save(store)
    (tmp_path / "models" / "m" / v / "model.txt").write_bytes(b"tampered")
    with pytest.raises(ModelCorrupt, match=rf"m version {v}: artifact 'model.txt' is corrupted"):
        store.load("m", v, "model.txt")


def test_missing_artifact_gives_a_clear_error(store, tmp_path):
    v = _save(store)
    (tmp_path / "models" / "m" / v / "model.txt").unlink()
    with pytest.raises(ModelNotFound, match=rf"m version {v}: artifact 'model.txt' is missing"):
        store.load("m", v, "model.txt")


def test_corrupt_metadata_gives_a_clear_error_and_cannot_be_promoted(store, tmp_path):
    v = _save(store)
    (tmp_path / "models" / "m" / v / "meta.json").write_text("{not json")
    with pytest.raises(ModelCorrupt, match="meta.json is not valid JSON"):
        store.meta("m", v)
    with pytest.raises(ModelCorrupt):
        store.promote("m", v)
    assert "error" in store.list_versions("m")[0]


def test_unloadable_champion_model_gives_a_clear_error(store):
    with pytest.raises(dg.Failure, match="no champion"):
        churn.load_champion(store)
    v = store.save(
        churn.MODEL_NAME, {"model.txt": b"not a lightgbm model"}, {"encoder": {}, "calibrator": {}}
    )
    store.promote(churn.MODEL_NAME, v)
    with pytest.raises(ModelCorrupt, match=f"churn_lgbm version {v}: cannot load the model"):
        churn.load_champion(store)


def test_promote_and_rollback_keep_a_history(store):
    a, b = _save(store, b"a"), _save(store, b"b")
    with pytest.raises(ModelNotFound):
        store.rollback("m")
    store.promote("m", a, reason="first")
    store.promote("m", b, reason="better")
    assert store.champion("m") == b
    assert store.champion_history("m")[0]["version"] == a
    assert store.rollback("m") == a
    assert store.champion("m") == a
    with pytest.raises(ModelNotFound, match="no version nope"):
        store.promote("m", "nope")


def test_cli_list_promote_rollback(store, monkeypatch, tmp_path):
    monkeypatch.setenv("REVOPS_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("REVOPS_MODEL_STORE_URI", store.uri)
    a = store.save("churn_lgbm", {"model.txt": b"a"}, {"metrics": {"model": {"auc": 0.81}}, "kind": "t"})
    b = store.save("churn_lgbm", {"model.txt": b"b"}, {"metrics": {"model": {"auc": 0.83}}, "kind": "t"})
    runner = CliRunner()
    assert runner.invoke(models_cli, ["promote", a]).exit_code == 0
    out = runner.invoke(models_cli, ["promote", b, "--reason", "better"])
    assert out.exit_code == 0 and f"-> {b}" in out.output
    listed = runner.invoke(models_cli, ["list"])
    assert listed.exit_code == 0 and f"* {b}" in listed.output and "0.830" in listed.output
    rows = json.loads(runner.invoke(models_cli, ["list", "--json"]).output)
    assert [r["champion"] for r in rows] == [False, True]
    rb = runner.invoke(models_cli, ["rollback"])
    assert rb.exit_code == 0 and f"-> {a}" in rb.output
    bad = runner.invoke(models_cli, ["promote", "19990101T000000000000Z"])
    assert bad.exit_code == 2 and "has no version" in bad.output
