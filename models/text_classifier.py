"""Taxonomy text classifiers, free of Dagster: TF-IDF + logistic regression (scikit-learn, imported
inside functions), a time split, per-class precision/recall on the later rows, and an ``unknown``
outcome whenever the top class probability is below a confidence threshold.

Class labels are taxonomy node ids; :class:`revops_pipelines.kb.training.TaxonomyLabels` maps a source
system's label (a Salesforce picklist value, a Gong topic name) onto them by node name or keyword, the
same rule the training sets use, so the taxonomy stays the one source of truth for what the classes are.
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

UNKNOWN = "unknown"


@dataclass
class TextModel:
    pipeline: Any
    classes: list[str]
    threshold: float

    def predict(self, texts: pd.Series) -> tuple[np.ndarray, np.ndarray]:
        """(label or ``unknown``, confidence) per text."""
        proba = self.pipeline.predict_proba(texts.fillna("").astype(str))
        best = proba.argmax(axis=1)
        conf = proba[np.arange(len(best)), best]
        labels = np.asarray(self.pipeline.classes_, dtype=object)[best]
        return np.where(conf >= self.threshold, labels, UNKNOWN), conf

    def dumps(self) -> bytes:
        return pickle.dumps({"pipeline": self.pipeline, "classes": self.classes, "threshold": self.threshold})

    @classmethod
    def loads(cls, data: bytes) -> TextModel:
        d = pickle.loads(data)  # noqa: S301 - our own checksum-verified artifact
        return cls(d["pipeline"], d["classes"], d["threshold"])


def fit_text_classifier(
    texts: pd.Series,
    labels: pd.Series,
    times: pd.Series,
    *,
    threshold: float,
    holdout_share: float = 0.25,
    seed: int = 7,
    c: float = 4.0,
) -> tuple[TextModel, dict[str, Any]]:
    """Fit on the earlier rows, report on the later ``holdout_share``; ``labels`` may hold
    :data:`UNKNOWN` for rows that belong to no class (they teach the model nothing but count in
    the metrics: predicting ``unknown`` for them is right)."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    order = np.argsort(pd.to_datetime(times).to_numpy(), kind="stable")
    texts = texts.fillna("").astype(str).iloc[order].reset_index(drop=True)
    labels = labels.astype(str).iloc[order].reset_index(drop=True)
    cut = int(len(texts) * (1 - holdout_share))
    train = labels.iloc[:cut] != UNKNOWN
    classes = sorted(labels.iloc[:cut][train].unique().tolist())
    if len(classes) < 2:
        raise ValueError(f"need at least two classes in the training rows, have {classes}")
    pipe = make_pipeline(
        TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True),
        LogisticRegression(C=c, max_iter=2000, random_state=seed),
    )
    pipe.fit(texts.iloc[:cut][train], labels.iloc[:cut][train])
    model = TextModel(pipe, classes, threshold)
    pred, conf = model.predict(texts.iloc[cut:])
    return model, per_class_metrics(labels.iloc[cut:].to_numpy(), pred, [*classes, UNKNOWN])


def per_class_metrics(y: np.ndarray, pred: np.ndarray, classes: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {"rows": len(y), "accuracy": float(np.mean(y == pred)) if len(y) else 0.0}
    known = pred != UNKNOWN
    out["coverage"] = float(known.mean()) if len(y) else 0.0
    out["accuracy_when_known"] = float(np.mean(y[known] == pred[known])) if known.any() else 0.0
    per = {}
    for c in classes:
        tp = int(np.sum((pred == c) & (y == c)))
        p_n, y_n = int(np.sum(pred == c)), int(np.sum(y == c))
        per[c] = {
            "precision": tp / p_n if p_n else 0.0,
            "recall": tp / y_n if y_n else 0.0,
            "support": y_n,
        }
    out["per_class"] = per
    return out


def metrics_markdown(m: dict[str, Any]) -> str:
    lines = ["| class | precision | recall | support |", "|---|---|---|---|"]
    for c, v in m["per_class"].items():
        lines.append(f"| {c} | {v['precision']:.3f} | {v['recall']:.3f} | {v['support']} |")
    return "\n".join(lines)


# ---- structured records (revenue events) ----------------------------------------------------------
@dataclass
class RecordModel:
    pipeline: Any
    classes: list[str]
    threshold: float
    numeric: list[str]
    categorical: list[str]

    def predict(self, df: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        proba = self.pipeline.predict_proba(prepare_records(df, self.numeric, self.categorical))
        best = proba.argmax(axis=1)
        conf = proba[np.arange(len(best)), best]
        labels = np.asarray(self.pipeline.classes_, dtype=object)[best]
        return np.where(conf >= self.threshold, labels, UNKNOWN), conf

    def dumps(self) -> bytes:
        return pickle.dumps(self)


def fit_record_classifier(
    df: pd.DataFrame,
    labels: pd.Series,
    is_train: pd.Series,
    *,
    numeric: list[str],
    categorical: list[str],
    threshold: float,
    seed: int = 7,
) -> tuple[RecordModel, dict[str, Any]]:
    """Gradient-boosted trees (scikit-learn) on numeric + one-hot categorical fields; metrics on the
    rows where ``is_train`` is false (a time split decided by the caller)."""
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder

    x = prepare_records(df, numeric, categorical)
    pre = ColumnTransformer(
        [("cat", OneHotEncoder(handle_unknown="ignore", sparse_output=False), categorical)],
        remainder="passthrough",
    )
    pipe = make_pipeline(pre, HistGradientBoostingClassifier(random_state=seed, max_iter=200))
    train = is_train.to_numpy(dtype=bool) & (labels != UNKNOWN).to_numpy()
    classes = sorted(labels[train].unique().tolist())
    if len(classes) < 2:
        raise ValueError(f"need at least two classes in the training rows, have {classes}")
    pipe.fit(x[train], labels[train])
    model = RecordModel(pipe, classes, threshold, numeric, categorical)
    test = ~is_train.to_numpy(dtype=bool)
    pred, _ = model.predict(x[test])
    return model, per_class_metrics(labels[test].astype(str).to_numpy(), pred, [*classes, UNKNOWN])


def prepare_records(df: pd.DataFrame, numeric: list[str], categorical: list[str]) -> pd.DataFrame:
    x = df[numeric + categorical].copy()
    for c in categorical:
        x[c] = x[c].astype("string").fillna("none").astype(str)
    for c in numeric:
        x[c] = pd.to_numeric(x[c], errors="coerce").astype("float64")
    return x
