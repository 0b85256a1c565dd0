"""Model store: versioned artifacts + metadata, on a local folder (default) or S3.

Layout under the store URI: ``<name>/<version>/<file>`` for artifacts, ``<name>/<version>/meta.json``
for metadata (params, metrics, training window, data fingerprint, code version, and the sha256 of
every artifact) and ``<name>/champion.json`` for the version currently serving, with the history of
earlier champions (for rollback). Versions are sortable timestamps.

A missing artifact raises :class:`ModelNotFound`; an artifact whose bytes no longer match the
checksum recorded at save time, or unreadable metadata, raises :class:`ModelCorrupt`. Both name the
model, the version and the file.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import dagster as dg
from pydantic import Field

from revops_pipelines.errors import RevOpsError, ValidationFailed


class ModelNotFound(RevOpsError):
    """A model, version or artifact does not exist in the store."""


class ModelCorrupt(RevOpsError):
    """An artifact or its metadata exists but cannot be trusted (bad JSON, checksum mismatch)."""


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class ModelStore(dg.ConfigurableResource):
    uri: str = Field(description="Local folder or s3://bucket/prefix for model artifacts.")
    tenant: str | None = Field(
        default=None, description="Tenant whose namespace this is; a uri outside it is refused."
    )

    def _key(self, key: str) -> str:
        """``key`` checked: no absolute path or '..' can leave the store (or the tenant's namespace)."""
        parts = key.split("/")
        if key.startswith("/") or "\\" in key or any(p in ("", ".", "..") for p in parts):
            raise ValidationFailed(
                "model store key", [f"{key!r}: names and versions may not be empty or contain '..' or '/'"]
            )
        from revops_pipelines.tenancy import check_location

        check_location("models", self.uri, self.tenant)
        return key

    # ---- backend: local folder or S3 (boto3 ships with dagster-aws) ---------------------------------
    @property
    def _is_s3(self) -> bool:
        return self.uri.startswith("s3://")

    def _s3(self):
        import boto3

        bucket, _, prefix = self.uri[len("s3://") :].partition("/")
        return boto3.client("s3"), bucket, prefix.strip("/")

    def _put(self, key: str, data: bytes) -> None:
        key = self._key(key)
        if self._is_s3:
            client, bucket, prefix = self._s3()
            client.put_object(Bucket=bucket, Key=f"{prefix}/{key}".lstrip("/"), Body=data)
            return
        path = Path(self.uri) / key
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_bytes(data)
        tmp.replace(path)  # atomic on one filesystem: readers never see half a file

    def _get(self, key: str) -> bytes:
        key = self._key(key)
        if self._is_s3:
            client, bucket, prefix = self._s3()
            try:
                return client.get_object(Bucket=bucket, Key=f"{prefix}/{key}".lstrip("/"))["Body"].read()
            except client.exceptions.NoSuchKey:
                raise ModelNotFound(f"{self.uri}/{key} not found") from None
        path = Path(self.uri) / key
        if not path.exists():
            raise ModelNotFound(f"{path} not found")
        return path.read_bytes()

    def _children(self, key: str) -> list[str]:
        key = self._key(key)
        if self._is_s3:
            client, bucket, prefix = self._s3()
            base = f"{prefix}/{key}/".lstrip("/")
            out: set[str] = set()
            for page in client.get_paginator("list_objects_v2").paginate(
                Bucket=bucket, Prefix=base, Delimiter="/"
            ):
                out.update(p["Prefix"][len(base) :].strip("/") for p in page.get("CommonPrefixes", []))
            return sorted(out)
        path = Path(self.uri) / key
        return sorted(p.name for p in path.iterdir() if p.is_dir()) if path.exists() else []

    # ---- API ------------------------------------------------------------------------------------------
    @staticmethod
    def new_version() -> str:
        return datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")

    def save(
        self, name: str, files: dict[str, bytes], meta: dict[str, Any], version: str | None = None
    ) -> str:
        version = version or self.new_version()
        for fname, data in files.items():
            self._put(f"{name}/{version}/{fname}", data)
        record = {
            **meta,
            "name": name,
            "version": version,
            "saved_at": datetime.now(UTC).isoformat(),
            "files": sorted(files),
            "checksums": {f: _sha256(d) for f, d in files.items()},
        }
        # meta.json last: a version without it is incomplete and is never listed as usable
        self._put(f"{name}/{version}/meta.json", json.dumps(record, indent=2, default=str).encode())
        return version

    def meta(self, name: str, version: str) -> dict[str, Any]:
        raw = self._get(f"{name}/{version}/meta.json")
        try:
            record = json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise ModelCorrupt(f"{name} version {version}: meta.json is not valid JSON ({err})") from None
        if not isinstance(record, dict) or record.get("version") != version:
            raise ModelCorrupt(f"{name} version {version}: meta.json does not describe this version")
        return record

    def load(self, name: str, version: str, fname: str) -> bytes:
        """An artifact's bytes, verified against the checksum recorded when it was saved."""
        try:
            data = self._get(f"{name}/{version}/{fname}")
        except ModelNotFound:
            raise ModelNotFound(
                f"{name} version {version}: artifact {fname!r} is missing from {self.uri}"
            ) from None
        expected = self.meta(name, version).get("checksums", {}).get(fname)
        if expected is not None and _sha256(data) != expected:
            raise ModelCorrupt(
                f"{name} version {version}: artifact {fname!r} is corrupted (sha256 does not match "
                "the checksum recorded at save time); retrain or promote another version"
            )
        return data

    def versions(self, name: str) -> list[str]:
        return self._children(name)

    def list_versions(self, name: str) -> list[dict[str, Any]]:
        """One record per version, oldest first: its metadata, or the reason it cannot be read."""
        champion = self.champion(name)
        out = []
        for v in self.versions(name):
            try:
                m = self.meta(name, v)
            except (ModelNotFound, ModelCorrupt) as err:
                m = {"version": v, "error": str(err)}
            m["champion"] = v == champion
            out.append(m)
        return out

    def _champion_record(self, name: str) -> dict[str, Any] | None:
        try:
            raw = self._get(f"{name}/champion.json")
        except ModelNotFound:
            return None
        try:
            record = json.loads(raw)
            record["version"]
        except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError) as err:
            raise ModelCorrupt(f"{name}: champion.json is unreadable ({err!r})") from None
        return record

    def champion(self, name: str) -> str | None:
        record = self._champion_record(name)
        return None if record is None else record["version"]

    def champion_history(self, name: str) -> list[dict[str, Any]]:
        """Earlier champions, most recent first."""
        record = self._champion_record(name)
        return [] if record is None else list(record.get("history", []))

    def promote(self, name: str, version: str, reason: str = "") -> None:
        if version not in self.versions(name):
            raise ModelNotFound(f"{name} has no version {version}")
        self.meta(name, version)  # refuses a version whose metadata is missing or corrupt
        current = self._champion_record(name)
        history = []
        if current is not None:
            if current["version"] == version:
                return
            history = [
                {k: current[k] for k in ("version", "promoted_at", "reason") if k in current},
                *current.get("history", []),
            ]
        record = {
            "version": version,
            "promoted_at": datetime.now(UTC).isoformat(),
            "reason": reason,
            "history": history[:50],
        }
        self._put(f"{name}/champion.json", json.dumps(record, indent=2).encode())

    def rollback(self, name: str) -> str:
        """Make the previous champion serve again; returns its version."""
        record = self._champion_record(name)
        if record is None or not record.get("history"):
            raise ModelNotFound(f"{name} has no earlier champion to roll back to")
        previous, *rest = record["history"]
        self.meta(name, previous["version"])
        new = {
            "version": previous["version"],
            "promoted_at": datetime.now(UTC).isoformat(),
            "reason": f"rollback from {record['version']}",
            "history": rest,
        }
        self._put(f"{name}/champion.json", json.dumps(new, indent=2).encode())
        return previous["version"]
