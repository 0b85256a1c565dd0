"""Environment switching in one place.

Everything that differs between the embedded default and production is decided here, from
environment variables, and nowhere else:

==============================  ==========================  =====================================
variable                        default                     meaning
==============================  ==========================  =====================================
``REVOPS_HOME``                 ``./.revops``               runtime folder (DuckDB file, LanceDB,
                                                            model store, flow state, sample world)
``REVOPS_WAREHOUSE``            ``duckdb``                  ``duckdb`` or ``firebolt``
``REVOPS_DUCKDB_PATH``          ``$REVOPS_HOME/warehouse.duckdb``
``FIREBOLT_URL``                —                           Firebolt Core / stand-in URL (core mode)
``FIREBOLT_CLIENT_ID`` / ``FIREBOLT_CLIENT_SECRET`` —       service account (cloud mode)
``FIREBOLT_ACCOUNT`` / ``FIREBOLT_ENGINE`` —                cloud account and engine names
``FIREBOLT_DATABASE``           ``revops``                  database
``REVOPS_VECTOR_URI``           ``$REVOPS_HOME/lancedb``    local path or ``s3://bucket/prefix``
``REVOPS_MODEL_STORE_URI``      ``$REVOPS_HOME/models``     local path or ``s3://bucket/prefix``
``REVOPS_SAMPLE_ACCOUNTS``      ``1000``                    size of the generated sample world
``REVOPS_SAMPLE_SEED``          ``7``                       seed of the generated sample world
``REVOPS_DRY_RUN``              ``true``                    Execution Agent records, never sends
``REVOPS_EXECUTOR``             ``in_process`` (embedded)   ``in_process`` or ``multiprocess``
``REVOPS_SOURCE_MODE``          ``sample``                  ``sample`` (clients read the generated world
                                                            through loopback stand-ins) or ``live``
``GONG_AUTH``                   ``basic`` (``oauth`` when   live Gong credentials: ``basic`` (access key +
                                only a token is set)        secret) or ``oauth`` (GONG_OAUTH_ACCESS_TOKEN)
``GONG_API_BASE_URL``           ``https://api.gong.io``     Gong API base (OAuth apps get a per-customer one)
``REVOPS_WEBHOOK_SECRET_<SOURCE>`` —                     inbound webhook secret per source (SLACK,
                                                            HUBSPOT, GONG, GENERIC); unset: 503
``REVOPS_WEBHOOK_MAX_BYTES``    ``262144``                  largest accepted webhook body
``REVOPS_WEBHOOK_RATE_SOURCE``  ``500``                     requests/s per source (token bucket, 2x burst)
``REVOPS_WEBHOOK_RATE_CLIENT``  ``100``                     requests/s per source and client address
``REVOPS_WEBHOOK_PUBLIC_URL``   —                           base URL HubSpot calls (its v3 signature
                                                            covers the full URI; default: as received)
``REVOPS_EVENTS_PATH``          ``$REVOPS_HOME/state/events.sqlite``  durable event store
``REVOPS_FLOW_STATE_RETENTION_DAYS`` ``180``               flow state history older than this is pruned
                                                            (``revops flows prune``)
``REVOPS_STATE_URL``           — (SQLite files under       ``postgresql://user@host:port/db``: agent and
                                ``$REVOPS_HOME/state``)     flow state in Postgres, shared by every process
                                                            (a schema per tenant; password in the URL or
                                                            ``PGPASSWORD``, never logged)
``REVOPS_TENANT``               — (the default tenant)      tenant id: ``tenants/<id>.yaml`` scopes every
                                                            location below (see :func:`tenant_env`)
``REVOPS_TENANTS_DIR``          ``./tenants``               folder of the tenant files
==============================  ==========================  =====================================

:func:`load_settings` validates the combination eagerly, so a wrong configuration fails when the
definitions load, with a message naming the setting — not half-way through a run (Dagster's
``EnvVar`` alone would only fail at run time).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from revops_pipelines.errors import ConfigurationError

if TYPE_CHECKING:
    from revops_pipelines.tenancy import Tenant

WAREHOUSES = ("duckdb", "firebolt")
LIVE_ACTION_VARS = ("SLACK_BOT_TOKEN", "HUBSPOT_ACCESS_TOKEN", "REVOPS_WEBHOOK_SECRET")
WEBHOOK_SOURCES = ("slack", "hubspot", "gong", "generic")


def webhook_secret_var(source: str) -> str:
    """The environment variable holding the inbound webhook secret of ``source``."""
    return f"REVOPS_WEBHOOK_SECRET_{source.upper()}"


# credentials the live connectors read (through dg.EnvVar); checked at load in live mode
LIVE_SOURCE_VARS = (
    "SALESFORCE_CLIENT_ID",
    "SALESFORCE_CLIENT_SECRET",
    "HUBSPOT_ACCESS_TOKEN",
)
# Gong takes an access key + secret (HTTP Basic) or an OAuth access token (Bearer); GONG_AUTH picks one
GONG_AUTH_VARS = {
    "basic": ("GONG_ACCESS_KEY", "GONG_ACCESS_KEY_SECRET"),
    "oauth": ("GONG_OAUTH_ACCESS_TOKEN",),
}
GONG_DEFAULT_BASE_URL = "https://api.gong.io"


def _gong_auth(env: Mapping[str, str]) -> tuple[str, str]:
    """``(auth, base_url)`` for the live Gong client. ``GONG_AUTH`` unset: ``oauth`` if only an OAuth
    token is set, else ``basic``."""
    raw = (env.get("GONG_AUTH") or "").strip().lower()
    if not raw:
        only_token = bool(env.get("GONG_OAUTH_ACCESS_TOKEN")) and not env.get("GONG_ACCESS_KEY")
        raw = "oauth" if only_token else "basic"
    if raw not in GONG_AUTH_VARS:
        raise ConfigurationError("GONG_AUTH", f"must be basic or oauth, got {raw!r}")
    base = (env.get("GONG_API_BASE_URL") or GONG_DEFAULT_BASE_URL).strip().rstrip("/")
    if not base.startswith(("https://", "http://127.0.0.1", "http://localhost")):
        raise ConfigurationError(
            "GONG_API_BASE_URL", f"must be an https:// URL, got {base!r}", "e.g. https://us-1234.api.gong.io"
        )
    return raw, base


def _bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    low = raw.strip().lower()
    if low in ("1", "true", "yes", "on"):
        return True
    if low in ("0", "false", "no", "off"):
        return False
    raise ConfigurationError(name, f"expected true/false, got {raw!r}")


def _int(env: Mapping[str, str], name: str, default: int, minimum: int) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigurationError(name, f"expected an integer, got {raw!r}") from None
    if value < minimum:
        raise ConfigurationError(name, f"must be >= {minimum}, got {value}")
    return value


@dataclass(frozen=True)
class FireboltSettings:
    database: str
    url: str | None  # Firebolt Core (or the loopback stand-in)
    account: str | None
    engine: str | None
    client_id_var: str = "FIREBOLT_CLIENT_ID"
    client_secret_var: str = "FIREBOLT_CLIENT_SECRET"

    @property
    def mode(self) -> str:
        return "core" if self.url else "cloud"


@dataclass(frozen=True)
class Settings:
    home: Path
    warehouse: str
    duckdb_path: Path
    firebolt: FireboltSettings | None
    vector_uri: str
    model_store_uri: str
    sample_accounts: int
    sample_seed: int
    dry_run: bool
    executor: str
    source_mode: str = "sample"
    gong_auth: str = "basic"  # basic | oauth (live mode)
    gong_base_url: str = GONG_DEFAULT_BASE_URL
    webhook_url: str | None = None
    events_path: Path | None = None  # default: state_dir / events.sqlite
    webhook_max_bytes: int = 262_144
    webhook_rate_source: int = 500
    webhook_rate_client: int = 100
    webhook_public_url: str | None = None
    flow_state_retention_days: int = 180  # flow state history kept by `revops flows prune`
    state_url: str | None = None  # REVOPS_STATE_URL: agent/flow state in Postgres; None: SQLite files
    tenant: Tenant | None = None  # None: the single default tenant

    @property
    def tenant_id(self) -> str | None:
        return None if self.tenant is None else self.tenant.tenant_id

    def env_var(self, name: str) -> str:
        """The environment variable holding credential ``name`` for this tenant (default: ``name``)."""
        return name if self.tenant is None else self.tenant.env_var(name)

    @property
    def flows_path(self) -> str | None:
        """This tenant's flow registry (``os.pathsep``-separated folders); None: the shared default."""
        if self.tenant is None or self.tenant.flows_folder is None:
            return None
        from revops_pipelines.tenancy import PROJECT_ROOT

        folders = [str(self.tenant.flows_folder)]
        if self.tenant.config.flows.include_shared:
            folders.insert(0, os.environ.get("REVOPS_FLOWS_DIR") or str(PROJECT_ROOT / "flows_yaml"))
        return os.pathsep.join(folders)

    @property
    def sample_dir(self) -> Path:
        return self.home / "sample_world"

    @property
    def state_dir(self) -> Path:
        return self.home / "state"

    def __post_init__(self) -> None:
        if self.events_path is None:
            object.__setattr__(self, "events_path", self.state_dir / "events.sqlite")

    @property
    def is_production(self) -> bool:
        return self.warehouse == "firebolt"


def tenant_env(env: Mapping[str, str], tenant: Tenant) -> dict[str, str]:
    """The environment as tenant ``tenant`` sees it: the one place its locations are derived.

    ``$REVOPS_HOME/tenants/<id>/`` holds its DuckDB file, LanceDB folder, model store, sample world and
    agent/flow state; an explicit ``REVOPS_VECTOR_URI``/``REVOPS_MODEL_STORE_URI`` (e.g. S3) gets a
    ``/tenants/<id>`` prefix; Firebolt uses the tenant's own database. Credential variables are read
    under the names the tenant file maps them to.
    """
    tid, cfg = tenant.tenant_id, tenant.config
    base_home = Path(env.get("REVOPS_HOME") or "./.revops").expanduser().resolve()
    home = base_home / "tenants" / tid
    out = {k: v for k, v in env.items() if k not in ("REVOPS_EVENTS_PATH",)}
    out["REVOPS_HOME"] = str(home)
    for var in ("REVOPS_VECTOR_URI", "REVOPS_MODEL_STORE_URI"):
        if env.get(var):
            out[var] = f"{env[var].rstrip('/')}/tenants/{tid}"
    if env.get("REVOPS_DUCKDB_PATH"):
        path = Path(env["REVOPS_DUCKDB_PATH"]).expanduser().resolve()
        if not path.is_relative_to(home):
            raise ConfigurationError(
                "REVOPS_DUCKDB_PATH", f"{path} is outside tenant {tid!r}'s folder {home}", "unset it"
            )
    out["FIREBOLT_DATABASE"] = (
        cfg.warehouse.firebolt_database or f"{env.get('FIREBOLT_DATABASE') or 'revops'}_{tid}"
    )
    if cfg.sample.seed is not None:
        out["REVOPS_SAMPLE_SEED"] = str(cfg.sample.seed)
    if cfg.sample.accounts is not None:
        out["REVOPS_SAMPLE_ACCOUNTS"] = str(cfg.sample.accounts)
    if cfg.source_mode is not None:
        out["REVOPS_SOURCE_MODE"] = cfg.source_mode
    if cfg.actions.dry_run:
        out["REVOPS_DRY_RUN"] = "true"
    if cfg.actions.webhook_url:
        out["REVOPS_WEBHOOK_URL"] = cfg.actions.webhook_url
    for name, var in cfg.credentials.items():  # checks below then name the tenant's variable
        out.pop(name, None)
        if env.get(var):
            out[name] = env[var]
    return out


def state_url(env: Mapping[str, str] | None = None) -> str | None:
    """``REVOPS_STATE_URL`` validated (a ``postgresql://`` URL), or None: agent and flow state in SQLite
    files. The same for every tenant — each tenant's state is its own schema in that database."""
    env = os.environ if env is None else env
    url = (env.get("REVOPS_STATE_URL") or "").strip()
    if not url:
        return None
    from revops_pipelines.sqlite_store import check_state_url

    return check_state_url(url)


def load_settings(env: Mapping[str, str] | None = None, tenant: str | None = None) -> Settings:
    """Settings of the default tenant, or of ``tenant`` (default: ``REVOPS_TENANT``)."""
    env = os.environ if env is None else env
    selected = env.get("REVOPS_TENANT") or None
    if tenant is not None and selected is not None and selected != tenant:
        raise ConfigurationError(
            "REVOPS_TENANT", f"is {selected!r} but tenant {tenant!r} was requested", "one process, one tenant"
        )
    tenant_obj: Tenant | None = None
    if tenant or selected:
        from revops_pipelines.tenancy import load_tenant

        tenant_obj = load_tenant(tenant or selected, env)
        env = tenant_env(env, tenant_obj)
    try:
        settings = _load(env)
    except ConfigurationError as err:
        if tenant_obj is not None and err.setting in tenant_obj.config.credentials:
            raise ConfigurationError(
                tenant_obj.env_var(err.setting), f"{err.problem} (tenant {tenant_obj.tenant_id!r})"
            ) from None
        raise
    if tenant_obj is None:
        return settings
    firebolt = settings.firebolt
    if firebolt is not None:
        firebolt = replace(
            firebolt,
            client_id_var=tenant_obj.env_var(firebolt.client_id_var),
            client_secret_var=tenant_obj.env_var(firebolt.client_secret_var),
        )
    return replace(settings, tenant=tenant_obj, firebolt=firebolt)


def _load(env: Mapping[str, str]) -> Settings:
    home = Path(env.get("REVOPS_HOME") or "./.revops").expanduser().resolve()
    warehouse = (env.get("REVOPS_WAREHOUSE") or "duckdb").strip().lower()
    if warehouse not in WAREHOUSES:
        raise ConfigurationError(
            "REVOPS_WAREHOUSE", f"must be one of {', '.join(WAREHOUSES)}, got {warehouse!r}"
        )

    firebolt = None
    if warehouse == "firebolt":
        url = env.get("FIREBOLT_URL") or None
        firebolt = FireboltSettings(
            database=env.get("FIREBOLT_DATABASE") or "revops",
            url=url,
            account=env.get("FIREBOLT_ACCOUNT") or None,
            engine=env.get("FIREBOLT_ENGINE") or None,
        )
        if not url:
            for var in (
                "FIREBOLT_CLIENT_ID",
                "FIREBOLT_CLIENT_SECRET",
                "FIREBOLT_ACCOUNT",
                "FIREBOLT_ENGINE",
            ):
                if not env.get(var):
                    raise ConfigurationError(
                        var,
                        "is required when REVOPS_WAREHOUSE=firebolt",
                        "set it, or set FIREBOLT_URL to use Firebolt Core",
                    )

    executor = (
        env.get("REVOPS_EXECUTOR") or ("multiprocess" if warehouse == "firebolt" else "in_process")
    ).lower()
    if executor not in ("in_process", "multiprocess"):
        raise ConfigurationError("REVOPS_EXECUTOR", f"must be in_process or multiprocess, got {executor!r}")
    if executor == "multiprocess" and warehouse == "duckdb":
        # one DuckDB file has one writer; parallel step processes would fight over its lock
        raise ConfigurationError("REVOPS_EXECUTOR", "multiprocess needs a server warehouse (firebolt)")

    source_mode = (env.get("REVOPS_SOURCE_MODE") or "sample").strip().lower()
    if source_mode not in ("sample", "live"):
        raise ConfigurationError("REVOPS_SOURCE_MODE", f"must be sample or live, got {source_mode!r}")
    gong_auth, gong_base_url = _gong_auth(env)
    if source_mode == "live":
        for var in GONG_AUTH_VARS[gong_auth]:
            if not env.get(var):
                raise ConfigurationError(
                    var,
                    f"is required when REVOPS_SOURCE_MODE=live and GONG_AUTH={gong_auth}",
                    "set GONG_ACCESS_KEY + GONG_ACCESS_KEY_SECRET (GONG_AUTH=basic) or "
                    "GONG_OAUTH_ACCESS_TOKEN (GONG_AUTH=oauth)",
                )
        for var in LIVE_SOURCE_VARS:
            if not env.get(var):
                raise ConfigurationError(var, "is required when REVOPS_SOURCE_MODE=live")

    dry_run = _bool(env, "REVOPS_DRY_RUN", True)
    if not dry_run:  # live actions: every credential the Execution Agent sends with must exist now
        for var in LIVE_ACTION_VARS:
            if not env.get(var):
                raise ConfigurationError(var, "is required when REVOPS_DRY_RUN=false")

    return Settings(
        source_mode=source_mode,
        gong_auth=gong_auth,
        gong_base_url=gong_base_url,
        webhook_url=env.get("REVOPS_WEBHOOK_URL") or None,
        events_path=Path(env["REVOPS_EVENTS_PATH"]) if env.get("REVOPS_EVENTS_PATH") else None,
        webhook_max_bytes=_int(env, "REVOPS_WEBHOOK_MAX_BYTES", 262_144, 1024),
        webhook_rate_source=_int(env, "REVOPS_WEBHOOK_RATE_SOURCE", 500, 1),
        webhook_rate_client=_int(env, "REVOPS_WEBHOOK_RATE_CLIENT", 100, 1),
        webhook_public_url=(env.get("REVOPS_WEBHOOK_PUBLIC_URL") or "").rstrip("/") or None,
        flow_state_retention_days=_int(env, "REVOPS_FLOW_STATE_RETENTION_DAYS", 180, 1),
        state_url=state_url(env),
        home=home,
        warehouse=warehouse,
        duckdb_path=Path(env.get("REVOPS_DUCKDB_PATH") or home / "warehouse.duckdb"),
        firebolt=firebolt,
        vector_uri=env.get("REVOPS_VECTOR_URI") or str(home / "lancedb"),
        model_store_uri=env.get("REVOPS_MODEL_STORE_URI") or str(home / "models"),
        sample_accounts=_int(env, "REVOPS_SAMPLE_ACCOUNTS", 1000, 1),
        sample_seed=_int(env, "REVOPS_SAMPLE_SEED", 7, 0),
        dry_run=dry_run,
        executor=executor,
    )
