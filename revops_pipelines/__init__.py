"""RevOps AI Framework on Dagster — the engine package.

Kept import-light on purpose: loading the Dagster definitions must cost little more than
``import dagster``. Heavy libraries (lightgbm, lancedb, scikit-learn) are imported inside the
functions that use them.
"""

__version__ = "0.1.0"
