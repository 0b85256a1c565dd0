"""Source connectors — Gong (httpx), Salesforce (simple-salesforce), HubSpot (hubspot-api-client):
clients, incremental syncs with persisted checkpoints, a shared rate limiter and retries
(:mod:`revops_pipelines.connectors.base`), and the resources built from settings
(:mod:`revops_pipelines.connectors.resources`)."""
