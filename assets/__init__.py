"""Ingestion, warehouse and feature assets with their checks (one module per source / domain)."""
