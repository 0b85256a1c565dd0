"""Pluggable text embedders for the knowledge base.

An :class:`Embedder` turns texts into an ``(n, dim)`` float32 matrix of L2-normalised rows, and names
itself (``name`` + ``version``) so the store can tell when vectors were made by a different model and
must be rebuilt.

The offline default, :class:`HashingEmbedder`, needs no model weights and no fitting: it hashes word
unigrams, word bigrams and character trigrams into a fixed number of signed buckets (the "hashing
trick"), weights term counts sublinearly and normalises. The hashes come from blake2b (a bigram's from
its two words' by a fixed integer mix) — never Python's ``hash``, which is randomised per process — so
vectors are identical across processes, machines, runs and batches. It is
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
from itertools import chain
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
_BLOCK = 8192  # texts per vectorised block: bounds the scratch memory (~16 MB at dim 256)
_K1, _K2, _K3 = (np.uint64(c) for c in (0x9E3779B97F4A7C15, 0xBF58476D1CE4E5B9, 0x94D049BB133111EB))


def _hash64(feature: str) -> int:
    return int.from_bytes(blake2b(feature.encode("utf-8"), digest_size=8).digest(), "little")


def _pair_hash(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """A 64-bit hash of the ordered pair of 64-bit hashes (a, b), elementwise (splitmix64 finaliser)."""
    x = a * _K1 + b  # uint64 arithmetic wraps around, as intended
    x = (x ^ (x >> np.uint64(30))) * _K2
    x = (x ^ (x >> np.uint64(27))) * _K3
    return x ^ (x >> np.uint64(31))


def _first_occurrence(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distinct ``keys`` in order of first occurrence, and how often each occurs."""
    uniq, first, counts = np.unique(keys, return_index=True, return_counts=True)
    slot = np.full(len(keys), -1, dtype=np.int64)
    slot[first] = np.arange(len(first))
    order = slot[slot >= 0]  # a permutation found by scattering, not by a second sort
    return uniq[order], counts[order]


class _Growable:
    """A 1-d numpy array with amortised O(1) appends (no list → array copy per batch)."""

    def __init__(self, dtype: type, initial: Sequence = ()):
        self.data = np.empty(max(1024, len(initial)), dtype=dtype)
        self.n = 0
        self.extend(initial)

    def extend(self, values: Sequence) -> None:
        k = len(values)
        if self.n + k > len(self.data):
            grown = np.empty(max(2 * len(self.data), self.n + k), dtype=self.data.dtype)
            grown[: self.n] = self.data[: self.n]
            self.data = grown
        self.data[self.n : self.n + k] = values
        self.n += k

    def view(self) -> np.ndarray:
        return self.data[: self.n]


class HashingEmbedder:
    """Offline, deterministic, fit-free embedder (signed feature hashing of words, bigrams, trigrams).

    Features per text: stemmed word unigrams (weight 1.0), adjacent word bigrams (``bigram_weight``)
    and the character trigrams of each word with boundary marks, ``<sync>`` → ``<sy syn ync nc>``
    (``char_weight`` each). A word occurring ``c`` times in a text contributes its unigram and its
    trigrams with ``1 + ln c`` (sublinear tf), a bigram occurring ``c`` times ``bigram_weight · (1 + ln c)``;
    each feature lands in one of ``dim`` buckets with a sign, both from a 64-bit hash (blake2b of the
    word or trigram; for a bigram, a fixed integer mix of its two words' hashes).

    Speed: each distinct token is tokenised, stemmed and hashed once (memoised as its word's row of
    (bucket, signed weight) features); a batch is then counted, expanded and bucketed in numpy, in
    blocks. Vectors do not depend on the batch a text is in or on what the embedder saw before:
    every text's contributions are summed in the text's own order.

    Version 2 (vs 1): bigrams hashed by the integer mix instead of blake2b of their text, and a
    trigram shared by two different words of a text counts linearly — both needed for the numpy path.
    """

    name = "hashing"

    def __init__(
        self,
        dim: int = 256,
        *,
        bigram_weight: float = 0.5,
        char_weight: float = 0.2,
        char_ngrams: bool = True,
        version: str = "2",
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

    # -- memo: token → word row; word row → features (buckets come from the hashes, never the rows) --
    def _reset(self) -> None:
        self._word_of: dict[str, int] = {}  # raw token → word row, -1 for a stop word
        self._row_of: dict[str, int] = {}  # stem → word row
        self._trigram: dict[str, tuple[int, float]] = {}
        self._word_hash = _Growable(np.uint64)
        self._feat_ptr = _Growable(np.int64, [0])  # word row r's features: [ptr[r], ptr[r + 1])
        self._feat_bucket = _Growable(np.int64)
        self._feat_val = _Growable(np.float64)  # signed weight
        self._new: tuple[list[int], list[tuple[int, float]], list[int]] = ([], [], [])

    def _signed(self, h: int, weight: float) -> tuple[int, float]:
        return h % self.dim, (-weight if (h >> 63) & 1 else weight)

    def _add_token(self, raw: str) -> int:
        tok = raw.replace("’", "").replace("'", "")
        if tok in STOP_WORDS:
            row = -1
        else:
            stem = _stem(tok)
            row = self._row_of.get(stem, -1)
            if row < 0:
                row = self._add_word(stem)
        self._word_of[raw] = row
        return row

    def _add_word(self, stem: str) -> int:
        """A new word row (buffered: :meth:`_flush` appends the rows added by a batch at once)."""
        h = _hash64("w:" + stem)
        feats = [self._signed(h, 1.0)]
        if self.char_weight and len(stem) > 2:
            w = f"<{stem}>"
            for i in range(len(w) - 2):
                tri = w[i : i + 3]
                f = self._trigram.get(tri)
                if f is None:
                    f = self._trigram[tri] = self._signed(_hash64("c:" + tri), self.char_weight)
                feats.append(f)
        new = self._new
        row = self._word_hash.n + len(new[0])
        self._row_of[stem] = row
        new[0].append(h)
        new[1].extend(feats)
        new[2].append(self._feat_bucket.n + len(new[1]))
        return row

    def _flush(self) -> None:
        hashes, feats, ends = self._new
        if hashes:
            self._word_hash.extend(hashes)
            self._feat_bucket.extend([b for b, _ in feats])
            self._feat_val.extend([v for _, v in feats])
            self._feat_ptr.extend(ends)
            self._new = ([], [], [])

    def features(self, text: str) -> dict[str, float]:
        """Weighted features of one text before hashing — for explaining a ranking."""
        words = tokenize(text)
        out: dict[str, float] = {}
        for word, c in Counter(words).items():
            tf = 1.0 + math.log(c)
            out["w:" + word] = tf
            if self.char_weight and len(word) > 2:
                w = f"<{word}>"
                for i in range(len(w) - 2):
                    key = "c:" + w[i : i + 3]
                    out[key] = out.get(key, 0.0) + self.char_weight * tf
        if self.bigram_weight:
            for (a, b), c in Counter(zip(words, words[1:], strict=False)).items():
                out[f"b:{a} {b}"] = self.bigram_weight * (1.0 + math.log(c))
        return out

    # -- public ----------------------------------------------------------------------------------
    def embed(self, texts: Sequence[str]) -> np.ndarray:
        if isinstance(texts, str):
            raise TypeError("embed() takes a sequence of texts, not a single string")
        if len(texts) == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        with self._lock:  # the memo tables are shared state
            if self._feat_bucket.n > self._cache_size:
                self._reset()
            out = np.empty((len(texts), self.dim), dtype=np.float32)
            for start in range(0, len(texts), _BLOCK):
                block = texts[start : start + _BLOCK]
                out[start : start + len(block)] = self._embed_block(block)
            return out

    def _embed_block(self, texts: Sequence[str]) -> np.ndarray:
        n, dim = len(texts), self.dim
        findall = _TOKEN.findall
        tokens = [findall(text.lower()) for text in texts]
        flat = list(chain.from_iterable(tokens))
        memo = self._word_of
        for raw in dict.fromkeys(flat):  # new tokens, in order of first occurrence
            if raw not in memo:
                self._add_token(raw)
        self._flush()
        word = np.fromiter(map(memo.__getitem__, flat), dtype=np.int64, count=len(flat))
        text = np.repeat(np.arange(n, dtype=np.int64), np.fromiter(map(len, tokens), np.int64, n))
        content = word >= 0
        word, text = word[content], text[content]

        # words: each distinct (text, word) once, with its sublinear count, expanded to its features
        pairs, counts = _first_occurrence((text << 32) | word)
        w_text, w_word = pairs >> 32, pairs & 0xFFFFFFFF
        ptr = self._feat_ptr.view()
        first, nfeat = ptr[w_word], ptr[w_word + 1] - ptr[w_word]
        feat = np.repeat(first - (np.cumsum(nfeat) - nfeat), nfeat) + np.arange(int(nfeat.sum()))
        cells = [np.repeat(w_text, nfeat) * dim + self._feat_bucket.view()[feat]]
        weights = [self._feat_val.view()[feat] * np.repeat(1.0 + np.log(counts), nfeat)]

        if self.bigram_weight and len(word) > 1:
            same = text[1:] == text[:-1]  # adjacent content words of one text
            hashes = self._word_hash.view()
            h = _pair_hash(hashes[word[:-1][same]], hashes[word[1:][same]]) >> np.uint64(24)  # 40 bits
            pairs, counts = _first_occurrence((text[1:][same].astype(np.uint64) << np.uint64(40)) | h)
            h = (pairs & np.uint64((1 << 40) - 1)).astype(np.int64)
            sign = np.where((h >> 39) & 1, -self.bigram_weight, self.bigram_weight)
            cells.append((pairs >> np.uint64(40)).astype(np.int64) * dim + h % dim)
            weights.append(sign * (1.0 + np.log(counts)))

        flat_cells = np.concatenate(cells)
        out = np.bincount(flat_cells, weights=np.concatenate(weights), minlength=n * dim)
        out = out.reshape(n, dim).astype(np.float32)
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
