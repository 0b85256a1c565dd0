"""Knowledge-base content for Beacon and its Dagster definitions.

Content: markdown documents (``docs/<collection>/``), taxonomies (``taxonomies/*.yaml``) and the
labelled query set for search quality (``eval/queries.yaml``). Definitions: ``kb_assets.assets``
(assets, checks, jobs, the content sensor and the maintenance schedule, exposed as ``ASSETS``,
``CHECKS``, ``JOBS``, ``SCHEDULES``, ``SENSORS``), ``kb_assets.training`` (training-data assets) and
``kb_assets.sensors``. The engine that validates, chunks, embeds and indexes lives in
``revops_pipelines.kb``."""
