"""Multi-tenant deployments: one configuration file per tenant, isolation enforced by the resources.

A tenant is ``tenants/<tenant_id>.yaml`` (folder: ``REVOPS_TENANTS_DIR``). It names its sources and
source mode, the *names* of the environment variables holding its credentials (never values), its
flows folder, a knowledge-base overlay folder merged over ``kb_assets/`` and its action allow-lists.
``REVOPS_TENANT`` selects one; unset, the single default tenant runs exactly as before.

Where a tenant's data lives is derived in one place, :func:`revops_pipelines.settings.load_settings`
(``tenant_locations``): its own DuckDB file (or Firebolt database), LanceDB folder or S3 prefix,
model-store prefix, agent/flow state and action ledger. Every resource built for a tenant carries the
tenant id and calls :func:`check_location` before it opens anything, so a run whose configuration was
pointed at another tenant's file, database, prefix or state is refused — not merely unlikely.

One Dagster code location per tenant comes from the same code: ``revops tenants workspace`` writes
``python_module`` entries whose ``attribute`` is ``defs_<tenant_id>``, answered by this module's
``__getattr__`` (:func:`definitions_for`).
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field, field_validator

from revops_pipelines.errors import ConfigurationError, RevOpsError, ValidationFailed
from revops_pipelines.validation import StrictModel, parse

if TYPE_CHECKING:
    import dagster as dg

PROJECT_ROOT = Path(__file__).resolve().parent.parent
# lower-case, starts with a letter: a safe file name, Python attribute suffix, Dagster location name
# and SQL identifier suffix; no '/', '.', or '..' can get through
TENANT_ID = re.compile(r"^[a-z][a-z0-9_]{1,39}$")
RESERVED_IDS = frozenset({"default", "tenants", "revops"})
ENV_VAR_NAME = re.compile(r"^[A-Z][A-Z0-9_]{1,127}$")
# the credential variables the code reads; a tenant maps each to a variable of its own
CREDENTIAL_VARS = (
    "GONG_ACCESS_KEY",
    "GONG_ACCESS_KEY_SECRET",
    "GONG_OAUTH_ACCESS_TOKEN",
    "GONG_API_BASE_URL",  # not a secret, but per customer for Gong OAuth apps
    "SALESFORCE_CLIENT_ID",
    "SALESFORCE_CLIENT_SECRET",
    "HUBSPOT_ACCESS_TOKEN",
    "SLACK_BOT_TOKEN",
    "REVOPS_WEBHOOK_SECRET",
    "FIREBOLT_CLIENT_ID",
    "FIREBOLT_CLIENT_SECRET",
)
KB_CONTENT_FOLDERS = ("docs", "taxonomies", "eval")


class TenantIsolationError(RevOpsError):
    """A resource of one tenant was asked to open a location outside that tenant's root."""


_SERVED: set[str] = set()  # tenants whose resources were built in this process (build_resources)


def serve(tenant_id: str) -> None:
    """Record that this process serves ``tenant_id`` (called when a tenant's resources are built).

    A process serving tenants refuses resources of any tenant it does not serve, and of the default
    tenant; one serving none (the default code location, scripts) refuses every tenant's. So run config
    that rewrites both a resource's tenant and its path still cannot reach another tenant's data."""
    _SERVED.add(validate_tenant_id(tenant_id, "tenant"))


def validate_tenant_id(value: Any, what: str = "REVOPS_TENANT") -> str:
    if not isinstance(value, str) or not TENANT_ID.fullmatch(value):
        raise ConfigurationError(
            what,
            f"invalid tenant id {value!r}",
            "use 2-40 characters: lower-case letters, digits and '_', starting with a letter",
        )
    if value in RESERVED_IDS:
        raise ConfigurationError(what, f"tenant id {value!r} is reserved")
    return value


def tenants_dir(env: Mapping[str, str] | None = None) -> Path:
    env = os.environ if env is None else env
    return Path(env.get("REVOPS_TENANTS_DIR") or PROJECT_ROOT / "tenants").expanduser().resolve()


# ---- the configuration file ----------------------------------------------------------------------
class SampleConfig(StrictModel):
    seed: int | None = Field(
        default=None, ge=0, description="Sample-world seed (default REVOPS_SAMPLE_SEED)."
    )
    accounts: int | None = Field(
        default=None, ge=1, le=50_000, description="Sample-world size (default REVOPS_SAMPLE_ACCOUNTS)."
    )


class WarehouseConfig(StrictModel):
    firebolt_database: str | None = Field(
        default=None,
        pattern=r"^[a-z][a-z0-9_]{0,62}$",
        description="Firebolt database of this tenant (default <FIREBOLT_DATABASE>_<tenant_id>).",
    )


class FlowsConfig(StrictModel):
    folder: str | None = Field(
        default=None, description="Folder of this tenant's flows (relative to the file)."
    )
    include_shared: bool = Field(default=True, description="Also load the shared flows_yaml/ registry.")


class KnowledgeBaseConfig(StrictModel):
    overlay: str | None = Field(
        default=None,
        description="Folder with docs/, taxonomies/, eval/ files added to (or replacing) kb_assets/ ones.",
    )


class ActionsConfig(StrictModel):
    dry_run: bool | None = Field(
        default=None, description="true forces dry-run for this tenant; live also needs REVOPS_DRY_RUN=false."
    )
    allowed_channels: list[str] | None = Field(default=None, description="Slack channel allow-list.")
    allowed_webhook_hosts: list[str] = Field(default_factory=list, description="Webhook host allow-list.")
    webhook_url: str | None = Field(default=None, description="Outbound webhook endpoint.")
    max_actions_per_run: int | None = Field(default=None, ge=1)
    max_actions_per_account_per_week: int | None = Field(default=None, ge=1)

    @field_validator("allowed_channels")
    @classmethod
    def _channels(cls, value: list[str] | None) -> list[str] | None:
        for channel in value or []:
            if not re.fullmatch(r"#[a-z0-9._-]{1,80}", channel):
                raise ValueError(f"{channel!r} is not a Slack channel name like '#cs-alerts'")
        return value


class TenantConfig(StrictModel):
    tenant_id: str
    display_name: str = ""
    source_mode: Literal["sample", "live"] | None = Field(
        default=None, description="Where the connectors read (default REVOPS_SOURCE_MODE)."
    )
    sources: list[Literal["salesforce", "hubspot", "gong", "product", "billing"]] = Field(
        default_factory=lambda: ["salesforce", "hubspot", "gong", "product", "billing"],
        description="The systems this tenant uses (documentation for operators; all are synced).",
    )
    sample: SampleConfig = Field(default_factory=SampleConfig)
    credentials: dict[str, str] = Field(
        default_factory=dict,
        description="Credential variable the code reads -> the environment variable holding this "
        "tenant's value (a name, never the secret itself).",
    )
    warehouse: WarehouseConfig = Field(default_factory=WarehouseConfig)
    flows: FlowsConfig = Field(default_factory=FlowsConfig)
    knowledge_base: KnowledgeBaseConfig = Field(default_factory=KnowledgeBaseConfig)
    actions: ActionsConfig = Field(default_factory=ActionsConfig)

    @field_validator("tenant_id")
    @classmethod
    def _tenant_id(cls, value: str) -> str:
        if not TENANT_ID.fullmatch(value) or value in RESERVED_IDS:
            raise ValueError(
                f"{value!r} is not a valid tenant id (2-40 of a-z, 0-9, '_', starting with a letter; "
                f"not {', '.join(sorted(RESERVED_IDS))})"
            )
        return value

    @field_validator("credentials")
    @classmethod
    def _credentials(cls, value: dict[str, str]) -> dict[str, str]:
        for key, var in value.items():
            if key not in CREDENTIAL_VARS:
                raise ValueError(
                    f"{key!r} is not a credential variable (one of {', '.join(CREDENTIAL_VARS)})"
                )
            if not ENV_VAR_NAME.fullmatch(var):
                # never echo the value: it may be a pasted secret
                raise ValueError(
                    f"{key}: must name an environment variable (A-Z, 0-9, '_'), not hold a value; "
                    "put the secret in the environment and its variable's name here"
                )
        return value


@dataclass(frozen=True)
class Tenant:
    """A loaded, validated tenant file and the folders it names (resolved against the file)."""

    config: TenantConfig
    file: Path
    flows_folder: Path | None
    kb_overlay: Path | None

    @property
    def tenant_id(self) -> str:
        return self.config.tenant_id

    def env_var(self, name: str) -> str:
        return self.config.credentials.get(name, name)


def known_tenants(env: Mapping[str, str] | None = None) -> list[str]:
    folder = tenants_dir(env)
    if not folder.is_dir():
        return []
    return sorted(p.stem for p in folder.glob("*.yaml") if TENANT_ID.fullmatch(p.stem))


def _folder(base: Path, value: str | None, field: str, file: Path) -> Path | None:
    if value is None:
        return None
    path = (base / value).resolve()
    if not path.is_dir():
        raise ValidationFailed(f"tenant file {file}", [f"{field}: {path} is not a directory"])
    return path


def load_tenant(tenant_id: str, env: Mapping[str, str] | None = None) -> Tenant:
    """``tenants/<tenant_id>.yaml``, validated; errors name the file and the field."""
    import yaml

    validate_tenant_id(tenant_id)
    folder = tenants_dir(env)
    file = folder / f"{tenant_id}.yaml"
    if not file.is_file():
        known = ", ".join(known_tenants(env)) or "none"
        raise ConfigurationError(
            "REVOPS_TENANT",
            f"unknown tenant {tenant_id!r}: {file} does not exist (known tenants: {known})",
            "add tenants/<tenant_id>.yaml or set REVOPS_TENANTS_DIR",
        )
    try:
        data = yaml.safe_load(file.read_text(encoding="utf-8"))
    except yaml.YAMLError as err:
        raise ValidationFailed(f"tenant file {file}", [f"not valid YAML: {err}"]) from None
    config = parse(TenantConfig, data if data is not None else {}, f"tenant file {file}")
    if config.tenant_id != tenant_id:
        raise ValidationFailed(
            f"tenant file {file}",
            [f"tenant_id: {config.tenant_id!r} does not match the file name {tenant_id!r}"],
        )
    return Tenant(
        config=config,
        file=file,
        flows_folder=_folder(file.parent, config.flows.folder, "flows.folder", file),
        kb_overlay=_folder(file.parent, config.knowledge_base.overlay, "knowledge_base.overlay", file),
    )


# ---- isolation --------------------------------------------------------------------------------------
def _is_within(location: str, root: str) -> bool:
    if "://" in root or "://" in location:
        loc, base = location.rstrip("/"), root.rstrip("/")
        if any(part in ("..", ".") for part in loc.split("/")):
            return False
        return loc == base or loc.startswith(base + "/")
    try:
        Path(location).resolve().relative_to(Path(root).resolve())
    except ValueError:
        return False
    return True


def check_location(
    kind: Literal["home", "vectors", "models", "firebolt"], location: str, tenant: str | None
) -> None:
    """Refuse ``location`` unless it lies inside ``tenant``'s root for ``kind``.

    Called by every tenant-aware resource before it opens a file, database or prefix. The roots are
    recomputed from the environment and the tenant file (``load_settings``), never taken from the
    resource's own configuration, so run config cannot widen them. A process started for one tenant
    (``REVOPS_TENANT``) also refuses resources of another tenant and of the default tenant.
    """
    active = os.environ.get("REVOPS_TENANT") or None
    if active is not None and tenant != active:
        raise TenantIsolationError(
            f"this process serves tenant {active!r} (REVOPS_TENANT); a resource of "
            f"{'the default tenant' if tenant is None else repr(tenant)} may not run here"
        )
    if active is None and (tenant not in _SERVED if tenant is not None else bool(_SERVED)):
        who = "the default tenant" if tenant is None else f"tenant {tenant!r}"
        serving = ", ".join(sorted(_SERVED)) or "the default tenant only"
        raise TenantIsolationError(
            f"this process serves no code location of {who} (serving: {serving}); its resources may not "
            "run here"
        )
    if tenant is None:
        _check_default(kind, str(location))
        return
    root = _tenant_roots(tenant)[kind]
    ok = location == root if kind == "firebolt" else _is_within(str(location), root)
    if not ok:
        raise TenantIsolationError(
            f"tenant {tenant!r}: {kind} location {location!r} is outside the tenant's root {root!r}; "
            "a tenant's resources only open that tenant's data"
        )


_ROOTS_ENV = (
    "REVOPS_HOME",
    "REVOPS_WAREHOUSE",
    "REVOPS_DUCKDB_PATH",
    "REVOPS_VECTOR_URI",
    "REVOPS_MODEL_STORE_URI",
    "FIREBOLT_DATABASE",
    "REVOPS_TENANTS_DIR",
)
_ROOTS: dict[tuple, dict[str, str]] = {}


def _tenant_roots(tenant: str) -> dict[str, str]:
    """The tenant's roots per kind, from ``load_settings`` (cached while the inputs are unchanged)."""
    file = tenants_dir() / f"{tenant}.yaml"
    mtime = file.stat().st_mtime_ns if file.is_file() else None
    key = (tenant, mtime, *(os.environ.get(v) for v in _ROOTS_ENV))
    if key not in _ROOTS:
        from revops_pipelines.settings import load_settings

        settings = load_settings(tenant=tenant)
        _ROOTS[key] = {
            "home": str(settings.home),
            "vectors": settings.vector_uri,
            "models": settings.model_store_uri,
            "firebolt": settings.firebolt.database if settings.firebolt else "",
        }
    return _ROOTS[key]


def _check_default(kind: str, location: str) -> None:
    """The default tenant keeps out of the tenants' area (``$REVOPS_HOME/tenants``, ``…/tenants/<id>``)."""
    if kind == "firebolt":
        return
    home = Path(os.environ.get("REVOPS_HOME") or "./.revops").expanduser()
    inside = (
        bool(re.search(r"/tenants/[a-z][a-z0-9_]{1,39}(/|$)", location))
        if "://" in location
        else _is_within(location, str(home / "tenants"))
    )
    if inside:
        raise TenantIsolationError(
            f"the default tenant may not open {kind} location {location!r}: it belongs to a tenant "
            "(set REVOPS_TENANT to work on that tenant)"
        )


# ---- knowledge-base overlay ---------------------------------------------------------------------------
def _content_files(root: Path) -> dict[str, Path]:
    out: dict[str, Path] = {}
    for sub in KB_CONTENT_FOLDERS:
        base = root / sub
        if base.is_dir():
            for path in sorted(base.rglob("*")):
                if path.is_file() and not path.name.startswith("."):
                    out[path.relative_to(root).as_posix()] = path
    return out


def merge_kb_overlay(base: Path, overlay: Path, dest: Path) -> Path:
    """Make ``dest`` hold the content of ``base`` with ``overlay``'s files added or replacing theirs.

    Only files that differ are written and files no longer in either source are removed, so the merged
    folder's content hashes (and the incremental index) change only where the content did.
    """
    wanted = {**_content_files(base), **_content_files(overlay)}
    dest.mkdir(parents=True, exist_ok=True)
    for rel, src in wanted.items():
        target = dest / rel
        data = src.read_bytes()
        if not target.is_file() or target.read_bytes() != data:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
    for sub in KB_CONTENT_FOLDERS:
        for path in sorted((dest / sub).rglob("*"), reverse=True) if (dest / sub).exists() else []:
            rel = path.relative_to(dest).as_posix()
            if path.is_file() and rel not in wanted:
                path.unlink()
            elif path.is_dir() and not any(path.iterdir()):
                path.rmdir()
    for stray in dest.iterdir():
        if stray.name not in KB_CONTENT_FOLDERS:
            shutil.rmtree(stray) if stray.is_dir() else stray.unlink()
    return dest


# ---- Dagster code locations ----------------------------------------------------------------------------
_DEFS: dict[tuple, dg.Definitions] = {}


def definitions_for(tenant_id: str) -> dg.Definitions:
    """The code location of one tenant: the same assets, jobs and checks, the tenant's resources.

    Built once per tenant and environment (Dagster looks the attribute up more than once)."""
    validate_tenant_id(tenant_id, "code location")
    file = tenants_dir() / f"{tenant_id}.yaml"
    key = (tenant_id, file.stat().st_mtime_ns if file.is_file() else None, tuple(sorted(os.environ.items())))
    if key not in _DEFS:
        from revops_pipelines.definitions import build_definitions
        from revops_pipelines.settings import load_settings

        _DEFS[key] = build_definitions(load_settings(tenant=tenant_id))
    serve(tenant_id)  # this process is (part of) the tenant's code location
    return _DEFS[key]


def __getattr__(name: str) -> Any:
    # `revops_pipelines.tenancy:defs_<tenant_id>` in workspace.yaml
    if name.startswith("defs_"):
        tenant_id = name[len("defs_") :]
        if TENANT_ID.fullmatch(tenant_id) and tenant_id in known_tenants():
            return definitions_for(tenant_id)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def workspace_yaml(tenant_ids: list[str], *, working_directory: str, include_default: bool = False) -> str:
    """workspace.yaml text: one ``python_module`` code location per tenant (location name = id)."""
    import yaml

    entries = []
    if include_default:
        entries.append(
            {
                "python_module": {
                    "module_name": "revops_pipelines.definitions",
                    "location_name": "revops",
                    "working_directory": working_directory,
                }
            }
        )
    for tenant_id in tenant_ids:
        validate_tenant_id(tenant_id, "tenant")
        entries.append(
            {
                "python_module": {
                    "module_name": __name__,
                    "attribute": f"defs_{tenant_id}",
                    "location_name": tenant_id,
                    "working_directory": working_directory,
                }
            }
        )
    header = "# generated by `revops tenants workspace`: one code location per tenant\n"
    return header + yaml.safe_dump({"load_from": entries}, sort_keys=False)
