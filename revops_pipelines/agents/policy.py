"""Multi-criteria decision policies, defined in YAML (``flows_yaml/policies/*.yaml``) and scored in batch.

A policy names its criteria (a column of the decision context, a direction, the range over which the
criterion goes from "no risk" to "full risk", a weight), value multipliers (ARR, segment, renewal
urgency), thresholds (a gate on the churn score and on the combined risk, priority bands),
constraints (how many accounts, at most N per owner, excluded segments), tie-breaks, when a human
must review, and which actions each priority gets. Scoring is vectorised with numpy, so the Decision
Agent can rank every account at once.

Per criterion ``c`` with value ``x``: ``s_c = clip((x - lo) / (hi - lo), 0, 1)`` (``higher_is_riskier``)
or ``clip((hi - x) / (hi - lo), 0, 1)`` (``lower_is_riskier``); a missing value scores ``missing``
(default 0, i.e. no evidence of risk). ``risk = Σ w_c s_c / Σ w_c``.
``priority_score = risk × value`` with ``value = (1 + per_decade · log10(max(ARR, floor) / floor))
× segment_weight × (renewal_multiplier if days_to_renewal <= within_days)``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import Field, model_validator

from revops_pipelines.agents.params import ActionType
from revops_pipelines.errors import ValidationFailed
from revops_pipelines.lazy import np, pd
from revops_pipelines.validation import StrictModel, parse

Priority = Literal["critical", "high", "medium", "low"]
PRIORITIES: tuple[Priority, ...] = ("critical", "high", "medium", "low")

POLICY_DIR = Path(__file__).resolve().parents[2] / "flows_yaml" / "policies"


class Criterion(StrictModel):
    name: str
    column: str
    weight: float = Field(gt=0)
    direction: Literal["higher_is_riskier", "lower_is_riskier"]
    range: tuple[float, float]
    missing: float = Field(default=0.0, ge=0, le=1)
    description: str = ""

    @model_validator(mode="after")
    def _range(self) -> Criterion:
        if self.range[1] <= self.range[0]:
            raise ValueError(f"range: upper bound must exceed lower bound, got {list(self.range)}")
        return self


class ArrValue(StrictModel):
    column: str = "arr"
    floor: float = Field(default=1_000, gt=0)
    per_decade: float = Field(default=0.25, ge=0)


class RenewalUrgency(StrictModel):
    column: str = "days_to_renewal"
    within_days: int = Field(default=60, ge=0)
    multiplier: float = Field(default=1.3, ge=1)


class Value(StrictModel):
    arr: ArrValue = Field(default_factory=ArrValue)
    segment_weights: dict[str, float] = Field(default_factory=dict)
    renewal: RenewalUrgency = Field(default_factory=RenewalUrgency)


class Bands(StrictModel):
    critical: float
    high: float
    medium: float

    @model_validator(mode="after")
    def _ordered(self) -> Bands:
        if not self.critical > self.high > self.medium:
            raise ValueError("bands: need critical > high > medium")
        return self


class Thresholds(StrictModel):
    min_churn_score: float = Field(default=0.0, ge=0, le=1)
    min_risk: float = Field(default=0.0, ge=0, le=1)
    bands: Bands


class Constraints(StrictModel):
    max_accounts: int = Field(default=50, ge=1, le=1_000_000)
    max_per_owner: int | None = Field(default=None, ge=1)
    exclude_segments: list[str] = Field(default_factory=list)


class TieBreak(StrictModel):
    column: str
    order: Literal["asc", "desc"]


class HumanReview(StrictModel):
    arr_at_least: float | None = None
    priorities: list[Priority] = Field(default_factory=list)
    confidence_below: float | None = Field(default=None, ge=0, le=1)


class ActionRule(StrictModel):
    type: ActionType
    priorities: list[Priority] = Field(min_length=1)
    parameters: dict[str, Any] = Field(default_factory=dict)
    kb_query: str = Field(description="Search text for the passages behind this action; {drivers} is filled.")


class KbSettings(StrictModel):
    enabled: bool = True
    passages_per_action: int = Field(default=2, ge=1, le=10)
    mode: Literal["vector", "hybrid", "fts"] = "vector"
    collection: list[str] = Field(default_factory=list)


class Policy(StrictModel):
    policy_id: str = Field(pattern=r"^[a-z][a-z0-9_]{0,62}$")
    version: int = Field(ge=1)
    description: str = ""
    criteria: list[Criterion] = Field(min_length=1)
    value: Value = Field(default_factory=Value)
    thresholds: Thresholds
    constraints: Constraints = Field(default_factory=Constraints)
    tie_breaks: list[TieBreak] = Field(default_factory=list)
    human_review: HumanReview = Field(default_factory=HumanReview)
    actions: list[ActionRule] = Field(min_length=1)
    kb: KbSettings = Field(default_factory=KbSettings)

    @property
    def key(self) -> str:
        return f"{self.policy_id}:v{self.version}"

    @property
    def columns(self) -> list[str]:
        cols = [c.column for c in self.criteria]
        cols += [self.value.arr.column, self.value.renewal.column]
        cols += [t.column for t in self.tie_breaks]
        return list(dict.fromkeys(cols))

    def score(self, df: pd.DataFrame) -> pd.DataFrame:
        """Add ``crit_<name>`` scores, ``risk``, ``value``, ``priority_score``, ``priority`` and
        ``eligible`` to a copy of ``df`` (one row per account)."""
        missing = [c for c in self.columns if c not in df.columns]
        if missing:
            raise ValidationFailed(f"policy {self.key} context", [f"{c}: column missing" for c in missing])
        out = df.copy()
        total_w = sum(c.weight for c in self.criteria)
        risk = np.zeros(len(df))
        for c in self.criteria:
            x = pd.to_numeric(df[c.column], errors="coerce").to_numpy(dtype=float)
            lo, hi = c.range
            s = (x - lo) / (hi - lo) if c.direction == "higher_is_riskier" else (hi - x) / (hi - lo)
            s = np.where(np.isnan(s), c.missing, np.clip(s, 0.0, 1.0))
            out[f"crit_{c.name}"] = s
            risk += c.weight * s
        risk /= total_w
        a = self.value.arr
        arr = pd.to_numeric(df[a.column], errors="coerce").fillna(0).to_numpy(dtype=float)
        value = 1.0 + a.per_decade * np.log10(np.maximum(arr, a.floor) / a.floor)
        if self.value.segment_weights and "segment" in df.columns:
            value *= df["segment"].map(self.value.segment_weights).fillna(1.0).to_numpy(dtype=float)
        r = self.value.renewal
        dtr = pd.to_numeric(df[r.column], errors="coerce").to_numpy(dtype=float)
        value *= np.where(~np.isnan(dtr) & (dtr <= r.within_days), r.multiplier, 1.0)
        out["risk"] = risk
        out["value"] = value
        out["priority_score"] = np.round(risk * value, 6)
        b = self.thresholds.bands
        ps = out["priority_score"].to_numpy()
        out["priority"] = np.select(
            [ps >= b.critical, ps >= b.high, ps >= b.medium], ["critical", "high", "medium"], "low"
        )
        churn = pd.to_numeric(df.get("churn_score"), errors="coerce") if "churn_score" in df else None
        eligible = risk >= self.thresholds.min_risk
        if churn is not None:
            eligible &= churn.fillna(0).to_numpy() >= self.thresholds.min_churn_score
        if self.constraints.exclude_segments and "segment" in df.columns:
            eligible &= ~df["segment"].isin(self.constraints.exclude_segments).to_numpy()
        out["eligible"] = eligible
        return out

    def rank(self, scored: pd.DataFrame, limit: int | None = None) -> pd.DataFrame:
        """Eligible rows ordered by priority score, then the tie-breaks, then account id (total order),
        cut to ``max_accounts`` (and ``max_per_owner`` when an ``owner_id`` column is present)."""
        df = scored[scored["eligible"]]
        by = ["priority_score"] + [t.column for t in self.tie_breaks] + ["account_id"]
        asc = [False] + [t.order == "asc" for t in self.tie_breaks] + [True]
        df = df.sort_values(by, ascending=asc, kind="mergesort", na_position="last")
        if self.constraints.max_per_owner and "owner_id" in df.columns:
            df = df[df.groupby("owner_id", dropna=False).cumcount() < self.constraints.max_per_owner]
        return df.head(limit if limit is not None else self.constraints.max_accounts)

    def actions_for(self, priority: str) -> list[ActionRule]:
        return [a for a in self.actions if priority in a.priorities]


def load_policy(name_or_path: str | Path) -> Policy:
    """Load ``flows_yaml/policies/<name>.yaml`` (or a path); errors name the file and the field."""
    path = Path(name_or_path)
    if not path.suffix:
        path = POLICY_DIR / f"{name_or_path}.yaml"
    if not path.exists():
        known = sorted(p.stem for p in POLICY_DIR.glob("*.yaml"))
        raise ValidationFailed("policy", [f"policy: no policy {str(name_or_path)!r} (known: {known})"])
    data = yaml.safe_load(path.read_text())
    return parse(Policy, data, f"policy {path.name}")
