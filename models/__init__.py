"""Model training and scoring: assets in ``churn.py``, the model code beside them (imported lazily)."""
