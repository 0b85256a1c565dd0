"""Lexicon sentiment for call transcripts — fast, offline and explainable.

Each sentence scores (positive hits − negative hits), with a negation window flipping the next
two words ("not happy"), and risk phrases (cancellation, competitor evaluation, budget cuts)
counted separately because they matter more for churn than tone does. A call's sentiment is the
mean sentence score squashed to [-1, 1].
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

POSITIVE = frozenset(
    [
        "love",
        "loving",
        "great",
        "excellent",
        "happy",
        "pleased",
        "impressed",
        "helpful",
        "valuable",
        "value",
        "easy",
        "smooth",
        "fast",
        "amazing",
        "fantastic",
        "glad",
        "thrilled",
        "win",
        "wins",
        "success",
        "successful",
        "adopted",
        "adoption",
        "expanding",
        "expand",
        "growth",
        "grow",
        "recommend",
        "saved",
        "saving",
        "reliable",
        "intuitive",
        "seamless",
        "improvement",
        "improved",
        "perfect",
        "appreciate",
        "appreciated",
        "delighted",
        "exceeded",
        "efficient",
        "productive",
        "works",
    ]
)
NEGATIVE = frozenset(
    [
        "frustrated",
        "frustrating",
        "frustration",
        "disappointed",
        "disappointing",
        "unhappy",
        "annoyed",
        "angry",
        "slow",
        "broken",
        "bug",
        "bugs",
        "buggy",
        "issue",
        "issues",
        "problem",
        "problems",
        "outage",
        "outages",
        "crash",
        "crashes",
        "failing",
        "failed",
        "fails",
        "failure",
        "confusing",
        "difficult",
        "hard",
        "expensive",
        "overpriced",
        "costly",
        "concern",
        "concerns",
        "concerned",
        "worried",
        "worry",
        "unreliable",
        "downtime",
        "escalate",
        "escalation",
        "complaint",
        "complaints",
        "poor",
        "terrible",
        "awful",
        "useless",
        "lacking",
        "missing",
        "churn",
        "cancel",
        "cancelling",
        "canceling",
        "cancellation",
        "unresolved",
        "stuck",
        "delay",
        "delays",
        "delayed",
        "blocker",
        "blocked",
    ]
)
NEGATORS = frozenset(
    [
        "not",
        "no",
        "never",
        "isn't",
        "wasn't",
        "aren't",
        "don't",
        "doesn't",
        "didn't",
        "can't",
        "cannot",
        "won't",
        "hardly",
    ]
)
RISK_PHRASES = (
    "cancel",
    "not renew",
    "won't renew",
    "terminate",
    "switch to",
    "switching to",
    "evaluating alternatives",
    "looking at other",
    "competitor",
    "budget cut",
    "cut the budget",
    "too expensive",
    "downgrade",
    "reduce seats",
    "reduce our seats",
)
_WORD = re.compile(r"[a-z']+")


@dataclass(frozen=True)
class Sentiment:
    score: float  # mean sentence polarity in [-1, 1]
    positive_share: float  # share of sentences with net positive polarity
    negative_share: float  # share of sentences with net negative polarity
    risk_mentions: int  # count of risk phrases
    sentences: int


def sentence_polarity(text: str) -> int:
    words = _WORD.findall(text.lower())
    score, flip = 0, 0
    for w in words:
        if w in NEGATORS:
            flip = 2
            continue
        s = 1 if w in POSITIVE else -1 if w in NEGATIVE else 0
        if flip:
            s, flip = -s, flip - 1
        score += s
    return score


def risk_count(text: str) -> int:
    low = text.lower()
    return sum(low.count(p) for p in RISK_PHRASES)


def score_sentences(sentences: Iterable[str]) -> Sentiment:
    pols, risk, n = [], 0, 0
    for s in sentences:
        pols.append(max(-1, min(1, sentence_polarity(s))))
        risk += risk_count(s)
        n += 1
    if not n:
        return Sentiment(0.0, 0.0, 0.0, 0, 0)
    return Sentiment(
        score=sum(pols) / n,
        positive_share=sum(1 for p in pols if p > 0) / n,
        negative_share=sum(1 for p in pols if p < 0) / n,
        risk_mentions=risk,
        sentences=n,
    )
