"""Knowledge-base content for Beacon: markdown documents (``docs/<collection>/``) and taxonomies
(``taxonomies/*.yaml``). The engine that validates, chunks, embeds and indexes them lives in
``revops_pipelines.kb``; the Dagster assets are defined in ``kb_assets.assets``."""
