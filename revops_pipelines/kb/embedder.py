"""Pluggable text embedders for the knowledge base.

An :class:`Embedder` turns texts into an ``(n, dim)`` float32 matrix of L2-normalised rows, and names
itself (``name`` + ``version``) so the store can tell when vectors were made by a different model and
must be rebuilt.

The offline default, :class:`HashingEmbedder`, needs no model weights and no fitting: it hashes word
unigrams, word bigrams and character trigrams into a fixed number of signed buckets (the "hashing
trick"), weights term counts sublinearly and normalises. The hash is blake2b — never Python's ``hash``,
which is randomised per process — so vectors are identical across processes, machines and runs. It is
a lexical model: it knows that "sync failures" and "syncing failed" overlap, not that "churn" and
"cancellation" are synonyms. Register a hosted or local neural model with :func:`register_embedder`
when one is available; changing the embedder's name or version makes the store re-embed everything.
"""

from __future__ import annotations

import math
import re
import threading
from collections import Counter
from collections.abc import Callable, Sequence
from hashlib import blake2b
from typing import Protocol, runtime_checkable

import numpy as np

from revops_pipelines.errors import ConfigurationError


@runtime_checkable
class Embedder(Protocol):
    """What the knowledge base needs from an embedding model."""

    name: str
    version: str
    dim: int

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Return an ``(len(texts), dim)`` float32 array whose rows have unit L2 norm (zero rows allowed
        only for texts without any features)."""
        ...


_TOKEN = re.compile(r"[a-z0-9]+(?:['’][a-z]+)?")

# Short English stop-word list: function words carry no topic and would dominate a hashed bag of words.
# fmt: off
STOP_WORDS = frozenset((
    "a", "about", "above", "after", "again", "against", "all", "am", "an", "and", "any", "are", "as",
    "at", "be", "because", "been", "before", "being", "below", "between", "both", "but", "by", "can",
    "could", "did", "do", "does", "doing", "down", "during", "each", "few", "for", "from", "further",
    "had", "has", "have", "having", "he", "her", "here", "hers", "herself", "him", "himself", "his",
    "how", "i", "if", "in", "into", "is", "it", "its", "itself", "just", "me", "more", "most", "my",
    "myself", "no", "nor", "not", "now", "of", "off", "on", "once", "only", "or", "other", "our",
    "ours", "ourselves", "out", "over", "own", "same", "she", "should", "so", "some", "such", "than",
    "that", "the", "their", "theirs", "them", "themselves", "then", "there", "these", "they", "this",
    "those", "through", "to", "too", "under", "until", "up", "very", "was", "we", "were", "what",
    "when", "where", "which", "while", "who", "whom", "why", "will", "with", "would", "you", "your",
    "yours", "yourself", "yourselves", "s", "t", "via", "per", "also", "e", "g", "etc",
))
# fmt: on


def _stem(word: str) -> str:
    """A deliberately tiny suffix stripper so "failures"/"failed"/"failing" share most features."""
    n = len(word)
    if n <= 3 or word.isdigit():
        return word
    if word.endswith("ies") and n > 4:
        return word[:-3] + "y"
    if word.endswith("ing") and n > 5:
        return word[:-3]
    if word.endswith("ed") and n > 4:
        return word[:-2]
    if word.endswith("es") and n > 4 and word[-3] in "sxz":
        return word[:-2]
    if word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return word[:-1]
    return word


def tokenize(text: str) -> list[str]:
    """Lower-cased, stop-word-free, lightly stemmed word tokens (apostrophes folded away)."""
    out = []
    for tok in _TOKEN.findall(text.lower()):
        tok = tok.replace("’", "").replace("'", "")
        if tok in STOP_WORDS:
            continue
        out.append(_stem(tok))
    return out


_DEFAULTS = (256, 0.5, 0.2)


class HashingEmbedder:
    """Offline, deterministic, fit-free embedder (signed feature hashing of words, bigrams, trigrams).

    Features per text: stemmed word unigrams (weight 1.0), adjacent word bigrams (``bigram_weight``)
    and the character trigrams of each word with boundary marks, ``<sync>`` → ``<sy syn ync nc>``
    (``char_weight`` each). A feature counted ``c`` times contributes ``weight · (1 + ln c)``
    (sublinear tf) to one of ``dim`` buckets with a sign, both taken from its blake2b hash.

    Speed: word → (stem, feature ids) and bigram → id are memoised, and counting, weighting and
    bucketing run in numpy over the whole batch.
    """

    name = "hashing"

    def __init__(
        self,
        dim: int = 256,
        *,
        bigram_weight: float = 0.5,
        char_weight: float = 0.2,
        char_ngrams: bool = True,
        version: str = "1",
        cache_size: int = 1_000_000,
    ):
        if dim < 8:
            raise ConfigurationError("embedder.dim", f"must be at least 8, got {dim}")
        self.dim = int(dim)
        self.bigram_weight = float(bigram_weight)
        self.char_weight = float(char_weight) if char_ngrams else 0.0
        # Vectors are only comparable when every parameter matches, so non-default parameters are
        # folded into the version the store records (and a change triggers a rebuild).
        params = (self.dim, self.bigram_weight, self.char_weight)
        self.version = (
            str(version) if params == _DEFAULTS else f"{version}+d{dim},b{params[1]:g},c{params[2]:g}"
        )
        self._cache_size = int(cache_size)
        self._lock = threading.Lock()
        self._reset()

    def __repr__(self) -> str:
        return f"HashingEmbedder(dim={self.dim}, version={self.version!r})"

    # -- feature vocabulary (memo only: ids are local to this object, buckets come from the hash) --
    def _reset(self) -> None:
        self._fid: dict[str, int] = {}
        self._col: list[int] = []
        self._val: list[float] = []  # signed weight
        self._word: dict[str, tuple[str, tuple[int, ...]] | None] = {}
        self._bigram: dict[tuple[str, str], int] = {}
        self._arrays: tuple[np.ndarray, np.ndarray] | None = None

    def _feature(self, feature: str, weight: float) -> int:
        fid = self._fid.get(feature)
        if fid is None:
            h = int.from_bytes(blake2b(feature.encode("utf-8"), digest_size=8).digest(), "little")
            fid = len(self._col)
            self._fid[feature] = fid
            self._col.append(h % self.dim)
            self._val.append(-weight if (h >> 63) & 1 else weight)
            self._arrays = None
        return fid

    def _word_entry(self, raw: str) -> tuple[str, tuple[int, ...]] | None:
        """(stem, feature ids of the stem's unigram + trigrams) or None for a stop word."""
        tok = raw.replace("’", "").replace("'", "")
        if tok in STOP_WORDS:
            entry = None
        else:
            stem = _stem(tok)
            ids = [self._feature("w:" + stem, 1.0)]
            if self.char_weight and len(stem) > 2:
                w = f"<{stem}>"
                ids.extend(self._feature("c:" + w[i : i + 3], self.char_weight) for i in range(len(w) - 2))
            entry = (stem, tuple(ids))
        self._word[raw] = entry
        return entry

    def _bigram_id(self, pair: tuple[str, str]) -> int:
        fid = self._feature(f"b:{pair[0]} {pair[1]}", self.bigram_weight)
        self._bigram[pair] = fid
        return fid

    def features(self, text: str) -> dict[str, float]:
        """Weighted features of one text before hashing — for explaining a ranking."""
        words = tokenize(text)
        feats: list[tuple[str, float]] = [("w:" + w, 1.0) for w in words]
        if self.bigram_weight:
            feats += [(f"b:{a} {b}", self.bigram_weight) for a, b in zip(words, words[1:], strict=False)]
        if self.char_weight:
            for word in words:
                if len(word) > 2:
                    w = f"<{word}>"
                    feats += [("c:" + w[i : i + 3], self.char_weight) for i in range(len(w) - 2)]
        counts = Counter(f for f, _ in feats)
        weight = dict(feats)
        return {f: weight[f] * (1.0 + math.log(c)) for f, c in counts.items()}

    # -- public ----------------------------------------------------------------------------------
    def embed(self, texts: Sequence[str]) -> np.ndarray:
        if isinstance(texts, str):
            raise TypeError("embed() takes a sequence of texts, not a single string")
        if len(texts) == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        with self._lock:  # the memo tables are shared state
            return self._embed(texts)

    def _embed(self, texts: Sequence[str]) -> np.ndarray:
        n = len(texts)
        if len(self._col) > self._cache_size:
            self._reset()
        word_memo, bigram_memo = self._word, self._bigram
        word_entry, bigram_id = self._word_entry, self._bigram_id
        findall = _TOKEN.findall
        use_bigrams = bool(self.bigram_weight)
        fids: list[int] = []
        tfs: list[int] = []
        lengths: list[int] = []
        for text in texts:
            ids: list[int] = []
            stems: list[str] = []
            for raw in findall(text.lower()):
                entry = word_memo[raw] if raw in word_memo else word_entry(raw)
                if entry is not None:
                    stems.append(entry[0])
                    ids.extend(entry[1])
            if use_bigrams and len(stems) > 1:
                for pair in zip(stems, stems[1:], strict=False):
                    fid = bigram_memo.get(pair)
                    ids.append(bigram_id(pair) if fid is None else fid)
            counts = Counter(ids)
            fids.extend(counts.keys())
            tfs.extend(counts.values())
            lengths.append(len(counts))

        if self._arrays is None:
            self._arrays = (np.asarray(self._col, dtype=np.int64), np.asarray(self._val, dtype=np.float64))
        col_of, val_of = self._arrays
        fid = np.asarray(fids, dtype=np.int64)
        row = np.repeat(np.arange(n, dtype=np.int64), lengths)
        vals = val_of[fid] * (1.0 + np.log(np.asarray(tfs, dtype=np.float64)))
        flat = np.bincount(row * self.dim + col_of[fid], weights=vals, minlength=n * self.dim)
        out = flat.reshape(n, self.dim).astype(np.float32)
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        np.divide(out, norms, out=out, where=norms > 0)
        return out


# -- registry ------------------------------------------------------------------------------------
_REGISTRY: dict[str, Callable[..., Embedder]] = {}


def register_embedder(name: str, factory: Callable[..., Embedder], *, replace: bool = False) -> None:
    """Make an embedder available by name (e.g. a hosted model client wrapped in the protocol)."""
    if name in _REGISTRY and not replace:
        raise ConfigurationError("embedder", f"an embedder named {name!r} is already registered")
    _REGISTRY[name] = factory


def available_embedders() -> list[str]:
    return sorted(_REGISTRY)


def get_embedder(name: str = "hashing", **kwargs) -> Embedder:
    """Build a registered embedder; unknown names raise :class:`ConfigurationError` listing the known."""
    try:
        factory = _REGISTRY[name]
    except KeyError:
        raise ConfigurationError(
            "embedder", f"unknown embedder {name!r}", f"known: {', '.join(available_embedders())}"
        ) from None
    emb = factory(**kwargs)
    if not isinstance(emb, Embedder):
        raise ConfigurationError("embedder", f"factory for {name!r} did not return an Embedder")
    return emb


register_embedder("hashing", HashingEmbedder)


class WordLlamaEmbedder:
    """Semantic, offline embedder: WordLlama's static token embeddings (256-d weights shipped inside the
    ``wordllama`` wheel, loaded with downloads disabled), mean-pooled and L2-normalised.

    It knows that "champion left" and "champion leaves" are close, which the hashing embedder does not.
    Optional: needs ``pip install wordllama``; :func:`get_embedder` names the missing package otherwise.
    """

    name = "wordllama"

    def __init__(self, config: str = "l2_supercat", dim: int = 256, *, version: str = "1"):
        try:
            import wordllama
            from wordllama import WordLlama
        except ImportError:
            raise ConfigurationError(
                "embedder", "the 'wordllama' embedder needs the wordllama package", "pip install wordllama"
            ) from None
        from pathlib import Path

        self.dim = int(dim)
        self.version = f"{version}+{config}-{self.dim}"
        self._lock = threading.Lock()
        self._model = WordLlama.load(
            config=config, dim=self.dim, cache_dir=Path(wordllama.__file__).parent, disable_download=True
        )

    def __repr__(self) -> str:
        return f"WordLlamaEmbedder(dim={self.dim}, version={self.version!r})"

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        if isinstance(texts, str):
            raise TypeError("embed() takes a sequence of texts, not a single string")
        if len(texts) == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        with self._lock:
            out = np.asarray(self._model.embed(list(texts), norm=True), dtype=np.float32)
        empty = np.array([not tokenize(t) for t in texts])
        out[empty] = 0.0  # texts without any content word embed to zero, like the hashing embedder
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        np.divide(out, norms, out=out, where=norms > 0)
        return out


register_embedder("wordllama", WordLlamaEmbedder)
