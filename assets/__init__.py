"""Ingestion, warehouse and feature assets with their checks (one module per source / domain)."""

import warnings

import dagster as dg

# BackfillPolicy is marked beta in Dagster 1.13; we rely on it deliberately (single-run backfills).
warnings.filterwarnings("ignore", category=dg.BetaWarning, message=".*backfill_policy.*")
