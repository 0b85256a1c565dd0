"""Model store: versioned artifacts + metadata, on a local folder (default) or S3.

Layout under the store URI: ``<name>/<version>/<file>`` for artifacts, ``<name>/<version>/meta.json``
for metadata (params, metrics, training window, data fingerprint, code version) and
``<name>/champion.json`` for the version currently serving. Versions are sortable timestamps.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import dagster as dg
from pydantic import Field

from revops_pipelines.errors import RevOpsError


class ModelNotFound(RevOpsError):
    pass


class ModelStore(dg.ConfigurableResource):
    uri: str = Field(description="Local folder or s3://bucket/prefix for model artifacts.")

    # ---- backend: local folder or S3 (boto3 ships with dagster-aws) ---------------------------------
    @property
    def _is_s3(self) -> bool:
        return self.uri.startswith("s3://")

    def _s3(self):
        import boto3

        bucket, _, prefix = self.uri[len("s3://") :].partition("/")
        return boto3.client("s3"), bucket, prefix.strip("/")

    def _put(self, key: str, data: bytes) -> None:
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
        record = {**meta, "name": name, "version": version, "files": sorted(files)}
        self._put(f"{name}/{version}/meta.json", json.dumps(record, indent=2, default=str).encode())
        return version

    def meta(self, name: str, version: str) -> dict[str, Any]:
        return json.loads(self._get(f"{name}/{version}/meta.json"))

    def load(self, name: str, version: str, fname: str) -> bytes:
        return self._get(f"{name}/{version}/{fname}")

    def versions(self, name: str) -> list[str]:
        return self._children(name)

    def champion(self, name: str) -> str | None:
        try:
            return json.loads(self._get(f"{name}/champion.json"))["version"]
        except ModelNotFound:
            return None

    def promote(self, name: str, version: str, reason: str = "") -> None:
        if version not in self.versions(name):
            raise ModelNotFound(f"{name} has no version {version}")
        record = {"version": version, "promoted_at": datetime.now(UTC).isoformat(), "reason": reason}
        self._put(f"{name}/champion.json", json.dumps(record).encode())
