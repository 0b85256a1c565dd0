"""The connector resources, built from settings (called by :func:`revops_pipelines.resources.build_resources`).

``source_mode`` (``REVOPS_SOURCE_MODE``: ``sample`` | ``live``) picks where the clients point:
``sample`` starts the loopback stand-ins on 127.0.0.1 serving the generated world; ``live`` talks to
the vendors with credentials from the environment (as ``dg.EnvVar``, so they never land in config).
"""

from __future__ import annotations

from typing import Any

import dagster as dg

from revops_pipelines.connectors.base import ConnectorResource
from revops_pipelines.connectors.gong import GongResource
from revops_pipelines.connectors.hubspot import HubSpotResource
from revops_pipelines.connectors.salesforce import SalesforceResource

# the stand-ins enforce no limit; the same client and limiter run, just faster, so `make demo` is quick
SAMPLE_REQUESTS_PER_SECOND = 200.0
SAMPLE_DAILY_BUDGET = 1_000_000


def _sample(cls: type[ConnectorResource], settings: Any, state_dir: str) -> ConnectorResource:
    """``cls`` pointed at the sample world's loopback stand-in, at the stand-ins' (unlimited) pace."""
    return cls(
        mode="sample",
        sample_path=str(settings.sample_dir),
        state_dir=state_dir,
        daily_budget=SAMPLE_DAILY_BUDGET,
        **{cls.rate_field: SAMPLE_REQUESTS_PER_SECOND},
    )


def connector_resources(settings: Any) -> dict[str, Any]:
    mode = getattr(settings, "source_mode", "sample")
    state_dir = str(settings.state_dir / "connectors")
    var = getattr(settings, "env_var", lambda name: name)  # a tenant's own credential variables
    if mode == "live":
        if getattr(settings, "gong_auth", "basic") == "oauth":  # GONG_AUTH: Bearer token
            gong_auth = {"auth": "oauth", "bearer_token": dg.EnvVar(var("GONG_OAUTH_ACCESS_TOKEN"))}
        else:  # access key + secret, HTTP Basic
            gong_auth = {
                "auth": "basic",
                "access_key": dg.EnvVar(var("GONG_ACCESS_KEY")),
                "access_key_secret": dg.EnvVar(var("GONG_ACCESS_KEY_SECRET")),
            }
        gong = GongResource(
            mode="live",
            base_url=getattr(settings, "gong_base_url", "https://api.gong.io"),
            **gong_auth,
            state_dir=state_dir,
            lookback_days=getattr(settings, "gong_lookback_days", 1.0),
            start_date=getattr(settings, "gong_start_date", "2024-01-01"),
        )
        salesforce = SalesforceResource(
            mode="live",
            login_url=getattr(settings, "salesforce_login_url", "https://login.salesforce.com"),
            client_id=dg.EnvVar(var("SALESFORCE_CLIENT_ID")),
            client_secret=dg.EnvVar(var("SALESFORCE_CLIENT_SECRET")),
            state_dir=state_dir,
        )
        hubspot = HubSpotResource(
            mode="live", access_token=dg.EnvVar(var("HUBSPOT_ACCESS_TOKEN")), state_dir=state_dir
        )
    else:
        gong, salesforce, hubspot = (
            _sample(cls, settings, state_dir) for cls in (GongResource, SalesforceResource, HubSpotResource)
        )
    return {"gong": gong, "salesforce": salesforce, "hubspot": hubspot}
